"""Counters every stage keeps per shard and merges into ``OUT/stats.json``.

``counts`` holds totals (documents in/out, pairs, tokens, ...); ``by`` holds named breakdowns (rejects by reason,
drops by reason, finish reasons, a pairs-per-document histogram, ...). Shard stats are written next to each shard
so a resumed run's totals are the sum over all completed shards, whichever run wrote them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    counts: Counter[str] = field(default_factory=Counter)
    by: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def count(self, breakdown: str, key: Any, n: int = 1) -> None:
        counter = self.by.get(breakdown)
        if counter is None:  # not setdefault: that would build a Counter on every call
            counter = self.by[breakdown] = Counter()
        counter[str(key)] += n

    def update(self, breakdown: str, counter: dict[str, int]) -> None:
        for k, v in counter.items():
            self.count(breakdown, k, v)

    def merge(self, other: Stats) -> Stats:
        self.counts.update(other.counts)
        for name, c in other.by.items():
            self.by.setdefault(name, Counter()).update(c)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "by": {name: dict(sorted(c.items(), key=_sort_key)) for name, c in sorted(self.by.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        return cls(Counter(d.get("counts", {})), {k: Counter(v) for k, v in d.get("by", {}).items()})


def _sort_key(item: tuple[str, int]) -> tuple[int, Any]:
    # numeric keys (histogram bins) sort numerically, names alphabetically
    k = item[0]
    return (0, int(k)) if k.isascii() and k.isdigit() else (1, k)
