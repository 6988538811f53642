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
