"""Domain keywords of a text for the rules miner's "write a sentence with these words" items.

A keyword is a term of the text as written there ("IL-6", "OKT8+", "MoS2", "lead-induced", a name): not everyday
vocabulary (the lexicon's lists, with inflections undone), and recurring in the text or long. ``keyword_hits`` finds
them in a sentence as whole words, names kept whole ("Harbour City").
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from itertools import filterfalse

from instructpt.engines.rules.lexicon import (
    COMMON_WORDS,
    CONNECTIVES,
    FUNCTION_WORDS,
    GENERAL_WORDS,
    PARAPHRASE_OPENERS,
)
from instructpt.engines.rules.text import Doc

# ASCII punctuation but "-" and "+" becomes a space (bytes.translate: far faster than a regular expression), and
# so do the usual non-ASCII quotes and dashes.
_RUN_BREAKS = (string.punctuation.replace("-", "").replace("+", "")).encode()
_RUN_TABLE = bytes.maketrans(_RUN_BREAKS, b" " * len(_RUN_BREAKS))
_UNICODE_BREAKS = str.maketrans({c: " " for c in "“”‘’«»–—…•·"})


def _runs(text: str) -> list[str]:
    """Runs of characters between spaces and punctuation (hyphens and pluses kept: "il-6", "okt8+")."""
    if not text.isascii():
        text = text.translate(_UNICODE_BREAKS)
    return (
        text.encode("utf-8", "surrogatepass").translate(_RUN_TABLE).decode("utf-8", "surrogatepass").split()
    )


_CONNECTIVE_WORDS = frozenset(
    w for phrase in (*CONNECTIVES, *PARAPHRASE_OPENERS) for w in phrase.lower().split()
)
_GENERIC = COMMON_WORDS | GENERAL_WORDS | _CONNECTIVE_WORDS
# (suffix, replacement) pairs that undo inflections: "improves" -> "improve", "studied" -> "study".
_INFLECTIONS = (
    ("ies", "y"), ("ied", "y"), ("ily", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("d", ""),
    ("ing", ""), ("ing", "e"), ("ly", ""), ("ally", ""), ("ments", ""), ("ment", ""), ("ness", ""), ("ful", ""),
    ("ers", ""), ("er", ""), ("er", "e"), ("ations", "e"), ("ation", "e"),
)  # fmt: skip
_VERB_FORM = ("ly", "ing", "ed")


@functools.lru_cache(maxsize=1 << 16)
def is_generic(word: str) -> bool:
    """Whether a lower-case word is everyday vocabulary, inflections included ("considering", "appears")."""
    if word in _GENERIC:
        return True
    for suffix, replacement in _INFLECTIONS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if stem + replacement in _GENERIC or (stem[-1] == stem[-2:-1] and stem[:-1] in _GENERIC):
                return True  # "stopped" -> "stop"
    return False


# What the words of a text are, as far as the word alone decides (see _kind).
_NEVER, _ALWAYS, _RECURRING, _ACRONYM = range(4)


@functools.lru_cache(maxsize=1 << 16)
def _kind(word: str) -> int:
    """Whether a lower-case run is a keyword whatever its text (_ALWAYS), never (_NEVER), when it recurs in its
    text or is written there in capitals (_RECURRING), or only when it is written in capitals (_ACRONYM).

    An acronym ("DNA") is a term. A word is one when it recurs in its text, or is very long ("evapotranspiration")
    and not an adverb or verb form; a word used once is usually everyday vocabulary ("grateful", "fortnight",
    "effectively"). A keyword opens with a letter ("10-fold" is not "fold") and does not end with a hyphen.
    """
    if word in _GENERIC or not word[0].isalpha() or word[-1] == "-":
        return _NEVER
    shape = _shape(word)
    if shape != "word":
        return _ALWAYS if shape == "term" else _NEVER
    n = len(word)
    if n >= 12 and not word.endswith(_VERB_FORM):
        return _ALWAYS
    return _RECURRING if n >= 6 else _ACRONYM


@functools.lru_cache(maxsize=1 << 16)
def _shape(word: str) -> str:
    """What a word is on its own: "generic", "term" (a letter-digit code, a telling compound), "not" (too short,
    a bare code like "q3"), or "word" (a plain word, decided by how the text uses it)."""
    if len(word) < 3 or is_generic(word):
        return "generic"
    if word.isalpha():
        return "word"
    if any(c.isdigit() for c in word):
        return "term" if sum(c.isalpha() for c in word) >= 2 else "not"  # "il-6", "mos2"; not "q3"
    parts = word.strip("+").split("-")
    return "term" if len(word) >= 7 and any(len(p) >= 4 and not is_generic(p) for p in parts) else "not"


def keywords(doc: Doc, limit: int = 10) -> list[str]:
    """The text's rare words (lower case): terms and acronyms outside everyday vocabulary, frequent first."""
    body = doc.body
    # Words as the text writes them: letters, digits and inner hyphens kept together ("IL-6", "OKT8+", "MoS2",
    # "lead-induced"). The test is made on the distinct runs, which is much cheaper than on every one.
    counts = Counter(filterfalse(_GENERIC.__contains__, _runs(body.lower())))  # _kind: never a keyword
    caps = _capitals(body)
    rare = [  # distinct words, in first-seen order
        w
        for w, kind in zip(counts, map(_kind, counts))
        if kind == _ALWAYS
        or (kind != _NEVER and ((kind == _RECURRING and counts[w] >= 2) or w.upper() in caps))
    ]
    # Frequent first, then long; sorting is stable (also in reverse): ties go to the word seen first.
    rare.sort(key=len, reverse=True)
    rare.sort(key=counts.__getitem__, reverse=True)
    return rare[:limit]


def _capitals(body: str) -> str:
    """Where ``keywords`` looks for a word written in capitals: the words that reach that test are alphabetic
    (three letters or more), so in an ASCII text they can only occur inside a run of capitals ("DNA" in "DNAse")."""
    if not body.isascii():
        return body
    runs = body.encode().translate(_CAPITALS_ONLY).split()
    return " ".join([r.decode() for r in runs if len(r) >= 3])


_CAPITALS_ONLY = bytes(c if 65 <= c <= 90 else 32 for c in range(256))  # A-Z kept, every other byte a space


def keyword_hits(sentence: str, rare: list[str]) -> list[str]:
    """The rare words that occur in ``sentence`` as whole words, as written there, in order of appearance.

    Hits next to each other form one phrase ("Northgate Utilities"): the halves of a name are not two keywords,
    and a capitalised hit takes the capitalised words after it ("Harbour" -> "Harbour City") and before it (but
    the sentence's first word). Nothing is returned when fewer than two occur: a keywords item needs two.
    """
    low = sentence.lower()
    present = [w for w in rare if w in low]
    if len(present) < 2:
        return []  # fewer than two of the words occur even as substrings (most sentences)
    if len(low) != len(sentence):  # lower-casing changed the length ("İ"): keep positions aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in sentence)
    spans: list[list[int]] = []  # [start, end] of each hit
    for w in present:
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or low[i - 1] not in _INNER) and (j == len(low) or low[j] not in _INNER_AFTER):
                spans.append([i, j])
                break
            i = low.find(w, j)
    if len(spans) < 2:
        return []
    spans.sort()
    for span in spans:
        if sentence[span[0]].isupper():  # a name: take the capitalised words around it
            while (m := _NAME_AFTER.match(sentence, span[1])) and _name_word(m.group(1)):
                span[1] = m.end()
            while (
                (m := _NAME_BEFORE.search(sentence, 0, span[0])) and m.start() > 0 and _name_word(m.group(1))
            ):
                span[0] = m.start()
    merged: list[list[int]] = []
    for span in spans:
        if merged and span[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span[1])  # overlapping: one name
        elif (
            merged
            and span[0] == merged[-1][1] + 1
            and sentence[merged[-1][1]] == " "
            and sentence[span[0]].isupper()
            and sentence[merged[-1][0]].isupper()
        ):
            merged[-1][1] = span[1]  # two names side by side: one phrase
        else:
            merged.append(span)
    out: list[str] = []
    seen: set[str] = set()
    for start, end in merged:
        phrase = sentence[start:end]
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            out.append(phrase)
    return out if len(out) >= 2 else []


# Characters that continue a word: a hit must not touch them ("il" in "il-6", "okt" in "okt8+").
_INNER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-+")
_INNER_AFTER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_NAME_AFTER = re.compile(r" ([^\W\d_][\w-]*)(?![\w-])")
_NAME_BEFORE = re.compile(r"(?<![\w-])([^\W\d_][\w-]*) $")


def _name_word(word: str) -> bool:
    """A word of a name: capitalised, longer than an initial, not a function word ("The")."""
    return word[0].isupper() and len(word) > 1 and word.lower() not in FUNCTION_WORDS
