"""Regular-expression extractors: find connective-linked sentence pairs, causes, paraphrases, definitions,
topics and domain keywords in a list of sentences.

Each extractor returns plain tuples in text order; choosing among them and wording the questions is the
miner's job (see ``miner.py``). Patterns are compiled once at import, and most sentences are rejected by a
cheap substring test before any pattern runs.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import NamedTuple

from instructpt.engines.rules.lexicon import (
    CONNECTIVES,
    NO_COMMA_OK,
    NOT_A_CONNECTIVE,
    NOT_TERMS,
    PARAPHRASE_INLINE,
    PARAPHRASE_INLINE_COMMA,
    PARAPHRASE_OPENERS,
    SUBORDINATORS,
)
from instructpt.engines.rules.text import (
    Doc,
    as_sentence,
    bare,
    is_full_sentence,
    n_words,
    upper_first,
)


class Linked(NamedTuple):
    """Two sentences joined by a connective: ``second`` has the connective removed.

    ``at`` is the index of the sentence that holds ``second``: the pair is sentences ``at - 1`` and ``at``, or two
    clauses of sentence ``at`` when ``inline`` ("...; however, ...").
    """

    first: str
    second: str
    connective: str
    label: str  # entailment | contradiction | neutral
    at: int = 0
    inline: bool = False

    @property
    def key(self) -> object:
        """Which sentences the pair uses, to use a pair for one task type only."""
        return ("in", self.at) if self.inline else self.at


class Cause(NamedTuple):
    effect: str  # a clause stated as a sentence
    cause: str  # the reason, as a sentence ("Due to the high cost.")
    key: object = (
        None  # the sentences used: ``i`` for sentences i - 1 and i ("This is because ..."), else ("in", i)
    )


class Restated(NamedTuple):
    """A sentence and the next one restating it ("In other words, ..."); ``key`` as in :class:`Linked`."""

    first: str
    second: str
    key: int


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
# Cue -> the words one of which a sentence the patterns match has where the cue occurs (see _cued).
_CAUSE_SNIFF = {
    "ecause": ("because",),
    "ue to": ("due",),
    "wing to": ("owing",),
    "result of": ("result",),
    "ccount of": ("account",),
    "hanks to": ("thanks",),
}
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
# A cause ends where a new clause begins (", and a follow-up visit is recommended", ", which ...").
_CLAUSE_BREAK = re.compile(
    r", (?:and|but|so|which|while|whereas|although|though|yet|who|where|when|since|because|thus|hence)\b.*$"
)
# Without a comma, a prepositional cue ("due to", "because of") links a cause to a clause only after a verb form
# ("was postponed due to rain"); after a noun it modifies the noun ("damage due to cadmium").
_PERSONAL_PRONOUNS = frozenset(["it", "its", "they", "them", "their", "he", "she", "him", "his", "her"])
_PRONOUNS = frozenset(["it", "they", "them", "he", "she", "this", "these", "those", "its", "their"])
_PREPOSITIONS = frozenset(
    ["at", "in", "on", "for", "during", "across", "over", "after", "within", "throughout"]
)
_ADVERBS = frozenset(["twice", "again", "once", "only", "also", "still", "even", "again", "later", "soon"])
_VERB_BEFORE = re.compile(r"(?:ed|en|rose|fell|grew|lost|left|shut|froze|broke|stopped|closed)$")

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
_DEF_CUES = {
    " defined as ": ("defined",),
    " understood as ": ("understood",),
    " characteri": ("characterized", "characterised"),
    " refer": ("refer", "refers", "referred"),
    " means ": ("means",),
    " denotes ": ("denotes",),
    "We define ": ("define",),
    " called ": ("called",),
    " known as ": ("known",),
    " termed ": ("termed",),
    " named ": ("named",),
}
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
_TOPIC_VERBS = (
    "focuses on|focused on|deals with|dealt with|explores|explored|examines|examined|investigates|"
    "investigated|discusses|discussed|addresses|addressed|describes|described|reviews|reviewed|evaluates|"
    "evaluated|assesses|assessed|presents|introduces|considers|covers|looks at|is concerned with"
)
_TOPIC_VERB_FIRST = frozenset(v.split(" ")[0] for v in _TOPIC_VERBS.split("|"))
_TOPIC_VERB = re.compile(
    rf"^(?P<subj>(?:This|The|Our|These|My|Their|His|Her)(?: [\w'-]+){{0,4}}? (?:{_DOC_NOUNS})s?) "
    rf"(?:{_TOPIC_VERBS}) "
    r"(?P<topic>[^;]{3,}?)\.$"
)
# "about" meaning "approximately" or "about to": not a topic.
_NOT_TOPIC = re.compile(
    r"^(?:\d|[$€£~%]|to |the same|as |half|twice|one |two |three |four |five |ten |a (?:third|quarter|half|"
    r"fifth|tenth|dozen|hundred|thousand|million|billion)\b|\w+ (?:times|percent|per cent)\b)",
    re.IGNORECASE,
)
_MAX_PHRASE_WORDS = 12
_TOPIC_SNIFF = {
    " about ": ("about",),
    "concerned with": ("concerned",),
    "focused on": ("focused",),
    "devoted to": ("devoted",),
    "ntred on": ("centred",),
    "ntered on": ("centered",),
}
_PARA_SNIFF = {"i.e.": ("i",), "namely": ("namely",), "that is": ("that",), "other words": ("other",)}


def _cued(doc: Doc, cues: Mapping[str, tuple[str, ...]]) -> list[int]:
    """The indices of the sentences that contain one of ``cues``, in order: a cheap test that spares most
    sentences the full patterns (one search of the text per cue, not one per sentence and cue).

    A cue is looked for only when the text has one of its words (``doc.words``): every pattern match has that word
    between spaces (or opening the sentence) where the cue occurs, and most texts lack most cue words.
    """
    body, starts, sentences, words = doc.body, doc.starts, doc.sentences, doc.words
    found: set[int] = set()
    for cue, needs in cues.items():
        if words is not None and words.isdisjoint(needs):
            continue
        i = body.find(cue)
        while i >= 0:
            k = bisect.bisect_right(starts, i) - 1
            if i + len(cue) <= starts[k] + len(sentences[k]):  # inside the sentence, not across the join
                found.add(k)
            i = body.find(cue, i + 1)
    return sorted(found)


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
                out.append(Linked(first, second, m["conn"], CONNECTIVES[m["conn"]], i))
            continue
        if "; " in s:
            m = _INLINE_CONN.search(s)
            if m:
                first, second = as_sentence(s[: m.start()]), upper_first(m["rest"])
                if is_full_sentence(first) and is_full_sentence(second):
                    conn = _LOWER_CONNECTIVES[m["conn"]]
                    out.append(Linked(first, second, conn, CONNECTIVES[conn], i, inline=True))
    return out


def strip_opener(sentence: str) -> str:
    """A sentence without its opening connective ("However, X rose." -> "X rose.", "In other words, ...")."""
    m = _OPENER.match(sentence)
    if m and (m["comma"] or m["conn"] in NO_COMMA_OK):
        return upper_first(m["rest"])
    m = _PARA_OPENER.match(sentence)
    if m:
        return upper_first(m["rest"])
    return sentence


def causes(doc: Doc) -> list[Cause]:
    """Effects with their stated causes ("... due to X", "Because of X, ...", "This is because X")."""
    out: list[Cause] = []
    for i in _cued(doc, _CAUSE_SNIFF):
        s = doc.sentences[i]
        if not doc.full[i]:
            continue
        clause = bare(s)
        m = _CAUSE_BACKREF.match(clause)
        if m:
            if i and doc.full[i - 1]:
                out.append(
                    Cause(strip_opener(doc.sentences[i - 1]), as_sentence(f"{m['conn']} {m['cause']}"), i)
                )
            continue
        clause = bare(strip_opener(s))
        m = _CAUSE_LEADING.match(clause) or _CAUSE_INNER.match(clause)
        if m is None:
            continue
        effect, cause = m["effect"].rstrip(", "), _CLAUSE_BREAK.sub("", m["cause"])
        if m.re is _CAUSE_INNER and not _inner_boundary(clause, m):
            continue
        referent = cause.split(" ", 1)[0].lower() in _PRONOUNS | {"such", "that"}  # "due to these defects"
        if n_words(effect) >= 3 and n_words(cause) >= 2 and _statement(effect) and not referent:
            out.append(Cause(as_sentence(effect), as_sentence(f"{m['conn'].lower()} {cause}"), ("in", i)))
    return out


def _inner_boundary(clause: str, m: re.Match[str]) -> bool:
    """Whether a cue inside a sentence joins two clauses: after a comma, the conjunction "because", or a verb."""
    if clause[: m.start("conn")].endswith(", ") or m["conn"] == "because":
        return True
    words = m["effect"].rstrip(", ").split(" ")
    # "was cancelled at both airports due to ...": look past a prepositional phrase of up to four words.
    for j in range(len(words) - 1, max(0, len(words) - 5), -1):
        if words[j] in _PREPOSITIONS:
            words = words[:j]
            break
    while len(words) > 1 and (words[-1].endswith("ly") or words[-1] in _ADVERBS):
        words.pop()  # "was postponed twice because of ..."
    return _VERB_BEFORE.search(words[-1]) is not None


def _statement(clause: str) -> bool:
    """A clause that can stand as a sentence: no dangling copula, no subordinate opener ("Even though ..."), no
    pronoun whose referent the question would lose ("it can extract water ...", "upgrading them ...")."""
    words = clause.lower().split(" ")
    return (
        words[0] not in SUBORDINATORS
        and words[0] not in _PRONOUNS
        and _PERSONAL_PRONOUNS.isdisjoint(words)
        and not _COPULA_END.search(clause)
    )


def paraphrases(doc: Doc) -> tuple[list[Restated], list[tuple[str, str]]]:
    """(restated sentence pairs, inline clarifications ``(before, after)``) in text order."""
    restated: list[Restated] = []
    inline: list[tuple[str, str]] = []
    inline_cues = set(_cued(doc, _PARA_SNIFF))
    for i, s in enumerate(doc.sentences):
        m = _PARA_OPENER.match(s)
        if m:
            second = upper_first(m["rest"])
            if i and doc.full[i - 1] and is_full_sentence(second):
                restated.append(Restated(strip_opener(doc.sentences[i - 1]), second, i))
            continue
        if i in inline_cues and doc.full[i]:
            m = _PARA_INLINE.match(s)
            if m and n_words(m["before"]) >= 2 and n_words(m["after"]) >= 2:
                inline.append((strip_opener(m["before"]), as_sentence(m["after"])))
    return restated, inline


def definitions(doc: Doc) -> list[Definition]:
    """Terms defined in a sentence, with that sentence."""
    out: list[Definition] = []
    for i in _cued(doc, _DEF_CUES):
        s = doc.sentences[i]
        if not doc.full[i]:
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


_TOPIC_OPENERS = ("This ", "The ", "Our ", "These ", "My ", "Their ", "His ", "Her ")
_DOC_NOUN_SET = frozenset(_DOC_NOUNS.split("|"))


def _may_name_a_document(s: str) -> bool:
    """What _TOPIC_VERB needs, cheaply: a determiner first, and a document noun ("study", "reviews") soon after
    followed by one of the verbs ("This review focuses on ...")."""
    if not s.startswith(_TOPIC_OPENERS):
        return False
    words = s.split(" ", 8)
    if _TOPIC_VERB_FIRST.isdisjoint(words[2:8]):
        return False
    for j in range(1, min(7, len(words) - 1)):
        w = words[j]
        if (w in _DOC_NOUN_SET or w[:-1] in _DOC_NOUN_SET) and words[j + 1] in _TOPIC_VERB_FIRST:
            return True
    return False


def topics(doc: Doc) -> list[Topic]:
    """Statements of what something is about ("This review focuses on X", "The book is about Y")."""
    out: list[Topic] = []
    about_cues = set(_cued(doc, _TOPIC_SNIFF))
    for i, (s, full) in enumerate(zip(doc.sentences, doc.full)):
        if not full:
            continue
        m = (_TOPIC_VERB.match(s) if _may_name_a_document(s) else None) or (
            _TOPIC_ABOUT.match(s) if i in about_cues else None
        )
        if m is None or n_words(m["topic"]) > _MAX_PHRASE_WORDS or _NOT_TOPIC.match(m["topic"]):
            continue
        out.append(Topic(m["subj"], m["topic"], s))
    return out
