"""Mine reading-comprehension tasks from a raw text (SPEC §9): the model-free synthesizer.

:func:`mine` checks the text (English, long enough), splits it into an optional title and sentences, finds
patterns (connectives, causes, paraphrases, definitions, topics, rare keywords) and turns them into question-
answer pairs with wordings drawn by one RNG per text, seeded from a stable hash of (seed, record id) and drawn
from in a fixed order, so the same text, id and seed give identical pairs in any process or worker order. The
shared state of one text is in :mod:`.facts`, the keyword analysis in :mod:`.keywords`.

    result = mine(text, record_id="doc-1", seed=0, max_per_type=2)
    for pair in result.pairs:  # QAPair(question, answer, task_type), in random order
        ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

from instructpt.engines.rules import keywords, wording
from instructpt.engines.rules.facts import Collector, Facts, Item, text_rng
from instructpt.engines.rules.lexicon import CONNECTIVES_BY_LABEL
from instructpt.engines.rules.patterns import strip_opener
from instructpt.engines.rules.text import (
    analyse,
    bare,
    lower_words,
    n_words,
    screen,
)
from instructpt.records import QAPair

RULES_VERSION = "rules-v5"  # bump when mining output changes for the same input

OPENING_MAX_WORDS = 120  # title_to_article: the answer is the body's opening, not the whole text
CONTINUATION_MAX_WORDS = 60
ARTICLE_OPENING_WORDS = (25, 90)  # whole-text completion: the given opening, in words
ARTICLE_REST_MAX_WORDS = 300  # ... and the rest to write, at most
KEYWORD_SENTENCE_WORDS = (8, 45)
KEYWORD_LOOKS = 6  # sentences looked at for one with three keywords before two keywords will do
PARAPHRASE_DETECT_OVERLAP = (
    0.5  # share of content words two sentences must have in common to ask "same thing?"
)
_NLI_ANSWER_INDEX = {"entailment": 0, "contradiction": 1, "neutral": 2}
# The NLI wordings that may ask about a link of each label (see wording.NLI_KINDS).
_NLI_WORDINGS = {
    label: [w for w in wording.NLI if w[1] in kinds] for label, kinds in wording.NLI_KINDS.items()
}
# Which relation of the other kind a "which connective" distractor comes from: the one that cannot fit too.
_OPPOSITE = {"entailment": "contradiction", "contradiction": "entailment"}
# Sentence openers that refer back to an earlier sentence: such a sentence does not stand alone as an answer.
_INNER_CONNECTIVE = re.compile(r", (?:however|therefore|though|moreover|thus|in contrast|in addition|too),")
_DEMONSTRATIVES = frozenset(["this", "these", "those", "such"])
_ANAPHORIC = frozenset(
    [
        "this",
        "these",
        "that",
        "those",
        "it",
        "its",
        "they",
        "their",
        "he",
        "she",
        "his",
        "her",
        "such",
        "both",
    ]
)


@dataclass
class MineResult:
    """The pairs mined from one text; ``skip_reason`` says why there are none (``not_english``, ``too_short``)."""

    pairs: list[QAPair] = field(default_factory=list)
    skip_reason: str | None = None


def mine(text: str, record_id: str, seed: int = 0, max_per_type: int = 2) -> MineResult:
    """Mine at most ``max_per_type`` pairs per task type from ``text``; never raises on odd input.

    Task types take turns: one item each, then a second each, and so on, so that when several types compete for
    the text's few linked sentence pairs, each pair goes to one task type and every type gets its share.
    """
    if max_per_type < 0:
        raise ValueError(f"max_per_type must be >= 0, got {max_per_type}")
    reason, words = screen(text)
    if reason is not None:
        return MineResult([], reason)
    facts = Facts(analyse(text, words), text_rng(seed, record_id, text))
    collector = Collector(facts)
    started: dict[str, Iterator[Item]] = {}  # each miner's candidates, drawn over the rounds
    for round_limit in range(1, max_per_type + 1):
        for task_type, miner in _MINERS:
            items = started.get(task_type)
            if items is None:
                items = started[task_type] = miner(facts)
            collector.take(task_type, items, round_limit)
    facts.rng.shuffle(collector.pairs)  # no task type always comes first
    return MineResult(collector.pairs)


def with_options(question: str, options: list[str] | tuple[str, ...]) -> str:
    """The synthesizer's multiple-choice convention: the question, then ``\\nOptions:\\n- a\\n- b``."""
    return question + "\nOptions:\n" + ("- " + "\n- ".join(options) if options else "")


def _summarize(f: Facts) -> Iterator[Item]:
    if f.doc.title:
        yield f.rng.choice(wording.SUMMARIZE), f.doc.title, None


def _title_to_article(f: Facts) -> Iterator[Item]:
    if not f.doc.title:
        return
    # The answer is the body's opening run of full sentences (not a list or a heading), of bounded length.
    opening: list[str] = []
    total = 0
    for s, full in zip(f.doc.sentences, f.doc.full):
        if not full or (opening and total + n_words(s) > OPENING_MAX_WORDS):
            break
        opening.append(s)
        total += n_words(s)
    if opening:
        title = f.doc.title.removesuffix(".")  # the title is quoted: '... titled "Sleep and memory".'
        yield f.rng.choice(wording.TITLE_TO_ARTICLE).format(title=title), " ".join(opening), None


def _nli(f: Facts) -> Iterator[Item]:
    for link in f.shuffled(f.statements):
        if not f.fresh(link.key):
            continue
        sentences = {"premise": link.first, "hypothesis": link.second}
        template, kind = f.rng.choice(f.fitting(_NLI_WORDINGS[link.label], sentences, itemgetter(0)))
        options: tuple[str, ...]
        if kind == "result":
            options = wording.YES_NO[f.case]
            answer = options[0 if link.label == "entailment" else 1]
        elif kind == "follows":
            options = f.rng.choice(wording.NLI_OPTIONS[f.case])
            answer = options[_NLI_ANSWER_INDEX[link.label]]
        elif kind == "contrast":
            options = wording.YES_NO[f.case]
            answer = options[0 if link.label == "contradiction" else 1]
        else:
            options = tuple(f.shuffled(list(wording.RELATION_OPTIONS.values())))
            answer = wording.RELATION_OPTIONS[link.label]
        question = template.format_map(f.forms(**sentences))
        yield with_options(question, options), answer, link.key


def _connective(f: Facts) -> Iterator[Item]:
    # Only result and contrast links, against a connective of the opposite relation: an "In addition" pair could
    # often take "Moreover" and "Therefore" alike, and then the question has two right answers.
    for link in f.shuffled([k for k in f.linked if k.label in _OPPOSITE]):
        if not f.fresh(link.key):
            continue
        options = [link.connective, f.rng.choice(CONNECTIVES_BY_LABEL[_OPPOSITE[link.label]])]
        f.rng.shuffle(options)
        second_lower = f.lower(link.second)
        question = f.rng.choice(wording.CONNECTIVE).format(
            first=link.first, second=link.second, second_lower=second_lower
        )
        yield with_options(question, options), link.connective, link.key


def _cause_effect(f: Facts) -> Iterator[Item]:
    forward = [link for link in f.statements if link.label == "entailment"]
    for link in f.shuffled(forward):
        if f.fresh(link.key):
            yield f.wording(wording.CAUSE_EFFECT, cause=link.first), link.second, link.key


def _effect_cause(f: Facts) -> Iterator[Item]:
    for c in f.shuffled(f.causes):
        if f.fresh(c.key):
            yield f.wording(wording.EFFECT_CAUSE, effect=c.effect), c.cause, c.key


def _paraphrase(f: Facts) -> Iterator[Item]:
    restated, inline = f.paraphrases
    found: list[tuple[str, str, object]] = [(r.first, r.second, r.key) for r in restated]
    found += [(before, after, None) for before, after in inline]
    for first, second, key in f.shuffled(found):
        if key is not None and not f.fresh(key):
            continue
        if key is None:
            yield f.rng.choice(wording.CLARIFY).format(before=first), second, None
        elif f.rng.random() < 0.5 and _overlap(first, second) >= PARAPHRASE_DETECT_OVERLAP:
            yield (*_paraphrase_detection(f, first, second), key)
        else:
            yield f.wording(wording.PARAPHRASE, sentence=first), second, key


def _content_words(s: str) -> set[str]:
    return {w for w in lower_words(s) if len(w) > 2 and not keywords.is_generic(w)} or set(lower_words(s))


def _overlap(a: str, b: str) -> float:
    """The share of the smaller sentence's content words that the other sentence also has."""
    wa, wb = _content_words(a), _content_words(b)
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


def _paraphrase_detection(f: Facts, first: str, second: str) -> tuple[str, str]:
    """Half the time the second sentence is swapped for an unrelated one from the text (answer "no")."""
    options = wording.YES_NO[f.case]
    # Neither sentence of the pair may serve as the distractor, not even with its opener ("In other words, ...").
    taken = (bare(first).lower(), bare(second).lower())
    doc = f.doc
    others = [
        s for s, full in zip(doc.sentences, doc.full) if full and not any(t in s.lower() for t in taken)
    ]
    answer = options[0]
    if others and f.rng.random() < 0.5:
        second, answer = f.rng.choice(others), options[1]
    question = f.rng.choice(wording.PARAPHRASE_DETECT).format(first=first, second=second)
    return with_options(question, options), answer


def _definition(f: Facts) -> Iterator[Item]:
    seen: set[str] = set()
    for d in f.shuffled(f.definitions):
        if d.term.casefold() not in seen:
            seen.add(d.term.casefold())
            yield (
                f.rng.choice(wording.DEFINITION).format(term=f.lower(d.term)),
                strip_opener(d.sentence),
                None,
            )


def _topic(f: Facts) -> Iterator[Item]:
    for t in f.shuffled(f.topics):
        fields = {"subject_lower": f.lower(t.subject), "topic": t.topic}
        yield f.rng.choice(wording.TOPIC).format(**fields), t.sentence, None


def _stands_alone(s: str) -> bool:
    """A sentence that makes sense on its own: it does not refer back ("These are ...", "Owing to these delays",
    "Some, however, ...")."""
    opening = s.lower().split(" ", 4)[:4]
    return (
        opening[0] not in _ANAPHORIC
        and _DEMONSTRATIVES.isdisjoint(opening)
        and not _INNER_CONNECTIVE.search(s)
    )


def _keywords(f: Facts) -> Iterator[Item]:
    rare = f.keywords
    if len(rare) < 2:
        return
    lo, hi = KEYWORD_SENTENCE_WORDS
    # Sentences in random order, looked at lazily (cheapest test first): three or more keywords are used at once,
    # two only when nothing better turns up among the first KEYWORD_LOOKS sentences looked at.
    pairs_only: list[tuple[str, list[str]]] = []
    for looked, s in enumerate(f.shuffled([s for s, full in zip(f.doc.sentences, f.doc.full) if full])):
        if looked == KEYWORD_LOOKS:
            yield from (_keyword_item(f, s2, h) for s2, h in pairs_only)
            pairs_only = []
        hits = keywords.keyword_hits(s, rare)
        if len(hits) < 2:
            continue
        s = strip_opener(s)  # a connective is never a keyword: the hits stay
        if not (lo <= n_words(s) <= hi and _stands_alone(s)):
            continue
        if len(hits) >= 3:
            yield _keyword_item(f, s, hits)
        elif len(hits) == 2:
            pairs_only.append((s, hits))
    for s, hits in pairs_only:
        yield _keyword_item(f, s, hits)


def _keyword_item(f: Facts, sentence: str, hits: list[str]) -> Item:
    # A word capitalised only because it opens the sentence is listed in lower case ("Artificial" -> "artificial").
    hits = [f.lower(h) if sentence.startswith(h) else h for h in hits]
    chosen = list(islice(f.shuffled(hits), 4))
    words = ", ".join(chosen)
    words_and = f"{', '.join(chosen[:-1])} and {chosen[-1]}"
    return f.rng.choice(wording.KEYWORDS).format(words=words, words_and=words_and), sentence, None


def _completion(f: Facts) -> Iterator[Item]:
    whole = _article_completion(f)
    if whole is not None:
        yield whole
    sents, full = f.doc.sentences, f.doc.full
    splits = [k for k in range(1, len(sents)) if full[k - 1] and full[k]]
    for k in f.shuffled(splits):
        if not f.fresh(k):
            continue
        before = sents[k - 1]
        if k >= 2 and n_words(before) < 12 and full[k - 2]:
            before = f"{sents[k - 2]} {before}"
        answer = sents[k]
        # Sometimes two sentences, when the next one is short enough.
        two_fit = k + 1 < len(sents) and full[k + 1]
        two_fit = two_fit and n_words(answer) + n_words(sents[k + 1]) <= CONTINUATION_MAX_WORDS
        if two_fit and f.rng.random() < 0.5:
            answer = f"{answer} {sents[k + 1]}"
        yield f.rng.choice(wording.COMPLETION).format(before=before), answer, k


def _article_completion(f: Facts) -> Item | None:
    """The first sentences of the text and, as the answer, the rest of it: when the whole text is prose."""
    sents = f.doc.sentences
    if len(sents) < 3 or not all(f.doc.full):
        return None
    lo, hi = ARTICLE_OPENING_WORDS
    words, k = 0, 0
    while k < len(sents) - 1 and (words < lo or k < 1):
        words += n_words(sents[k])
        k += 1
    rest = " ".join(sents[k:])
    if words > hi or not lo <= words or n_words(rest) > ARTICLE_REST_MAX_WORDS or k == len(sents):
        return None
    before = " ".join(sents[:k])
    return f.rng.choice(wording.ARTICLE_COMPLETION).format(before=before), rest, None


_MINERS: tuple[tuple[str, Callable[[Facts], Iterator[Item]]], ...] = (
    ("summarize", _summarize),
    ("title_to_article", _title_to_article),
    # Types that need the scarcer kinds of linked pairs choose first: results, then results and contrasts, then any.
    ("cause_effect", _cause_effect),
    ("connective", _connective),
    ("nli", _nli),
    ("effect_cause", _effect_cause),
    ("paraphrase", _paraphrase),
    ("definition", _definition),
    ("topic", _topic),
    ("keywords", _keywords),
    ("completion", _completion),
)
TASK_TYPES: tuple[str, ...] = tuple(name for name, _ in _MINERS)
