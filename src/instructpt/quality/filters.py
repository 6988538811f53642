"""Pair-level quality rules: why a synthesized pair should not become pre-training text, or None.

Each rule is a plain function of the pair (and its document's text where it needs one) with its thresholds in
:class:`FilterRules`; :func:`check_pairs` applies them in a fixed order to the pairs of one document and returns,
for each pair, the first reason it fails (``None`` when it passes). Reasons:

- ``empty``, ``question_too_short``, ``question_too_long``, ``answer_too_long``: lengths in characters;
- ``answer_is_question``: the answer repeats the question (case, spacing and punctuation folded);
- ``bad_options``: a multiple-choice question (``\\nOptions:\\n- a\\n- b``, read exactly as templify reads it:
  wrapped option lines joined, duplicates merged) with fewer than 2 or more than 10 options, or whose answer is
  none of them;
- ``cot_without_answer``: a chain-of-thought question ("Let's think step by step.") whose answer lacks the
  rationale or the final "Therefore, the answer is ..." (templify's ``half_formed_cot``);
- ``repetition``: degenerate text: a word 4-gram occurring many times and making up a fifth of the 4-grams;
- ``ungrounded``: a free-form answer (not yes/no, options, chain of thought, completion, title, nor found verbatim
  in the document) with fewer than ``min_grounding`` of its content words in the document (the content words of
  :mod:`instructpt.quality.pairs`; answers of numbers only are not checked);
- ``duplicate_question``: nearly the same question (options included) as an earlier pair of the document, with a
  similar answer (word sets, Jaccard);
- ``not_english``: with ``english`` on, a pair of six words or more that py3langid does not take for English.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from instructpt.quality.pairs import classify, content_words, final_answer
from instructpt.records import QAPair
from instructpt.templates.pairs import Item, prepare_pair

FILTER_RULES_VERSION = "filter-v1"  # in the stage's fingerprint: bump when a rule changes what it drops
_SHUFFLE = random.Random(0)  # prepare_pair shuffles options for rendering; the filter only reads them
REPEAT_SHARE = (
    0.2  # the repeated 4-gram must also make up this share of all 4-grams (not a long list's refrain)
)

_FOLD = re.compile(r"[\W_]+", re.UNICODE)
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class FilterRules:
    """The thresholds; the defaults are what ``instructpt filter`` uses."""

    min_question_chars: int = 8
    max_question_chars: int = 4000
    max_answer_chars: int = 6000
    min_options: int = 2
    max_options: int = 10
    max_ngram_repeats: int = 4  # a word 4-gram seen more often than this is degenerate repetition
    min_grounding: float = 0.5  # share of an extractive answer's content words found in the document
    max_question_similarity: float = 0.9  # Jaccard of word sets above which a question repeats an earlier one
    english: bool = False  # drop pairs py3langid does not take for English


def fold(text: str) -> str:
    return _FOLD.sub(" ", text.casefold()).strip()


# templify's reasons for a pair that breaks the synthesizer's conventions -> the filter's
_CONVENTION = {
    "half_formed_cot": "cot_without_answer",
    "answer_not_in_options": "bad_options",
    "too_few_options": "bad_options",
    "too_many_options": "bad_options",
    "empty_question": "empty",
    "empty_answer": "empty",
}


def convention(question: str, answer: str) -> tuple[str | None, Item | None]:
    """(reason, templify's parsed item): options and chain of thought read exactly as templify reads them."""
    item, why = prepare_pair(QAPair(question, answer), _SHUFFLE)
    return (_CONVENTION.get(why, why) if item is None else None), item


def repeated(text: str, limit: int) -> bool:
    """Degenerate repetition: some word 4-gram occurs more than ``limit`` times and makes up a fifth of them."""
    words = text.casefold().split()
    grams = list(zip(words, words[1:], words[2:], words[3:]))
    if len(set(grams)) > len(grams) - limit:  # a 4-gram seen c times leaves c - 1 duplicates: none can exceed
        return False
    top = max(Counter(grams).values())
    return top > limit and top >= REPEAT_SHARE * len(grams)


def grounding(answer: str, text_words: set[str]) -> float | None:
    """Share of the answer's content words found in the document (None: it has none, or only numbers, which a
    text may spell out)."""
    words = content_words(final_answer(answer))
    if not words or all(w.isdigit() for w in words):
        return None
    return len(words & text_words) / len(words)


def _english(text: str) -> bool | None:
    if len(text.split()) < 6:
        return None  # too short to tell
    try:
        import py3langid as langid
    except ImportError as exc:
        from instructpt.errors import ConfigError

        raise ConfigError("--english needs py3langid: pip install 'instructpt[filter]'") from exc
    return str(langid.classify(text)[0]) == "en"


def check_pairs(text: str, pairs: list[tuple[str, str]], rules: FilterRules) -> list[str | None]:
    """For each ``(question, answer)`` of a document, the first rule it fails, or None."""
    out: list[str | None] = []
    kept: list[
        tuple[set[str], set[str]]
    ] = []  # word sets of the kept pairs' questions (with options) and answers
    text_words: set[str] | None = None
    for question, answer in pairs:
        q, a = question.strip(), answer.strip()
        reason: str | None = None
        item: Item | None = None
        if not q or not a:
            reason = "empty"
        elif len(q) < rules.min_question_chars:
            reason = "question_too_short"
        elif len(q) > rules.max_question_chars:
            reason = "question_too_long"
        elif len(a) > rules.max_answer_chars:
            reason = "answer_too_long"
        elif abs(len(q) - len(a)) <= 0.2 * len(q) + 4 and fold(q) == fold(a):
            reason = "answer_is_question"
        else:
            reason, item = convention(q, a)
            n_options = len(item.options) if item is not None and item.options is not None else None
            if n_options is not None and not rules.min_options <= n_options <= rules.max_options:
                reason = "bad_options"
        if item is None or reason is not None:
            out.append(reason)
            continue
        if repeated(q, rules.max_ngram_repeats) or repeated(a, rules.max_ngram_repeats):
            reason = "repetition"
        if reason is None and item.options is None and not item.rationale and classify(q, a, text) == "other":
            if text_words is None:
                text_words = content_words(text)
            share = grounding(a, text_words)
            if share is not None and share < rules.min_grounding:
                reason = "ungrounded"
        if reason is None:
            qw = set(_WORDS.findall((item.question + " " + " ".join(item.options or ())).casefold()))
            aw = set(_WORDS.findall(item.answer.casefold()))
            limit = rules.max_question_similarity
            if any(
                _may_exceed(qw, kq, limit) and _jaccard(qw, kq) > limit and _jaccard(aw, ka) >= 0.5
                for kq, ka in kept
            ):
                reason = "duplicate_question"
            elif rules.english and _english(f"{q} {a}") is False:
                reason = "not_english"
            else:
                kept.append((qw, aw))
        out.append(reason)
    return out


def _may_exceed(a: set[str], b: set[str], limit: float) -> bool:
    """Jaccard(a, b) <= min/max of their sizes: sets of very different sizes cannot be similar."""
    small, large = sorted((len(a), len(b)))
    return large == 0 or small / large > limit


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
