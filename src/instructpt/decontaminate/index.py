"""Hashed n-grams of evaluation sets, for finding benchmark text in pre-training data.

Text is normalised (Unicode NFKC, case folded, ASCII and common Unicode punctuation turned into spaces, whitespace
collapsed) and cut into words; every run of ``n`` consecutive words is hashed to 64 bits (each word by blake2b, the
run by a polynomial over the word hashes, computed with numpy). An evaluation item, and each line of it (its
question, its answer), shorter than ``n`` words but of at least ``MIN_SHORT_WORDS`` is indexed whole, and texts
are searched for runs of those lengths too: a short benchmark question copied into a longer text is found. The
index keeps the sorted hashes and, for each, which evaluation item it came from, plus an 8 MB bit table that rules
out most n-grams of a clean text with one look-up: ~20 MB for a million n-grams. It is saved as ``.npz`` under a
cache directory, named by a digest of everything it was built from.

    index = NgramIndex.build(items, n=13)          # items: EvalItem(benchmark, task, row, text)
    runs = index.runs("... a document ...")        # hashes, first words and lengths of its runs
    index.find_all(runs.hashes)                    # [(item position, run position), ...]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import string
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NORMALIZATION = "ngram-v3"  # bump when normalize() or the hashing changes: cached indexes are then rebuilt
MIN_SHORT_WORDS = (
    6  # a whole item (or line of one) shorter than n is indexed when it has at least this many words
)
_BREAKS = string.punctuation + "“”‘’«»–—‐‑‒―−…•·„‚¿¡"
_FOLD = str.maketrans({c: " " for c in _BREAKS} | {"\u200b": None, "\u00ad": None})
_ASCII_FOLD = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the polynomial over word hashes
_TOP_SHIFT = np.uint64(38)  # the bit table is indexed by a hash's top 26 bits
WORD_CACHE = 1 << 18  # word hashes kept (~40 MB at most); words past it are hashed each time


@dataclass(frozen=True)
class EvalItem:
    """One evaluation item: which benchmark and task, its row, and the text searched for (question + answer)."""

    benchmark: str
    task: str
    row: int
    text: str


@dataclass
class Runs:
    """The word runs of a text that an index looks for: their hashes, first words and lengths (in words)."""

    words: list[str]
    hashes: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def text(self, i: int) -> str:
        start = int(self.starts[i])
        return " ".join(self.words[start : start + int(self.lengths[i])])


def normalize(text: str) -> list[str]:
    """The words of ``text``: NFKC, lower case, punctuation folded to spaces, split at whitespace."""
    if text.isascii():  # bytes.translate: several times faster than str.translate
        return text.lower().encode().translate(_ASCII_FOLD).decode().split()
    return unicodedata.normalize("NFKC", text).casefold().translate(_FOLD).split()


_WORD_HASHES: dict[str, int] = {}


def _word_hash(word: str) -> int:
    h = _WORD_HASHES.get(word)
    if h is None:
        h = int.from_bytes(
            hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
        )
        if len(_WORD_HASHES) < WORD_CACHE:
            _WORD_HASHES[word] = h
    return h


def word_hashes(words: list[str]) -> np.ndarray:
    get = _WORD_HASHES.get
    known = [get(w) for w in words]
    if None in known:
        known = [_word_hash(w) if h is None else h for w, h in zip(words, known)]
    return np.array(known, dtype=np.uint64)


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The 64-bit hashes of the ``n``-word runs of ``text`` (one hash of all words when it has fewer)."""
    words = normalize(text)
    if not words:
        return np.empty(0, dtype=np.uint64)
    return window_hashes(word_hashes(words), n)


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
    """Sorted run hashes of evaluation items, each with the item it came from (``owners`` into ``items``);
    ``short`` are the lengths (< n) of items indexed whole, which texts are searched for as well."""

    def __init__(
        self,
        hashes: np.ndarray,
        owners: np.ndarray,
        items: list[EvalItem],
        n: int,
        short: list[int],
        key: str,
    ) -> None:
        self.hashes, self.owners, self.items, self.n, self.short, self.key = (
            hashes,
            owners,
            items,
            n,
            short,
            key,
        )
        top = (hashes >> _TOP_SHIFT).astype(np.int64)
        self._bits = np.zeros(1 << (64 - int(_TOP_SHIFT) - 3), dtype=np.uint8)
        np.bitwise_or.at(self._bits, top >> 3, (1 << (top & 7)).astype(np.uint8))

    @classmethod
    def build(cls, items: list[EvalItem], n: int) -> NgramIndex:
        parts, owners, short = [], [], set()
        for k, item in enumerate(items):
            pieces = [item.text, *item.text.split("\n")] if "\n" in item.text else [item.text]
            for p, piece in enumerate(pieces):
                words = normalize(piece)
                if len(words) >= n and p == 0:  # the whole item's n-grams hold those of its lines
                    h = window_hashes(word_hashes(words), n)
                elif MIN_SHORT_WORDS <= len(words) < n:
                    h = window_hashes(word_hashes(words), len(words))
                    short.add(len(words))
                else:
                    continue
                parts.append(h)
                owners.append(np.full(len(h), k, dtype=np.uint32))
        hashes = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
        owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.uint32)
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], owner[order], items, n, sorted(short), index_key(items, n))

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.owners.nbytes + self._bits.nbytes)

    def runs(self, text: str) -> Runs:
        """The runs of ``text`` to look up: every n-word run, and every run of each short item length."""
        words = normalize(text)
        hashes, starts, lengths = [], [], []
        if words:
            w = word_hashes(words)
            for k in (self.n, *self.short):
                if len(w) >= k:
                    h = window_hashes(w, k)
                    hashes.append(h)
                    starts.append(np.arange(len(h), dtype=np.int64))
                    lengths.append(np.full(len(h), k, dtype=np.int64))
        if not hashes:
            empty = np.empty(0, dtype=np.int64)
            return Runs(words, np.empty(0, dtype=np.uint64), empty, empty)
        return Runs(words, np.concatenate(hashes), np.concatenate(starts), np.concatenate(lengths))

    def find_all(self, hashes: np.ndarray) -> list[tuple[int, int]]:
        """Every (item, position in ``hashes``) of a run the two share, by position."""
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

    def find(self, text: str) -> dict[int, str]:
        """The items that share a run with ``text``, each with the words of its longest (then first) shared run."""
        runs = self.runs(text)
        best: dict[int, int] = {}
        for k, i in self.find_all(runs.hashes):
            if k not in best or runs.lengths[i] > runs.lengths[best[k]]:
                best[k] = i
        return {k: runs.text(i) for k, i in best.items()}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp.npz")  # one per writer
        items = json.dumps([asdict(i) for i in self.items], ensure_ascii=False)
        np.savez(tmp, hashes=self.hashes, owners=self.owners, items=np.array([items]), n=np.array([self.n]),
                 short=np.array(self.short, dtype=np.int64), key=np.array([self.key]))  # fmt: skip
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NgramIndex:
        with np.load(path, allow_pickle=False) as z:
            items = [EvalItem(**d) for d in json.loads(str(z["items"][0]))]
            short = [int(k) for k in z["short"]]
            return cls(z["hashes"], z["owners"], items, int(z["n"][0]), short, str(z["key"][0]))


def index_key(items: list[EvalItem], n: int) -> str:
    """A digest of everything an index is built from: the items, n and the normalisation version."""
    h = hashlib.sha256(f"{NORMALIZATION}\x1f{n}\x1f{MIN_SHORT_WORDS}\x1f".encode())
    for item in items:
        h.update(json.dumps(asdict(item), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def cached_index(items: list[EvalItem], n: int, cache_dir: Path | None) -> tuple[NgramIndex, bool]:
    """The index of ``items``, from ``cache_dir`` when one was built from the same items before; (index, cached).
    A cache file that cannot be read (cut short, another version) is built again and replaced."""
    key = index_key(items, n)
    path = cache_dir / f"ngrams-{key[:32]}.npz" if cache_dir else None
    if path is not None and path.exists():
        try:
            index = NgramIndex.load(path)
            if index.key == key:
                return index, True
        except Exception as exc:  # noqa: BLE001 - zip, numpy and json errors all mean "build it again"
            log.warning("n-gram index cache %s unreadable (%s): building it again", path, exc)
    index = NgramIndex.build(items, n)
    if path is not None:
        index.save(path)
    return index, False
