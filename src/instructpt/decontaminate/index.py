"""Hashed n-grams of evaluation sets, for finding benchmark text in pre-training data.

Text is normalised (case folded, ASCII and common Unicode punctuation turned into spaces, whitespace collapsed)
and cut into words; every run of ``n`` consecutive words is hashed to 64 bits (each word by blake2b, the run by a
polynomial over the word hashes, computed with numpy). A text shorter than ``n`` words contributes one n-gram of
all its words, so a short benchmark question is still found when it is copied whole. The index keeps the sorted
hashes and, for each, which evaluation item it came from: 12 bytes per n-gram, ~12 MB for a million. It is saved
as ``.npz`` under a cache directory, named by a digest of everything it was built from.

    index = NgramIndex.build(items, n=13)          # items: EvalItem(benchmark, task, row, text)
    hits = index.find(ngram_hashes("... a document ...", 13))   # {item position: first shared n-gram}
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

NORMALIZATION = "ngram-v2"  # bump when normalize() or the hashing changes: cached indexes are then rebuilt
_BREAKS = string.punctuation + "“”‘’«»–—…•·"
_FOLD = str.maketrans({c: " " for c in _BREAKS})
_MULT = np.uint64(0x9E3779B97F4A7C15)
_TOP_SHIFT = np.uint64(
    38
)  # hash >> 38: the top 26 bits, the index's bit table  # odd 64-bit multiplier of the polynomial over word hashes


@dataclass(frozen=True)
class EvalItem:
    """One evaluation item: which benchmark and task, its row, and the text searched for (question + answer)."""

    benchmark: str
    task: str
    row: int
    text: str


_ASCII_FOLD = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))


def normalize(text: str) -> list[str]:
    """The words of ``text``: lower case, punctuation folded to spaces, split at whitespace."""
    if text.isascii():  # bytes.translate: several times faster than str.translate
        return text.lower().encode().translate(_ASCII_FOLD).decode().split()
    return text.casefold().translate(_FOLD).split()


_WORD_HASHES: dict[str, int] = {}


def _word_hash(word: str) -> int:
    h = _WORD_HASHES.get(word)
    if h is None:
        h = int.from_bytes(
            hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
        )
        if len(_WORD_HASHES) < 1 << 20:  # bounded memory: words past a million are hashed each time
            _WORD_HASHES[word] = h
    return h


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The 64-bit hashes of the ``n``-word runs of ``text`` (one hash of all words when it has fewer)."""
    words = normalize(text)
    if not words:
        return np.empty(0, dtype=np.uint64)
    get = _WORD_HASHES.get
    known = [get(w) for w in words]
    if None in known:
        known = [_word_hash(w) if h is None else h for w, h in zip(words, known)]
    return window_hashes(np.array(known, dtype=np.uint64), n)


def window_hashes(w: np.ndarray, n: int) -> np.ndarray:
    """sum(w[i+j] * M^j for j < n) mod 2^64 for every window i (one hash of all of ``w`` when shorter than n).

    M is odd, hence invertible mod 2^64, so each window is a difference of prefix sums of w[t] * M^t, scaled by
    M^-i: three passes over the words instead of n (numpy's uint64 arithmetic wraps mod 2^64).
    """
    k = min(n, len(w))
    size = len(w) - k + 1
    up, down = _powers(len(w) + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(w) + 1, dtype=np.uint64)
        np.cumsum(w * up[: len(w)], dtype=np.uint64, out=prefix[1:])
        return (prefix[k : k + size] - prefix[:size]) * down[:size]


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(M^t, M^-t) for t < length, from a cache grown as needed."""
    global _POWERS
    if len(_POWERS[0]) < length:
        size = max(length, 2 * len(_POWERS[0]))
        up = np.empty(size, dtype=np.uint64)
        down = np.empty(size, dtype=np.uint64)
        up[0] = down[0] = 1
        with np.errstate(over="ignore"):
            for t in range(1, size):
                up[t] = up[t - 1] * _MULT
                down[t] = down[t - 1] * _MULT_INV
        _POWERS = (up, down)
    return _POWERS


_MULT_INV = np.uint64(pow(int(_MULT), -1, 1 << 64))
_POWERS: tuple[np.ndarray, np.ndarray] = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))


class NgramIndex:
    """Sorted n-gram hashes of evaluation items, each with the item it came from (``owners`` into ``items``)."""

    def __init__(self, hashes: np.ndarray, owners: np.ndarray, items: list[EvalItem], n: int) -> None:
        self.hashes, self.owners, self.items, self.n = hashes, owners, items, n
        # A bit per value of a hash's top 26 bits (8 MB): most n-grams of a clean text are ruled out by one look-up
        # each, and only the rest are searched for in the sorted hashes.
        top = (hashes >> _TOP_SHIFT).astype(np.int64)
        self._bits = np.zeros(1 << (64 - int(_TOP_SHIFT) - 3), dtype=np.uint8)
        np.bitwise_or.at(self._bits, top >> 3, (1 << (top & 7)).astype(np.uint8))

    @classmethod
    def build(cls, items: list[EvalItem], n: int) -> NgramIndex:
        parts, owners = [], []
        for k, item in enumerate(items):
            h = ngram_hashes(item.text, n)
            parts.append(h)
            owners.append(np.full(len(h), k, dtype=np.uint32))
        hashes = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
        owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.uint32)
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], owner[order], items, n)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.owners.nbytes + self._bits.nbytes)

    def find_all(self, hashes: np.ndarray) -> list[tuple[int, int]]:
        """Every (item, position in ``hashes``) of an n-gram the two share, by position."""
        if not len(hashes) or not len(self.hashes):
            return []
        top = (hashes >> _TOP_SHIFT).astype(np.int64)
        maybe = np.flatnonzero((self._bits[top >> 3] >> (top & 7).astype(np.uint8)) & 1)
        if not len(maybe):
            return []
        sub = hashes[maybe]
        pos = np.searchsorted(self.hashes, sub)
        pos[pos == len(self.hashes)] = 0
        out = []
        for w in np.flatnonzero(self.hashes[pos] == sub):  # equal hashes sit together, from the first on
            q = int(pos[w])
            while q < len(self.hashes) and self.hashes[q] == sub[w]:
                out.append((int(self.owners[q]), int(maybe[w])))
                q += 1
        return out

    def find(self, hashes: np.ndarray) -> dict[int, int]:
        """The items (positions into ``items``) that share an n-gram with ``hashes``, each with the position in
        ``hashes`` of the first one it shares."""
        found: dict[int, int] = {}
        for k, w in self.find_all(hashes):
            found.setdefault(k, w)
        return found

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        items = json.dumps([asdict(i) for i in self.items], ensure_ascii=False)
        np.savez(tmp, hashes=self.hashes, owners=self.owners, items=np.array([items]), n=np.array([self.n]))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NgramIndex:
        with np.load(path, allow_pickle=False) as z:
            items = [EvalItem(**d) for d in json.loads(str(z["items"][0]))]
            return cls(z["hashes"], z["owners"], items, int(z["n"][0]))


def index_key(items: list[EvalItem], n: int) -> str:
    """A digest of everything an index is built from: the items, n and the normalisation version."""
    h = hashlib.sha256(f"{NORMALIZATION}\x1f{n}\x1f".encode())
    for item in items:
        h.update(json.dumps(asdict(item), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def cached_index(items: list[EvalItem], n: int, cache_dir: Path | None) -> tuple[NgramIndex, bool]:
    """The index of ``items``, from ``cache_dir`` when one was built from the same items before; (index, cached)."""
    path = cache_dir / f"ngrams-{index_key(items, n)[:32]}.npz" if cache_dir else None
    if path is not None and path.exists():
        return NgramIndex.load(path), True
    index = NgramIndex.build(items, n)
    if path is not None:
        index.save(path)
    return index, False
