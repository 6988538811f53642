"""The pair-level quality rules (instructpt filter): each rule with a pair it drops and a near one it keeps."""

from __future__ import annotations

import pytest

from instructpt.quality.filters import FilterRules, check_pairs

TEXT = (
    "The Danube flows through ten countries and four capital cities before it reaches the Black Sea. "
    "Its delta, in Romania and Ukraine, is one of the largest wetlands in Europe and a refuge for pelicans."
)
RULES = FilterRules()


def reason(question: str, answer: str, rules: FilterRules = RULES, text: str = TEXT) -> str | None:
    return check_pairs(text, [(question, answer)], rules)[0]


@pytest.mark.parametrize(
    "question, answer, expected",
    [
        ("", "The Black Sea.", "empty"),
        ("Where?", "The Black Sea.", "question_too_short"),
        ("Where does the Danube end?", "x" * 7000, "answer_too_long"),
        ("Which sea does the Danube reach?", "which sea does the Danube reach", "answer_is_question"),
        ("Where does it end?\nOptions:\n- the Black Sea\n- the Baltic", "the North Sea", "bad_options"),
        ("Where does it end?\nOptions:\n- the Black Sea", "the Black Sea", "bad_options"),  # one option
        ("Which?\nOptions:\n" + "\n".join(f"- place {i}" for i in range(11)), "place 3", "bad_options"),  # 11
        (
            "How many capitals?\nLet's think step by step.",
            "It passes four capital cities.",
            "cot_without_answer",
        ),
        ("What lives in the delta? " + "the delta the delta " * 4, "Pelicans.", "repetition"),
        ("Who built the first bridge over the river?", "Roman engineers under Emperor Trajan.", "ungrounded"),
    ],
)
def test_each_rule_drops_its_case(question: str, answer: str, expected: str) -> None:
    assert reason(question, answer) == expected


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Which sea does the Danube reach?", "The Black Sea."),
        ("Where does it end?\nOptions:\n- the Black Sea\n- the Baltic", "the Black Sea"),
        ("How many capitals?\nLet's think step by step.", "It passes four.\nTherefore, the answer is four."),
        ("Is the delta a wetland?", "yes"),  # nothing to ground
        ("Write a sentence about the delta.", "Its delta is a refuge for pelicans in Romania and Ukraine."),
        (
            "Suggest a title for this text.",
            "A River of Ten Countries",
        ),  # titles are not checked for grounding
        ("Where do the pelicans live?", "In the delta, which is one of the largest wetlands in Europe."),
    ],
)
def test_good_pairs_pass(question: str, answer: str) -> None:
    assert reason(question, answer) is None


def test_thresholds_are_options() -> None:
    assert reason("Where?", "The Black Sea.", FilterRules(min_question_chars=3)) is None
    ungrounded = ("Who built the first bridge over the river?", "Roman engineers under Emperor Trajan.")
    assert reason(*ungrounded, FilterRules(min_grounding=0.0)) is None


def test_a_repeated_question_is_dropped_after_the_first() -> None:
    pairs = [
        ("Which sea does the Danube reach?", "The Black Sea."),
        ("Which sea does the Danube reach ?", "The Black Sea, in the east."),
        ("How many countries does the Danube flow through?", "Ten."),
    ]
    assert check_pairs(TEXT, pairs, RULES) == [None, "duplicate_question", None]
    assert check_pairs(TEXT, pairs, FilterRules(max_question_similarity=1.0)) == [None, None, None]


def test_the_language_rule() -> None:
    pytest.importorskip("py3langid")
    english = FilterRules(english=True, min_grounding=0.0)  # the German answer is not in the English text
    assert reason("Which sea does the Danube reach?", "The Black Sea.", english) is None
    assert reason("In welches Meer mündet die Donau?", "In das Schwarze Meer.", english) == "not_english"


@pytest.mark.parametrize(
    "question, answer",
    [
        # a wrapped option line and a repeated option, read as templify reads them
        ("Where does it end?\nOptions:\n- in the Black Sea, after flowing\n  through ten countries\n- in the Baltic",
         "in the Black Sea, after flowing through ten countries"),
        ("Where does it end?\nOptions:\n- the Black Sea\n- the Baltic\n- the Black Sea", "the Black Sea"),
        ("Which is true?\nOptions:\n- " + "\n- ".join(f"claim {i}" for i in range(10)) + "\nLet's think step by step.",
         "The text says so.\nTherefore, the answer is claim 3"),  # 10 options and the cue
        ("How many countries does the Danube flow through?", "10"),  # a number the text spells out
        ("List the census figures.", " ".join(f"In {y}, the population of the city was {y // 50:,}." for y in
                                              (1961, 1971, 1981, 1991, 2001))),  # a list, not degenerate
    ],
)  # fmt: skip
def test_pairs_templify_renders_are_not_dropped(question: str, answer: str) -> None:
    assert reason(question, answer, FilterRules(min_grounding=0.0) if "census" in question else RULES) is None


@pytest.mark.parametrize(
    "answer", ["The text says ten countries. Therefore, the answer is", "Therefore, the answer is ten."]
)
def test_a_chain_of_thought_needs_its_rationale_and_its_final_answer(answer: str) -> None:
    assert reason("How many countries?\nLet's think step by step.", answer) == "cot_without_answer"


@pytest.mark.parametrize("text", ["the " * 19, "ha ha " * 6, "I love it " * 6])
def test_short_degenerate_repetition(text: str) -> None:
    assert reason("What does the text say about the delta?", text.strip()) == "repetition"


def test_same_question_with_other_options_or_answers_is_not_a_duplicate() -> None:
    pairs = [
        ("Which statement is true according to the text?\nOptions:\n- It has ten countries\n- It is short",
         "It has ten countries"),
        ("Which statement is true according to the text?\nOptions:\n- Pelicans live there\n- It is dry",
         "Pelicans live there"),
        ("Write a sentence with all of these words: delta, pelicans, wetlands.", "Its delta is a refuge for pelicans."),
        ("Write a sentence with all of these words: delta, pelicans.", "The Danube flows through ten countries."),
    ]  # fmt: skip
    assert check_pairs(TEXT, pairs, RULES) == [None, None, None, None]
