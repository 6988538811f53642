"""Rows of documents (a ``text`` and optional ``pairs``) read back from any stage's shards, for the stages that check
or filter records whatever wrote them (decontaminate, filter)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from instructpt.io.shards import ShardFile, read_rows
from instructpt.records import Reject, utf8_encodable


def text_rows(shard: ShardFile, stage: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """``(n, row or Reject)`` of a shard of documents: rows with a ``text`` and optional ``pairs`` (``question`` and
    ``answer`` strings), as synthesize and templify write them, kept as read; numbered as :func:`read_rows` numbers
    them. A row that is not such a document is a ``Reject`` (``not_an_object``, ``missing_text``, ``bad_pairs``,
    ``invalid_unicode``) keeping the row as read. For stages that check or filter records whatever wrote them."""
    for n, row, original in read_rows(shard.path, stage):
        if isinstance(row, Reject):
            yield n, row
            continue
        reason = _document_problem(row)
        if reason:
            yield n, Reject(row_id(row, shard, n), shard.path.name, reason, "", stage, original)
        else:
            yield n, row


def row_id(row: Any, shard: ShardFile, n: int) -> str:
    """A row's ``id``, or ``<shard file>:<n>`` for a row without one."""
    rid = row.get("id") if isinstance(row, dict) else None
    return rid if isinstance(rid, str) and rid else f"{shard.path.name}:{n}"


def _document_problem(row: Any) -> str:
    if not isinstance(row, dict):
        return "not_an_object"
    if not isinstance(row.get("text"), str):
        return "missing_text"
    if not utf8_encodable(row["text"]):
        return "invalid_unicode"
    pairs = row.get("pairs")
    if pairs is None:
        return ""
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and isinstance(p.get("question"), str) and isinstance(p.get("answer"), str)
        for p in pairs
    ):
        return "bad_pairs"
    if not all(utf8_encodable(p["question"] + p["answer"]) for p in pairs):
        return "invalid_unicode"
    return ""
