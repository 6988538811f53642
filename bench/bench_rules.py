"""Throughput of the rules miner on one core: documents per second on abstract-sized English texts.

Generates PubMed-abstract-sized texts (~250 words: a title line, then sentences with connectives, causes,
definitions and paraphrases, built from the word lists below with a fixed seed), runs ``mine()`` over them in
this process, and prints documents per CPU-second (and per wall-clock second) and the ratio to the
2,000 docs/s target. Records nothing.

    python bench/bench_rules.py [--docs N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import time

from instructpt.engines.rules import mine

TARGET_DOCS_PER_S = 2000.0


def _words(block: str) -> list[str]:
    return block.split()


ADJECTIVES = _words(
    "chronic acute elevated reduced systemic regional peripheral cortical renal hepatic early late mild severe "
    "stable transient selective persistent primary secondary adjuvant baseline long-term short-term"
)
NOUNS = _words(
    "patients cohort outcome risk dose exposure response marker level expression pathway receptor infection "
    "therapy trial mortality incidence function injury lesion tissue sample volume pressure score index"
)
DOMAIN = _words(
    "keratinocyte phosphorylation angiogenesis nephropathy glycoprotein cardiomyocyte cytokine fibroblast "
    "osteoclast mitochondrial endothelial hypoxia apoptosis macrophage lymphocyte epithelial proteasome "
    "adipocyte microbiota thrombosis ischemia neutrophil interleukin chemokine"
)
VERBS = _words(
    "increased decreased predicted modulated attenuated improved impaired restored altered suppressed "
    "enhanced reduced preceded accompanied"
)
CONNECTIVES = [
    *_words("Therefore Thus Hence Consequently However Nevertheless Moreover Furthermore"),
    "In contrast",
    "In addition",
    "On the other hand",
    "As a result",
]


def _np(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES)} {rng.choice(DOMAIN)} {rng.choice(NOUNS)}"


def _sentence(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.08:
        return f"{_np(rng).capitalize()} is defined as the {_np(rng)} of {rng.choice(DOMAIN)} cells."
    if kind < 0.16:
        return f"The {_np(rng)} {rng.choice(VERBS)} in the treated group due to {_np(rng)} in the tissue."
    if kind < 0.22:
        return f"In other words, the {_np(rng)} {rng.choice(VERBS)} the {_np(rng)} over time."
    clause = (
        f"the {_np(rng)} {rng.choice(VERBS)} the {_np(rng)} in {rng.randint(12, 480)} {rng.choice(NOUNS)}"
    )
    if kind < 0.5:
        return f"{rng.choice(CONNECTIVES)}, {clause}."
    return f"{clause[0].upper()}{clause[1:]} and was associated with {_np(rng)}."


def make_doc(rng: random.Random, target_words: int = 250) -> str:
    """A title line and sentences until about ``target_words`` words."""
    title = " ".join(w.capitalize() for w in (_np(rng) + " in " + _np(rng)).split())
    sentences = [f"This study examines the role of {_np(rng)} in {rng.choice(DOMAIN)} {rng.choice(NOUNS)}."]
    while sum(s.count(" ") + 1 for s in sentences) < target_words:
        sentences.append(_sentence(rng))
    return title + "\n" + " ".join(sentences)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=3000, help="documents per timed pass")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (the best is reported)")
    args = parser.parse_args()
    rng = random.Random(0)
    docs = [make_doc(rng) for _ in range(args.docs)]
    words = sum(len(d.split()) for d in docs) / len(docs)
    for i, d in enumerate(docs[:200]):  # warm-up: imports, regex caches
        mine(d, f"warm-{i}")
    best_cpu = best_wall = float("inf")
    pairs = 0
    for _ in range(args.repeat):
        # CPU time of this process measures one core's throughput even when other work shares the machine.
        cpu, wall = time.process_time(), time.perf_counter()
        pairs = sum(len(mine(d, f"doc-{i}").pairs) for i, d in enumerate(docs))
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    rate = len(docs) / best_cpu
    print(f"docs: {len(docs)}  mean words/doc: {words:.0f}  pairs/doc: {pairs / len(docs):.1f}")
    print(f"rules miner, one core: {rate:,.0f} docs per CPU-second ({best_cpu * 1e6 / len(docs):.0f} us/doc)")
    print(f"wall clock: {len(docs) / best_wall:,.0f} docs/s (lower when other processes share the core)")
    print(f"ratio to target ({TARGET_DOCS_PER_S:,.0f} docs/s): {rate / TARGET_DOCS_PER_S:.2f}x")


if __name__ == "__main__":
    main()
