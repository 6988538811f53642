"""The shared definitions of pair quality: task types, grounding, and the answer metrics, by hand."""

from __future__ import annotations

import pytest

from instructpt.quality.answers import exact_match, normalize, rouge_l, token_f1
from instructpt.quality.pairs import classify, content_words, final_answer, grounded

TEXT = "Brightwater is a town on the northern coast. It was founded in 1842 and lives from fishing."


@pytest.mark.parametrize(
    ("question", "answer", "kind"),
    [
        ("How old is the town?\nLet's think step by step.", "It was founded in 1842.\nTherefore, the answer is 180",
         "chain_of_thought"),
        ("What does the town live from?\nOptions:\n- fishing\n- mining", "fishing", "multiple_choice"),
        ("Is Brightwater on the coast?", "Yes", "yes_no"),
        ("What is a good title for this text?", "A coastal town", "title_summary"),
        ("Complete the sentence: It was founded in", "1842 and lives from fishing.", "completion"),
        ("When was the town founded?", "1842", "extractive"),
        ("Why do people visit?", "For the beaches", "other"),
    ],
)  # fmt: skip
def test_one_example_per_task_type(question: str, answer: str, kind: str) -> None:
    assert classify(question, answer, TEXT) == kind


def test_grounding_checks_content_words_of_the_final_answer() -> None:
    assert grounded("The northern coast.", TEXT) is True
    assert grounded("The southern coast.", TEXT) is False  # "southern" is not in the text
    assert grounded("Yes", TEXT) is None and grounded("A.", TEXT) is None  # nothing to check
    cot = "The town was founded long ago, in a storm.\nTherefore, the answer is 1842"
    assert final_answer(cot) == "1842" and grounded(cot, TEXT) is True  # the rationale is not checked
    assert content_words("The 3 towns of it") == {"3", "towns"}


def test_answer_metrics_by_hand() -> None:
    assert normalize("The  Northern, coast!") == "northern coast"
    assert exact_match("the northern coast.", "Northern coast") == 1.0
    assert token_f1("northern coast town", "the northern coast") == pytest.approx(
        2 * (2 / 3) * 1 / (2 / 3 + 1)
    )
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    # ROUGE-L: LCS "a b d" of "a b c d" (4 tokens) and "a b d e" (4): P = R = 3/4
    assert rouge_l("a b c d", "a b d e") == pytest.approx(0.75)
