"""Mine reading-comprehension tasks from a raw text (SPEC §9): the model-free synthesizer.

:func:`mine` checks the text (English, long enough), splits it into an optional title and sentences, finds
patterns (connectives, causes, paraphrases, definitions, topics, rare keywords) and turns them into question-
answer pairs with wordings drawn by one RNG per text. The RNG is seeded from a stable hash of (seed, record id)
and drawn from sequentially, so the same text, id and seed give identical pairs in any process or worker order.

    result = mine(text, record_id="doc-1", seed=0, max_per_type=2)
    for pair in result.pairs:  # QAPair(question, answer, task_type), in random order
        ...
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from instructpt.engines.rules import patterns, wording
from instructpt.engines.rules.lexicon import CONNECTIVES_BY_LABEL
from instructpt.engines.rules.text import (
    Doc,
    analyse,
    bare,
    lower_first,
    n_words,
    skip_reason,
)
from instructpt.records import QAPair
from instructpt.wire import MARKERS

RULES_VERSION = "rules-v2"  # bump when mining output changes for the same input

OPENING_MAX_WORDS = 120  # title_to_article: the answer is the body's opening, not the whole text
CONTINUATION_MAX_WORDS = 60
KEYWORD_SENTENCE_WORDS = (8, 45)
_NLI_ANSWER_INDEX = {"entailment": 0, "contradiction": 1, "neutral": 2}
_MARKER = re.compile("|".join(re.escape(m) for m in MARKERS))

Item = tuple[str, str]  # (question, answer)


@dataclass
class MineResult:
    """The pairs mined from one text; ``skip_reason`` says why there are none (``not_english``, ``too_short``)."""

    pairs: list[QAPair] = field(default_factory=list)
    skip_reason: str | None = None


def text_rng(seed: int, record_id: str, text: str = "") -> random.Random:
    """The RNG of one text, from a stable hash of (seed, record id); the text stands in for a missing id."""
    key = record_id if record_id else "text:" + text
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def mine(text: str, record_id: str, seed: int = 0, max_per_type: int = 2) -> MineResult:
    """Mine at most ``max_per_type`` pairs per task type from ``text``; never raises on odd input."""
    if max_per_type < 0:
        raise ValueError(f"max_per_type must be >= 0, got {max_per_type}")
    reason = skip_reason(text)
    if reason is not None:
        return MineResult([], reason)
    facts = _Facts(analyse(text), text_rng(seed, record_id, text))
    collector = _Collector(max_per_type)
    for task_type, miner in _MINERS:
        if max_per_type:
            collector.take(task_type, miner(facts))
    facts.rng.shuffle(collector.pairs)  # no task type always comes first
    return MineResult(collector.pairs)


class _Facts:
    """A document, its RNG and the pattern matches several miners share (computed once, on first use)."""

    def __init__(self, doc: Doc, rng: random.Random) -> None:
        self.doc, self.rng = doc, rng

    @cached_property
    def linked(self) -> list[patterns.Linked]:
        return patterns.linked_pairs(self.doc)

    def lower(self, s: str) -> str:
        return lower_first(s, self.doc.body)

    def forms(self, name: str, sentence: str) -> dict[str, str]:
        """A sentence and the variants wordings embed: without final punctuation, with a lower-case start."""
        return {
            name: sentence,
            f"{name}_bare": bare(sentence),
            f"{name}_lower_bare": bare(self.lower(sentence)),
        }

    def shuffled(self, items: list) -> Iterator:
        """``items`` in random order, drawn lazily: a miner that stops early spends fewer draws."""
        items = list(items)
        while items:
            i = self.rng.randrange(len(items))
            items[i], items[-1] = items[-1], items[i]
            yield items.pop()


class _Collector:
    """Accepts well-formed, marker-free, not yet asked questions, up to ``limit`` per task type."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pairs: list[QAPair] = []
        self._seen: set[str] = set()

    def take(self, task_type: str, items: Iterator[Item]) -> None:
        taken = 0
        for question, answer in items:
            question, answer = question.strip(), answer.strip()
            key = question.casefold()
            if not question or not answer or key in self._seen:
                continue
            if _MARKER.search(question) or _MARKER.search(answer):
                continue
            self._seen.add(key)
            self.pairs.append(QAPair(question, answer, task_type))
            taken += 1
            if taken >= self.limit:
                break


def with_options(question: str, options: list[str] | tuple[str, ...]) -> str:
    """The synthesizer's multiple-choice convention: the question, then ``\\nOptions:\\n- a\\n- b``."""
    return question + "\nOptions:\n" + "\n".join(f"- {o}" for o in options)


def _summarize(f: _Facts) -> Iterator[Item]:
    if f.doc.title:
        yield f.rng.choice(wording.SUMMARIZE), f.doc.title


def _title_to_article(f: _Facts) -> Iterator[Item]:
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
        yield f.rng.choice(wording.TITLE_TO_ARTICLE).format(title=f.doc.title), " ".join(opening)


def _nli(f: _Facts) -> Iterator[Item]:
    for link in f.shuffled(f.linked):
        options = f.rng.choice(wording.NLI_OPTIONS)
        fields = {**f.forms("premise", link.first), **f.forms("hypothesis", link.second)}
        question = f.rng.choice(wording.NLI).format(**fields)
        yield with_options(question, options), options[_NLI_ANSWER_INDEX[link.label]]


def _connective(f: _Facts) -> Iterator[Item]:
    for link in f.shuffled(f.linked):
        options = [link.connective] + [
            f.rng.choice(words) for label, words in CONNECTIVES_BY_LABEL.items() if label != link.label
        ]
        f.rng.shuffle(options)
        second_lower = f.lower(link.second)
        question = f.rng.choice(wording.CONNECTIVE).format(
            first=link.first, second=link.second, second_lower=second_lower
        )
        yield with_options(question, options), link.connective


def _cause_effect(f: _Facts) -> Iterator[Item]:
    forward = [link for link in f.linked if link.label == "entailment"]
    for link in f.shuffled(forward):
        yield f.rng.choice(wording.CAUSE_EFFECT).format(**f.forms("cause", link.first)), link.second


def _effect_cause(f: _Facts) -> Iterator[Item]:
    for c in f.shuffled(patterns.causes(f.doc)):
        yield f.rng.choice(wording.EFFECT_CAUSE).format(**f.forms("effect", c.effect)), c.cause


def _paraphrase(f: _Facts) -> Iterator[Item]:
    restated, inline = patterns.paraphrases(f.doc)
    found = [("restated", a, b) for a, b in restated] + [("inline", a, b) for a, b in inline]
    for kind, first, second in f.shuffled(found):
        if kind == "inline":
            yield f.rng.choice(wording.CLARIFY).format(before=first), second
        elif f.rng.random() < 0.5:
            yield f.rng.choice(wording.PARAPHRASE).format(**f.forms("sentence", first)), second
        else:
            yield _paraphrase_detection(f, first, second)


def _paraphrase_detection(f: _Facts, first: str, second: str) -> Item:
    """Half the time the second sentence is swapped for an unrelated one from the text (answer "no")."""
    options = f.rng.choice(wording.DETECT_OPTIONS)
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


def _definition(f: _Facts) -> Iterator[Item]:
    seen: set[str] = set()
    for d in f.shuffled(patterns.definitions(f.doc)):
        if d.term.casefold() not in seen:
            seen.add(d.term.casefold())
            yield f.rng.choice(wording.DEFINITION).format(term=f.lower(d.term)), d.sentence


def _topic(f: _Facts) -> Iterator[Item]:
    for t in f.shuffled(patterns.topics(f.doc)):
        fields = {"subject_lower": f.lower(t.subject), "topic": t.topic}
        yield f.rng.choice(wording.TOPIC).format(**fields), t.sentence


def _keywords(f: _Facts) -> Iterator[Item]:
    rare = patterns.keywords(f.doc)
    if len(rare) < 2:
        return
    lo, hi = KEYWORD_SENTENCE_WORDS
    eligible = [s for s, full in zip(f.doc.sentences, f.doc.full) if full and lo <= n_words(s) <= hi]
    # Sentences in random order, looked at lazily: three or more keywords are used at once, two only when
    # nothing better turns up.
    pairs_only: list[tuple[str, list[str]]] = []
    for s in f.shuffled(eligible):
        hits = patterns.keyword_hits(s, rare)
        if len(hits) >= 3:
            yield _keyword_item(f, s, hits)
        elif len(hits) == 2:
            pairs_only.append((s, hits))
    for s, hits in pairs_only:
        yield _keyword_item(f, s, hits)


def _keyword_item(f: _Facts, sentence: str, hits: list[str]) -> Item:
    chosen = f.rng.sample(hits, min(4, len(hits)))
    words = ", ".join(chosen)
    words_and = f"{', '.join(chosen[:-1])} and {chosen[-1]}"
    return f.rng.choice(wording.KEYWORDS).format(words=words, words_and=words_and), sentence


def _completion(f: _Facts) -> Iterator[Item]:
    sents, full = f.doc.sentences, f.doc.full
    splits = [k for k in range(1, len(sents)) if full[k - 1] and full[k]]
    for k in f.shuffled(splits):
        before = sents[k - 1]
        if k >= 2 and n_words(before) < 12 and full[k - 2]:
            before = f"{sents[k - 2]} {before}"
        answer = sents[k]
        # Sometimes two sentences, when the next one is short enough.
        two_fit = k + 1 < len(sents) and full[k + 1]
        two_fit = two_fit and n_words(answer) + n_words(sents[k + 1]) <= CONTINUATION_MAX_WORDS
        if two_fit and f.rng.random() < 0.5:
            answer = f"{answer} {sents[k + 1]}"
        yield f.rng.choice(wording.COMPLETION).format(before=before), answer


_MINERS: tuple[tuple[str, Callable[[_Facts], Iterator[Item]]], ...] = (
    ("summarize", _summarize),
    ("title_to_article", _title_to_article),
    ("nli", _nli),
    ("connective", _connective),
    ("cause_effect", _cause_effect),
    ("effect_cause", _effect_cause),
    ("paraphrase", _paraphrase),
    ("definition", _definition),
    ("topic", _topic),
    ("keywords", _keywords),
    ("completion", _completion),
)
TASK_TYPES: tuple[str, ...] = tuple(name for name, _ in _MINERS)
