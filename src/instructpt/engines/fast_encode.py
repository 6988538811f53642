"""Exact, cached encoding for tokenizers in the Llama/Mistral ``tokenizer.json`` layout.

The released synthesizer's tokenizer (Mistral-7B's) has no pre-tokenizer: ``tokenizers`` runs BPE over each whole
text between special tokens as one word, so nothing is cached between documents and every encode pays the full
pipeline (~1.5 µs per token on one core). But the merges of such a vocabulary never join a character to a ``▁`` that
follows it (SentencePiece learned them on whitespace-split words). Then BPE over a whole text gives exactly the
concatenation of BPE over its *segments*, each a run of ``▁`` and the characters up to the next ``▁``: no merge
can apply across a segment boundary, and merges inside one segment do not depend on the others. Segments repeat
across documents (they are words), so their ids are cached; unseen segments are encoded by the tokenizer's own
BPE model. Same ids, ~7x faster on abstract-sized texts (bench/bench_tokenize.py).

:meth:`SegmentEncoder.build` returns an encoder only for a layout it reproduces exactly; the codec also compares
its ids with the tokenizer's own on the first texts and on a sample after that (see ``tokenizer.HFCodec``).
"""

from __future__ import annotations

import json
import re
from typing import Any

META = "▁"
_SEGMENT = re.compile(f"{META}*[^{META}]+|{META}+")
MAX_CACHED_CHARS = 64  # longer segments (URLs, blobs) rarely repeat: encoded each time, not kept
# ~270 bytes per entry (key, id list, int objects): ~140 MB at most; the cache starts over when full
MAX_CACHE_ENTRIES = 1 << 19
# A segment missing from the cache costs ~10x a hit (the BPE model is called through Python), so texts made mostly
# of new words (random strings, IDs, blobs) are slower this way than through the tokenizer. When the recent share
# of missed segments exceeds MISS_LIMIT, texts go to the tokenizer, except one in LEARN_EVERY, which keeps the
# cache learning and the share measured.
MISS_LIMIT = 0.4
LEARN_EVERY = 16


class SegmentEncoder:
    """``encode(text)`` equal to ``backend.encode(text, add_special_tokens=False).ids`` for the supported layout."""

    def __init__(self, backend: Any, prepend: str, added: dict[str, int]) -> None:
        # encode_batch_fast: the same ids without offsets (tokenizers >= 0.20)
        self._by_tokenizer = getattr(backend, "encode_batch_fast", backend.encode_batch)
        self._model = backend.model
        self.miss_share = 0.0  # moving average over texts of the share of their segments not in the cache
        self.texts = 0
        self.texts_by_tokenizer = 0
        self._prepend = (
            prepend  # "all", or a Metaspace scheme: "always", "first", "never" (see _prepend_mode)
        )
        self._added = added
        self._split = (
            re.compile("|".join(map(re.escape, sorted(added, key=len, reverse=True)))) if added else None
        )
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def build(cls, backend: Any) -> tuple[SegmentEncoder | None, str]:
        """An encoder for ``backend`` (a ``tokenizers.Tokenizer``), or None and why the layout is not supported."""
        try:
            spec = json.loads(backend.to_str())
        except Exception as exc:  # noqa: BLE001 - not a tokenizers object we can read
            return None, f"unreadable tokenizer ({exc})"
        prepend = _prepend_mode(spec.get("normalizer"), spec.get("pre_tokenizer"))
        if prepend is None:
            return None, "not the Llama/Mistral layout (normalizer/pre-tokenizer)"
        reason = _model_problem(spec.get("model") or {})
        if reason:
            return None, reason
        if spec.get("truncation") or spec.get("padding"):
            return None, "the tokenizer truncates or pads"
        # transformers' split_special_tokens sets this; to_str() does not show it
        if getattr(backend, "encode_special_tokens", False):
            return None, "special tokens are encoded as text"
        added: dict[str, int] = {}
        for tok in spec.get("added_tokens") or []:
            if tok.get("normalized") or tok.get("lstrip") or tok.get("rstrip") or tok.get("single_word"):
                return None, f"added token {tok.get('content')!r} has matching options"
            if tok.get("content"):
                added[tok["content"]] = tok["id"]
        return cls(backend, prepend, added), ""

    def encode(self, text: str) -> list[int]:
        self.texts += 1
        if self.miss_share > MISS_LIMIT and self.texts % LEARN_EVERY:
            self.texts_by_tokenizer += 1
            return self._by_tokenizer([text], add_special_tokens=False)[0].ids
        tally = [0, 0]  # segments, misses
        ids = self._encode_segments(text, tally)
        if tally[0]:
            self.miss_share += 0.05 * (tally[1] / tally[0] - self.miss_share)
        return ids

    def _encode_segments(self, text: str, tally: list[int]) -> list[int]:
        if self._split is None:
            return self._section(text, True, tally) if text else []
        out: list[int] = []
        pos = 0
        for m in self._split.finditer(text):
            if m.start() > pos:
                out += self._section(text[pos : m.start()], pos == 0, tally)
            out.append(self._added[m.group()])
            pos = m.end()
        if pos < len(text):
            out += self._section(text[pos:], pos == 0, tally)
        return out

    def _section(self, text: str, at_start: bool, tally: list[int]) -> list[int]:
        """The ids of one non-empty stretch of text between added tokens; counts segments and misses."""
        norm = text.replace(" ", META)
        if self._prepend == "all" or (
            not norm.startswith(META)
            and (self._prepend == "always" or (self._prepend == "first" and at_start))
        ):
            norm = META + norm
        out: list[int] = []
        cache = self._cache
        segments = _SEGMENT.findall(norm)
        tally[0] += len(segments)
        for seg in segments:
            ids = cache.get(seg)
            if ids is None:
                tally[1] += 1
                ids = [t.id for t in self._model.tokenize(seg)]
                if len(seg) <= MAX_CACHED_CHARS:
                    if len(cache) >= MAX_CACHE_ENTRIES:
                        cache.clear()
                    cache[seg] = ids
            out += ids
        return out


def _prepend_mode(normalizer: dict | None, pre_tokenizer: dict | None) -> str | None:
    """How ``▁`` is put before each section: "all" for Mistral-7B's normalizer ``Prepend("▁")`` +
    ``Replace(" ", "▁")``; "never" for ``Replace`` alone (Gemma's layout); the Metaspace scheme ("always",
    "first", "never") for transformers 5's Llama layout; None for anything else."""
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": META}
    if pre_tokenizer is None and normalizer:
        steps = normalizer.get("normalizers") if normalizer.get("type") == "Sequence" else [normalizer]
        if steps == [{"type": "Prepend", "prepend": META}, replace]:
            return "all"
        return "never" if steps == [replace] else None
    metaspace = {"type": "Metaspace", "replacement": META, "split": False}
    if normalizer is None and pre_tokenizer and metaspace.items() <= pre_tokenizer.items():
        scheme = pre_tokenizer.get("prepend_scheme")
        return scheme if scheme in ("always", "first", "never") else None
    return None


def _model_problem(model: dict) -> str:
    """Why BPE over segments could differ from BPE over the whole text ("" when it cannot)."""
    if model.get("type") != "BPE":
        return "the model is not BPE"
    vocab = model.get("vocab") or {}
    # Every character must become at least one symbol: BPE drops one it cannot represent (no unk token, missing
    # byte tokens), and its two neighbours, a ▁ and a ▁, could then merge across a segment boundary. A ▁ that
    # starts a segment must be a symbol too, or unknown characters on both sides of it could fuse.
    if META not in vocab:
        return f"{META} is not in the vocabulary"
    all_bytes = model.get("byte_fallback") and all(f"<0x{b:02X}>" in vocab for b in range(256))
    if not all_bytes and model.get("unk_token") not in vocab:
        return "characters outside the vocabulary could be dropped (no unk token, no full byte fallback)"
    if model.get("dropout") or model.get("ignore_merges"):
        return "BPE with dropout or ignore_merges"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "BPE with subword prefixes or suffixes"
    for merge in model.get("merges") or []:
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        if right.startswith(META) and not left.endswith(META):
            return f"a merge joins a character to the {META} after it ({left!r} + {right!r})"
    return ""
