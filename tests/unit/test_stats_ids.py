"""Shard counters (Stats: add, count, update, merge, the order of to_dict, from_dict) and record id hashes
(id_hash, pack / unpack, SeenIds membership and size across merges of recent ids into the sorted array)."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from instructpt.io.ids import SeenIds, id_hash, pack, unpack
from instructpt.io.stats import Stats


# ---- Stats ----
def test_add_count_update() -> None:
    s = Stats()
    s.add("docs_in")
    s.add("docs_in", 2)
    s.add("pairs", 0)
    s.count("rejects", "missing_text")
    s.count("pairs_per_doc", 3)  # keys are strings, whatever was given
    s.count("pairs_per_doc", 3, 4)
    s.update("rejects", {"missing_text": 2, "invalid_json": 1})
    assert s.counts == Counter({"docs_in": 3, "pairs": 0})
    assert s.by == {"rejects": {"missing_text": 3, "invalid_json": 1}, "pairs_per_doc": {"3": 5}}


def test_merge_sums_and_does_not_share_counters() -> None:
    a, b = Stats(), Stats()
    a.add("docs_in", 2)
    a.count("rejects", "x")
    b.add("docs_in", 3)
    b.add("docs_out")
    b.count("rejects", "x", 2)
    b.count("finish_reasons", "stop")
    assert a.merge(b) is a
    assert a.counts == {"docs_in": 5, "docs_out": 1}
    assert a.by == {"rejects": {"x": 3}, "finish_reasons": {"stop": 1}}
    a.count("finish_reasons", "stop")  # a's breakdown is its own, not b's
    assert b.by["finish_reasons"] == {"stop": 1} and b.counts == {"docs_in": 3, "docs_out": 1}


def test_to_dict_sorts_names_and_histogram_bins_numerically() -> None:
    s = Stats()
    for key in ("zeta", "alpha", "mid"):
        s.add(key)
    for k in ("10", "2", "x", "1", "100", "a", "02"):
        s.count("hist", k)
    s.count("a_breakdown", "k")
    d = s.to_dict()
    assert list(d["counts"]) == ["alpha", "mid", "zeta"]
    assert list(d["by"]) == ["a_breakdown", "hist"]
    bins = list(d["by"]["hist"])
    assert bins[:3] == ["1", "02", "2"] or bins[:3] == ["1", "2", "02"]  # equal as numbers: either order
    assert bins[3:] == ["10", "100", "a", "x"]
    assert list(json.loads(json.dumps(d))["by"]["hist"]) == bins  # the order survives stats.json


def test_from_dict_round_trip() -> None:
    s = Stats()
    s.add("docs_in", 7)
    s.count("pairs_per_doc", 2, 3)
    s.count("pairs_per_doc", 10)
    s.count("rejects", "invalid_json")
    back = Stats.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.to_dict() == s.to_dict()
    back.add("docs_in")  # Counters again, not plain dicts
    back.count("pairs_per_doc", 2)
    assert back.counts["docs_in"] == 8 and back.by["pairs_per_doc"]["2"] == 4
    assert Stats.from_dict({}) == Stats()


# ---- ids ----
def test_id_hash_is_stable_64_bit() -> None:
    # fixed values: ids stored by earlier runs (ids/shard-*.u64) must hash the same forever
    assert id_hash("doc-1") == 4752762565065110614
    assert id_hash("") == 13020603013274838756
    assert id_hash("é\udcff") == 10751840423213397367  # a lone surrogate (a non-UTF-8 file name) is hashable
    hashes = {id_hash(f"doc-{i}") for i in range(1000)}
    assert len(hashes) == 1000 and all(0 <= h < 2**64 for h in hashes)
    assert id_hash("doc-1") != id_hash("doc-1 ")


def test_pack_unpack_round_trip() -> None:
    values = [0, 1, 2**63, 2**64 - 1, id_hash("a")]
    data = pack(values)
    assert len(data) == 8 * len(values)
    assert data[8:16] == b"\x01" + b"\x00" * 7  # little-endian uint64, whatever the host
    assert unpack(data).tolist() == values
    assert pack(iter(values)) == data
    assert pack([]) == b"" and unpack(b"").tolist() == []
    with pytest.raises(OverflowError):
        pack([2**64])


def test_seen_ids_without_merge() -> None:
    seen = SeenIds()
    seen.add_many([1, 2, 2, 3])
    seen.add_many([3, 4])
    assert len(seen) == 4
    assert all(h in seen for h in (1, 2, 3, 4)) and 5 not in seen and 0 not in seen


def test_seen_ids_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SeenIds, "MIN_MERGE", 4)
    seen, expected = SeenIds(), set()
    rng = random.Random(7)
    merges = 0
    for _ in range(60):
        batch = [rng.randrange(300) for _ in range(rng.randrange(1, 12))]  # repeats within and across batches
        sorted_before = len(seen._sorted)
        seen.add_many(batch)
        expected.update(batch)
        merges += len(seen._sorted) != sorted_before
        assert len(seen) == len(expected)
        assert all(h in seen for h in batch)
    assert merges >= 5  # the sorted array really was rebuilt many times
    assert all((h in seen) == (h in expected) for h in range(-1, 301))
    assert list(seen._sorted) == sorted(seen._sorted) and len(set(seen._sorted)) == len(seen._sorted)
    seen.add_many(sorted(expected))  # everything again: nothing new
    assert len(seen) == len(expected)


def test_seen_ids_merge_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SeenIds, "MIN_MERGE", 4)
    seen = SeenIds()
    seen.add_many([10, 20, 30, 40])  # not more than MIN_MERGE recent ids: kept in the set
    assert len(seen._sorted) == 0 and len(seen) == 4
    seen.add_many([20, 50])  # one new id: 5 recent > 4, merged
    assert list(seen._sorted) == [10, 20, 30, 40, 50] and len(seen) == 5
    seen.add_many([50, 10, 60, 60])
    assert len(seen) == 6 and 60 in seen and 10 in seen and 15 not in seen
