"""Choosing the documents of a mixture: by token share or repeat count, with the paper's presets.

Everything here works on document references ``(source, shard, doc)`` and their token lengths; no token is read or
copied. Every draw comes from an RNG seeded by (``--seed``, what is drawn), so the same sources and settings give
the same mixture on any machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from instructpt.errors import ConfigError, InputError
from instructpt.io.tokens import PackedSource

REF = np.dtype([("source", "<u2"), ("shard", "<u4"), ("doc", "<u4")])


def rng_for(seed: int, what: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{what}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class SourceSpec:
    """``NAME=DIR[:SHARE|:xREPEATS]`` from the command line."""

    name: str
    path: str
    share: float | None = None
    repeats: float | None = None

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"--sources: expected NAME=PACK_DIR[:SHARE|:xREPEATS], got {text!r}")
        path, share, repeats = rest, None, None
        head, colon, tail = rest.rpartition(":")
        if colon and head and _number(tail.removeprefix("x")) is not None:
            path = head
            if tail.startswith("x"):
                repeats = _number(tail[1:])
            else:
                share = _number(tail)
        for value in (share, repeats):
            if value is not None and value <= 0:
                raise ConfigError(f"--sources {text!r}: a share or repeat count must be > 0")
        return cls(name, path, share, repeats)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "share": self.share, "repeats": self.repeats}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class Source:
    """A packed source's documents: where each is, how long, and (read when needed) ids and lineage."""

    position: int
    spec: SourceSpec
    pack: PackedSource
    refs: np.ndarray = field(init=False)
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        parts = [(s.index, np.arange(len(s.lengths), dtype="<u4"), s.lengths) for s in self.pack.shards]
        self.refs = np.zeros(sum(len(p[1]) for p in parts), dtype=REF)
        self.refs["source"] = self.position
        self.refs["shard"] = np.concatenate([np.full(len(d), i, dtype="<u4") for i, d, _ in parts])
        self.refs["doc"] = np.concatenate([d for _, d, _ in parts])
        self.lengths = np.concatenate([lengths for *_, lengths in parts]).astype(np.int64)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """The document index rows (id, lineage, n_pairs), in the order of :attr:`refs`."""
        return [row for shard in self.pack.shards for row in shard.documents]

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


@dataclass
class Pick:
    """Documents of one source in a mixture (indices into the source, repeats included) and how they were chosen."""

    source: Source
    docs: np.ndarray  # int64 indices into source.refs
    how: str

    @property
    def tokens(self) -> int:
        return int(self.source.lengths[self.docs].sum())


def take_tokens(
    source: Source, pool: np.ndarray, target: int, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """Documents of ``pool`` (shuffled, repeated in new orders as needed) until ``target`` tokens are reached; the
    last document taken may cross it."""
    if target <= 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64), "none"
    natural = int(source.lengths[pool].sum())
    if natural == 0:
        raise InputError(f"source {source.spec.name!r} holds no tokens")
    epochs = int(np.ceil(target / natural))
    order = np.concatenate([rng.permutation(pool) for _ in range(epochs)])
    cumulative = np.cumsum(source.lengths[order])
    n = int(np.searchsorted(cumulative, target, side="left")) + 1
    how = (
        f"up-sampled x{target / natural:.3f}"
        if target > natural
        else f"down-sampled to {target / natural:.3%}"
    )
    return order[: min(n, len(order))], how


def repeat(pool: np.ndarray, times: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``pool`` ``times`` over (a fractional last pass takes a seeded share of the documents)."""
    whole, part = int(times), times - int(times)
    runs = [rng.permutation(pool) for _ in range(whole)]
    if part > 0:
        runs.append(rng.permutation(pool)[: int(round(part * len(pool)))])
    return (np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)), f"repeated x{times:g}"


def split_validation(
    sources: list[Source], pools: dict[int, np.ndarray], fraction: float, min_tokens: int, seed: int
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """A seeded share of each pool's documents held out for validation (at least ``min_tokens`` tokens in all, so
    at least one block); returns (train pools, validation pools), disjoint."""
    train, val = {}, {}
    for s in sources:
        pool = pools.get(s.position, np.zeros(0, dtype=np.int64))
        order = rng_for(seed, f"val:{s.spec.name}").permutation(pool)
        k = min(len(order), int(round(fraction * len(order)))) if fraction > 0 else 0
        val[s.position], train[s.position] = order[:k], np.sort(order[k:])
    if fraction > 0:
        _top_up(sources, train, val, min_tokens)
    return train, val


def _top_up(
    sources: list[Source], train: dict[int, np.ndarray], val: dict[int, np.ndarray], need: int
) -> None:
    """Move documents from the largest training pool to validation until it holds ``need`` tokens."""
    have = sum(int(s.lengths[val[s.position]].sum()) for s in sources)
    largest = max(sources, key=lambda s: int(s.lengths[train[s.position]].sum()))
    pool = train[largest.position]
    cumulative = np.cumsum(largest.lengths[pool])
    k = int(np.searchsorted(cumulative, need - have, side="left")) + 1 if have < need else 0
    if k >= len(pool) and have < need:
        raise InputError(f"the sources hold fewer than {need} tokens: not enough for one validation block")
    val[largest.position] = np.concatenate([val[largest.position], pool[:k]])
    train[largest.position] = pool[k:]
