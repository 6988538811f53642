"""What the rules miner's task types share while mining one text: the RNG, the pattern matches, the wording
helpers (:class:`Facts`), and the collector that accepts items (:class:`Collector`)."""

from __future__ import annotations

import _random
import functools
import hashlib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import TypeVar

from instructpt.engines.rules import keywords, patterns
from instructpt.engines.rules.lexicon import PERSONAL_WORDS, SUBORDINATORS
from instructpt.engines.rules.text import Doc, bare, is_imperative, is_personal, lower_first
from instructpt.records import QAPair
from instructpt.wire import MARKERS

_seed = _random.Random.seed
_MARKER = re.compile("|".join(re.escape(m) for m in MARKERS))

W = TypeVar("W")  # a wording: its template, or a (template, kind) pair
# (question, answer, key): ``key`` names the sentences the item uses (see patterns.Linked.key), or None.
Item = tuple[str, str, object]


def text_rng(seed: int, record_id: str, text: str = "") -> random.Random:
    """The RNG of one text, from a stable hash of (seed, record id); the text stands in for a missing id."""
    name = record_id if record_id else "text:" + text
    digest = hashlib.blake2b(f"{seed}\x1f{name}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    rng = random.Random.__new__(random.Random)
    rng.gauss_next = None  # type: ignore[attr-defined]  # as Random.seed leaves it
    _seed(rng, int.from_bytes(digest, "big"))  # what Random.seed does with an int, without its Python wrapper
    return rng


class Facts:
    """A document, its RNG and the pattern matches several miners share (computed once, on first use).

    ``used`` holds the keys of the sentence pairs items were made from, by task type: a pair serves one task type
    (see :meth:`fresh`), so the items of a text ask about different parts of it.
    """

    def __init__(self, doc: Doc, rng: random.Random) -> None:
        self.doc, self.rng = doc, rng
        self.used: dict[object, set[str]] = {}
        self._lower: dict[str, str] = {}

    # Pattern matches, computed once per text (every round of the collector asks again).
    @cached_property
    def linked(self) -> list[patterns.Linked]:
        return patterns.linked_pairs(self.doc)

    @cached_property
    def statements(self) -> list[patterns.Linked]:
        """The links between two statements: instructions have no truth value to reason about."""
        return [k for k in self.linked if not is_imperative(k.first) and not is_imperative(k.second)]

    @cached_property
    def causes(self) -> list[patterns.Cause]:
        return patterns.causes(self.doc)

    @cached_property
    def paraphrases(self) -> tuple[list[patterns.Restated], list[tuple[str, str]]]:
        return patterns.paraphrases(self.doc)

    @cached_property
    def definitions(self) -> list[patterns.Definition]:
        return patterns.definitions(self.doc)

    @cached_property
    def topics(self) -> list[patterns.Topic]:
        return patterns.topics(self.doc)

    @cached_property
    def keywords(self) -> list[str]:
        return keywords.keywords(self.doc)

    @cached_property
    def case(self) -> str:
        """One capitalisation of yes/no options for the whole text ("lower" or "upper")."""
        return self.rng.choice(("lower", "upper"))

    @cached_property
    def personal(self) -> bool:
        """Whether a sentence of the text may speak in the first or second person: not when the words of the whole
        text (``doc.words``, split as :func:`is_personal` splits a sentence) hold no such word, also once a clause
        that opens with one has its first letter capitalised (``upper_first``: "ı stayed" -> "I stayed")."""
        words = self.doc.words
        if words is None or not words.isdisjoint(PERSONAL_WORDS):
            return True
        if "".join(words).isascii():
            return False  # capitalising an ASCII letter and lower-casing it again gives the same letter
        capitalised = ((w[:1].upper() + w[1:]).lower() for w in words if not w.isascii())
        return not PERSONAL_WORDS.isdisjoint(capitalised)

    def fresh(self, key: object) -> bool:
        """Whether an item may use the sentences ``key``: only when no item has used them yet (miners ask before
        they word an item, so that no draw is spent on one the collector would refuse)."""
        return key not in self.used

    def lower(self, s: str) -> str:
        low = self._lower.get(s)
        if low is None:
            low = self._lower[s] = lower_first(s, self.doc.body)
        return low

    def forms(self, **sentences: str) -> dict[str, str]:
        """The fields a wording may embed for each named sentence: ``name`` (as written), ``name_bare`` (without
        final punctuation) and ``name_lower_bare`` (also with a lower-case start), each made when used."""
        return _Forms(self, sentences)

    def wording(self, table: tuple[str, ...], **sentences: str) -> str:
        """A wording from ``table`` (one of those :meth:`fitting` allows) filled with the forms of ``sentences``."""
        return self.rng.choice(self.fitting(table, sentences)).format_map(self.forms(**sentences))

    def fitting(
        self, table: Sequence[W], sentences: dict[str, str], template: Callable[[W], str] = str
    ) -> Sequence[W]:
        """The wordings of ``table`` that quote each of ``sentences`` that may only be quoted (all of them when none
        does; ``template`` gives a wording's text).

        A sentence that speaks in the first or second person, gives an instruction or opens with a subordinate
        clause is only quoted: unquoted ("Given that I prefer ...", "Turn the valve.\nWhy is that?", "Given that
        because zinc ...") it would read as the asker's own words, or be ungrammatical.
        """
        personal = self.personal
        quote = [
            n
            for n, s in sentences.items()
            if (personal and is_personal(s)) or is_imperative(s) or _subordinate(s)
        ]
        if not quote:
            return table
        return [w for w in table if all(_quoted(template(w), n) for n in quote)] or table

    def shuffled(self, items: list) -> Iterator:
        """``items`` in random order, drawn lazily: a miner that stops early spends fewer draws."""
        items = list(items)
        rng = self.rng if items else None
        while items:
            i = rng._randbelow(len(items))  # type: ignore[union-attr]  # randrange(n)'s draw, without its checks
            items[i], items[-1] = items[-1], items[i]
            yield items.pop()


class _Forms(dict):
    """A wording's fields: the named sentences, and their other forms made on first use (most go unused)."""

    def __init__(self, facts: Facts, sentences: dict[str, str]) -> None:
        super().__init__(sentences)
        self.facts = facts

    def __missing__(self, key: str) -> str:
        name, _, form = key.partition("_")
        if form not in ("bare", "lower_bare") or not dict.__contains__(self, name):
            raise KeyError(key)
        sentence = self[name]
        value = self[key] = bare(self.facts.lower(sentence) if form == "lower_bare" else sentence)
        return value


def _subordinate(s: str) -> bool:
    """Whether a sentence opens with a subordinating word ("Because ...", "Although ...", "As ...")."""
    return s.split(" ", 1)[0].strip("\"'“‘(,").lower() in SUBORDINATORS


@functools.lru_cache(maxsize=1024)
def _quoted(wording: str, name: str) -> bool:
    """Whether every use of the field ``name`` in ``wording`` is inside quotation marks."""
    uses = re.findall(rf"(.?){{{name}(?:_bare|_lower_bare)?}}", wording)
    return bool(uses) and all(u == '"' for u in uses)


class Collector:
    """Accepts well-formed, marker-free, not yet asked questions, up to a limit per task type."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.pairs: list[QAPair] = []
        self.counts: dict[str, int] = {}
        self._seen: set[str] = set()
        self._given: set[tuple[str, object]] = set()  # (task type, key or answer): one item per fact and type

    def take(self, task_type: str, items: Iterator[Item], limit: int) -> None:
        if self.counts.get(task_type, 0) >= limit:
            return
        for question, answer, key in items:
            if key is not None and not self.facts.fresh(key):
                continue
            question, answer = question.strip(), answer.strip()
            seen = question.casefold()
            if not question or not answer or seen in self._seen:
                continue
            if ("<" in question or "<" in answer) and (_MARKER.search(question) or _MARKER.search(answer)):
                continue  # every marker opens with "<"
            given = (task_type, ("answer", answer) if key is None else key)
            if given in self._given:
                continue  # the same fact in another wording
            self._given.add(given)
            self._seen.add(seen)
            if key is not None:
                self.facts.used.setdefault(key, set()).add(task_type)
            self.pairs.append(QAPair(question, answer, task_type))
            self.counts[task_type] = self.counts.get(task_type, 0) + 1
            if self.counts[task_type] >= limit:
                break
