"""The token files ``pack`` writes and ``mix`` and ``pretrain`` read: one format, in one place.

A pack directory is a sharded run directory (manifest, rejects, stats, done markers) plus, per shard ``k``::

    data/shard-0000k.jsonl         the document index, a row per document: id, lineage (the raw document ids it
                                   was made from), offset and length in the token array (or .parquet)
    data/shard-0000k.tokens        the documents' tokens, one flat little-endian array (uint16 or uint32)
    data/shard-0000k.offsets.npy   int64 offsets of the documents into that array (documents + 1 values)
    pack.json                      tokenizer name and hash, vocabulary size, dtype, BOS/EOS policy, counts

The done marker of a shard holds the sha256 of its token file, so a corrupted or truncated file is found. Open one
without instructpt, with numpy alone::

    import json, numpy as np
    header = json.load(open("OUT/pack.json"))
    tokens = np.memmap("OUT/data/shard-00000.tokens", dtype=header["dtype"], mode="r")
    offsets = np.load("OUT/data/shard-00000.offsets.npy")
    document_3 = tokens[offsets[3] : offsets[4]]
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.errors import InputError
from instructpt.io.rundir import sha256_file
from instructpt.io.shards import finished_shards, read_shard, shard_name

HEADER = "pack.json"
TOKENS, OFFSETS = ".tokens", ".offsets.npy"


def token_dtype(vocab_size: int) -> str:
    """The narrowest array type that holds every id of a vocabulary (numpy's spelling)."""
    if vocab_size <= 1 << 16:
        return "<u2"
    if vocab_size <= 1 << 32:
        return "<u4"
    raise InputError(f"a vocabulary of {vocab_size:,} tokens does not fit 32-bit token ids")


def encode_documents(docs: Sequence[Sequence[int]], dtype: str) -> tuple[bytes, bytes]:
    """The token file and the offsets file (``.npy`` bytes) of a shard's documents."""
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(docs), dtype=dtype, count=int(offsets[-1]))
    return flat.tobytes(), npy_bytes(offsets)


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a ``.npy`` file (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@dataclass
class PackedShard:
    """One finished shard of a pack: its token array (memory-mapped), offsets and document index."""

    root: Path
    index: int
    dtype: str
    index_path: Path

    @property
    def tokens_path(self) -> Path:
        return self.root / "data" / f"{shard_name(self.index)}{TOKENS}"

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.load(self.root / "data" / f"{shard_name(self.index)}{OFFSETS}", allow_pickle=False)

    @cached_property
    def tokens(self) -> np.ndarray:
        if int(self.offsets[-1]) == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(self.tokens_path, dtype=self.dtype, mode="r")

    @cached_property
    def documents(self) -> list[dict[str, Any]]:
        return list(read_shard(self.index_path))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def check(self, full: bool = True) -> None:
        """Refuse a token file whose size (and, with ``full``, hash) is not what was written."""
        want = int(self.offsets[-1]) * np.dtype(self.dtype).itemsize
        size = self.tokens_path.stat().st_size if self.tokens_path.exists() else -1
        if size != want:
            raise InputError(
                f"{self.tokens_path} is {size} bytes, not the {want} written: truncated or replaced"
            )
        if full:
            marker = (self.root / "done" / shard_name(self.index)).read_text(encoding="utf-8").split()
            if marker[-1] != sha256_file(self.tokens_path):
                raise InputError(
                    f"{self.tokens_path} does not hash to what was written: the file is corrupted"
                )


@dataclass
class PackedSource:
    """A pack directory opened for reading: its header and finished shards."""

    root: Path
    header: dict[str, Any]
    shards: list[PackedShard] = field(default_factory=list)

    @classmethod
    def open(cls, root: str | Path) -> PackedSource:
        root = Path(root)
        try:
            header = json.loads((root / HEADER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                f"{root} is not a pack directory (no {HEADER}); make one with `instructpt pack`"
            ) from None
        shards = [PackedShard(root, sh.index, header["dtype"], sh.path) for sh in finished_shards(root)]
        if not shards:
            raise InputError(f"{root} holds no finished pack shard")
        return cls(root, header, shards)

    @property
    def tokenizer_hash(self) -> str:
        return str(self.header["tokenizer"]["hash"])

    def check(self, full: bool = True) -> None:
        for shard in self.shards:
            shard.check(full)
