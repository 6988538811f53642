"""The records that cross stage boundaries, and their JSON form.

Every stage reads and writes these as plain JSON objects (one per line in jsonl shards, one row in parquet
shards). Lineage fields (source ids, chain id/position, synthesizer id/revision, template ids) are carried
forward by every later stage, and so are the input fields ``--keep-fields`` names (``fields``: a JSON object in
jsonl, JSON text in the typed parquet column; a record without any has no ``fields`` key).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class QAPair:
    """One instruction-response pair grounded in a text. ``task_type`` is set by engines that know it."""

    question: str
    answer: str
    task_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"question": self.question, "answer": self.answer}
        if self.task_type is not None:
            d["task_type"] = self.task_type
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QAPair:
        return cls(question=d["question"], answer=d["answer"], task_type=d.get("task_type"))


@dataclass(frozen=True)
class RawDoc:
    """A raw input document. ``id`` is the user's id or a stable one derived from source + line/row."""

    id: str
    text: str
    source: str
    id_derived: bool = False  # --id-field was given but this record had no usable value there
    fields: dict[str, Any] | None = None  # the input fields --keep-fields names, where the record has them


@dataclass
class SynthRecord:
    """One synthesized example: a text (a whole document or one piece of a long one) and its pairs.

    Records of one chain share ``chain_id`` and are written consecutively in ``chain_pos`` order; templify
    renders each chain as one pre-training document.
    """

    id: str
    doc_id: str
    source: str
    text: str
    pairs: list[QAPair]
    chain_id: str
    chain_pos: int
    piece: int = 0
    n_pieces: int = 1
    finish_reason: str = ""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    synthesizer: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] | None = None  # kept input fields (--keep-fields); no key at all when none
    # With several samples per text (--num-samples): the one these pairs are from (None: one sample, or a
    # union of all); no key at all when None
    sample: int | None = None

    def to_dict(self) -> dict[str, Any]:
        # built by hand: dataclasses.asdict deep-copies and was a fifth of the stage's CPU time
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d.update(
            pairs=[p.to_dict() for p in self.pairs],
            drops=dict(self.drops),
            synthesizer=dict(self.synthesizer),
            sampling=dict(self.sampling),
        )
        if not self.fields:
            del d["fields"]
        if self.sample is None:
            del d["sample"]
        return d

    def to_parquet_row(self) -> dict[str, Any]:
        """The row for :func:`synth_record_schema`: as :meth:`to_dict`, with ``fields`` as JSON text."""
        d = self.to_dict()
        if "fields" in d:
            d["fields"] = json.dumps(d["fields"], ensure_ascii=False, default=str)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["pairs"] = [QAPair.from_dict(p) for p in d.get("pairs") or []]
        return cls(**known)

    @classmethod
    def from_row(cls, row: Any) -> SynthRecord | str:
        """A record read back from a synthesize shard (or a hand-written file), or the reason it cannot be used:
        it needs a non-empty ``id``, a non-blank ``text``, a string ``chain_id`` and a list of well-formed pairs.
        Other fields take their defaults when absent (``doc_id``: the record's ``id``)."""
        if not isinstance(row, dict):
            return "not_an_object"
        if not isinstance(row.get("id"), str) or not row["id"]:
            return "missing_id"
        text, pairs = row.get("text"), row.get("pairs")
        if not isinstance(text, str) or not text.strip():
            return "missing_text"
        if not isinstance(row.get("chain_id"), str):
            return "missing_chain_id"
        if not isinstance(pairs, list):
            return "missing_pairs"
        try:
            qa = [QAPair.from_dict(p) for p in pairs]
        except (KeyError, TypeError, AttributeError):
            return "malformed_pairs"
        if any(not isinstance(p.question, str) or not isinstance(p.answer, str) for p in qa):
            return "malformed_pairs"
        if not all(
            utf8_encodable(t) for t in (text, row["id"], *(x for p in qa for x in (p.question, p.answer)))
        ):
            return "invalid_unicode"  # a lone surrogate (JSON can escape one): no UTF-8 output could hold it
        known = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        known.update(pairs=qa, doc_id=row.get("doc_id") or row["id"], source=row.get("source", ""))
        known.update(fields=_kept_fields(row.get("fields")))
        known.setdefault("chain_pos", 0)
        if not isinstance(known.get("sample"), int) or isinstance(known.get("sample"), bool):
            known["sample"] = None
        return cls(**known)


def _kept_fields(value: Any) -> dict[str, Any] | None:
    """A row's ``fields``: a mapping (jsonl), JSON text (parquet) or absent; anything else is ignored."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) and value else None


def utf8_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON may escape a lone surrogate, which no UTF-8 output holds)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def synth_record_schema(samples: bool = False) -> Any:
    """The parquet schema of :class:`SynthRecord` rows: typed columns throughout, ``drops`` a list of
    ``{reason, count}`` (so shards with different drop reasons share one schema, and ``datasets`` can type it: it
    has no map type; read back as a mapping), ``synthesizer`` and ``sampling`` structs, ``fields`` (kept input
    fields, any JSON) as JSON text (null: none; :meth:`SynthRecord.from_row` reads it back as a mapping).
    ``synthesizer`` holds what any engine's ``describe()`` gives (a key outside these fields would be lost: tests
    check every engine's). ``samples``: with a ``sample`` column (runs with several samples per text)."""
    import pyarrow as pa

    pair = pa.struct([("question", pa.string()), ("answer", pa.string()), ("task_type", pa.string())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("text", pa.string()),
            ("pairs", pa.list_(pair)),
            ("chain_id", pa.string()),
            ("chain_pos", pa.int64()),
            ("piece", pa.int64()),
            ("n_pieces", pa.int64()),
            ("finish_reason", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("generated_tokens", pa.int64()),
            ("drops", pa.list_(pa.struct([("reason", pa.string()), ("count", pa.int64())]))),
            ("synthesizer", pa.struct([(k, pa.string()) for k in SYNTHESIZER_TEXT] + [(k, pa.int64()) for k in SYNTHESIZER_INT])),
            ("sampling", pa.struct([("max_new_tokens", pa.int64()), ("temperature", pa.float64()), ("top_p", pa.float64()), ("seed", pa.int64())])),
            ("fields", pa.string()),  # kept input fields as JSON text: any JSON value, in one schema
            *([("sample", pa.int64())] if samples else []),
        ],
        metadata={KEY_VALUE_COLUMNS: b'{"drops": ["reason", "count"]}'},
    )  # fmt: skip


# parquet schema metadata: columns that hold a mapping as a list of {key field, value field} structs
KEY_VALUE_COLUMNS = b"instructpt.key_value_columns"


# the keys engines' describe() may give (tests/unit/test_engines.py checks every engine's against these)
SYNTHESIZER_TEXT = ("engine", "model", "revision", "commit", "api_base", "api_model", "prompt_mode")
SYNTHESIZER_INT = ("seed", "max_per_type")


@dataclass
class AugmentedDoc:
    """One instruction-augmented pre-training document rendered from one chain."""

    id: str
    text: str
    chain_id: str
    record_ids: list[str]
    source_ids: list[str]
    layout: str
    template_ids: list[str]  # pair patterns ("qa_options/017")
    seed: int
    n_pairs: int = 0
    piece_ids: list[str] = field(default_factory=list)  # layout pieces, option styles, reasoning wordings
    # source id -> its input file (``source``) and kept input fields; only for chains whose records kept fields
    source_fields: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.source_fields:
            del d["source_fields"]
        return d


@dataclass
class Reject:
    """An input or intermediate record that a stage could not use, with the reason (never silently lost)."""

    id: str
    source: str
    reason: str
    detail: str = ""
    stage: str = ""
    record: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
