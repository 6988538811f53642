"""What ``pack`` reads: documents as ``(id, text, lineage)``, from four kinds of source (``--source-type``).

- ``raw``: any corpus the readers accept (``--text-field``, ``--id-field``); lineage = the document's own id.
- ``augmented``: templify output directories or shard files; lineage = the raw document ids each instruction-
  augmented document was made from (``source_ids``), so ``mix`` can replace a raw document by its augmented version.
- ``collection``: the synthesizer's fine-tuning data (rows with a ``context`` and a ``QA_list`` of ``{"Q", "A"}``;
  ``qa_list`` or ``pairs`` of ``{"question", "answer"}`` are accepted too), rendered into pre-training text with
  the templify inventory, as the paper mixes it in (seeded by ``--seed`` and the row's id).
- ``chat``: general instruction data: ``messages`` (``role``/``content``), ShareGPT ``conversations``
  (``from``/``value``), or one instruction and its response (``instruction``/``prompt``/``question`` with
  ``response``/``output``/``answer``; an ``input`` is appended to the instruction, a ``system`` prompt goes first),
  rendered with :data:`CHAT_TEMPLATE`.

Every record that cannot become a document comes back as a ``Reject`` with its reason and the row as read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructpt.io.collection import CollectionFields, parse_pairs_row
from instructpt.io.inputs import _resolve, source_names
from instructpt.io.readers import ReadOptions, read_docs
from instructpt.io.shards import read_rows, stage_shards
from instructpt.records import RawDoc, Reject

SOURCE_TYPES = ("raw", "augmented", "collection", "chat")

# Plain text for general instruction data: a turn per paragraph, the speaker named; a system prompt first, bare.
CHAT_TEMPLATE = {"user": "User: {content}", "assistant": "Assistant: {content}", "system": "{content}"}
CHAT_TEMPLATE_VERSION = "chat-v1"
_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "model": "assistant",
          "bot": "assistant", "system": "system"}  # fmt: skip


@dataclass
class PackDoc:
    """A document to tokenize, with the ids of the raw documents it comes from."""

    id: str
    text: str
    source: str
    lineage: list[str] = field(default_factory=list)
    n_pairs: int | None = (
        None  # augmented documents: how many pairs they hold (0: the raw text passed through)
    )


def read_source(
    kind: str, inputs: list[str], options: ReadOptions, seed: int = 0
) -> Iterator[PackDoc | Reject]:
    """The documents of ``inputs`` read as ``kind`` (one of :data:`SOURCE_TYPES`), in a deterministic order."""
    if kind == "raw":
        for d in read_docs(inputs, options):
            yield PackDoc(d.id, d.text, d.source, [d.id]) if isinstance(d, RawDoc) else d
        return
    if kind == "augmented":
        for shard in stage_shards(inputs, reader="pack --source-type augmented", producer="templify"):
            yield from _rows(shard.path, shard.path.name, options, _augmented)
        return
    parse = _chat if kind == "chat" else _collection_parser(seed)
    for path, name in _files(inputs, options):
        yield from _rows(path, name, options, parse)


def _files(inputs: list[str], options: ReadOptions) -> list[tuple[Path, str]]:
    resolved = [
        (loc, root) for kind, loc, root in _resolve(inputs, exclude=options.exclude) if root is not None
    ]
    names = source_names(resolved)
    return [(Path(loc), names[loc]) for loc, _ in resolved]


def _rows(path: Path, source: str, options: ReadOptions, parse: Any) -> Iterator[PackDoc | Reject]:
    for n, row, original in read_rows(path, "pack"):
        if isinstance(row, Reject):
            yield row
            continue
        rid = f"{source}:{n}"
        if isinstance(row, dict) and options.id_field and isinstance(row.get(options.id_field), str | int):
            rid = str(row[options.id_field])
        result = parse(row, rid, options) if isinstance(row, dict) else "not_an_object"
        if isinstance(result, tuple):
            yield Reject(rid, source, result[0], result[1], "pack", original)
        elif isinstance(result, str):
            yield Reject(rid, source, result, "", "pack", original)
        else:
            result.source = source
            yield result


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _augmented(row: dict[str, Any], rid: str, options: ReadOptions) -> PackDoc | str:
    text = _text(row.get("text"))
    if text is None:
        return "missing_text"
    rid = row["id"] if isinstance(row.get("id"), str) else rid
    lineage = row.get("source_ids")
    if not (isinstance(lineage, list) and all(isinstance(x, str) for x in lineage)):
        lineage = [rid]
    n_pairs = row.get("n_pairs") if isinstance(row.get("n_pairs"), int) else None
    return PackDoc(rid, text, "", lineage, n_pairs)


def _collection_parser(seed: int) -> Any:
    from instructpt.templates import render_chain

    fields = CollectionFields()

    def parse(row: dict[str, Any], rid: str, options: ReadOptions) -> PackDoc | str | tuple[str, str]:
        context, pairs = parse_pairs_row(row, fields)
        if isinstance(pairs, str):
            return context, pairs  # (reason, detail)
        rendered = render_chain([(context, pairs)], record_id=rid, seed=seed)
        return PackDoc(rid, rendered.text, "", [rid], rendered.n_pairs)

    return parse


def _chat(row: dict[str, Any], rid: str, options: ReadOptions) -> PackDoc | str | tuple[str, str]:
    turns = _turns(row)
    if isinstance(turns, tuple):
        return turns
    text = "\n\n".join(CHAT_TEMPLATE[role].format(content=content.strip()) for role, content in turns)
    return PackDoc(rid, text, "", [rid])


def _turns(row: dict[str, Any]) -> list[tuple[str, str]] | tuple[str, str]:
    for key, role_key, content_key in (("messages", "role", "content"), ("conversations", "from", "value")):
        messages = row.get(key)
        if messages is None:
            continue
        if not isinstance(messages, list) or not messages:
            return "malformed_messages", f"{key!r} is not a non-empty list"
        turns = []
        for m in messages:
            role = _ROLES.get(str(m.get(role_key, "")).lower()) if isinstance(m, dict) else None
            content = _text(m.get(content_key)) if isinstance(m, dict) else None
            if role is None or content is None:
                return "malformed_messages", f"a message without a known {role_key!r} or a {content_key!r}"
            turns.append((role, content))
        return turns
    instruction = next(
        (_text(row.get(k)) for k in ("instruction", "prompt", "question") if _text(row.get(k))), None
    )
    response = next((_text(row.get(k)) for k in ("response", "output", "answer") if _text(row.get(k))), None)
    if instruction is None or response is None:
        return (
            "missing_messages",
            f"no messages, and no instruction and response (fields: {', '.join(sorted(row))})",
        )
    if _text(row.get("input")):
        instruction = f"{instruction}\n\n{row['input'].strip()}"
    system = [("system", row["system"])] if _text(row.get("system")) else []
    return [*system, ("user", instruction), ("assistant", response)]
