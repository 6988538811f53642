"""Fine-tuning sequences for the synthesizer (SPEC §3, §6): few-shot packing in the wire format, pair-only labels.

Each example is tokenized as synthesis tokenizes a prompt (:func:`instructpt.wire.encode_example`, no added special
tokens, the literal ``<s>`` as the only BOS): its context block ``<s> <CON> ... </CON>\\n\\n`` and its target, the
pairs and the closing ``</s>``. Examples of the SAME source are concatenated with nothing in between, in a seeded
order, up to ``max_len`` tokens without splitting one; the loss falls on the targets only. So a sequence's first
example is token for token what ``synthesize`` sends for that context, and its later examples are what an M-shot
chain sends after the earlier ones.

An example longer than ``max_len`` has its context cut (never its pairs) to fit, or is skipped
(``--overlong skip``); one whose pairs alone do not fit is always skipped. Both are counted.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.io.collection import CollectionExample
from instructpt.io.rundir import atomic_write
from instructpt.wire import context_block, encode_example, serialize_pairs

IGNORE = -100
FORMAT_VERSION = "synth-sequences-v1"  # how examples become sequences: part of a run's fingerprint


@dataclass
class Encoded:
    """One example's ids: the context block (no loss) and the target (loss)."""

    source: str
    ctx: list[int]
    target: list[int]
    truncated: bool = False  # the context was cut to fit

    def __len__(self) -> int:
        return len(self.ctx) + len(self.target)


@dataclass
class Sequences:
    """Packed sequences: all tokens end to end, a loss mask beside them, and where each sequence starts."""

    tokens: np.ndarray  # int32
    loss_mask: np.ndarray  # uint8, 1 where the token is a target
    offsets: np.ndarray  # int64, len(sequences) + 1
    source: np.ndarray  # int32, the source index of each sequence
    sources: list[str]
    examples: np.ndarray  # int32, examples per sequence

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def ids(self, k: int) -> np.ndarray:
        return self.tokens[self.offsets[k] : self.offsets[k + 1]]

    def labels(self, k: int) -> np.ndarray:
        ids = self.ids(k).astype(np.int64)
        return np.where(self.loss_mask[self.offsets[k] : self.offsets[k + 1]] > 0, ids, IGNORE)

    def save(self, path: Path) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, tokens=self.tokens, loss_mask=self.loss_mask, offsets=self.offsets, source=self.source,
                 examples=self.examples, sources=np.array(json.dumps(self.sources)))  # fmt: skip
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> Sequences:
        with np.load(path) as z:
            return cls(z["tokens"], z["loss_mask"], z["offsets"], z["source"], json.loads(str(z["sources"])),
                       z["examples"])  # fmt: skip


@dataclass
class PackStats:
    examples: int = 0
    truncated: int = 0
    skipped: Counter = field(default_factory=Counter)
    label_tokens: int = 0
    tokens: int = 0


def encode(
    example: CollectionExample, encode_text: Callable[[str], list[int]], max_len: int, overlong: str
) -> Encoded | str:
    """An example's ids, fitted to ``max_len`` (``overlong``: truncate or skip); or the reason it is skipped."""
    body = serialize_pairs(example.pairs)
    ctx, target = encode_example(encode_text, example.context, body)
    if len(ctx) + len(target) <= max_len:
        return Encoded(example.source, ctx, target)
    if overlong == "skip":
        return "too_long"
    fitted = cut_context(example.context, body, encode_text, max_len)
    if fitted is None:
        return "pairs_too_long"
    return Encoded(example.source, *fitted, truncated=True)


def cut_context(
    context: str, body: str, encode_text: Callable[[str], list[int]], max_len: int
) -> tuple[list[int], list[int]] | None:
    """The longest prefix of ``context`` (cut at a space where there is one) whose example fits ``max_len``."""

    def ids(n: int) -> tuple[list[int], list[int]]:
        return encode_example(encode_text, context[:n].rstrip() or "...", body)

    if sum(map(len, ids(0))) > max_len:
        return None
    lo, hi = 0, len(context)  # ids(lo) fits, ids(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if sum(map(len, ids(mid))) <= max_len else (lo, mid)
    space = context.rfind(" ", 0, lo + 1)
    cut = space if space > lo // 2 else lo
    return ids(cut)


def pack(examples: Iterable[Encoded], max_len: int, seed: int, stats: PackStats) -> Sequences:
    """Few-shot sequences: each source's examples in a seeded order, greedily filled up to ``max_len``."""
    by_source: dict[str, list[Encoded]] = {}
    for e in examples:
        by_source.setdefault(e.source, []).append(e)
    names = sorted(by_source)
    tokens: list[int] = []
    mask: list[int] = []
    offsets, source, counts = [0], [], []
    for index, name in enumerate(names):
        group = by_source[name]
        random.Random(f"{seed}:{name}").shuffle(group)
        current: list[Encoded] = []
        for i, e in enumerate(group):
            current.append(e)
            last = i == len(group) - 1
            if last or sum(map(len, current)) + len(group[i + 1]) > max_len:
                for c in current:
                    tokens += c.ctx + c.target
                    mask += [0] * len(c.ctx) + [1] * len(c.target)
                offsets.append(len(tokens))
                source.append(index)
                counts.append(len(current))
                current = []
    stats.tokens += len(tokens)
    stats.label_tokens += sum(mask)
    return Sequences(np.array(tokens, dtype=np.int32), np.array(mask, dtype=np.uint8),
                     np.array(offsets, dtype=np.int64), np.array(source, dtype=np.int32), names,
                     np.array(counts, dtype=np.int32))  # fmt: skip


def batches(
    seqs: Sequences, batch_size: int, micro: int, n_micro: int, rank: int, pad_id: int, seed: int
) -> Any:
    """This rank's micro-batches of step ``s``: ``(ids, labels)`` padded on the right to the longest sequence.

    The step's sequences are ``s*B ... s*B+B-1`` of the epochs' orders laid end to end (epoch ``e`` a permutation
    seeded by ``(seed, e)``), so a resumed run, or one on another number of ranks, sees the same data."""
    import torch

    n = len(seqs)
    orders: dict[int, np.ndarray] = {}

    def order(epoch: int) -> np.ndarray:
        if epoch not in orders:
            orders.clear()  # keep one or two epochs' permutations
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        return orders[epoch]

    def batch(step: int) -> list[Any]:
        first = step * batch_size + rank * micro * n_micro
        out = []
        for m in range(n_micro):
            ks = [first + m * micro + i for i in range(micro)]
            picked = [int(order(k // n)[k % n]) for k in ks]
            width = max(len(seqs.ids(k)) for k in picked)
            ids = torch.full((micro, width), pad_id, dtype=torch.long)
            labels = torch.full((micro, width), IGNORE, dtype=torch.long)
            for row, k in enumerate(picked):
                seq = seqs.ids(k)
                ids[row, : len(seq)] = torch.from_numpy(seq.astype(np.int64))
                labels[row, : len(seq)] = torch.from_numpy(seqs.labels(k))
            out.append((ids, labels))
        return out

    return batch


def context_prefix_ids(encode_text: Callable[[str], list[int]], context: str) -> list[int]:
    """What ``synthesize`` sends for ``context`` alone (zero-shot): the ids of its context block."""
    return encode_text(context_block(context))
