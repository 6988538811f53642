"""Split a text whose prompt would not fit the token budget into pieces at natural boundaries.

Paragraphs first, then sentences, then words; a single "word" longer than the budget (a URL, a base64 blob) is cut
by characters. At each level a piece takes the most consecutive units that fit, found by galloping search from the
previous piece's size, so the work stays near-linear in the text's length (a multi-megabyte text without
punctuation is split in seconds, not hours). Each piece is checked with the exact token count of its context
block, so no piece is ever sent over-length and no text is dropped: joining the pieces with the separators they
were split at reproduces the text up to whitespace at the cut points.
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
    i, hint = 0, 1
    while i < len(units):
        if not fits(units[i]):
            pieces.extend(_split(units[i], fits, level + 1))
            i += 1
            continue
        # the most units from i on that fit together (a unit that does not fit alone ends the run)
        n = _longest(_run_fits(fits, sep, units, i), len(units) - i, hint)
        pieces.append(sep.join(units[i : i + n]))
        i, hint = i + n, n
    return pieces


def _run_fits(fits: Fits, sep: str, units: list[str], start: int) -> Callable[[int], bool]:
    """Whether the ``k`` units from ``start`` on fit together."""
    return lambda k: fits(sep.join(units[start : start + k]))


def _prefix_fits(fits: Fits, text: str) -> Callable[[int], bool]:
    """Whether the first ``k`` characters of ``text`` fit."""
    return lambda k: fits(text[:k])


def _cut_chars(text: str, fits: Fits) -> list[str]:
    """Longest fitting prefixes; the last resort for unbreakable runs."""
    pieces = []
    hint = 1
    while text:
        if not fits(text[:1]):
            raise ValueError("the token budget is too small to hold even one character of text")
        n = _longest(_prefix_fits(fits, text), len(text), hint)
        pieces.append(text[:n])
        text, hint = text[n:].lstrip(), n
    return pieces


def _longest(ok: Callable[[int], bool], limit: int, hint: int) -> int:
    """The largest ``k`` in ``[1, limit]`` with ``ok(k)``, given ``ok(1)``; ``ok`` holds up to some ``k``, then fails.

    Probes outward from ``hint`` (the previous piece's size, since pieces of one text are alike) in doubling steps,
    then bisects: O(log |k - hint|) probes, each about one piece long, so splitting a text costs a few encodes of
    its length in all, however long it is. Only sizes ``ok`` accepted are returned.
    """
    hint = min(max(hint, 1), limit)
    if hint == 1 or ok(hint):
        good, bad, step = hint, limit + 1, 1
        while good + step < bad and ok(good + step):
            good += step
            step *= 2
        bad = min(bad, good + step)
    else:
        good, bad, step = 1, hint, 1
        while bad - step > good and not ok(bad - step):
            bad -= step
            step *= 2
        good = max(good, bad - step)
    while good + 1 < bad:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
