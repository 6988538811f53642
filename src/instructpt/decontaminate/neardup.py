"""Near-duplicate documents by MinHash LSH (datasketch): which records repeat an earlier one, approximately.

Each record's text is shingled into word 5-grams (after the n-gram index's normalisation), hashed into a MinHash
of ``num_perm`` permutations, and looked up in an LSH index of the records before it: a record whose estimated
Jaccard similarity with an earlier one reaches ``threshold`` is a near-duplicate of the first record of that
cluster, which is kept. Records are visited in input order (shard by shard, row by row), so the same input gives
the same clusters. Memory: the LSH holds every kept record's band keys (~``num_perm`` * 8 bytes each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from instructpt.decontaminate.index import normalize
from instructpt.errors import ConfigError

SHINGLE_WORDS = 5


@dataclass(frozen=True)
class Duplicate:
    kept: str  # id of the record the duplicate repeats (the first of its cluster)
    similarity: float  # estimated Jaccard similarity of their shingles


def _shingles(text: str) -> list[bytes]:
    words = normalize(text)
    if len(words) <= SHINGLE_WORDS:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)]


def near_duplicates(
    records: Iterable[tuple[object, str, str]], threshold: float, num_perm: int = 128
) -> dict[object, Duplicate]:
    """``{key: Duplicate}`` for every record (``(key, id, text)``, in order) that repeats an earlier one."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as exc:
        raise ConfigError("--near-dup needs datasketch: pip install 'instructpt[dedup]'") from exc
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, tuple[str, MinHash]] = {}
    out: dict[object, Duplicate] = {}
    for n, (key, rid, text) in enumerate(records):
        shingles = _shingles(text)
        if not shingles:
            continue
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(shingles)
        best: tuple[float, str] | None = None
        for label in lsh.query(m):
            sim = float(m.jaccard(kept[label][1]))
            if sim >= threshold and (best is None or sim > best[0] or (sim == best[0] and label < best[1])):
                best = (sim, label)
        if best is not None:
            out[key] = Duplicate(kept[best[1]][0], round(best[0], 3))
            continue
        label = f"{n:012d}"  # insertion order: ties go to the earliest record
        kept[label] = (rid, m)
        lsh.insert(label, m)
    return out


def cluster_sizes(duplicates: dict[object, Duplicate]) -> np.ndarray:
    """How many records each cluster with duplicates has (the kept one included)."""
    counts: dict[str, int] = {}
    for d in duplicates.values():
        counts[d.kept] = counts.get(d.kept, 1) + 1
    return np.array(sorted(counts.values()), dtype=np.int64)
