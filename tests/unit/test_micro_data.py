"""The micro experiment's generated data: balanced values, held-out wordings, every fact stated, well-formed
tasks, a collection about other people, deterministic by seed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from instructpt.evaluate.tasks import path_tasks
from instructpt.experiment.micro import ATTRIBUTES, EVAL_QUESTIONS, STATEMENTS, TRAIN_QUESTIONS, generate
from instructpt.io.collection import CollectionFields, collect
from instructpt.records import SynthRecord


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_micro_data(tmp_path: Path) -> None:
    paths = generate(tmp_path / "a", entities=40, seed=3)
    aug, plain = _rows(paths["corpus"] / "augmented.jsonl"), _rows(paths["corpus"] / "plain.jsonl")
    assert len(aug) == len(plain) == 40 and not {r["entity"] for r in aug} & {r["entity"] for r in plain}
    qa = {g: _rows(paths["tasks"] / f"qa_{g}.jsonl") for g in ("augmented", "plain")}
    for group, docs in (("augmented", aug), ("plain", plain)):
        # every value of an attribute equally often (to within one) among the group's people
        answers = Counter()
        for row in qa[group]:
            answers[row["options"][row["gold_index"]]] += 1
        for values in ATTRIBUTES.values():
            counts = [answers[v] for v in values]
            assert max(counts) - min(counts) <= 1, (group, counts)
        # every document states every fact of its person
        facts = {}
        for row in qa[group]:
            name = next(d["entity"] for d in docs if d["entity"] in row["input"])
            facts.setdefault(name, set()).add(row["options"][row["gold_index"]])
        for d in docs:
            assert all(v in d["text"] for v in facts[d["entity"]])
    # held-out question wordings appear in no training text (documents, gold pairs)
    training = " ".join(d["text"] for d in aug + plain)
    gold = [SynthRecord.from_row(r) for r in _rows(paths["gold"] / "data" / "shard-00000.jsonl")]
    training += " ".join(p.question for r in gold for p in r.pairs)
    for wording in EVAL_QUESTIONS.values():
        stem = wording.split("{n}")[0].strip()
        assert stem and stem not in training
    assert len(gold) == 40 and all(
        isinstance(r, SynthRecord) and len(r.pairs) == len(ATTRIBUTES) for r in gold
    )
    # multiple choice: four distinct options, the gold one included once; exact match: the same questions
    for rows in qa.values():
        assert all(len(set(r["options"])) == 4 and 0 <= r["gold_index"] < 4 for r in rows)
    exact = _rows(paths["tasks"] / "exact_plain.jsonl")
    assert [r["input"] for r in exact] == [r["input"] for r in qa["plain"]]
    storage = _rows(paths["tasks"] / "storage_augmented.jsonl")
    assert len(storage) == 20 * len(ATTRIBUTES) and all(not r["input"].endswith(".") for r in storage)
    # a storage probe is a sentence of the person's own first document, cut before the value
    first = {d["entity"]: d["text"] for d in reversed(aug)}
    for r in storage:
        name = next(n for n in first if n in r["input"])
        assert r["input"] + " " + r["options"][r["gold_index"]] in first[name], r
    # the collection is about other people, in the form train-synthesizer reads
    cards, rejects = collect([str(paths["collection"])], CollectionFields(), "test")
    people = {d["entity"] for d in aug + plain}
    assert cards and not rejects and not any(name in card.context for card in cards for name in people)
    assert {card.source for card in cards} == {"people_cards"}
    assert all(len(card.pairs) == len(ATTRIBUTES) for card in cards)
    # the same seed, the same bytes
    again = generate(tmp_path / "b", entities=40, seed=3)
    for key in ("corpus", "tasks", "gold"):
        for f in sorted(paths[key].rglob("*.jsonl")):
            assert f.read_bytes() == (again[key] / f.relative_to(paths[key])).read_bytes()
    assert set(STATEMENTS) == set(TRAIN_QUESTIONS) == set(EVAL_QUESTIONS) == set(ATTRIBUTES)
    # instructpt evaluate reads the task files as they are: six tasks, multiple choice or exact match
    tasks = {t.name: t for t in path_tasks(paths["tasks"], None)}
    assert set(tasks) == {f"{k}_{g}" for k in ("qa", "exact", "storage") for g in ("augmented", "plain")}
    assert {t.metric for t in tasks.values()} == {"accuracy", "exact_match"} and tasks[
        "exact_plain"
    ].kind == "gen"
