"""Metric hooks of the shipped lm-eval tasks: the project's own metric functions (instructpt.evaluate.metrics), so
``lm_eval --include_path`` and ``instructpt evaluate`` compute the generation tasks' numbers the same way."""

from instructpt.evaluate import metrics


def _first_line(results):
    return (results[0] if results else "").split("\n", 1)[0]


def ner_process(doc, results):
    return {"ner_f1": (_first_line(results), str(doc["label"]))}


def ner_aggregate(items):
    preds, golds = zip(*items) if items else ((), ())
    return metrics.ner_f1(list(preds), list(golds))


def convfinqa_process(doc, results):
    return {"convfinqa_match": metrics.convfinqa_score(_first_line(results), str(doc["label"]))}
