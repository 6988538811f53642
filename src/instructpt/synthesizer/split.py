"""Split a text whose prompt would not fit the token budget into pieces at natural boundaries.

Paragraphs first, then sentences, then words; a single "word" longer than the budget (a URL, a base64 blob) is cut
by characters. Each piece is checked with the exact token count of its context block, so no piece is ever sent
over-length and no text is dropped: joining the pieces with the separators they were split at reproduces the
text up to whitespace at the cut points.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\s+")

Fits = Callable[[str], bool]


def split_to_fit(text: str, fits: Fits) -> list[str]:
    """Pieces of ``text``, each with ``fits(piece)`` true; ``[text]`` when it fits whole."""
    text = text.strip()
    if fits(text):
        return [text]
    return _split(text, fits, level=0)


_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = ((_PARAGRAPH, "\n\n"), (_SENTENCE, " "), (_WORD, " "))


def _split(text: str, fits: Fits, level: int) -> list[str]:
    if level >= len(_LEVELS):
        return _cut_chars(text, fits)
    pattern, sep = _LEVELS[level]
    units = [u.strip() for u in pattern.split(text) if u.strip()]
    pieces: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and fits(sep.join([*current, unit])):
            current.append(unit)
            continue
        if current:
            pieces.append(sep.join(current))
            current = []
        if fits(unit):
            current = [unit]
        else:
            pieces.extend(_split(unit, fits, level + 1))
    if current:
        pieces.append(sep.join(current))
    return pieces


def _cut_chars(text: str, fits: Fits) -> list[str]:
    """Longest fitting prefixes by binary search; the last resort for unbreakable runs."""
    pieces = []
    while text:
        lo, hi = 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(text[:mid]):
                lo = mid
            else:
                hi = mid - 1
        if not fits(text[:lo]):
            raise ValueError("the token budget is too small to hold even one character of text")
        pieces.append(text[:lo])
        text = text[lo:].lstrip()
    return pieces
