"""Benchmark: templify throughput on one core, as a ratio to the 12,000 chains/s target and to a naive renderer.

Chains are built from word lists in this script: PubMed-abstract-sized contexts (~250 words) with ~5 pairs each,
a mix of plain QA, multiple choice, chain of thought and both. The naive baseline is measured in the same run on
a sample of the same chains: it re-reads and re-parses the YAML inventory for every chain and fills placeholders
with a regex per pair (what a first, unprepared implementation does), classic layout only. A second baseline keeps
the parsed YAML but still uses regexes per pair, to show what the compiled templates alone buy.

Run:  python bench/bench_templify.py [--chains N] [--seconds S]
"""

from __future__ import annotations

import argparse
import functools
import random
import re
import time
from collections.abc import Sequence

import yaml

from instructpt.records import QAPair
from instructpt.templates import load_inventory, render_chain
from instructpt.templates.inventory import INVENTORY_DIR

TARGET = 12_000  # chains/s on one core

_VOCABULARY = (
    "patients cohort randomized trial mortality outcome baseline dose placebo efficacy adverse events "
    "cells expression protein receptor pathway inhibitor tumor survival analysis clinical treatment "
    "therapy risk factors association significant increase decrease levels serum plasma kidney liver "
    "cardiac insulin glucose mice model infection antibody response vaccine study results methods "
    "conclusions follow-up months years median interval ratio confidence hospital admission chronic "
    "acute disease diagnosis screening sensitivity"
)
_WORDS = _VOCABULARY.split()
_STEMS = ("What", "Which", "How", "Why", "Does", "Is", "When", "Where")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def _context(rng: random.Random, n_words: int = 250) -> str:
    sentences, total = [], 0
    while total < n_words:
        k = rng.randint(12, 25)
        sentences.append(_sentence(rng, k))
        total += k
    return " ".join(sentences)


def _pair(rng: random.Random) -> QAPair:
    question = f"{rng.choice(_STEMS)} {_sentence(rng, rng.randint(6, 14))[:-1]}?"
    answer = _sentence(rng, rng.randint(2, 12))
    kind = rng.random()
    if kind < 0.4:
        return QAPair(question, answer)
    if kind < 0.7:
        options = [_sentence(rng, rng.randint(1, 4)) for _ in range(rng.randint(2, 5))]
        return QAPair(question + "\nOptions:\n" + "\n".join(f"- {o}" for o in options), rng.choice(options))
    rationale = " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(rng.randint(1, 3)))
    if kind < 0.9:
        return QAPair(
            question + "\nLet's think step by step.", f"{rationale}\nTherefore, the answer is {answer}"
        )
    options = [_sentence(rng, rng.randint(1, 4)) for _ in range(4)]
    q = question + "\nOptions:\n" + "\n".join(f"- {o}" for o in options) + "\nLet's think step by step."
    return QAPair(q, f"{rationale}\nTherefore, the answer is {rng.choice(options)}")


def make_chains(n: int, seed: int = 0) -> list[list[tuple[str, list[QAPair]]]]:
    rng = random.Random(seed)
    return [[(_context(rng), [_pair(rng) for _ in range(rng.randint(3, 7))])] for _ in range(n)]


# ---------------------------------------------------------------- naive baseline

_OPT = re.compile(r"\nOptions:\n((?:- .*(?:\n|$))+)")
_COT = re.compile(r"\nLet's think step by step\.$")
_LINK = re.compile(r"\n?Therefore, the answer is (.*)$", re.S)


def _read_families() -> dict[str, list[str]]:
    families = {}
    for name in ("qa", "qa_options", "qa_cot", "options_cot"):
        data = yaml.safe_load((INVENTORY_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        families[name] = [p if isinstance(p, str) else p["t"] for p in data["patterns"]]
    return families


_FAMILIES_ONCE: dict[str, list[str]] = {}


def naive_render(
    chain: Sequence[tuple[str, Sequence[QAPair]]], record_id: str, seed: int, reparse: bool = True
) -> str:
    """A deliberately unprepared renderer: parse the YAML every call (unless ``reparse`` is False), regex
    everything per pair."""
    if reparse or not _FAMILIES_ONCE:
        _FAMILIES_ONCE.update(_read_families())
    families = _FAMILIES_ONCE
    rng = random.Random(f"{seed}:{record_id}")
    blocks = []
    for context, pairs in chain:
        blocks.append(context)
        for pair in pairs:
            q, a, rationale = pair.question, pair.answer, ""
            cot = bool(_COT.search(q))
            q = _COT.sub("", q)
            m = _OPT.search(q)
            options = re.findall(r"^- (.*)$", m.group(1), re.M) if m else []
            q = _OPT.sub("", q)
            if cot:
                lm = _LINK.search(a)
                if not lm:
                    continue
                rationale, a = a[: lm.start()], lm.group(1)
            family = ("options_cot" if cot else "qa_options") if options else ("qa_cot" if cot else "qa")
            pattern = rng.choice([p for p in families[family] if "{options}" not in p])
            values = {"question": q, "answer": a, "final": a, "rationale": rationale}
            blocks.append(re.sub(r"\{(\w+)\}", lambda mm, v=values: v[mm.group(1)], pattern))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------- timing


def _rate(fn, chains, seconds: float) -> float:
    """Chains/s: repeat passes over ``chains`` until ``seconds`` have elapsed (at least one pass)."""
    done, start = 0, time.perf_counter()
    while True:
        for i, chain in enumerate(chains):
            fn(chain, record_id=f"doc-{i}", seed=0)
        done += len(chains)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chains", type=int, default=2000, help="distinct chains to render per pass")
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum timing window per renderer")
    args = ap.parse_args()
    chains = make_chains(args.chains)
    load_inventory()  # compile once, outside the timing, as a stage does at start-up
    n_pairs = sum(len(p) for chain in chains for _, p in chain)
    words = sum(len(c.split()) for chain in chains for c, _ in chain)
    print(
        f"chains: {len(chains)}  pairs/chain: {n_pairs / len(chains):.1f}  words/context: {words / len(chains):.0f}"
    )
    rate = _rate(render_chain, chains, args.seconds)
    naive = _rate(naive_render, chains[: max(1, len(chains) // 50)], args.seconds / 2)
    regex_only = _rate(functools.partial(naive_render, reparse=False), chains, args.seconds / 2)
    print(f"render_chain: {rate:,.0f} chains/s on one core")
    print(f"ratio to the {TARGET:,} chains/s target: {rate / TARGET:.2f}x")
    print(
        f"naive baseline (YAML re-parse + regex per call): {naive:,.0f} chains/s -> ratio {rate / naive:.1f}x"
    )
    print(
        f"regex baseline (YAML parsed once, regex per pair): {regex_only:,.0f} chains/s -> ratio "
        f"{rate / regex_only:.1f}x"
    )


if __name__ == "__main__":
    main()
