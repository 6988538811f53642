"""Pair-level quality rules: why a synthesized pair should not become pre-training text, or None.

Each rule is a plain function of the pair (and its document's text where it needs one) with its thresholds in
:class:`FilterRules`; :func:`check_pairs` applies them in a fixed order to the pairs of one document and returns,
for each pair, the first reason it fails (``None`` when it passes). Reasons:

- ``empty``, ``question_too_short``, ``question_too_long``, ``answer_too_long``: lengths in characters;
- ``answer_is_question``: the answer repeats the question (case, spacing and punctuation folded);
- ``bad_options``: a multiple-choice question whose options are not 2-10 distinct ones, or whose answer is none of
  them (the options convention of the synthesizer: ``\\nOptions:\\n- a\\n- b``);
- ``cot_without_answer``: a chain-of-thought question ("Let's think step by step.") whose answer lacks its final
  "Therefore, the answer is ...";
- ``repetition``: degenerate text, the same word 4-gram many times in the question or answer;
- ``ungrounded``: an extractive-looking answer (not yes/no, options, completion, title, or chain of thought) whose
  content words mostly do not occur in the document (the grounding of :mod:`instructpt.quality.pairs`);
- ``duplicate_question``: nearly the same question as an earlier pair of the document (word sets, Jaccard);
- ``not_english``: with ``english`` on, a question or answer py3langid does not take for English.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from instructpt.quality.pairs import COT_ANSWER, COT_CUE, classify, content_words, final_answer

OPTIONS_MARK = "\nOptions:\n"
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


def options_of(question: str) -> list[str] | None:
    """The options of a multiple-choice question in the synthesizer's convention, else None."""
    if OPTIONS_MARK not in question:
        return None
    block = question.rsplit(OPTIONS_MARK, 1)[1]
    return [
        line[2:].strip() if line.startswith("- ") else line.strip()
        for line in block.split("\n")
        if line.strip()
    ]


def bad_options(question: str, answer: str, rules: FilterRules) -> bool:
    options = options_of(question)
    if options is None:
        return False
    folded = [fold(o) for o in options]
    if not rules.min_options <= len(options) <= rules.max_options or len(set(folded)) != len(folded):
        return True
    return fold(final_answer(answer)) not in folded


def repeated(text: str, limit: int) -> bool:
    """Whether some word 4-gram occurs more than ``limit`` times."""
    words = text.casefold().split()
    if len(words) < 4 * (limit + 1):
        return False
    grams = list(zip(words, words[1:], words[2:], words[3:]))
    if len(set(grams)) > len(grams) - limit:  # a 4-gram seen c times leaves c - 1 duplicates: none can exceed
        return False
    return max(Counter(grams).values()) > limit


def grounding(answer: str, text_words: set[str]) -> float | None:
    """Share of the answer's content words found in the document (None: it has none)."""
    words = content_words(final_answer(answer))
    return len(words & text_words) / len(words) if words else None


def _english(text: str) -> bool:
    try:
        import py3langid as langid
    except ImportError as exc:
        from instructpt.errors import ConfigError

        raise ConfigError("--english needs py3langid: pip install 'instructpt[filter]'") from exc
    return str(langid.classify(text)[0]) == "en"


def check_pairs(text: str, pairs: list[tuple[str, str]], rules: FilterRules) -> list[str | None]:
    """For each ``(question, answer)`` of a document, the first rule it fails, or None."""
    out: list[str | None] = []
    kept_questions: list[set[str]] = []
    text_words: set[str] | None = None
    for question, answer in pairs:
        q, a = question.strip(), answer.strip()
        reason: str | None = None
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
        elif bad_options(q, a, rules):
            reason = "bad_options"
        elif q.lower().endswith(COT_CUE + ".") and COT_ANSWER not in a.lower():
            reason = "cot_without_answer"
        elif repeated(q, rules.max_ngram_repeats) or repeated(a, rules.max_ngram_repeats):
            reason = "repetition"
        elif classify(q, a, text) == "other":
            if text_words is None:
                text_words = content_words(text)
            share = grounding(a, text_words)
            if share is not None and share < rules.min_grounding:
                reason = "ungrounded"
        if reason is None:
            words = set(_WORDS.findall(q.split(OPTIONS_MARK, 1)[0].casefold()))
            limit = rules.max_question_similarity
            if any(_jaccard(words, k) > limit for k in kept_questions if _may_exceed(words, k, limit)):
                reason = "duplicate_question"
            elif rules.english and not _english(f"{q} {a}"):
                reason = "not_english"
            else:
                kept_questions.append(words)
        out.append(reason)
    return out


def _may_exceed(a: set[str], b: set[str], limit: float) -> bool:
    """Jaccard(a, b) <= min/max of their sizes: sets of very different sizes cannot be similar."""
    small, large = sorted((len(a), len(b)))
    return large == 0 or small / large > limit


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
