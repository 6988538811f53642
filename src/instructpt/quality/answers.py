"""Comparing a response with a gold answer: SQuAD-style normalization, exact match, token F1 and ROUGE-L (the
maintained ``rouge-score`` package). One home for these: train-synthesizer's held-out check, evaluate-synthesizer
and the quality filters use them."""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from typing import Any

_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        from instructpt.errors import ConfigError

        raise ConfigError("ROUGE-L needs the rouge-score package: pip install 'instructpt[eval]'") from exc
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens)."""
    return float(_scorer().score(gold, prediction)["rougeL"].fmeasure)
