"""Regular-expression extractors: find connective-linked sentence pairs, causes, paraphrases, definitions,
topics and domain keywords in a list of sentences.

Each extractor returns plain tuples in text order; choosing among them and wording the questions is the
miner's job (see ``miner.py``). Patterns are compiled once at import, and most sentences are rejected by a
cheap substring test before any pattern runs.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from instructpt.engines.rules.lexicon import (
    COMMON_WORDS,
    CONNECTIVES,
    NO_COMMA_OK,
    NOT_A_CONNECTIVE,
    NOT_TERMS,
    PARAPHRASE_INLINE,
    PARAPHRASE_INLINE_COMMA,
    PARAPHRASE_OPENERS,
)
from instructpt.engines.rules.text import (
    Doc,
    as_sentence,
    bare,
    is_full_sentence,
    lower_words,
    n_words,
    upper_first,
)


class Linked(NamedTuple):
    """Two sentences joined by a connective: ``second`` has the connective removed."""

    first: str
    second: str
    connective: str
    label: str  # entailment | contradiction | neutral


class Cause(NamedTuple):
    effect: str  # a clause stated as a sentence
    cause: str  # the reason, as a sentence ("Due to the high cost.")


class Definition(NamedTuple):
    term: str
    sentence: str


class Topic(NamedTuple):
    subject: str  # "This study"
    topic: str  # "the effect of sleep on memory"
    sentence: str


def _alternation(phrases: tuple[str, ...] | list[str]) -> str:
    # Longest first, so "On the other hand" wins over a shorter phrase sharing its start.
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


_OPENER = re.compile(rf"^(?P<conn>{_alternation(list(CONNECTIVES))})(?P<comma>,?) (?P<rest>\S.*)$")
_INLINE_CONN = re.compile(rf"; (?P<conn>{_alternation([c.lower() for c in CONNECTIVES])}), (?P<rest>\S.*)$")
_LOWER_CONNECTIVES = {c.lower(): c for c in CONNECTIVES}

_CAUSE_CUES = ("because of", "because", "due to", "owing to", "as a result of", "on account of", "thanks to")
_CAUSE_SNIFF = ("ecause", "ue to", "wing to", "result of", "ccount of", "hanks to")
_CAUSE_INNER = re.compile(
    rf"^(?P<effect>[^;]{{12,}}?),? (?P<conn>{_alternation(_CAUSE_CUES)}) (?P<cause>[^;]{{3,}})$"
)
_CAUSE_LEADING = re.compile(
    rf"^(?P<conn>{_alternation([c.capitalize() for c in _CAUSE_CUES])}) (?P<cause>[^,;]{{3,}}?), (?P<effect>.{{12,}})$"
)
_CAUSE_BACKREF = re.compile(
    r"^(?:This|That|It|These|Those) (?:is|was|are|were|may be|might be|could be|is likely|was likely|"
    r"seems to be|appears to be)(?: \w+ly)? (?P<conn>because of|because|due to|owing to) (?P<cause>.{3,})$"
)
# An effect clause ending in a copula ("The decline was" due to ...) is not a statement on its own.
_COPULA_END = re.compile(r"\b(?:is|are|was|were|be|been|being|mainly|largely|partly|mostly|probably|likely)$")

_PARA_OPENER = re.compile(rf"^(?P<conn>{_alternation(PARAPHRASE_OPENERS)}), (?P<rest>\S.*)$")
_PARA_INLINE = re.compile(
    rf"^(?P<before>[^;]{{8,}}?)(?:, | \()(?:(?:{_alternation(PARAPHRASE_INLINE)}),?|"
    rf"(?:{_alternation(PARAPHRASE_INLINE_COMMA)}),) (?P<after>[^();,]{{3,}}?)(?:\)|,|\.?$)"
)

_DEF_PATTERNS = (
    re.compile(
        r"^(?P<term>.{2,80}?) (?:is|are) (?:often |commonly |usually |generally |formally |best )?"
        r"(?:defined|understood|characterized|characterised) as (?P<def>.{3,})$"
    ),
    re.compile(r"^(?P<term>.{2,80}?) (?:refers|refer) to (?P<def>.{3,})$"),
    re.compile(r"^(?:The (?:term|word|phrase|concept) )(?P<term>.{2,60}?) (?:means|denotes) (?P<def>.{3,})$"),
    re.compile(r"^We define (?P<term>.{2,60}?) as (?P<def>.{3,})$"),
    re.compile(
        r"^(?P<def>.{8,}?) (?:is|are) (?:also |commonly |often |usually |sometimes )?"
        r"(?:called|known as|termed|referred to as|named) (?P<term>[^,;]{2,60}?)$"
    ),
)
_DEF_CUES = (
    " defined as ",
    " understood as ",
    " characteri",
    " refer",
    " means ",
    " denotes ",
    "We define ",
    " called ",
    " known as ",
    " termed ",
    " named ",
)
_TERM_PREFIX = re.compile(r"^(?:the (?:term|word|phrase|concept) |a |an |the )", re.IGNORECASE)

_DOC_NOUNS = (
    "study|paper|article|review|report|chapter|book|essay|thesis|work|analysis|survey|section|text|post|"
    "piece|trial|project|research|talk|lecture|course|document|guide|story|novel|film|episode|program|"
    "programme|investigation|experiment|series|letter|editorial|commentary|tutorial|overview"
)
_TOPIC_ABOUT = re.compile(
    r"^(?P<subj>[A-Z][\w'-]*(?: [\w'-]+){0,7}?) (?:is|are|was|were) (?:mainly |mostly |primarily |largely |"
    r"chiefly |all |really )?(?:about|concerned with|focused on|devoted to|centred on|centered on) "
    r"(?P<topic>[^;]{3,}?)\.$"
)
_TOPIC_VERB = re.compile(
    rf"^(?P<subj>(?:This|The|Our|These|My|Their|His|Her)(?: [\w'-]+){{0,4}}? (?:{_DOC_NOUNS})s?) "
    r"(?:focuses on|focused on|deals with|dealt with|explores|explored|examines|examined|investigates|"
    r"investigated|discusses|discussed|addresses|addressed|describes|described|reviews|reviewed|evaluates|"
    r"evaluated|assesses|assessed|presents|introduces|considers|covers|looks at|is concerned with) "
    r"(?P<topic>[^;]{3,}?)\.$"
)
# "about" meaning "approximately" or "about to": not a topic.
_NOT_TOPIC = re.compile(
    r"^(?:\d|[$€£~%]|to |the same|as |half|twice|one |two |three |four |five |ten |a (?:third|quarter|half|"
    r"fifth|tenth|dozen|hundred|thousand|million|billion)\b|\w+ (?:times|percent|per cent)\b)",
    re.IGNORECASE,
)
_MAX_PHRASE_WORDS = 12
_TOPIC_SNIFF = (" about ", "concerned with", "focused on", "devoted to", "ntred on", "ntered on")
_PARA_SNIFF = ("i.e.", "namely", "that is", "other words")


def _mentions(text: str, cues: tuple[str, ...]) -> bool:
    """A cheap test that spares most sentences the full patterns."""
    return any(map(text.__contains__, cues))


def linked_pairs(doc: Doc) -> list[Linked]:
    """Sentence pairs joined by a connective, at a sentence start or after a semicolon."""
    out: list[Linked] = []
    sentences = doc.sentences
    for i, s in enumerate(sentences):
        m = _OPENER.match(s)
        if m and not m["comma"] and m["rest"].split(" ", 1)[0].lower() in NOT_A_CONNECTIVE.get(m["conn"], ()):
            m = None  # "Yet another trial ...", "Thus far ...": an adverb, not a link to the sentence before
        if m and i and (m["comma"] or m["conn"] in NO_COMMA_OK):
            first, second = strip_opener(sentences[i - 1]), upper_first(m["rest"])
            if is_full_sentence(first) and is_full_sentence(second):
                out.append(Linked(first, second, m["conn"], CONNECTIVES[m["conn"]]))
            continue
        if "; " in s:
            m = _INLINE_CONN.search(s)
            if m:
                first, second = as_sentence(s[: m.start()]), upper_first(m["rest"])
                if is_full_sentence(first) and is_full_sentence(second):
                    conn = _LOWER_CONNECTIVES[m["conn"]]
                    out.append(Linked(first, second, conn, CONNECTIVES[conn]))
    return out


def strip_opener(sentence: str) -> str:
    """A sentence without its opening connective ("However, X rose." -> "X rose.")."""
    m = _OPENER.match(sentence)
    if m and (m["comma"] or m["conn"] in NO_COMMA_OK):
        return upper_first(m["rest"])
    return sentence


def causes(doc: Doc) -> list[Cause]:
    """Effects with their stated causes ("... due to X", "Because of X, ...", "This is because X")."""
    out: list[Cause] = []
    if not _mentions(doc.body, _CAUSE_SNIFF):
        return out
    for i, s in enumerate(doc.sentences):
        if not doc.full[i] or not _mentions(s, _CAUSE_SNIFF):
            continue
        clause = bare(s)
        m = _CAUSE_BACKREF.match(clause)
        if m:
            if i and doc.full[i - 1]:
                out.append(
                    Cause(strip_opener(doc.sentences[i - 1]), as_sentence(f"{m['conn']} {m['cause']}"))
                )
            continue
        m = _CAUSE_LEADING.match(clause) or _CAUSE_INNER.match(clause)
        if m is None:
            continue
        effect = m["effect"].rstrip(", ")
        if n_words(effect) >= 3 and n_words(m["cause"]) >= 2 and not _COPULA_END.search(effect):
            out.append(Cause(as_sentence(effect), as_sentence(f"{m['conn'].lower()} {m['cause']}")))
    return out


def paraphrases(doc: Doc) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(restated sentence pairs, inline clarifications ``(before, after)``) in text order."""
    restated: list[tuple[str, str]] = []
    inline: list[tuple[str, str]] = []
    inline_cues = _mentions(doc.body, _PARA_SNIFF)
    for i, s in enumerate(doc.sentences):
        m = _PARA_OPENER.match(s)
        if m:
            second = upper_first(m["rest"])
            if i and doc.full[i - 1] and is_full_sentence(second):
                restated.append((strip_opener(doc.sentences[i - 1]), second))
            continue
        if inline_cues and doc.full[i] and _mentions(s, _PARA_SNIFF):
            m = _PARA_INLINE.match(s)
            if m and n_words(m["before"]) >= 2 and n_words(m["after"]) >= 2:
                inline.append((m["before"], as_sentence(m["after"])))
    return restated, inline


def definitions(doc: Doc) -> list[Definition]:
    """Terms defined in a sentence, with that sentence."""
    out: list[Definition] = []
    if not _mentions(doc.body, _DEF_CUES):
        return out
    for s, full in zip(doc.sentences, doc.full):
        if not full or not _mentions(s, _DEF_CUES):
            continue
        clause = bare(s)
        for pattern in _DEF_PATTERNS:
            m = pattern.match(clause)
            if m:
                term = _clean_term(m["term"])
                if term:
                    out.append(Definition(term, s))
                break
    return out


def _clean_term(term: str) -> str:
    term = term.rsplit(", ", 1)[-1].strip(" \"'“”‘’()")
    term = _TERM_PREFIX.sub("", term).strip(" \"'“”‘’")
    if not term or not 1 <= n_words(term) <= 5 or not term[0].isalnum():
        return ""
    words = term.lower().split()
    if words[0] in NOT_TERMS or all(w in NOT_TERMS for w in words):
        return ""
    return term


def topics(doc: Doc) -> list[Topic]:
    """Statements of what something is about ("This review focuses on X", "The book is about Y")."""
    out: list[Topic] = []
    about_cues = _mentions(doc.body, _TOPIC_SNIFF)
    for s, full in zip(doc.sentences, doc.full):
        if not full:
            continue
        m = _TOPIC_VERB.match(s) or (
            _TOPIC_ABOUT.match(s) if about_cues and _mentions(s, _TOPIC_SNIFF) else None
        )
        if m is None or n_words(m["topic"]) > _MAX_PHRASE_WORDS or _NOT_TOPIC.match(m["topic"]):
            continue
        out.append(Topic(m["subj"], m["topic"], s))
    return out


def keywords(doc: Doc, limit: int = 10) -> list[str]:
    """The text's rare words (lower case): long words and acronyms outside the common list, frequent first."""
    body = doc.body
    counts = Counter(lower_words(body))
    rare = [
        w
        for w in counts  # distinct words only, in first-seen order
        if w not in COMMON_WORDS
        and (len(w) >= 6 or (len(w) >= 3 and w.upper() in body))  # long, or an acronym ("DNA")
        and w.replace("-", "").isalpha()
    ]
    # sorted() is stable: ties go to the word seen first.
    return sorted(rare, key=lambda k: (-counts[k], -len(k)))[:limit]


def keyword_hits(sentence: str, rare: list[str]) -> list[str]:
    """The rare words that occur in ``sentence`` as whole words, as written there, in order of appearance."""
    low = sentence.lower()
    if len(low) != len(
        sentence
    ):  # lower-casing changed the length ("İ" -> "i̇"): positions would not map back
        return _keyword_hits_regex(sentence, rare)
    found: list[tuple[int, str]] = []
    for w in [w for w in rare if w in low]:  # substring test first: most words are absent
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not low[i - 1].isalpha()) and (j == len(low) or not low[j].isalpha()):
                found.append((i, sentence[i:j]))
                break
            i = low.find(w, j)
    return [w for _, w in sorted(found)]


def _keyword_hits_regex(sentence: str, rare: list[str]) -> list[str]:
    found: list[tuple[int, str]] = []
    for w in rare:
        m = re.search(rf"(?<![^\W\d_]){re.escape(w)}(?![^\W\d_])", sentence, re.IGNORECASE)
        if m:
            found.append((m.start(), m.group()))
    return [w for _, w in sorted(found)]
