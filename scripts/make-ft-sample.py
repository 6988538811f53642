#!/usr/bin/env python3
"""Writes the project's small fine-tuning sample for ``train-synthesizer`` (tests and demo), deterministically.

    python scripts/make-ft-sample.py            # -> src/instructpt/resources/ft_sample/<source>/shard/00000.jsonl

The layout and row fields follow the released fine-tuning collection (one folder per source dataset, rows with a
``context`` and a ``QA_list`` of ``{"Q", "A"}``). The texts are short made-up reference notes (towns, companies,
laboratory runs, train timetables, animal species, inventors), written from templates here, with pairs in the four
conventions of SPEC §3: plain, multiple choice (``Options:``), chain of thought (``Let's think step by step.``)
and both. Every answer is grounded in its context. Re-running writes the same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "instructpt" / "resources" / "ft_sample"
COT = "Let's think step by step."

PLACE_A = [
    "Brightwater",
    "Elmsford",
    "Kestrel Bay",
    "Northmoor",
    "Ashvale",
    "Redcliff",
    "Lindenport",
    "Stonebridge",
    "Marlow Fen",
    "Glenhollow",
    "Copperfield",
    "Westmere",
    "Oakridge",
    "Saltmarsh",
    "Fairhaven",
    "Thornby",
]
INDUSTRY = [
    "fishing",
    "wool weaving",
    "copper mining",
    "shipbuilding",
    "apple growing",
    "glassmaking",
    "timber milling",
    "salt panning",
    "pottery",
    "cheese making",
]
REGION = [
    "northern coast",
    "eastern hills",
    "southern plain",
    "western valley",
    "river delta",
    "high moorland",
]
FIRST = [
    "Ada",
    "Tomas",
    "Lena",
    "Hugo",
    "Mira",
    "Oskar",
    "Nadia",
    "Felix",
    "Ines",
    "Jonas",
    "Clara",
    "Emil",
    "Rosa",
    "Victor",
    "Agnes",
    "Paulo",
]
LAST = [
    "Hartley",
    "Moreau",
    "Lindqvist",
    "Okafor",
    "Brennan",
    "Castell",
    "Novak",
    "Ferreira",
    "Whitlock",
    "Sato",
    "Albrecht",
    "Quinn",
    "Haldane",
    "Ivers",
    "Delacroix",
    "Runeberg",
]
PRODUCT = [
    "bicycles",
    "fountain pens",
    "wool blankets",
    "solar lamps",
    "ceramic tiles",
    "garden tools",
    "sailing ropes",
    "music boxes",
    "kitchen scales",
    "weather instruments",
]
ANIMAL = [
    "marsh harrier",
    "river otter",
    "pine marten",
    "sand lizard",
    "crested newt",
    "barn owl",
    "grey seal",
    "red kite",
    "water vole",
    "natterjack toad",
    "hazel dormouse",
    "common crane",
]
HABITAT = [
    "reed beds",
    "fast rivers",
    "old pine forests",
    "coastal dunes",
    "garden ponds",
    "farm buildings",
    "rocky shores",
    "open farmland",
    "river banks",
    "wet heathland",
    "hazel coppice",
    "shallow lakes",
]
FOOD = ["small fish", "beetles", "voles", "frogs", "seeds", "worms", "snails", "berries", "crabs", "insects"]
INVENTION = [
    "a tide gauge",
    "a folding loom",
    "a pressure lamp",
    "a seed drill",
    "a pocket sextant",
    "a rope-making frame",
    "a clockwork pump",
    "a signal telegraph",
]


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _options(rng: random.Random, right: str, pool: list[str], k: int = 4) -> tuple[str, str]:
    wrong = rng.sample([p for p in pool if p != right], k - 1)
    opts = [right, *wrong]
    rng.shuffle(opts)
    return "\nOptions:\n" + "\n".join(f"- {o}" for o in opts), right


def town(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Plain questions about a town note."""
    place, industry, region = rng.choice(PLACE_A), rng.choice(INDUSTRY), rng.choice(REGION)
    founded, people, mayor = rng.randint(1720, 1910), rng.randint(3, 90) * 1000, _name(rng)
    context = (
        f"{place} is a town on the {region}. It was founded in {founded} and today has about {people:,} "
        f"residents. For most of its history the town has lived from {industry}. The current mayor, {mayor}, "
        f"was elected on a promise to repair the old harbour road."
    )
    qa = [
        (f"When was {place} founded?", f"In {founded}."),
        (f"What has {place} lived from for most of its history?", industry.capitalize() + "."),
        (f"Who is the mayor of {place}?", f"{mayor}."),
        (f"What did the mayor of {place} promise to repair?", "The old harbour road."),
    ]
    return context, [{"Q": q, "A": a} for q, a in rng.sample(qa, rng.randint(2, 3))]


def company(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Multiple-choice questions about a company profile."""
    founder, product, place = _name(rng), rng.choice(PRODUCT), rng.choice(PLACE_A)
    year, staff = rng.randint(1950, 2015), rng.randint(12, 900)
    context = (
        f"{founder.split()[1]} & Sons makes {product} in a workshop in {place}. {founder} started the firm in "
        f"{year} with two employees; it now employs {staff} people. Most of its {product} are sold abroad."
    )
    qa = []
    opts, right = _options(rng, product, PRODUCT)
    qa.append((f"What does {founder.split()[1]} & Sons make?{opts}", right))
    opts, right = _options(rng, place, PLACE_A)
    qa.append((f"Where is the workshop of {founder.split()[1]} & Sons?{opts}", right))
    opts, right = _options(rng, founder, [_name(rng) for _ in range(8)] + [founder])
    qa.append((f"Who started the firm?{opts}", right))
    return context, [{"Q": q, "A": a} for q, a in rng.sample(qa, rng.randint(1, 2))]


def lab(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Chain-of-thought questions about a laboratory run."""
    who, n, grow, hours = _name(rng), rng.randint(2, 9) * 10, rng.randint(2, 6), rng.randint(2, 8)
    temp = rng.randint(18, 40)
    context = (
        f"In the morning run, {who} placed {n} seeds in a tray kept at {temp} degrees. {grow} out of every "
        f"10 seeds had sprouted after {hours} hours. The tray was then moved to a shaded shelf."
    )
    sprouted = n * grow // 10
    qa = [
        (
            f"How many seeds had sprouted after {hours} hours?\n{COT}",
            f"There were {n} seeds and {grow} out of every 10 sprouted. {n} / 10 = {n // 10}, and {n // 10} x {grow} = "
            f"{sprouted}.\nTherefore, the answer is {sprouted}",
        ),
        (
            f"How many seeds had not sprouted after {hours} hours?\n{COT}",
            f"{sprouted} of the {n} seeds sprouted. {n} - {sprouted} = {n - sprouted}.\nTherefore, the answer is "
            f"{n - sprouted}",
        ),
        ("At what temperature was the tray kept?", f"{temp} degrees."),
    ]
    return context, [{"Q": q, "A": a} for q, a in rng.sample(qa, rng.randint(1, 2))]


def train(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Multiple-choice questions answered with a chain of thought, about a timetable."""
    a, b = rng.sample(PLACE_A, 2)
    dep, mins, speed = rng.randint(6, 18), rng.randint(3, 12) * 10, rng.randint(4, 12) * 10
    arr_h, arr_m = dep + mins // 60, mins % 60
    context = (
        f"The first train from {a} to {b} leaves at {dep}:00. The journey takes {mins} minutes at an average "
        f"speed of {speed} km per hour. Tickets can be bought on board."
    )
    arrival = f"{arr_h}:{arr_m:02d}"
    wrong = sorted({f"{arr_h + d // 60}:{(arr_m + d) % 60:02d}" for d in (10, 20, 30, 50)} - {arrival})
    opts = [arrival, *wrong[:3]]
    rng.shuffle(opts)
    distance = speed * mins // 60
    qa = [
        (
            f"When does the first train arrive in {b}?\nOptions:\n"
            + "\n".join(f"- {o}" for o in opts)
            + f"\n{COT}",
            f"The train leaves at {dep}:00 and the journey takes {mins} minutes, which is {mins // 60} hour"
            f"{'s' if mins // 60 != 1 else ''} and {mins % 60} minutes.\nTherefore, the answer is {arrival}",
        ),
        (
            f"How far is it from {a} to {b}?\n{COT}",
            f"The train runs {mins} minutes at {speed} km per hour. {speed} x {mins} / 60 = {distance}.\nTherefore, "
            f"the answer is {distance} km",
        ),
    ]
    return context, [{"Q": q, "A": ans} for q, ans in rng.sample(qa, rng.randint(1, 2))]


def species(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Plain and multiple-choice questions about an animal species."""
    animal, habitat, food = rng.choice(ANIMAL), rng.choice(HABITAT), rng.choice(FOOD)
    count = rng.randint(2, 40) * 50
    context = (
        f"The {animal} is found mostly in {habitat}. It feeds on {food}. A survey last spring counted about "
        f"{count:,} of them across the county, more than in the survey before."
    )
    opts, right = _options(rng, food, FOOD)
    qa = [
        (f"Where is the {animal} mostly found?", habitat.capitalize() + "."),
        (f"What does the {animal} feed on?{opts}", right),
        ("How many were counted in the survey last spring?", f"About {count:,}."),
    ]
    return context, [{"Q": q, "A": a} for q, a in rng.sample(qa, rng.randint(1, 3))]


def inventor(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    """Plain and chain-of-thought questions about an inventor."""
    who, thing, place = _name(rng), rng.choice(INVENTION), rng.choice(PLACE_A)
    born, age = rng.randint(1780, 1880), rng.randint(24, 60)
    context = (
        f"{who} was born in {place} in {born}. At the age of {age}, {who.split()[0]} built {thing}, which "
        f"was soon used all along the coast."
    )
    qa = [
        (f"What did {who} build?", thing[0].upper() + thing[1:] + "."),
        (
            f"In which year did {who} build {thing}?\n{COT}",
            f"{who} was born in {born} and built it at the age of {age}. {born} + {age} = {born + age}.\nTherefore, the "
            f"answer is {born + age}",
        ),
        (f"Where was {who} born?", f"In {place}."),
    ]
    return context, [{"Q": q, "A": a} for q, a in rng.sample(qa, rng.randint(1, 2))]


SOURCES: dict[str, tuple[Callable[[random.Random], tuple[str, list[dict[str, str]]]], int]] = {
    "town_notes": (town, 120), "company_quiz": (company, 120), "lab_reasoning": (lab, 120),
    "timetable_exam": (train, 120), "species_notes": (species, 120), "inventor_cards": (inventor, 80),
}  # fmt: skip


def main() -> None:
    for name, (make, n) in SOURCES.items():
        rng = random.Random(f"ft-sample:{name}")
        rows = []
        for i in range(n):
            context, pairs = make(rng)
            rows.append({"id": f"{name}-{i:04d}", "context": context, "QA_list": pairs})
        path = OUT / name / "shard" / "00000.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(OUT.parents[2])}: {len(rows)} rows")


if __name__ == "__main__":
    main()
