"""The metrics of the domain tasks (SPEC §8), as plain functions of predictions and golds.

Classification tasks predict an option index; ``accuracy``, ``weighted_f1`` (F1 per class weighted by the class's
gold count, scikit-learn's definition), ``micro_f1`` and ``headline_f1`` (the mean over Headline's sub-questions of
their weighted F1) score them. Generation tasks predict text: ``ner_f1`` (entity-level F1 over ``token (TYPE)``
pairs, summed over rows) and ``convfinqa_match`` (the first number of the first line against the gold number, ``%``
meaning /100, commas ignored, absolute tolerance 1e-2). Each function returns a value in [0, 1]; the per-row score
functions say how each row counted (for the samples files).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?%?|[-+]?\.\d+%?")
ENTITY = re.compile(r"([^;\n()]+?)\s*\(([A-Za-z_-]+)\)")


def accuracy(preds: Sequence[int], golds: Sequence[int]) -> float:
    return sum(p == g for p, g in zip(preds, golds)) / len(golds) if golds else 0.0


def weighted_f1(preds: Sequence[int], golds: Sequence[int], n_classes: int | None = None) -> float:
    """F1 of each class weighted by its gold count (scikit-learn ``average="weighted"``, 0 where undefined)."""
    from sklearn.metrics import f1_score

    if not golds:
        return 0.0
    labels = list(range(n_classes)) if n_classes else sorted(set(golds) | set(preds))
    present = [c for c in labels if c in set(golds)]  # classes with no gold row weigh nothing
    return float(f1_score(list(golds), list(preds), labels=present, average="weighted", zero_division=0))


def micro_f1(preds: Sequence[int], golds: Sequence[int]) -> float:
    """Micro-averaged F1 over all classes (for one label per row this equals accuracy)."""
    from sklearn.metrics import f1_score

    return float(f1_score(list(golds), list(preds), average="micro", zero_division=0)) if golds else 0.0


def headline_f1(preds: Sequence[int], golds: Sequence[int], groups: Sequence[str]) -> float:
    """The mean over sub-questions (``groups``) of each one's weighted F1."""
    by: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for p, g, k in zip(preds, golds, groups):
        by[k][0].append(p)
        by[k][1].append(g)
    return sum(weighted_f1(p, g) for p, g in by.values()) / len(by) if by else 0.0


def entities(text: str) -> set[tuple[str, str]]:
    """The ``token (TYPE)`` pairs of a string (case-folded token, upper-case type); malformed parts are ignored."""
    return {(" ".join(t.split()).casefold(), ty.upper()) for t, ty in ENTITY.findall(text or "") if t.strip()}


def ner_counts(pred: str, gold: str) -> tuple[int, int, int]:
    """(true positives, predicted, gold) entities of one row."""
    p, g = entities(pred), entities(gold)
    return len(p & g), len(p), len(g)


def ner_f1(preds: Sequence[str], golds: Sequence[str]) -> float:
    """Entity-level F1 with the counts summed over all rows (micro)."""
    tp = n_pred = n_gold = 0
    for p, g in zip(preds, golds):
        a, b, c = ner_counts(p, g)
        tp, n_pred, n_gold = tp + a, n_pred + b, n_gold + c
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def first_number(text: str) -> float | None:
    """The first number of the first line of ``text`` (commas removed, ``%`` -> /100), or None."""
    line = (text or "").strip().split("\n", 1)[0]
    m = NUMBER.search(line)
    if not m:
        return None
    raw = m.group(0).replace(",", "")
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        return None
    return value / 100 if raw.endswith("%") else value


def convfinqa_score(pred: str, gold: str, tolerance: float = 1e-2) -> float:
    p, g = first_number(pred), first_number(gold)
    return float(p is not None and g is not None and abs(p - g) <= tolerance)


def convfinqa_match(preds: Sequence[str], golds: Sequence[str]) -> float:
    return sum(convfinqa_score(p, g) for p, g in zip(preds, golds)) / len(golds) if golds else 0.0


def exact_match(preds: Sequence[str], golds: Sequence[str]) -> float:
    return sum(p.strip() == g.strip() for p, g in zip(preds, golds)) / len(golds) if golds else 0.0
