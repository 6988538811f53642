"""Which record ids a shard keeps, and which it rejects as ``duplicate_id`` (with ``--id-field``), and which
documents are synthesized at all (``--fraction``).

Ids seed and name everything downstream, so a repeated one is rejected, in its shard or a later one; the hashes of
the ids each shard kept are stored with it (:mod:`instructpt.io.ids`), so a resumed run decides as the
uninterrupted one did.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from instructpt.io.ids import SeenIds, id_hash
from instructpt.records import RawDoc, Reject, SynthRecord
from instructpt.synthesizer.chains import Item


def check_ids(
    chunk: list[RawDoc | Reject], earlier_ids: SeenIds | None
) -> tuple[list[RawDoc], list[Reject], list[int]]:
    """Documents, rejects, and the id hashes this shard keeps for the shards after it (with --id-field).

    Ids seed and name everything downstream: a repeated one is rejected, in this shard or a later one."""
    marked, kept = mark_repeated(chunk, earlier_ids)
    docs = [d for d in marked if isinstance(d, RawDoc)]
    return docs, [d for d in marked if isinstance(d, Reject)], kept


def mark_repeated(
    chunk: list[RawDoc | Reject], earlier_ids: SeenIds | None
) -> tuple[list[RawDoc | Reject], list[int]]:
    """The shard's records in order, each with an id seen before (in this shard, or in ``earlier_ids``) turned
    into a ``duplicate_id`` reject; and the id hashes the shard keeps (with ``earlier_ids``)."""
    out: list[RawDoc | Reject] = []
    seen: set[str] = set()
    kept: list[int] = []
    for d in chunk:
        repeated = None
        if isinstance(d, RawDoc) and d.id in seen:
            repeated = "an earlier record in this shard has this id"
        elif isinstance(d, RawDoc) and earlier_ids is not None:
            h = id_hash(d.id)
            if h in earlier_ids:
                repeated = "an earlier shard has this id (64-bit hash match)"
            else:
                kept.append(h)
        if repeated and isinstance(d, RawDoc):
            d = Reject(d.id, d.source, "duplicate_id", repeated, "read", {"id": d.id, "text": d.text})
        if isinstance(d, RawDoc):
            seen.add(d.id)
        out.append(d)
    return out, kept


def check_piece_ids(
    items: list[Item], docs: list[RawDoc], kept: list[int], earlier_ids: SeenIds | None, samples: int = 1
) -> tuple[list[Item], list[Reject]]:
    """Pieces of a split text are named ``ID#k``, and further samples (``--keep all``) ``ID@sI``; with --id-field
    such a name may already be another record's id (in this shard or an earlier one). Then the document is
    rejected as ``duplicate_id``; the names that are kept count as used ids for later shards. (Derived ids never
    end in ``#k`` or ``@sI``.)"""
    if earlier_ids is None:
        return items, []
    taken = {d.id for d in docs}
    clash: dict[str, str] = {}
    every, names = items, [_names(it, samples) for it in items]
    for it, own in zip(every, names):
        for name in own:
            if name in taken or id_hash(name) in earlier_ids:
                clash.setdefault(it.doc_id, name)
    rejects = [
        Reject(d.id, d.source, "duplicate_id", f"its record id {clash[d.id]!r} (a piece or sample) is another "
               "record's id", "read", {"id": d.id, "text": d.text})
        for d in docs
        if d.id in clash
    ]  # fmt: skip
    if clash:
        gone = {id_hash(doc_id) for doc_id in clash}
        kept[:] = [h for h in kept if h not in gone]
        items = [it for it in items if it.doc_id not in clash]
    kept.extend(id_hash(name) for it, own in zip(every, names) if it.doc_id not in clash for name in own)
    return items, rejects


def _names(item: Item, samples: int) -> list[str]:
    """The record ids an item's output takes besides its document's: its piece name, its samples' names."""
    own = [item.id] if item.id != item.doc_id else []
    return own + [f"{item.id}@s{i}" for i in range(1, samples)]


def selected(record_id: str, fraction: float, seed: int) -> bool:
    """Whether ``--fraction`` picks this document: by a hash of (seed, record id), so the same documents are picked
    on every run, in any shard size and with any number of workers."""
    if fraction >= 1.0:
        return True
    digest = blake2b(f"{seed}:{record_id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") < fraction * 2**64


def passed_through(doc: RawDoc, synthesizer: dict[str, Any], sampling: dict[str, Any]) -> SynthRecord:
    """The record of a document ``--fraction`` did not pick: its raw text, no pairs, a chain of its own."""
    return SynthRecord(
        id=doc.id, doc_id=doc.id, source=doc.source, text=doc.text, pairs=[], chain_id=doc.id, chain_pos=0,
        finish_reason="not_selected", synthesizer=synthesizer, sampling=sampling, fields=doc.fields,
    )  # fmt: skip
