"""Text analysis for the rules miner: language and length checks, title detection, sentence splitting, casing.

Everything here is cheap: precompiled regular expressions and set look-ups, no models. :func:`analyse` turns a
raw text into a :class:`Doc` (optional title, body sentences) or a reason to skip it.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from instructpt.engines.rules.lexicon import (
    ABBREVIATIONS,
    COMMON_WORDS,
    FUNCTION_WORDS,
    IMPERATIVE_VERBS,
    PERSONAL_WORDS,
    SENTENCE_WORDS,
)

MIN_WORDS = 30  # texts with fewer whitespace-separated words are "too_short"
MIN_FUNCTION_SHARE = 0.12  # English prose is typically 30-45% function words from our list
MAX_NON_ASCII_SHARE = 0.3  # mostly non-Latin script: not English
MAX_SENTENCE_WORDS = 80  # longer "sentences" are usually unsegmented lists or tables: never quoted
MIN_SENTENCE_WORDS = 4
TITLE_MAX_WORDS = 20
TITLE_MAX_CHARS = 160
MIN_BODY_WORDS = 20  # a first line counts as a title only when a real body follows it

MAX_CHARS = 100_000  # a very long text is mined from its beginning only: bounded time per text
MAX_SENTENCES = 400
ENGLISH_SAMPLE_CHARS = 6000  # the language check reads this much of a text
_CHUNK = 96  # ... and counts its function words this many words at a time, until the share is reached

# ASCII punctuation (but hyphens and apostrophes, which belong to words) and digits become spaces.
_NOT_WORD = (string.punctuation + string.digits).replace("-", "").replace("'", "").encode()
_TO_SPACE = bytes.maketrans(_NOT_WORD, b" " * len(_NOT_WORD))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# A candidate sentence end: terminal punctuation (plus closing quotes/brackets), space, then an opener.
_SENT_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?\w)")  # the opener is checked in _sentence_ends
_OPENING_MARKS = "\"'“‘(["
_SENT_END_ASCII = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")  # the same ends in an ASCII line
_TITLE_BAD_END = re.compile(r"(?:[,;:]|\.\.)$")
# Words that may precede the verb of an instruction ("Do not ...", "Then gently press ...").
_IMPERATIVE_LEADS = frozenset(
    [
        "do",
        "not",
        "don't",
        "don’t",
        "never",
        "always",
        "please",
        "then",
        "first",
        "next",
        "finally",
        "now",
        "gently",
        "carefully",
        "slowly",
        "simply",
        "just",
    ]
)
_NUMBER = re.compile(r"[\d.,]*\d")
# Body openers that refer back to the line before: after one, a first line ending with a full stop is part of the body.
_BACK_REFERENCE = frozenset({"it", "its", "this", "these", "they", "he", "she", "that", "those", "such"})
_BULLET = re.compile(r"^(?:[-*•·>#]|\d+[.)]\s)")
# Words a title or a finished line does not end with; a line ending with one goes on in the next line.
_DANGLING = FUNCTION_WORDS | {"a", "an", "in", "of", "the", "to", "and", "or", "nor", "with"}
_LINE_END_PUNCT = tuple(".!?:;\"')]")


@dataclass(frozen=True)
class Doc:
    """A text ready for mining: optional title, body sentences (whitespace-normalized) in order.

    ``full[i]`` tells whether sentence ``i`` is a quotable statement (see :func:`is_full_sentence`); ``body`` is
    the sentences joined by spaces, for cheap look-ups of how words are used in the text. ``words``, when known,
    holds every word of the whole text as :func:`lower_words` splits it: a pattern whose cue word is not among them
    need not search the text.
    """

    title: str | None
    sentences: list[str]
    full: list[bool]
    body: str
    words: frozenset[str] | None = None

    @functools.cached_property
    def starts(self) -> list[int]:
        """Where each sentence starts in ``body``."""
        starts, at = [], 0
        for s in self.sentences:
            starts.append(at)
            at += len(s) + 1
        return starts


def squash(s: str) -> str:
    """Collapse runs of whitespace (newlines included) to single spaces and strip the ends."""
    return " ".join(s.split())


def skip_reason(text: str) -> str | None:
    """``"not_english"`` or ``"too_short"`` when a text should not be mined, else ``None``."""
    return screen(text)[0]


def screen(text: str) -> tuple[str | None, frozenset[str] | None]:
    """:func:`skip_reason`, and the words of the text (for :func:`analyse`) when the check read all of it."""
    sample = text[:ENGLISH_SAMPLE_CHARS]
    if sample and not sample.isascii():
        non_ascii = len(_NON_ASCII.findall(sample))
        if non_ascii > MAX_NON_ASCII_SHARE * (len(sample) - sample.count(" ")):
            return "not_english", None
    if len(text.split(None, MIN_WORDS)) < MIN_WORDS:
        return "too_short", None
    words = lower_words(sample)
    need = MIN_FUNCTION_SHARE * len(words)
    hits, at = 0, 0
    while hits < need and at < len(words):  # counted in chunks: most texts reach the share early
        hits += sum(map(FUNCTION_WORDS.__contains__, words[at : at + _CHUNK]))
        at += _CHUNK
    if not words or hits < need:
        return "not_english", None
    return None, frozenset(words) if len(sample) == len(text) else None


def analyse(text: str, words: frozenset[str] | None = None) -> Doc:
    """Split ``text`` into an optional title and body sentences; ``words``: see :class:`Doc` (from :func:`screen`)."""
    stripped = text.strip()
    title = None
    head, sep, rest = stripped.partition("\n")
    if sep and _looks_like_title(head.strip(), rest):
        title = squash(head)
        stripped = rest
    sentences = split_sentences(stripped[:MAX_CHARS])[:MAX_SENTENCES]
    return Doc(title, sentences, [is_full_sentence(s) for s in sentences], " ".join(sentences), words)


def _looks_like_title(line: str, body: str) -> bool:
    n = len(line.split())
    if line.endswith(".") and not _titled_sentence(line, body):
        return False
    return (
        2 <= n <= TITLE_MAX_WORDS
        and len(line) <= TITLE_MAX_CHARS
        and line[0].isalnum()
        and not line[0].islower()
        and not _TITLE_BAD_END.search(line)
        and not _BULLET.match(line)
        and next(_sentence_ends(line), None) is None
        and line.rsplit(" ", 1)[-1].lower() not in _DANGLING  # "... the budget for the" is a wrapped line
        and not body.lstrip()[:1].islower()
        and len(body.split(None, MIN_BODY_WORDS)) >= MIN_BODY_WORDS
    )


def _titled_sentence(line: str, body: str) -> bool:
    """Whether a first line ending with a full stop is a title rather than the first sentence of the body.

    Scientific titles usually end with one ("Sleep restriction impairs memory consolidation in adolescents.").
    A body sentence reads differently: it has an auxiliary verb or a personal pronoun ("The council met on
    Tuesday.", "We measured ..."), or the next line refers back to it ("It ..."). Headlines in title case pass.
    """
    words = line.rstrip(".").split()
    opener = body.lstrip().split(" ", 1)[0].strip(",;:").lower()
    if opener in _BACK_REFERENCE:
        return False
    long_words = [w for w in words if len(w) > 3 and w[0].isalpha()]
    if long_words and all(w[0].isupper() for w in long_words):
        return True  # "Harbour City Win the Regional Cup After Late Goal."
    return not any(w.lower().strip("\"'()") in SENTENCE_WORDS for w in words)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order: line breaks end sentences unless the next line goes on in lower case."""
    out: list[str] = []
    for line in _join_wrapped(text.splitlines()):
        out.extend(_split_line(line))
    return out


def _join_wrapped(lines: list[str]) -> list[str]:
    # Hard-wrapped prose: a line that does not end a sentence, followed by one starting in lower case.
    out: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if out and not out[-1].endswith(_LINE_END_PUNCT) and _continues(out[-1], line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def _continues(previous: str, line: str) -> bool:
    """Whether ``line`` goes on with the unfinished ``previous`` line rather than starting something new."""
    return line[0].islower() or line[0] == "(" or previous.rsplit(" ", 1)[-1].lower() in _DANGLING


def _sentence_ends(line: str) -> Iterator[re.Match[str]]:
    """Candidate sentence ends whose next sentence opens with a capital (any script: "Émile") or a digit."""
    if line.isascii():  # then the pattern can test the opener itself
        return _SENT_END_ASCII.finditer(line)
    return _opened_ends(line)


def _opened_ends(line: str) -> Iterator[re.Match[str]]:
    for m in _SENT_END.finditer(line):
        # The match looks ahead to at most one opening quote or bracket, then a word character.
        opener = line[m.end()]
        if opener in _OPENING_MARKS:
            opener = line[m.end() + 1]
        if opener.isupper() or opener.isdigit():
            yield m


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    # Most lines have single spaces only: then a piece needs its ends stripped, not its whitespace squashed.
    tidy: Callable[[str], str] = str.strip if _single_spaced(line) else squash
    for m in _sentence_ends(line):
        end = m.start() + 1
        word = line[max(line.rfind(" ", start, end) + 1, start) : end].lstrip("\"'“‘([").lower()
        # "e.g.", "Fig.", initials ("J. Smith") and the like do not end a sentence; a unit after a number does
        # ("... at 400 K. The ...").
        if word in ABBREVIATIONS or (
            len(word) == 2 and word[0].isalpha() and not _after_number(line, start, end)
        ):
            continue
        piece = tidy(line[start : m.end()])
        if piece:
            pieces.append(piece)
        start = m.end()
    tail = squash(line[start:])
    if tail:
        pieces.append(tail)
    return pieces


def _single_spaced(line: str) -> bool:
    """Whether a stripped line (from ``splitlines``) has no whitespace but single spaces."""
    # In an ASCII line only a tab or \x1f can be whitespace other than a space: splitlines took the rest.
    if line.isascii():
        return "  " not in line and "\t" not in line and "\x1f" not in line
    return " ".join(line.split()) == line


def _after_number(line: str, start: int, end: int) -> bool:
    """Whether the word ending at ``end`` follows a number ("400 K.")."""
    before = line[start : line.rfind(" ", start, end)].rsplit(None, 1)
    return bool(before) and _NUMBER.fullmatch(before[-1]) is not None


def n_words(s: str) -> int:
    return s.count(" ") + 1 if s else 0


def is_full_sentence(s: str) -> bool:
    """A quotable statement: sensible length, starts like a sentence, ends with a period."""
    return (
        MIN_SENTENCE_WORDS <= n_words(s) <= MAX_SENTENCE_WORDS
        and s.endswith(".")
        and (s[0].isupper() or s[0].isdigit() or s[0] in "\"'“(")
    )


@functools.lru_cache(maxsize=4096)
def is_imperative(s: str) -> bool:
    """An instruction ("Remove the pan from the heat.", "Do not overfill it."): it has no truth value."""
    words = [w.strip("\"'“‘(,").lower() for w in s.split(" ", 5)]
    if words[0] in ("don't", "don’t", "never") or words[:2] == ["do", "not"]:
        return True
    i = 0
    while i < len(words) - 1 and words[i] in _IMPERATIVE_LEADS:
        i += 1
    return words[i] in IMPERATIVE_VERBS


@functools.lru_cache(maxsize=4096)
def is_personal(s: str) -> bool:
    """Whether the sentence speaks in the first or second person ("I", "we", "your"): it reads as the asker's own
    words when embedded in a question without quotes."""
    return not PERSONAL_WORDS.isdisjoint(lower_words(s))


def lower_first(s: str, body: str = "") -> str:
    """Lower-case the first letter when the first word is an ordinary word ("The study" -> "the study").

    Ordinary: in the common-word list, or used in lower case elsewhere in ``body`` (the text), which keeps
    names and acronyms ("Paris", "DNA") as they are.
    """
    first = s.split(" ", 1)[0]
    if not first[:1].isupper() or not (len(first) == 1 or first[1:].islower()):
        return s  # already lower case, or an acronym / mixed-case name
    if first.rstrip(",;:.") == "I" or first.startswith(("I'", "I’")):
        return s  # the pronoun, even where "i.e." or "i)" occur in the text
    low = first.lower().rstrip(",;:.")
    return s[0].lower() + s[1:] if low in COMMON_WORDS or _used_in_lower_case(low, body) else s


def _used_in_lower_case(word: str, body: str) -> bool:
    needle = " " + word
    i = body.find(needle)
    while i >= 0:
        j = i + len(needle)
        if j == len(body) or not body[j].isalpha():
            return True
        i = body.find(needle, j)
    return False


def upper_first(s: str) -> str:
    """Capitalize the first letter when the first word is plain lower case (leaves "mRNA" or "iPhone")."""
    first = s.split(" ", 1)[0]
    if first.islower() and first[:1].isalpha():
        return s[0].upper() + s[1:]
    return s


def bare(s: str) -> str:
    """A sentence without its final punctuation, for embedding in a question."""
    return s.rstrip(" .!?;:,")


def as_sentence(s: str) -> str:
    """A clause as a stand-alone sentence: capitalized, ending with a period."""
    s = upper_first(bare(s).strip())
    return s + "." if s else s


def lower_words(s: str) -> list[str]:
    """The words of ``s`` in lower case, split at whitespace, digits and ASCII punctuation (fast: bytes ops)."""
    data = s.lower().encode("utf-8", "surrogatepass").translate(_TO_SPACE)
    return data.decode("utf-8", "surrogatepass").split()
