"""Reading the synthesizer's fine-tuning data: rows holding a context and a list of instruction-response pairs.

The released collection (``instruction-pretrain/ft-instruction-synthesizer-collection``, SPEC §2) has one config
per source dataset, stored as ``<name>/shard/*.jsonl``, each row a ``context`` and a ``QA_list`` of
``{"Q": ..., "A": ...}``. Any jsonl/parquet (or HF dataset) with a context and a list of pairs reads the same way;
the field names are options (:class:`CollectionFields`). ``train-synthesizer`` trains on these rows and ``pack
--source-type collection`` renders them into pre-training text.

Each example keeps the name of the source dataset it comes from: the row's source field when it has one, else the
dataset config (hub ids and dataset repositories, one config per source), else the first folder of the file's path
under the input directory (``collection/squad/shard/0.jsonl`` -> ``squad``), else the file's name.

A row that cannot be an example comes back as a ``Reject`` with its reason and the row as read: no context, no
pairs, a pair with an empty question or answer, a field that is not a string, a wire marker (``<QUE>``, ``</s>``
...) inside the text (it would teach the model to write markers where none belong).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import InputError
from instructpt.io.hf import DatasetSpec, open_dataset
from instructpt.io.inputs import _abs, _resolve
from instructpt.io.shards import read_rows
from instructpt.records import QAPair, Reject, utf8_encodable
from instructpt.wire import MARKERS

COLLECTION_PARSER = (
    "collection-v2"  # how rows become (context, pairs): part of the fingerprints of stages using it
)
# folder and file names that say nothing about the source dataset (``squad/shard/00000.jsonl`` is squad)
GENERIC_NAMES = {
    "shard",
    "shards",
    "data",
    "train",
    "test",
    "dev",
    "val",
    "valid",
    "validation",
    "split",
    "splits",
}
# (list field, question key, answer key) tried in order when the fields are not named
KNOWN_PAIR_FIELDS = (("QA_list", "Q", "A"), ("qa_list", "Q", "A"), ("pairs", "question", "answer"))
KNOWN_SOURCE_FIELDS = ("source", "dataset", "task_name", "task")


@dataclass
class CollectionFields:
    """Field names of fine-tuning rows (defaults: the released collection's, with common alternatives)."""

    context_field: str = option("context", "Field holding the context text.")
    pairs_field: str | None = option(
        None, "Field holding the list of pairs (default: the first of QA_list, qa_list, pairs present)."
    )
    question_key: str | None = option(None, "Key of a pair's question (default: Q, or question for 'pairs').")
    answer_key: str | None = option(None, "Key of a pair's answer (default: A, or answer for 'pairs').")
    source_field: str | None = option(
        None,
        "Field naming each row's source dataset (default: the first of source, dataset, task_name, task present; "
        "else the dataset config or the file's folder).",
    )
    hf_config: str | None = option(
        None, "HF inputs: read this config only (default: every config, each a source)."
    )
    hf_revision: str | None = option(None, "HF inputs: revision.")
    split: str = option("train", "HF inputs: split.")


@dataclass(frozen=True)
class CollectionExample:
    """One fine-tuning example: a context and its pairs, from a named source dataset."""

    id: str
    source: str
    context: str
    pairs: tuple[QAPair, ...]


def read_collection(
    inputs: list[str], fields: CollectionFields, stage: str, exclude: tuple[str, ...] = ()
) -> Iterator[CollectionExample | Reject]:
    """Every row of ``inputs`` as an example or a ``Reject`` of ``stage``, in a deterministic order."""
    for kind, location, root in _resolve(inputs, warn=True, exclude=exclude):
        if kind == "file":
            path = Path(location)
            folder = _folder_name(path, root)
            for n, row, original in read_rows(path, stage):
                if isinstance(row, Reject):
                    yield row
                else:
                    yield parse_row(row, f"{folder}:{n}", folder, fields, stage, original)
        else:
            yield from _read_dataset(kind, location, fields, stage)


def collect(
    inputs: list[str], fields: CollectionFields, stage: str, exclude: tuple[str, ...] = ()
) -> tuple[list[CollectionExample], list[Reject]]:
    """:func:`read_collection` gathered: the examples, and the rejects apart."""
    examples: list[CollectionExample] = []
    rejects: list[Reject] = []
    for item in read_collection(inputs, fields, stage, exclude):
        if isinstance(item, Reject):
            rejects.append(item)
        else:
            examples.append(item)
    return examples, rejects


def _folder_name(path: Path, root: Path | None) -> str:
    """The source name of a file without a source field: the first telling name among its folders under the input
    directory, its own name (without suffixes), and the folders above it, nearest first. Generic names (``shard``,
    ``data``, ``train`` ...) and numbers (``00000``) tell nothing: ``coll/squad/shard/00000.jsonl`` is ``squad``
    whether the input was ``coll``, ``coll/squad`` or the file itself."""
    full = _abs(str(path))
    inner: tuple[str, ...] = ()
    if root is not None:
        try:
            inner = full.relative_to(root).parts[:-1]
        except ValueError:
            inner = ()
    stem = path.name.split(".")[0]
    for name in (*inner, stem, *(p.name for p in full.parents)):
        if name and not name.isdigit() and name.lower() not in GENERIC_NAMES:
            return name
    return stem


def _read_dataset(kind: str, location: str, fields: CollectionFields, stage: str) -> Iterator[Any]:
    spec = DatasetSpec(fields.split, fields.hf_config, fields.hf_revision)
    configs: list[str | None] = [fields.hf_config]
    if fields.hf_config is None and kind != "hf_disk":
        configs = list(_config_names(location, fields.hf_revision)) or [None]
    name = Path(location).name if kind == "hf_disk" else location
    for config in configs:
        rows, _ = open_dataset(kind, location, replace(spec, config=config))
        source = config or name
        for n, row in enumerate(rows):
            yield parse_row(row, f"{source}:{n}", source, fields, stage, row)


def _config_names(location: str, revision: str | None) -> list[str]:
    import datasets

    try:
        return list(datasets.get_dataset_config_names(location, revision=revision))
    except Exception as exc:  # noqa: BLE001 - hub/network/format errors all mean "cannot read this input"
        raise InputError(
            f"cannot list the configs of dataset {location!r}: {' '.join(str(exc).split())}"
        ) from exc


def parse_row(
    row: Any, rid: str, source: str, fields: CollectionFields, stage: str, original: Any
) -> CollectionExample | Reject:
    """One row as an example, or a ``Reject`` (reason, detail, the row as read)."""
    if not isinstance(row, dict):
        return Reject(rid, source, "not_an_object", type(row).__name__, stage, original)
    named = _source(row, fields)
    if isinstance(named, tuple):
        return Reject(rid, source, named[0], named[1], stage, original)
    source = named or source
    rid = row["id"] if isinstance(row.get("id"), str) and row["id"].strip() else rid
    context, pairs = parse_pairs_row(row, fields)
    if isinstance(pairs, str):
        return Reject(rid, source, context, pairs, stage, original)
    return CollectionExample(rid, source, context, tuple(pairs))


def _source(row: dict[str, Any], fields: CollectionFields) -> str | None | tuple[str, str]:
    names = (fields.source_field,) if fields.source_field else KNOWN_SOURCE_FIELDS
    for key in names:
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            return "bad_source", f"{key!r} is not a non-empty string"
        return value.strip()
    return None


def parse_pairs_row(
    row: dict[str, Any], fields: CollectionFields
) -> tuple[str, list[QAPair]] | tuple[str, str]:
    """``(context, pairs)`` of a row, or ``(reason, detail)``."""
    context = row.get(fields.context_field)
    if context is None:
        shown = ", ".join(sorted(map(str, row))[:20]) or "none"
        return "missing_context", f"no field {fields.context_field!r} (fields: {shown})"
    bad = _bad_text(context, "context")
    if bad:
        return bad
    found = _pairs_field(row, fields)
    if isinstance(found, str):
        return "missing_pairs", found
    key, q_key, a_key = found
    items = row[key]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return "malformed_pairs", f"{key!r} is not a list of objects"
    if not items:
        return "no_pairs", f"{key!r} is empty"
    pairs = []
    for i, item in enumerate(items):
        for what, k in (("question", q_key), ("answer", a_key)):
            bad = _bad_text(item.get(k), what, f"pair {i} {k!r}")
            if bad:
                return bad
        pairs.append(QAPair(item[q_key].strip(), item[a_key].strip()))
    return context.strip(), pairs


def _pairs_field(row: dict[str, Any], fields: CollectionFields) -> tuple[str, str, str] | str:
    if fields.pairs_field:
        if fields.pairs_field not in row:
            return f"no field {fields.pairs_field!r}"
        return fields.pairs_field, fields.question_key or "Q", fields.answer_key or "A"
    for key, q, a in KNOWN_PAIR_FIELDS:
        if (
            row.get(key) is not None
        ):  # datasets with one schema for all rows hold null in the fields a row lacks
            return key, fields.question_key or q, fields.answer_key or a
    return f"none of {', '.join(k for k, _, _ in KNOWN_PAIR_FIELDS)} (fields: {', '.join(sorted(map(str, row)))})"


def _bad_text(value: Any, what: str, where: str | None = None) -> tuple[str, str] | None:
    where = where or what
    if value is None:
        return f"missing_{what}", f"{where} is missing"
    if not isinstance(value, str):
        return f"{what}_not_string", f"{where} is {type(value).__name__}"
    if not value.strip():
        return f"empty_{what}", f"{where} is empty"
    if "\x00" in value or not utf8_encodable(value):
        return "invalid_unicode", f"{where} holds NUL bytes or a lone surrogate"
    marker = next((m for m in MARKERS if m in value), None)
    if marker:
        return "marker_in_text", f"{where} contains {marker!r}"
    return None
