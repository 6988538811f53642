"""Long texts are split at paragraph/sentence/word boundaries into pieces that each fit, losing nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from instructpt.synthesizer.split import split_to_fit


def _fits(limit: int):
    return lambda text: len(text.split()) <= limit


def test_fitting_text_is_one_piece() -> None:
    assert split_to_fit("  a b c  ", _fits(5)) == ["a b c"]


def test_prefers_paragraphs_then_sentences() -> None:
    text = "One two three.\n\nFour five six. Seven eight nine.\n\nTen."
    assert split_to_fit(text, _fits(4)) == ["One two three.", "Four five six.", "Seven eight nine.", "Ten."]
    assert split_to_fit(text, _fits(6)) == ["One two three.", "Four five six. Seven eight nine.", "Ten."]
    assert split_to_fit(text, _fits(7)) == ["One two three.", "Four five six. Seven eight nine.\n\nTen."]


def test_unbreakable_run_is_cut_by_characters() -> None:
    pieces = split_to_fit("x" * 25, lambda t: len(t) <= 10)
    assert pieces == ["x" * 10, "x" * 10, "x" * 5]


_words = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
_sentence = st.lists(_words, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=6).map(" ".join)
_doc = st.lists(_paragraph, min_size=1, max_size=6).map("\n\n".join)


@settings(max_examples=150, deadline=None)
@given(_doc, st.integers(min_value=1, max_value=30))
def test_every_piece_fits_and_no_word_is_lost(text: str, limit: int) -> None:
    pieces = split_to_fit(text, _fits(limit))
    assert all(_fits(limit)(p) for p in pieces)
    assert all(p.strip() for p in pieces)
    assert " ".join(pieces).split() == text.split()


def _linear_reference(text: str, fits, level: int = 0) -> list[str]:
    """The plain greedy split (add units one at a time while the piece fits; bisect characters over the whole rest
    of an unbreakable run), to compare against. bench/bench_split.py times it."""
    from instructpt.synthesizer.split import _LEVELS

    if level >= len(_LEVELS):  # the longest fitting prefix, by bisection over the whole rest of the text
        pieces = []
        while text:
            lo, hi = 1, len(text)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(text[:mid]) else (lo, mid - 1)
            pieces.append(text[:lo])
            text = text[lo:].lstrip()
        return pieces
    pattern, sep = _LEVELS[level]
    pieces, current = [], []
    for unit in (u.strip() for u in pattern.split(text) if u.strip()):
        if current and fits(sep.join([*current, unit])):
            current.append(unit)
            continue
        if current:
            pieces.append(sep.join(current))
            current = []
        if fits(unit):
            current = [unit]
        else:
            pieces.extend(_linear_reference(unit, fits, level + 1))
    if current:
        pieces.append(sep.join(current))
    return pieces


@settings(max_examples=150, deadline=None)
@given(_doc, st.integers(min_value=1, max_value=30))
def test_same_pieces_as_the_plain_greedy_split(text: str, limit: int) -> None:
    fits = _fits(limit)
    text = text.strip()
    expected = [text] if fits(text) else _linear_reference(text, fits)
    assert split_to_fit(text, fits) == expected


class _Counting:
    """A fits() that counts how many characters it was asked to measure."""

    def __init__(self, fits) -> None:
        self.fits, self.chars = fits, 0

    def __call__(self, text: str) -> bool:
        self.chars += len(text)
        return self.fits(text)


def test_splitting_work_stays_near_linear_in_the_text_length() -> None:
    """A text with no paragraphs or sentences (words only), and an unbreakable blob: the pieces are measured a
    few times over in all, not once per unit (quadratic) or from the whole rest of the text (cut by chars)."""
    words = " ".join(f"w{i % 97}" for i in range(20_000))
    counting = _Counting(_fits(300))
    pieces = split_to_fit(words, counting)
    assert len(pieces) == 67 and " ".join(pieces) == words
    assert counting.chars < 12 * len(words)  # a unit-by-unit greedy measures ~150x the text here

    blob = "x" * 200_000
    counting = _Counting(lambda t: len(t) <= 1000)
    assert split_to_fit(blob, counting) == ["x" * 1000] * 200
    assert counting.chars < 12 * len(blob)  # bisecting over the whole rest measured ~115x
