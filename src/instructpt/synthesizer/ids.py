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
    docs, rejects, seen = [], [], set()
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
            docs.append(d)
        else:
            rejects.append(d)
    return docs, rejects, kept


def check_piece_ids(
    items: list[Item], docs: list[RawDoc], kept: list[int], earlier_ids: SeenIds | None
) -> tuple[list[Item], list[Reject]]:
    """Pieces of a split text are named ``ID#k``; with --id-field such a name may already be another record's
    id (in this shard or an earlier one). Then the split document is rejected as ``duplicate_id``; the names of
    the pieces that are kept count as used ids for later shards. (Derived ids never end in ``#k``.)"""
    if earlier_ids is None:
        return items, []
    taken = {d.id for d in docs}
    clash: dict[str, str] = {}
    for it in items:
        if it.id != it.doc_id and (it.id in taken or id_hash(it.id) in earlier_ids):
            clash.setdefault(it.doc_id, it.id)
    rejects = [
        Reject(d.id, d.source, "duplicate_id", f"its piece id {clash[d.id]!r} is another record's id", "read",
               {"id": d.id, "text": d.text})
        for d in docs
        if d.id in clash
    ]  # fmt: skip
    if clash:
        gone = {id_hash(doc_id) for doc_id in clash}
        kept[:] = [h for h in kept if h not in gone]
        items = [it for it in items if it.doc_id not in clash]
    kept.extend(id_hash(it.id) for it in items if it.id != it.doc_id)
    return items, rejects


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
