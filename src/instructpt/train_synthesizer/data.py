"""train-synthesizer's data, prepared once per run directory: read and validate the rows, hold out whole sources,
tokenize and pack the rest (:mod:`.sequences`), and keep the held-out examples for quality measurements.

``OUT/sequences/train.npz`` (the packed sequences), ``OUT/sequences/heldout.jsonl``, ``OUT/rejects/rejects.jsonl``
and, written last, ``OUT/sequences/prepared.json`` (the counts): a run that resumes reuses all of it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from instructpt.errors import ConfigError, InputError
from instructpt.io.collection import CollectionExample, CollectionFields, collect, parse_row
from instructpt.io.rundir import atomic_write, json_bytes
from instructpt.io.shards import write_jsonl
from instructpt.train_synthesizer import sequences as seqs

PREPARED = "sequences/prepared.json"  # written last: the training data is complete
TRAIN, HELDOUT, REJECTS = "sequences/train.npz", "sequences/heldout.jsonl", "rejects/rejects.jsonl"


def heldout_names(names: list[str], chosen: list[str], fraction: float, seed: int) -> list[str]:
    """The held-out sources: ``chosen`` (checked), else a seeded ``fraction`` of ``names`` (at least one of two)."""
    if chosen:
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise ConfigError(
                f"--heldout-sources {', '.join(unknown)}: no such source (sources: {', '.join(names)})"
            )
        if set(chosen) >= set(names):
            raise ConfigError("--heldout-sources names every source: nothing would be left to train on")
        return sorted(set(chosen))
    if len(names) < 2 or fraction == 0:
        return []
    k = min(len(names) - 1, max(1, round(fraction * len(names))))
    return sorted(random.Random(f"{seed}:heldout").sample(sorted(names), k))


def prepare(config: Any, encode: Callable[[str], list[int]], out: Path) -> dict[str, Any]:
    """Read, validate, hold out, tokenize and pack ``config``'s data into ``out`` (once; a re-run reuses it)."""
    if (out / PREPARED).exists():
        return json.loads((out / PREPARED).read_text(encoding="utf-8"))
    for sub in ("rejects", "sequences"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    examples, rejects = collect(config.inputs, config.data, "train-synthesizer", exclude=(str(out),))
    write_jsonl(out / REJECTS, [r.to_dict() for r in rejects])
    if not examples:
        raise InputError(f"no usable example in {', '.join(config.inputs)} ({len(rejects)} rows rejected; see the "
                         f"reasons in {out / REJECTS})")  # fmt: skip
    names = sorted({e.source for e in examples})
    o = config.train
    held = set(heldout_names(names, config.heldout_sources, config.heldout_fraction, o.seed))
    encoded: list[seqs.Encoded] = []
    skipped: Counter[str] = Counter()
    stats = seqs.PackStats()
    for e in examples:
        if e.source in held:
            continue
        r = seqs.encode(e, encode, o.seq_len, config.overlong)
        if isinstance(r, str):
            skipped[r] += 1
        else:
            stats.truncated += r.truncated
            encoded.append(r)
    if not encoded:
        raise InputError(f"no training example fits --max-seq-len {o.seq_len} ({dict(skipped)})")
    packed = seqs.pack(encoded, o.seq_len, o.seed, stats)
    heldout = [e for e in examples if e.source in held]
    write_jsonl(out / HELDOUT, [_row(e) for e in heldout])
    packed.save(out / TRAIN)
    info = {"examples": len(examples), "rejected": len(rejects), "rejects": dict(Counter(r.reason for r in rejects)),
            "sources": names, "heldout_sources": sorted(held), "heldout_examples": len(heldout),
            "train_examples": len(encoded), "truncated": stats.truncated, "skipped": dict(skipped),
            "sequences": len(packed), "tokens": stats.tokens, "label_tokens": stats.label_tokens}  # fmt: skip
    atomic_write(out / PREPARED, json_bytes(info))
    return info


def _row(e: CollectionExample) -> dict[str, Any]:
    return {"id": e.id, "source": e.source, "context": e.context,
            "QA_list": [{"Q": p.question, "A": p.answer} for p in e.pairs]}  # fmt: skip


def heldout_sample(out: Path, n: int, seed: int) -> list[CollectionExample]:
    """``n`` held-out examples for quality measurements: a seeded pick taking the sources in turn."""
    path = out / HELDOUT
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_source: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    rng = random.Random(f"{seed}:heldout-sample")
    queues = [rng.sample(group, len(group)) for _, group in sorted(by_source.items())]
    picked: list[dict[str, Any]] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    parsed = [parse_row(r, r["id"], r["source"], CollectionFields(), "train-synthesizer", r) for r in picked]
    return [e for e in parsed if isinstance(e, CollectionExample)]
