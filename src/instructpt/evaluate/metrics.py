"""The metrics of the domain tasks (SPEC §8), as plain functions of predictions and golds.

Classification tasks predict an option index; ``accuracy``, ``weighted_f1`` (F1 per class weighted by the class's
gold count, scikit-learn's definition), ``micro_f1`` and ``headline_f1`` (the mean over Headline's sub-questions of
their weighted F1) score them. Generation tasks predict text: ``ner_f1`` (entity-level F1 over ``token (TYPE)``
pairs, summed over rows) and ``convfinqa_match`` (the first number of the first line against the gold number, ``%``
meaning /100, commas ignored, absolute tolerance 1e-2). Each function returns a value in [0, 1]; the per-row score
functions say how each row counted (for the samples files).

NER as scored here: a pair is the single token right before a ``(TYPE)`` (case kept, separators stripped), an
entity counts when token and type both match, and the F1 of each row is averaged over the rows. The AdaptLLM
reference scores NER with nereval's partial credit (half for the text, half for the type), which is not reproduced:
NER figures from this function are not directly comparable with the paper's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

# a number: digits with optional thousands groups, a decimal part, an exponent, a percent sign
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?")
ENTITY = re.compile(r"(\S+)\s*\(([A-Za-z_-]+)\)")


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
    """The ``token (TYPE)`` pairs of a string: the token right before each ``(TYPE)`` (list separators and quotes
    around it stripped, case kept) with the type in upper case; malformed parts are ignored."""
    out = set()
    for token, kind in ENTITY.findall(text or ""):
        token = token.strip(",;:\"'`")
        if token and token != "(":
            out.add((token, kind.upper()))
    return out


def ner_counts(pred: str, gold: str) -> tuple[int, int, int]:
    """(true positives, predicted, gold) entities of one row."""
    p, g = entities(pred), entities(gold)
    return len(p & g), len(p), len(g)


def ner_row_f1(pred: str, gold: str) -> float:
    """Entity-level F1 of one row (1 when neither has an entity)."""
    tp, n_pred, n_gold = ner_counts(pred, gold)
    if n_pred == 0 and n_gold == 0:
        return 1.0
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def ner_f1(preds: Sequence[str], golds: Sequence[str]) -> float:
    """The mean over rows of each row's entity-level F1."""
    return sum(ner_row_f1(p, g) for p, g in zip(preds, golds)) / len(golds) if golds else 0.0


def numbers(text: str) -> list[float]:
    """The numbers of the first line of ``text`` in order (thousands commas removed, ``%`` -> /100)."""
    line = (text or "").strip().split("\n", 1)[0]
    out = []
    for m in NUMBER.finditer(line):
        raw = m.group(0)
        if not any(ch.isdigit() for ch in raw):
            continue
        try:
            value = float(raw.replace(",", "").rstrip("%"))
        except ValueError:
            continue
        out.append(value / 100 if raw.endswith("%") else value)
    return out


def first_number(text: str) -> float | None:
    found = numbers(text)
    return found[0] if found else None


def convfinqa_score(pred: str, gold: str, tolerance: float = 1e-2) -> float:
    """1 when any number of the prediction's first line is within ``tolerance`` of the gold's first number."""
    g = first_number(gold)
    return float(g is not None and any(abs(p - g) <= tolerance for p in numbers(pred)))


def convfinqa_match(preds: Sequence[str], golds: Sequence[str]) -> float:
    return sum(convfinqa_score(p, g) for p, g in zip(preds, golds)) / len(golds) if golds else 0.0


def exact_match(preds: Sequence[str], golds: Sequence[str]) -> float:
    return sum(p.strip() == g.strip() for p, g in zip(preds, golds)) / len(golds) if golds else 0.0
