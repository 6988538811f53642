"""Reading a mixture as fixed-length training blocks, from any position.

The documents of a split, in the mixture's order, are one stream of tokens; block ``k`` is tokens
``k * seq_len`` to ``k * seq_len + seq_len`` inclusive (``seq_len + 1`` tokens: inputs and next-token targets; a
block's last token is the next block's first). Block ``k`` is the same on any machine and for any number of
data-parallel ranks, so training resumes at an exact position. With ``with_doc_starts``, each block also comes with
the positions where a document starts in it (for attention masks that stay within a document).

    reader = MixtureReader("mixes/ipt", split="train", seq_len=2048)
    for k, block in reader.blocks(start=0):
        ...  # block: int64 array of seq_len + 1 tokens
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.errors import InputError
from instructpt.io.tokens import PackedShard, PackedSource


class MixtureReader:
    """Blocks of ``seq_len + 1`` tokens of a mixture's ``train`` or ``val`` split."""

    def __init__(
        self, root: str | Path, split: str = "train", seq_len: int = 2048, verify: bool = False
    ) -> None:
        self.root, self.seq_len = Path(root), seq_len
        try:
            self.manifest: dict[str, Any] = json.loads(
                (self.root / "mixture.json").read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            raise InputError(
                f"{root} is not a mixture (no mixture.json); make one with `instructpt mix`"
            ) from None
        if split not in ("train", "val"):
            raise InputError(f"a mixture has the splits train and val, not {split!r}")
        self.refs = np.load(self.root / self.manifest[split]["file"], allow_pickle=False)
        self.sources = [self._open(s) for s in self.manifest["sources"]]
        self._shards: dict[tuple[int, int], PackedShard] = {
            (i, sh.index): sh for i, src in enumerate(self.sources) for sh in src.shards
        }
        if verify:
            for src in self.sources:
                src.check(full=True)
        self.doc_offsets, lengths = self._locate()
        self.starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.starts[1:])
        if int(self.starts[-1]) != self.manifest[split]["tokens"]:
            raise InputError(f"{root}: the {split} split holds {self.starts[-1]} tokens, its manifest says "
                             f"{self.manifest[split]['tokens']}: a source changed since the mixture was made")  # fmt: skip

    def _open(self, spec: dict[str, Any]) -> PackedSource:
        src = PackedSource.open(spec["path"])
        if src.tokenizer_hash != str(self.manifest["tokenizer"]["hash"]):
            raise InputError(
                f"{spec['path']} was packed again with another tokenizer since the mixture was made"
            )
        for shard in src.shards:
            shard.check(full=False)  # sizes: a truncated token file is found here, its hash by verify=True
        return src

    def _locate(self) -> tuple[np.ndarray, np.ndarray]:
        """Each referenced document's offset in its shard's token array, and its length."""
        offsets = np.zeros(len(self.refs), dtype=np.int64)
        lengths = np.zeros(len(self.refs), dtype=np.int64)
        keys = np.stack([self.refs["source"].astype(np.int64), self.refs["shard"].astype(np.int64)], axis=1)
        for s, h in {tuple(k) for k in keys.tolist()}:
            mask = (keys[:, 0] == s) & (keys[:, 1] == h)
            shard = self._shards.get((s, h))
            if shard is None:
                raise InputError(f"source {s} of {self.root} no longer has shard {h}")
            docs = self.refs["doc"][mask].astype(np.int64)
            offsets[mask] = shard.offsets[docs]
            lengths[mask] = shard.offsets[docs + 1] - shard.offsets[docs]
        return offsets, lengths

    @property
    def total_tokens(self) -> int:
        return int(self.starts[-1])

    @property
    def num_blocks(self) -> int:
        return max(0, (self.total_tokens - 1) // self.seq_len)

    def block(self, k: int, with_doc_starts: bool = False) -> Any:
        """Block ``k`` (int64, ``seq_len + 1`` tokens); with ``with_doc_starts`` also the positions in it where a
        document begins."""
        if not 0 <= k < self.num_blocks:
            raise IndexError(f"block {k} of {self.num_blocks}")
        lo, hi = k * self.seq_len, k * self.seq_len + self.seq_len + 1
        i = int(np.searchsorted(self.starts, lo, side="right")) - 1
        parts, doc_starts = [], []
        while lo < hi:
            a, b = lo - int(self.starts[i]), min(hi, int(self.starts[i + 1])) - int(self.starts[i])
            if a == 0:
                doc_starts.append(lo - k * self.seq_len)
            ref = self.refs[i]
            shard = self._shards[(int(ref["source"]), int(ref["shard"]))]
            off = int(self.doc_offsets[i])
            parts.append(shard.tokens[off + a : off + b])
            lo += b - a
            i += 1
        block = np.concatenate(parts).astype(np.int64)
        return (block, np.array(doc_starts, dtype=np.int64)) if with_doc_starts else block

    def blocks(self, start: int = 0, rank: int = 0, world_size: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """``(k, block)`` from block ``start`` on; with several data-parallel ranks, rank ``r`` reads the blocks
        ``k`` with ``k % world_size == r``."""
        for k in range(start, self.num_blocks):
            if k % world_size == rank:
                yield k, self.block(k)
