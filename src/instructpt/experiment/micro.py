"""Generated data for the micro experiment: fictional people, their facts stated in documents, and questions
about them in wordings the training text never uses (see README.md next to this file).

    python -m instructpt.experiment.micro OUT [--entities 240] [--seed 0]

writes under OUT:

- ``corpus/augmented.jsonl`` and ``corpus/plain.jsonl``: the raw documents (``id``, ``text``, ``entity``), two per
  person, every fact stated in each, in varied training wordings. The instruction arm synthesizes pairs for the
  augmented half; the plain half is never augmented.
- ``gold/data/shard-00000.jsonl``: gold pairs for the augmented documents in the synthesize output format (one
  record per document, a chain of its own): the upper bound of what a synthesizer could give, labelled as such.
- ``collection/people_cards/shard/00000.jsonl``: a fine-tuning collection (``context`` + ``QA_list``) about OTHER
  people, for ``instructpt train-synthesizer``.
- ``tasks/``: evaluation rows as ``instructpt evaluate`` reads them: ``qa_augmented`` / ``qa_plain`` (multiple
  choice, held-out question wordings, four options: the fact and three fixed distractors), ``exact_augmented`` /
  ``exact_plain`` (the same questions, the answer generated, exact match), ``storage_augmented`` /
  ``storage_plain`` (complete a sentence of the person's own first document, cut before the value, multiple
  choice: whether the fact was memorised at all).

Each attribute value occurs equally often (to within one) among the augmented people and among the plain ones, so a
model cannot score above chance from value frequencies alone. Everything comes from one seeded RNG.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Attribute -> its values (single words).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "city": ("Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Perth", "Tunis", "Lima"),
    "job": ("baker", "pilot", "nurse", "farmer", "judge", "sculptor", "plumber", "chemist"),
    "hobby": ("chess", "rowing", "archery", "pottery", "juggling", "fencing", "knitting", "surfing"),
    "pet": ("parrot", "tortoise", "ferret", "goldfish", "rabbit", "hamster", "lizard", "pony"),
    "color": ("crimson", "teal", "amber", "violet", "olive", "ivory", "indigo", "coral"),
}
# Training wordings: what documents (and gold pairs' answers) say. {n}: the person's name, {v}: the value.
STATEMENTS: dict[str, tuple[str, ...]] = {
    "city": ("{n} lives in {v}.", "{n} has made a home in {v}.", "The city {n} calls home is {v}.",
             "For many years {n} has lived in {v}."),
    "job": ("{n} works as a {v}.", "By trade, {n} is a {v}.", "{n} earns a living as a {v}.",
            "The job {n} holds is that of a {v}."),
    "hobby": ("In spare hours {n} enjoys {v}.", "{n} spends weekends on {v}.", "The hobby of {n} is {v}.",
              "{n} has a passion for {v}."),
    "pet": ("{n} keeps a {v} as a pet.", "At home, {n} looks after a pet {v}.", "The pet of {n} is a {v}.",
            "{n} shares the house with a {v}."),
    "color": ("The favourite colour of {n} is {v}.", "{n} likes {v} more than any other colour.",
              "Asked about colours, {n} always names {v}.", "{n} prefers the colour {v}."),
}  # fmt: skip
# Gold pairs' questions (the augmentation's wordings): used in training text, never in evaluation.
TRAIN_QUESTIONS: dict[str, str] = {
    "city": "Where does {n} live?",
    "job": "What does {n} do for a living?",
    "hobby": "What hobby does {n} have?",
    "pet": "What pet does {n} keep?",
    "color": "What colour does {n} like best?",
}
# Held-out question wordings: evaluation only.
EVAL_QUESTIONS: dict[str, str] = {
    "city": "In which town is the home of {n}?",
    "job": "Which occupation belongs to {n}?",
    "hobby": "Which pastime is {n} fond of?",
    "pet": "Which animal is kept by {n}?",
    "color": "Which shade is the favourite of {n}?",
}
# Bump when the generated data changes for the same settings (the experiment's data directory is named by it).
DATA_VERSION = "micro-v2"  # v2: storage probes cut from the person's own document (v1: one fixed wording)
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ren",
    "sa",
    "tor",
    "vu",
    "zel",
    "an",
    "bri",
    "dus",
    "fen",
    "gor",
    "hal",
    "jun",
    "pel",
)
N_OPTIONS = 4


@dataclass(frozen=True)
class Person:
    name: str
    facts: dict[str, str]
    augmented: bool


def people(n: int, rng: random.Random, taken: set[str] | None = None) -> list[Person]:
    """``n`` people with unique two-part names (none in ``taken``); the first half augmented, and within each half
    every attribute value as often as any other (to within one)."""
    names: list[str] = []
    seen = set(taken or ())
    while len(names) < n:
        name = " ".join(
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize() for _ in range(2)
        )
        if name not in seen:
            seen.add(name)
            names.append(name)
    half = n // 2
    out: list[Person] = []
    for group, members in ((True, names[:half]), (False, names[half:])):
        columns = {}
        for attr, values in ATTRIBUTES.items():
            column = [values[i % len(values)] for i in range(len(members))]
            rng.shuffle(column)
            columns[attr] = column
        out += [Person(m, {a: columns[a][i] for a in ATTRIBUTES}, group) for i, m in enumerate(members)]
    return out


def document(person: Person, rng: random.Random) -> tuple[str, dict[str, str]]:
    """Every fact of ``person`` stated once, each in a training wording drawn at random, in random order; and the
    wording used per attribute."""
    used = {a: rng.choice(STATEMENTS[a]) for a in person.facts}
    sentences = [used[a].format(n=person.name, v=v) for a, v in person.facts.items()]
    rng.shuffle(sentences)
    return f"{person.name}\n\n" + " ".join(sentences), used


def probe(person: Person, attr: str, wording: str) -> str:
    """A storage probe: the training statement ``wording`` about ``person``, cut before the value."""
    return wording.split("{v}")[0].format(n=person.name).rstrip()


def distractors(person: Person, attr: str) -> list[str]:
    """Three fixed wrong values for a question (the same on every run and for every model)."""
    values = ATTRIBUTES[attr]
    i = values.index(person.facts[attr])
    return [values[(i + k) % len(values)] for k in (1, 3, 5)]


def _mc(person: Person, attr: str, prompt: str, rng: random.Random) -> dict[str, Any]:
    options = [person.facts[attr], *distractors(person, attr)]
    rng.shuffle(options)
    return {"input": prompt, "options": options, "gold_index": options.index(person.facts[attr])}


def generate(
    out: str | Path, entities: int = 240, docs_per_entity: int = 2, seed: int = 0
) -> dict[str, Path]:
    """Write the micro experiment's data under ``out``; returns the paths (corpus, gold, collection, tasks)."""
    if entities < 2 or docs_per_entity < 1:
        raise ValueError("need at least 2 entities and 1 document per entity")
    rng = random.Random(seed)
    root = Path(out)
    cast = people(entities, rng)
    others = people(max(2, entities // 2), rng, taken={p.name for p in cast})
    paths = {
        "corpus": root / "corpus", "gold": root / "gold", "collection": root / "collection", "tasks": root / "tasks",
    }  # fmt: skip
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    gold: list[dict[str, Any]] = []
    first_wordings: dict[str, dict[str, str]] = {}  # person -> the wordings of their first document
    for person in cast:
        for k in range(docs_per_entity):
            rid = f"{person.name.replace(' ', '_')}-{k}"
            text, used = document(person, rng)
            first_wordings.setdefault(person.name, used)
            rows[person.augmented].append({"id": rid, "text": text, "entity": person.name})
            if person.augmented:
                pairs = [{"question": TRAIN_QUESTIONS[a].format(n=person.name), "answer": v}
                         for a, v in person.facts.items()]  # fmt: skip
                gold.append({"id": rid, "doc_id": rid, "source": "augmented.jsonl", "text": text, "pairs": pairs,
                             "chain_id": rid, "chain_pos": 0, "finish_reason": "gold",
                             "synthesizer": {"engine": "gold", "model": "micro-generator"}})  # fmt: skip
    _write(paths["corpus"] / "augmented.jsonl", rows[True])
    _write(paths["corpus"] / "plain.jsonl", rows[False])
    (paths["gold"] / "data").mkdir(exist_ok=True)
    _write(paths["gold"] / "data" / "shard-00000.jsonl", gold)
    cards = [{"context": document(p, rng)[0], "QA_list": [{"Q": TRAIN_QUESTIONS[a].format(n=p.name), "A": v}
                                                       for a, v in p.facts.items()]} for p in others]  # fmt: skip
    shard = paths["collection"] / "people_cards" / "shard"
    shard.mkdir(parents=True, exist_ok=True)
    _write(shard / "00000.jsonl", cards)
    for group, label in ((True, "augmented"), (False, "plain")):
        members = [p for p in cast if p.augmented is group]
        qa = [
            _mc(p, a, EVAL_QUESTIONS[a].format(n=p.name) + "\nAnswer:", rng)
            for p in members
            for a in ATTRIBUTES
        ]
        exact = [{"input": EVAL_QUESTIONS[a].format(n=p.name) + "\nAnswer:", "label": p.facts[a]}
                 for p in members for a in ATTRIBUTES]  # fmt: skip
        storage = [
            _mc(p, a, probe(p, a, first_wordings[p.name][a]), rng) for p in members for a in ATTRIBUTES
        ]
        _write(paths["tasks"] / f"qa_{label}.jsonl", qa)
        _write(paths["tasks"] / f"exact_{label}.jsonl", exact)
        _write(paths["tasks"] / f"storage_{label}.jsonl", storage)
    return paths


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate the micro experiment's data.")
    ap.add_argument("out")
    ap.add_argument("--entities", type=int, default=240)
    ap.add_argument("--docs-per-entity", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    paths = generate(args.out, args.entities, args.docs_per_entity, args.seed)
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))


if __name__ == "__main__":
    main()
