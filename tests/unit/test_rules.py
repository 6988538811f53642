"""The model-free rules miner (SPEC §9): every task type, the options convention, determinism, skips, safety."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from instructpt.engines.rules import TASK_TYPES, mine
from instructpt.engines.rules.lexicon import CONNECTIVES
from instructpt.engines.rules.text import analyse, lower_first, skip_reason, split_sentences, upper_first
from instructpt.engines.rules.wording import RELATION_OPTIONS
from instructpt.records import QAPair
from instructpt.wire import (
    MARKERS,
    parse_generation,
    serialize_pairs,
)

FILLER = (
    "The volunteers were recruited from two university clinics and followed for six weeks. "
    "All measurements were taken in the morning by trained staff who did not know the group allocation. "
)

ABSTRACT = (
    "Sleep Deprivation and Memory Consolidation in Young Adults\n"
    "This study examines the effect of sleep loss on memory consolidation in healthy volunteers. "
    "Memory consolidation is defined as the process by which fragile new memories become stable over time. "
    "Participants who slept normally recalled more word pairs than those who stayed awake. "
    "Therefore, sleep appears to protect newly learned information from interference. "
    "The deprived group also reported higher fatigue scores. "
    "However, their reaction times did not differ from the rested group. "
    "Moreover, hippocampal activity measured with functional imaging was reduced after the night without sleep. "
    "In the second session, recall declined sharply due to the accumulated sleep debt of the volunteers. "
    "In other words, the missing night of sleep made new memories fragile. "
    "The term polysomnography refers to the overnight recording of brain waves, eye movements and muscle tone. "
    "Hippocampal replay, i.e., the reactivation of recent experiences during rest, was reduced in the deprived "
    "group. Polysomnography confirmed that hippocampal replay occurs mainly during slow-wave sleep in the "
    "volunteers."
)


def by_type(pairs: list[QAPair]) -> dict[str, list[QAPair]]:
    out: dict[str, list[QAPair]] = {}
    for p in pairs:
        out.setdefault(p.task_type or "", []).append(p)
    return out


def options_of(question: str) -> list[str] | None:
    """The options of a multiple-choice question in the synthesizer's convention, else None."""
    if "\nOptions:\n" not in question:
        return None
    head, block = question.rsplit("\nOptions:\n", 1)
    assert head.strip(), question
    lines = block.split("\n")
    assert all(line.startswith("- ") and line[2:].strip() for line in lines), question
    return [line[2:] for line in lines]


def listed_keywords(question: str) -> list[str]:
    """The words a keywords question lists (after ": " or "mentions ", up to a period or line end)."""
    m = re.search(r"(?:: |mentions )([^.\n]+)", question)
    assert m, question
    return m.group(1).replace(" and ", ", ").split(", ")


def assert_well_formed(pairs: list[QAPair], max_per_type: int = 2) -> None:
    counts = Counter(p.task_type for p in pairs)
    assert all(t in TASK_TYPES for t in counts) and max(counts.values(), default=0) <= max_per_type
    questions = [p.question.casefold() for p in pairs]
    assert len(questions) == len(set(questions))
    for p in pairs:
        assert p.question and p.answer and p.question == p.question.strip() and p.answer == p.answer.strip()
        assert not any(m in p.question or m in p.answer for m in MARKERS)
        options = options_of(p.question)
        if options is not None:
            assert len(options) == len(set(options)) >= 2 and p.answer in options


def nli_answer_fits(p: QAPair, label: str) -> bool:
    """Whether an NLI item's answer is the right one for a link of ``label``, given what its wording asks."""
    options = options_of(p.question)
    assert options is not None and p.answer in options, p
    if set(options) == set(RELATION_OPTIONS.values()):  # "how does B relate to A?"
        return p.answer == RELATION_OPTIONS[label]
    if len(options) == 2:  # "does B contrast with A?" or "does the text present B as drawn from A?"
        asks_contrast = "contrast" in p.question or "against" in p.question
        holds = label == ("contradiction" if asks_contrast else "entailment")
        return p.answer.lower() == ("yes" if holds else "no")
    # "does B follow from A, going by the text?": never asked of a contrast (both sentences are true)
    expected = {"entailment": {"yes"}, "neutral": {"maybe", "it is not possible to tell"}}
    return p.answer.lower() in expected.get(label, set())


# One crafted text per task type, and what its mined pair must look like.
CRAFTED = {
    "summarize": (
        ABSTRACT,
        lambda p: p.answer == "Sleep Deprivation and Memory Consolidation in Young Adults",
    ),
    "title_to_article": (
        ABSTRACT,
        lambda p: "Sleep Deprivation and Memory" in p.question and p.answer.startswith("This study examines"),
    ),
    "nli": (
        FILLER
        + "The river flooded the valley after days of rain. Moreover, the harvest in the region was lost.",
        lambda p: nli_answer_fits(p, "neutral"),
    ),
    "connective": (
        FILLER
        + "Prices rose sharply during the winter months. However, demand for heating oil stayed stable.",
        lambda p: options_of(p.question) is not None and p.answer == "However",
    ),
    "cause_effect": (
        FILLER + "The bridge was closed for repairs all summer. Consequently, traffic moved to the old road.",
        lambda p: "bridge was closed" in p.question and p.answer == "Traffic moved to the old road.",
    ),
    "effect_cause": (
        FILLER + "The launch of the satellite was postponed twice because of strong winds over the coast.",
        lambda p: (
            "launch of the satellite" in p.question and p.answer == "Because of strong winds over the coast."
        ),
    ),
    "paraphrase": (
        FILLER
        + "The committee rejected the proposal by a wide margin. In other words, almost nobody supported it.",
        lambda p: (
            "committee rejected" in p.question
            and p.answer in ("Almost nobody supported it.", "yes", "Yes", "no", "No")
        ),
    ),
    "definition": (
        FILLER
        + "Photosynthesis is defined as the conversion of light energy into chemical energy by plants.",
        lambda p: "photosynthesis" in p.question.lower() and p.answer.startswith("Photosynthesis is defined"),
    ),
    "topic": (
        FILLER + "This review focuses on the history of glassmaking in medieval Venice.",
        lambda p: p.answer == "This review focuses on the history of glassmaking in medieval Venice.",
    ),
    "keywords": (
        FILLER + "The chromatography column separated the enzymes before spectrometry. " * 2,
        lambda p: (
            len(listed_keywords(p.question)) >= 2 and all(w in p.answer for w in listed_keywords(p.question))
        ),
    ),
    "completion": (
        ABSTRACT,
        lambda p: p.answer.endswith(".") and p.answer in " ".join(analyse(ABSTRACT).sentences),
    ),
}


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_each_task_type_triggers_on_a_crafted_text(task_type: str) -> None:
    text, check = CRAFTED[task_type]
    result = mine(text, "doc-" + task_type)
    assert result.skip_reason is None
    assert_well_formed(result.pairs)
    mined = by_type(result.pairs).get(task_type)
    assert mined, f"no {task_type} pair in {result.pairs}"
    assert all(check(p) for p in mined), mined


def test_the_abstract_yields_every_task_type_with_at_most_two_each() -> None:
    result = mine(ABSTRACT, "abstract", max_per_type=2)
    assert set(by_type(result.pairs)) == set(TASK_TYPES)
    assert_well_formed(result.pairs, max_per_type=2)
    one = mine(ABSTRACT, "abstract", max_per_type=1).pairs
    assert set(Counter(p.task_type for p in one).values()) == {1}
    assert mine(ABSTRACT, "abstract", max_per_type=0).pairs == []


def test_keyword_answers_contain_every_listed_word() -> None:
    for i in range(20):
        for p in by_type(mine(ABSTRACT, f"kw-{i}").pairs)["keywords"]:
            words = listed_keywords(p.question)
            # As written, or in lower case where the sentence opens with it.
            assert 2 <= len(words) <= 4 and all(
                w in p.answer or p.answer.startswith(upper_first(w)) for w in words
            ), p


def test_nli_answers_follow_the_connective_and_what_the_wording_asks() -> None:
    kinds = Counter()
    for conn in ("However", "Moreover", "Thus"):
        text = FILLER + f"The old mill stopped working last year. {conn}, the village lost its main employer."
        for i in range(12):
            for p in by_type(mine(text, f"n{i}").pairs).get("nli", []):
                assert nli_answer_fits(p, CONNECTIVES[conn]), p
                kinds[len(options_of(p.question) or ())] += 1
    assert set(kinds) == {2, 3}  # yes/no contrast questions and the three-way ones (follows, relation)


def test_contrast_is_never_answered_as_a_falsehood() -> None:
    # Both sentences are stated by the passage: no wording asks whether the second is true, and a contrast is
    # answered "no" only where the question is whether one follows from the other.
    text = FILLER + "Sales of the new phone rose in spring. However, profits fell because of discounts."
    for i in range(30):
        for p in by_type(mine(text, f"c{i}").pairs).get("nli", []):
            assert "true" not in p.question.lower() and "imply" not in p.question.lower()
            # "no" only where the question is whether the text draws one from the other
            if p.answer.lower() == "no":
                assert "consequence" in p.question or "conclusion" in p.question


def test_connective_options_pit_the_connective_against_the_opposite_relation() -> None:
    for conn, other in (("However", "entailment"), ("Therefore", "contradiction")):
        # Two pairs: a result pair may go to a cause_effect item first, and a pair serves one task type.
        text = FILLER + (
            f"Prices rose sharply during the winter months. {conn}, demand for heating oil stayed stable. "
            f"The harbour froze for two weeks. {conn}, ships were diverted to the southern port."
        )
        for i in range(10):
            for p in by_type(mine(text, f"c{i}").pairs)["connective"]:
                options = options_of(p.question)
                assert options and options[0] != options[1] and set(options) >= {conn}
                assert [CONNECTIVES[o] for o in options if o != conn] == [other]
    # An addition link could take almost any connective: it is not asked about.
    text = (
        FILLER
        + "Prices rose sharply during the winter months. Moreover, demand for heating oil stayed stable."
    )
    assert all("connective" not in by_type(mine(text, f"m{i}").pairs) for i in range(10))


def test_paraphrase_detection_and_clarification() -> None:
    text = (
        FILLER
        + "The committee rejected the proposal by a wide margin. In other words, almost nobody supported it. "
        "Free cash flow, i.e., cash from operations minus spending, rose. "
        "The drug lowered blood pressure in most treated patients. "
        "Put differently, most treated patients had lower blood pressure on the drug."
    )
    answers = set()
    for i in range(30):
        for p in by_type(mine(text, f"p{i}", max_per_type=3).pairs)["paraphrase"]:
            answers.add(p.answer)
            if p.answer.lower() == "yes":
                assert "most treated patients had lower" in p.question.lower()
            elif p.answer.lower() == "no":
                assert "most treated patients had lower" not in p.question.lower()
            elif "Free cash flow" in p.question:
                assert p.answer == "Cash from operations minus spending."
            # "In other words" may introduce a consequence, not the same claim: never said to be one.
            if "almost nobody" in p.question.lower():
                assert p.answer.lower() == "no" and "committee" not in p.question
    assert {"Cash from operations minus spending.", "Almost nobody supported it."} <= answers
    assert answers & {"yes", "Yes"} and answers & {"no", "No"}


def test_deterministic_across_calls_and_processes() -> None:
    first = serialize_pairs(mine(ABSTRACT, "same-id", seed=7).pairs)
    assert serialize_pairs(mine(ABSTRACT, "same-id", seed=7).pairs) == first
    code = (
        "import sys; from tests.unit.test_rules import ABSTRACT; from instructpt.engines.rules import mine; "
        "from instructpt.wire import serialize_pairs; "
        "sys.stdout.write(serialize_pairs(mine(ABSTRACT, 'same-id', seed=7).pairs))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    assert out.stdout == first


def test_record_id_and_seed_change_the_choices() -> None:
    by_id = {serialize_pairs(mine(ABSTRACT, f"id-{i}").pairs) for i in range(8)}
    by_seed = {serialize_pairs(mine(ABSTRACT, "x", seed=s).pairs) for s in range(8)}
    assert len(by_id) > 1 and len(by_seed) > 1


@pytest.mark.parametrize(
    "text",
    [
        "Die Untersuchung zeigt, dass der Schlafentzug die Gedächtnisleistung bei jungen Erwachsenen deutlich "
        "verringert. In der zweiten Sitzung erinnerten sich die Teilnehmer an weniger Wortpaare als in der "
        "ersten. Außerdem war die Aktivität im Hippocampus nach der Nacht ohne Schlaf geringer, was auf eine "
        "gestörte Konsolidierung hinweist.",
        "Cette étude examine l'effet de la privation de sommeil sur la consolidation de la mémoire chez des "
        "volontaires en bonne santé. Les participants qui ont dormi normalement se sont souvenus de plus de "
        "paires de mots que ceux qui sont restés éveillés, ce qui suggère un effet protecteur du sommeil.",
        "这项研究考察了睡眠剥夺对健康志愿者记忆巩固的影响。正常睡眠的参与者比保持清醒的参与者记住了更多的词对。"
        * 4,
    ],
)
def test_non_english_texts_are_skipped(text: str) -> None:
    assert mine(text, "x") == type(mine(text, "x"))([], "not_english")


@pytest.mark.parametrize("text", ["", "   \n ", "Too short. Therefore, nothing to mine here.", "word " * 29])
def test_short_texts_are_skipped(text: str) -> None:
    result = mine(text, "x")
    assert result.pairs == [] and result.skip_reason == "too_short"


def test_markers_in_the_text_never_reach_the_pairs() -> None:
    poisoned = ABSTRACT.replace("fatigue scores", "fatigue <ANS> scores").replace(
        "muscle tone", "muscle </END>"
    )
    poisoned = (
        poisoned.replace("Therefore, sleep", "Therefore, <QUE> sleep") + " Thus, <s> and </s> and <CON>."
    )
    for i in range(10):
        result = mine(poisoned, f"p{i}")
        assert result.pairs
        assert_well_formed(result.pairs)


def test_pairs_survive_the_wire_format() -> None:
    pairs = mine(ABSTRACT, "wire").pairs
    parsed = parse_generation(serialize_pairs(pairs))
    assert parsed.clean and parsed.pairs == [QAPair(p.question, p.answer) for p in pairs]


def test_title_needs_a_short_unpunctuated_first_line_and_a_body() -> None:
    assert analyse(ABSTRACT).title == "Sleep Deprivation and Memory Consolidation in Young Adults"
    assert analyse(ABSTRACT.replace("Adults\n", "Adults of the\n")).title is None  # a wrapped line
    assert analyse(ABSTRACT.replace("Adults\nThis", "Adults\nthis")).title is None
    assert analyse("One Line Only").title is None
    assert "summarize" not in by_type(mine(FILLER * 3, "no-title").pairs)


def test_sentence_splitting_keeps_abbreviations_and_joins_wrapped_lines() -> None:
    text = (
        "Dr. Smith measured it, e.g. Fig. 2 shows this. The next one\nwraps here. New line starts.\nAnother.\n"
        "It was moved to the\nMuseum in\nMarch. A Heading\nBody text."
    )
    assert split_sentences(text) == [
        "Dr. Smith measured it, e.g. Fig. 2 shows this.",
        "The next one wraps here.",
        "New line starts.",
        "Another.",
        "It was moved to the Museum in March.",
        "A Heading",
        "Body text.",
    ]


def test_sentences_may_open_with_any_capital_or_a_digit() -> None:
    text = "The team moved to Paris. Émile led it. İstanbul came next. 3 sites remained. iPhone use grew."
    assert split_sentences(text) == [
        "The team moved to Paris.", "Émile led it.", "İstanbul came next.", "3 sites remained. iPhone use grew."
    ]  # fmt: skip


def test_keywords_are_quoted_as_written_after_length_changing_case() -> None:
    from instructpt.engines.rules.keywords import keyword_hits

    sentence = "İzmir chromatography separated the Enzymes before spectrometry."
    assert keyword_hits(sentence, ["spectrometry", "enzymes", "chromatography"]) == [
        "chromatography", "Enzymes", "spectrometry"
    ]  # fmt: skip


def test_adverbial_yet_and_thus_far_are_not_connectives() -> None:
    from instructpt.engines.rules.patterns import linked_pairs
    from instructpt.engines.rules.text import analyse

    base = "The first trial of the drug showed a clear benefit for patients."
    for second in (
        "Yet another trial confirmed the same benefit.",
        "Thus far the results have been encouraging.",
    ):
        assert linked_pairs(analyse(f"{base} {second}")) == []
    (link,) = linked_pairs(analyse(f"{base} Yet the second trial found no benefit at all."))
    assert (link.connective, link.label) == ("Yet", CONNECTIVES["Yet"])


def test_lower_first_keeps_names_and_acronyms() -> None:
    assert (
        lower_first("I measured it twice.", "the value, i.e. the mean, and i) the rest")
        == "I measured it twice."
    )
    assert lower_first("The study ended.") == "the study ended."
    assert lower_first("DNA was extracted.") == "DNA was extracted."
    assert lower_first("Venice grew rich.") == "Venice grew rich."
    assert lower_first("Per Olsen founded it.") == "Per Olsen founded it."  # "per" is no everyday opener
    assert lower_first("Unlike banks, they are mutual.") == "unlike banks, they are mutual."
    assert lower_first("Glassmaking grew.", "Venetian glassmaking, old.") == "glassmaking grew."
    assert skip_reason(ABSTRACT) is None


def test_cue_words_only_spare_searches_never_matches() -> None:
    """The patterns look for a cue only when the text has one of its words (Doc.words): on texts with every cue,
    in every case and position, they find exactly what they find searching for every cue."""
    from instructpt.engines.rules import patterns
    from instructpt.engines.rules.text import screen

    cued = [
        "Because of the drought, the harvest failed in most valleys.",
        "BECAUSE OF THE DROUGHT, THE HARVEST FAILED IN MOST VALLEYS.",
        "However, due to heavy rain, the match was postponed twice.",
        "The ferry service was cancelled owing to the storm on Monday.",
        "This was likely because the pumps had failed overnight.",
        "As a result of the merger, the firm closed two offices.",
        "On account of its cost, the plan was dropped by the board.",
        "Thanks to the grant, the lab bought a new microscope.",
        "Homeostasis is defined as the stable state of an organism.",
        "Resilience is understood as the capacity to recover quickly.",
        "Sepsis is characterised as a dysregulated response to infection.",
        "The term anergy refers to a lack of reaction by the immune system.",
        "The word drift means a slow change in allele frequency.",
        "We define churn as the share of customers who leave in a year.",
        "A loss of appetite is also known as anorexia in clinical notes.",
        "This period is termed the lag phase by microbiologists.",
        "The review is mainly concerned with the cost of urban transport.",
        "The course is focused on the history of Roman roads.",
        "The essay is devoted to the poetry of the late period.",
        "The talk was centred on the ethics of data collection.",
        "The book is about the rise of the textile industry.",
        "The dose was halved (i.e. 5 mg per day) for older patients.",
        "The key enzyme, namely lactase, was absent in the samples.",
        "The outcome, that is the rate of relapse, fell by a third.",
        "In other words, the treatment worked for most of the patients.",
    ]
    texts = [" ".join(cued), "\n".join(cued), " ".join(reversed(cued)), *_texts_with_every_cue()]
    finders = (patterns.causes, patterns.definitions, patterns.topics, patterns.paraphrases)
    found: Counter[str] = Counter()
    for text in texts:
        reason, words = screen(text)
        assert reason is None and words is not None
        with_words, without = analyse(text, words), analyse(text)
        assert without.words is None
        for finder in finders:
            result = finder(with_words)
            assert result == finder(without), (finder.__name__, text[:60])
            found[finder.__name__] += bool(result)
    assert all(found[f.__name__] >= 3 for f in finders), found


def _texts_with_every_cue() -> list[str]:
    """The annotated set's texts (every genre, every cue the patterns know) and the abstract above."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    texts = [ABSTRACT]
    for path in sorted((root / "bench" / "rules_quality").glob("set-*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return texts


def test_shortcuts_agree_with_the_tests_they_spare() -> None:
    """Capitals looked for in the runs of capitals only, sentence ends of an ASCII line found by one pattern, and no
    first-person check in a text without such words: each gives what the full test gives."""
    from instructpt.engines.rules.facts import Facts
    from instructpt.engines.rules.keywords import _capitals
    from instructpt.engines.rules.text import (
        _SENT_END_ASCII,
        _opened_ends,
        is_personal,
        lower_words,
        screen,
    )

    odd = (
        "The DNAse assay (ELISA) used IL-6 and TNF-alpha; HIV-positive donors gave 3 mL. U.S. data. "
        'He said "Yes." Then (A) was chosen. "Stop!" she cried. 12 cases. e.g. Smith. ABCdef xyzABC.'
    )
    dotless = (  # "ı" capitalised by upper_first reads as "I"
        "The river flooded the valley after the long spring rains, and the farmers moved their cattle to the "
        "hills. Because of the storm, ı stayed home for the whole week. The council met on Tuesday to discuss "
        "the repairs of the old stone bridge over the river."
    )
    texts = [*_texts_with_every_cue(), odd, odd.lower(), odd.upper(), odd + " Émile naïve CAFÉ", dotless]
    impersonal = 0
    for text in texts:
        words = set(lower_words(text)) | {"dna", "dnase", "abc", "xyz", "elisa", "alpha", "zzz", "ase"}
        caps = _capitals(text)
        for w in words:
            if w.isalpha() and len(w) >= 3:
                assert (w.upper() in text) == (w.upper() in caps), (w, text[:40])
        for line in text.splitlines():
            if line.isascii():
                spans = [m.span() for m in _SENT_END_ASCII.finditer(line)]
                assert spans == [m.span() for m in _opened_ends(line)], line[:60]
        reason, vocabulary = screen(text)
        if reason is None:
            facts = Facts(analyse(text, vocabulary), None)  # type: ignore[arg-type]  # no draws here
            embeddable = _embeddable(facts)
            assert facts.personal or not any(is_personal(s) for s in embeddable), text[:60]
            impersonal += not facts.personal
            if text is dotless:
                assert "I stayed home for the whole week." in embeddable and facts.personal
    assert impersonal >= 10


def _embeddable(facts) -> list[str]:  # type: ignore[no-untyped-def]
    """Every sentence and clause of a text that an item may embed in a question."""
    from instructpt.engines.rules.patterns import strip_opener

    out = [*facts.doc.sentences, *map(strip_opener, facts.doc.sentences)]
    out += [x for link in facts.linked for x in (link.first, link.second)]
    out += [x for cause in facts.causes for x in (cause.effect, cause.cause)]
    restated, inline = facts.paraphrases
    out += [x for r in restated for x in (r.first, r.second)] + [x for pair in inline for x in pair]
    return out


def test_a_line_is_single_spaced_exactly_when_squashing_leaves_it_as_it_is() -> None:
    from instructpt.engines.rules.text import _single_spaced

    line_breaks = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # splitlines() took these out of every line
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) not in line_breaks]
    assert {" ", "\t", "\x1f", "\xa0", "\u3000"} <= set(spaces)
    for w in spaces:
        for line in (f"a{w}b", f"a {w}b", f"a{w}{w}b", f"é{w}b", "a b", "é b"):
            assert _single_spaced(line) == (" ".join(line.split()) == line), repr(line)
