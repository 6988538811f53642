"""The domain tasks' metrics against values computed by hand, with their edge cases."""

from __future__ import annotations

import pytest

from instructpt.evaluate import metrics as m


def test_weighted_f1_by_hand() -> None:
    # class 0: tp 2, fn 1 (F1 0.8); class 1: tp 1, fp 2 (P 1/3, R 1, F1 0.5); class 2: fn 1 (F1 0); weights 3, 1, 1
    golds, preds = [0, 0, 0, 1, 2], [0, 0, 1, 1, 1]
    assert m.weighted_f1(preds, golds) == pytest.approx((3 * 0.8 + 1 * 0.5 + 1 * 0.0) / 5)
    assert m.accuracy(preds, golds) == pytest.approx(3 / 5)
    assert m.micro_f1(preds, golds) == pytest.approx(3 / 5)  # one label per row: micro F1 = accuracy


def test_headline_is_the_mean_over_sub_questions_with_a_one_class_group() -> None:
    preds, golds = [1, 1, 0, 0], [1, 1, 1, 0]
    groups = ["price up?", "price up?", "past price?", "past price?"]
    # "price up?": all gold 1, all right: F1 1. "past price?": gold [1, 0], pred [0, 0]: class 0 F1 2/3 (weight 1),
    # class 1 F1 0 (weight 1): 1/3
    assert m.headline_f1(preds, golds, groups) == pytest.approx((1 + 1 / 3) / 2)


def test_ner_entity_level_f1_and_malformed_strings() -> None:
    gold = "Apple (ORG); Tim Cook (PER), Cupertino (LOC)"
    assert m.entities(gold) == {("Apple", "ORG"), ("Cook", "PER"), ("Cupertino", "LOC")}
    pred = "Apple (ORG), Cook (LOC)"  # one right, one with the wrong type
    assert m.ner_counts(pred, gold) == (1, 2, 3)
    assert m.ner_row_f1(pred, gold) == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert m.entities("(ORG) ( ) Tim Cook PER ()") == set()  # malformed parts: nothing
    assert m.ner_row_f1("", gold) == 0.0 and m.ner_row_f1("", "") == 1.0
    assert m.ner_f1([gold, ""], [gold, "IBM (ORG)"]) == pytest.approx(0.5)  # the mean of the rows' F1


@pytest.mark.parametrize(
    ("pred", "gold", "score"),
    [("14.1%", "0.141", 1.0), ("The answer is 1,234.5 dollars", "1234.5", 1.0), ("0.145", "0.141", 1.0),
     ("0.16", "0.141", 0.0), ("", "3", 0.0), ("no number\n42", "42", 0.0), ("-3.5 million", "-3.5", 1.0),
     ("12%", "12", 0.0), ("In 2019 it was 5.2", "5.2", 1.0), ("5,6 million", "56", 0.0), ("1.5e3", "1500", 1.0)],
)  # fmt: skip
def test_convfinqa_numbers_from_the_first_line(pred: str, gold: str, score: float) -> None:
    assert m.convfinqa_score(pred, gold) == score


def test_empty_inputs_score_zero() -> None:
    assert m.accuracy([], []) == 0.0 and m.weighted_f1([], []) == 0.0 and m.convfinqa_match([], []) == 0.0
    assert m.exact_match([" yes "], ["yes"]) == 1.0


def test_ties_between_options_go_to_the_first_and_rows_are_scored_by_the_tasks_metric() -> None:
    from instructpt.evaluate.scoring import score_task
    from instructpt.evaluate.tasks import Row, Task

    class FixedNLLs:  # test double of the scorer: option NLLs given per row
        def __init__(self, nlls: dict[int, list[float]]) -> None:
            self.nlls = nlls

        def option_nlls(self, task, row):
            return self.nlls[row.index]

    rows = [Row(0, "a", ["x", "y", "z"], 2), Row(1, "b", ["x", "y", "z"], 1), Row(2, "c", ["x", "y"], 0)]
    task = Task("T", "mc", "accuracy", "test", rows)
    result, samples = score_task(FixedNLLs({0: [1.0, 0.5, 0.5], 1: [0.2, 0.2, 0.9], 2: [3.0, 3.0]}), task)  # type: ignore[arg-type]
    assert [s["prediction"] for s in samples] == [1, 0, 0]  # ties: the first of the lowest
    assert [s["score"] for s in samples] == [0.0, 0.0, 1.0]
    assert result["value"] == pytest.approx(1 / 3) and result["n"] == 3
    assert result["stderr"] == pytest.approx(((1 / 3) * (2 / 3) / 3) ** 0.5)
