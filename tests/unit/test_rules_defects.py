"""The rules miner's known failure modes on real text, one test each (found by annotating its output by hand)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from instructpt.engines.rules import mine
from instructpt.engines.rules.keywords import keyword_hits, keywords
from instructpt.engines.rules.patterns import causes, linked_pairs
from instructpt.engines.rules.text import analyse, is_imperative, split_sentences
from tests.unit.test_rules import FILLER, by_type, options_of

BODY = (
    "Chronic infection is characterised by persistent viral replication and weak antiviral immunity in most of "
    "the patients we studied. Patients with high IL-6 levels showed a marked expansion of exhausted T cells. "
    "Blocking IL-6 signalling restored interferon production by the same cells."
)


@pytest.mark.parametrize(
    "title",
    [
        "Interleukin-6 signalling in T cell exhaustion during chronic hepatitis B infection.",
        "Sleep restriction impairs emotional memory consolidation in adolescents.",
        "How to prune a young apple tree.",
        "Airline Adds Ten Jets to Its Fleet.",  # a headline in title case, pronoun and all
    ],
)
def test_a_title_may_end_with_a_full_stop(title: str) -> None:
    doc = analyse(f"{title}\n{BODY}")
    assert doc.title == title
    assert title not in doc.sentences  # never a body sentence: not continued, not a keyword answer
    pairs = mine(f"{title}\n{BODY}", "t").pairs
    assert {"summarize", "title_to_article"} <= set(by_type(pairs))
    assert all(p.question.count(title.removesuffix(".")) <= 1 for p in pairs)
    assert not any(
        p.task_type in ("completion", "keywords") and title in p.question + p.answer for p in pairs
    )


@pytest.mark.parametrize(
    "first_line, rest",
    [
        ("The council met on Tuesday and was asked to approve it.", BODY),  # an auxiliary verb
        ("We measured the viral load in every patient.", BODY),  # a personal pronoun
        ("Riverton opened a new bridge over the river.", "It cost " + BODY[0].lower() + BODY[1:]),  # "It ..."
    ],
)
def test_a_first_line_that_is_a_sentence_of_the_body_is_not_a_title(first_line: str, rest: str) -> None:
    doc = analyse(f"{first_line}\n{rest}")
    assert doc.title is None and doc.sentences[0] == first_line


def test_a_unit_after_a_number_ends_a_sentence_but_an_initial_does_not() -> None:
    text = (
        "The film was annealed at 400 K. The conductivity then fell. Samples came from J. Smith and A. Jones."
    )
    assert split_sentences(text) == [
        "The film was annealed at 400 K.",
        "The conductivity then fell.",
        "Samples came from J. Smith and A. Jones.",
    ]


def test_causes_need_a_clause_boundary_and_a_statement_as_the_effect() -> None:
    def found(sentence: str) -> list[tuple[str, str]]:
        return [(c.effect, c.cause) for c in causes(analyse(FILLER + sentence))]

    # A noun modifier is not a cause, and an "Even though" clause is not an effect.
    assert (
        found("Even though selenium will counteract testicular damage due to cadmium, zinc works better.")
        == []
    )
    assert found("The study measured the testicular damage due to cadmium in rats.") == []
    # A cause stops where the next clause begins.
    assert found("Owing to deconditioning, and a follow-up visit is recommended for all patients.") == []
    assert found(
        "The trial was stopped early because of safety concerns, and the data were never published."
    ) == [("The trial was stopped early.", "Because of safety concerns.")]
    # A leading connective is not part of the effect; the conjunction "because" needs no comma.
    assert found("However, unit costs increased sharply because diesel prices rose in the quarter.") == [
        ("Unit costs increased sharply.", "Because diesel prices rose in the quarter.")
    ]
    assert found("Flights were cancelled at both airports due to the storm.") == [
        ("Flights were cancelled at both airports.", "Due to the storm.")
    ]


def test_no_question_embeds_a_subordinate_clause_or_a_leading_connective() -> None:
    text = FILLER + (
        "Even though selenium will counteract testicular damage due to cadmium, zinc works better. "
        "In addition, vitamin A protects the tissue because it binds free radicals. "
        "The samples were small. In other words, collecting more information is needed. "
        "Therefore, the next trial will enrol more volunteers."
    )
    bad = re.compile(
        r"(?:that|Given that|states that) (?:even though|in other words|in addition|however)", re.I
    )
    for i in range(30):
        for p in mine(text, f"s{i}").pairs:
            assert not bad.search(p.question), p
            if p.task_type == "completion":
                continue  # the text as written, to be continued
            assert not re.search(
                r'(?:^|: |"|\n)(?:In other words|In addition|Moreover|However), ', p.question
            ), p


def test_instructions_and_first_person_sentences_are_quoted_not_embedded() -> None:
    assert is_imperative("Remove the pan from the heat.") and is_imperative("Do not overfill the tank.")
    assert not is_imperative("The pan is removed from the heat.")
    text = FILLER + (
        "Turn the heating off and wait until the radiators have cooled down. Consequently, the valve is safe to "
        "open. I prefer red lentils in this soup. Therefore, I buy them in bulk every month. Fit the key onto "
        "the valve. However, keep a cloth underneath it."
    )
    for i in range(40):
        pairs = mine(text, f"i{i}").pairs
        for p in pairs:
            assert not re.search(r"(?:Given that|states that|that) (?:turn|fit|keep|i) ", p.question, re.I), p
            if p.task_type == "nli":  # instructions have no truth value
                assert "Turn the heating" not in p.question and "keep a cloth" not in p.question.lower()


def test_sentences_that_open_with_a_subordinate_clause_or_speak_as_we_are_quoted_in_every_task_type() -> None:
    # "Given that because zinc ...", "Given that Unlike banks, ...", "the conclusion that we have reduced ...": an
    # embedded sentence must read as a clause of the question; else it is quoted.
    text = FILLER + (
        "Because zinc induces metallothionein, it may protect the kidney without removing lead. Therefore, zinc "
        "supplements are tested in exposed workers. Unlike banks, credit unions are not run for profit. As a "
        "result, their members pay lower fees on loans. The fund sold its emerging market bonds in March. "
        "Therefore, we have reduced our exposure to currency risk for the coming year."
    )
    embedded = re.compile(r"(?:Given that|states that|conclusion that) (?:because|we|our|Unlike) ")
    seen = Counter()
    for i in range(60):
        for p in mine(text, f"q{i}").pairs:
            assert not embedded.search(p.question), p
            seen[p.task_type] += "Because zinc" in p.question or "we have reduced" in p.question
            seen["lowered"] += "that unlike banks" in p.question
    assert seen["cause_effect"] and seen["nli"] and seen["lowered"], seen


def test_a_sentence_pair_serves_one_task_type_when_the_text_has_others() -> None:
    text = FILLER + (
        "Prices rose sharply during the winter. However, demand for heating oil stayed stable. "
        "The harbour froze for two weeks. Therefore, ships were diverted to the southern port. "
        "The mayor opened the new library. Moreover, she announced a second branch in the north. "
        "Exports of timber fell by a third. As a result, the sawmill cut its shifts."
    )
    for i in range(20):
        pairs = mine(text, f"r{i}").pairs
        uses: Counter[str] = Counter()
        for p in pairs:
            if p.task_type in ("nli", "connective", "cause_effect"):
                for second in (
                    "demand for heating",
                    "ships were diverted",
                    "second branch",
                    "cut its shifts",
                ):
                    if second in p.question.lower() or second in p.answer.lower():
                        uses[second] += 1
        assert uses and max(uses.values()) == 1, (uses, pairs)


def test_a_lone_linked_pair_serves_one_task_type_too() -> None:
    text = FILLER + "The harbour froze for two weeks. Therefore, ships were diverted to the southern port."
    for i in range(20):
        pairs = mine(text, f"l{i}").pairs
        assert [p.task_type for p in pairs if "ships were diverted" in (p.question + p.answer).lower()
                and p.task_type in ("nli", "connective", "cause_effect")].__len__() == 1, pairs  # fmt: skip


def test_yes_and_no_are_written_one_way_in_a_text() -> None:
    text = FILLER + (
        "Prices rose sharply during the winter. However, demand for heating oil stayed stable. "
        "The harbour froze for two weeks. Therefore, ships were diverted to the southern port. "
        "The mayor opened the new library. Moreover, she announced a second branch in the north. "
        "The drug lowered blood pressure in most treated patients. "
        "Put differently, most treated patients had lower blood pressure on the drug."
    )
    for i in range(30):
        words = {
            o
            for p in mine(text, f"y{i}", max_per_type=3).pairs
            for o in options_of(p.question) or ()
            if o.lower() in ("yes", "no", "maybe")
        }
        assert not ({"yes", "no", "maybe"} & words and {"Yes", "No", "Maybe"} & words), words


def test_keywords_are_whole_terms_of_the_text() -> None:
    text = FILLER + (
        "Suppressor activity of OKT8+ lymphocytes was measured in patients with lupus and IL-6 levels. "
        "The OKT8+ lymphocytes appeared effectively under these conditions, considering IL-6 levels. "
        "Northgate Utilities issued a green bond, and Northgate Utilities repaid older lupus debt. "
        "In contrast, IL-6 levels stayed flat in the lymphocytes of healthy donors."
    )
    rare = keywords(analyse(text))
    assert {"okt8+", "il-6", "lymphocytes"} <= set(rare)
    assert not {"okt", "il", "conditions", "appeared", "effectively", "considering", "contrast"} & set(rare)
    # The halves of a name are one phrase.
    assert keyword_hits(
        "Northgate Utilities repaid older lupus debt.", ["northgate", "utilities", "lupus"]
    ) == [
        "Northgate Utilities",
        "lupus",
    ]
    for i in range(20):
        for p in by_type(mine(text, f"k{i}").pairs).get("keywords", []):
            assert not p.answer.startswith(("In contrast", "However", "Moreover")), p


def test_connectives_are_links_only_between_a_result_or_a_contrast_and_its_opposite() -> None:
    text = (
        FILLER + "Sales grew in the north. Likewise, sales grew in the south. Also, the stores stayed open."
    )
    assert all("connective" not in by_type(mine(text, f"l{i}").pairs) for i in range(10))
    assert [k.label for k in linked_pairs(analyse(text))] == ["neutral", "neutral"]


def test_the_whole_text_is_continued_beside_the_next_sentence() -> None:
    sentences = [f"Sentence number {w} of the story describes a different part of the old town." for w in
                 ("one", "two", "three", "four", "five", "six")]  # fmt: skip
    text = " ".join(sentences)
    found = set()
    for i in range(10):
        for p in by_type(mine(text, f"w{i}").pairs)["completion"]:
            rest = p.answer
            assert (
                (p.question + " " + rest).count("Sentence number") >= 3
                or rest in sentences
                or rest.count(".") == 2
            )
            if rest.endswith(sentences[-1]) and rest.startswith(sentences[2]):
                found.add("whole")
            elif rest.count("Sentence number") <= 2:
                found.add("next")
    assert found == {"whole", "next"}


def test_causes_and_effects_that_lean_on_another_sentence_are_not_mined() -> None:
    def found(sentence: str) -> list[tuple[str, str]]:
        return [(c.effect, c.cause) for c in causes(analyse(FILLER + sentence))]

    assert found("Owing to these delays, two aircraft will arrive in the spring instead of December.") == []
    assert (
        found("Because rural masts serve few customers, upgrading them brings operators little revenue.")
        == []
    )
    assert found("Because SG-17 develops deeper roots, it can extract water from deeper layers.") == []


def test_a_word_used_once_is_a_keyword_only_when_it_is_a_long_term() -> None:
    text = FILLER + (
        "The volunteers were grateful for the evapotranspiration measurements. The measurements of "
        "evapotranspiration were repeated by volunteers in the morning."
    )
    rare = keywords(analyse(text))
    assert "evapotranspiration" in rare and "grateful" not in rare


def test_an_addition_link_is_not_asked_how_it_relates() -> None:
    # "Moreover" B may read as a result of A as well: only the yes/no and follows questions are asked of it.
    text = FILLER + "The mill closed last year. Moreover, the village lost its main employer."
    for i in range(30):
        for p in by_type(mine(text, f"a{i}").pairs).get("nli", []):
            assert "relate" not in p.question and "connected" not in p.question, p
