"""Throughput of the rules miner on one core: documents per second on abstract-sized English texts.

Generates PubMed-abstract-sized texts (~250 words: a title line, then sentences with connectives, causes,
definitions and paraphrases, built from the word lists below with a fixed seed), runs ``mine()`` over them in
this process, and prints documents per CPU-second (and per wall-clock second) and the ratio to the
2,000 docs/s target. Then the whole ``synthesize`` stage with the rules engine (read, chains, mine, write), with
mining in this process (``--rules-workers 1``) and in worker processes (``--workers-list``), as documents per
wall-clock second and the ratio to the one-process run of the same pass; the outputs are checked to be equal.
The main process's own CPU time per document bounds what any number of workers can reach.
With ``--baseline REV``, the miner of git revision REV (its ``src/`` taken with ``git archive``) and today's miner
are timed on the same documents in alternating subprocesses, and the ratio of their rates is printed: the check that
a change to the engine keeps its throughput (within 10% of the previous engine's). Records nothing.

    python bench/bench_rules.py [--docs N] [--repeat R] [--stage-docs N] [--workers-list 2,0] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

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
    parser.add_argument(
        "--stage-docs", type=int, default=10_000, help="documents in the stage runs (0: skip)"
    )
    parser.add_argument(
        "--workers-list", default="2,0", help="--rules-workers values to compare with 1 (0: one per core)"
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also time the miner of this git revision (e.g. HEAD~1)"
    )
    args = parser.parse_args()
    rng = random.Random(0)
    docs = [make_doc(rng) for _ in range(args.docs)]
    if args.baseline:
        compare(docs, args.baseline, args.repeat)
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
    if args.stage_docs:
        stage_docs = [make_doc(rng) for _ in range(args.stage_docs)]
        stage(stage_docs, [int(w) for w in args.workers_list.split(",") if w], args.repeat)


_TIMER = """
import json, sys, time
from instructpt.engines.rules import RULES_VERSION, mine
docs = json.load(open(sys.argv[1]))
for i, d in enumerate(docs[:200]):
    mine(d, f"warm-{i}")
cpu = time.process_time()
pairs = sum(len(mine(d, f"doc-{i}").pairs) for i, d in enumerate(docs))
print(json.dumps({"cpu": time.process_time() - cpu, "pairs": pairs, "version": RULES_VERSION}))
"""


def compare(docs: list[str], rev: str, repeat: int) -> None:
    """Docs per CPU-second of REV's miner and today's, in alternating subprocesses; best of ``repeat`` each."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", rev, "src"], check=True, capture_output=True
        )
        tar_path = Path(tmp, "src.tar")
        tar_path.write_bytes(archive.stdout)
        with tarfile.open(tar_path) as tar:
            tar.extractall(Path(tmp, "baseline"), filter="data")
        docs_path = Path(tmp, "docs.json")
        docs_path.write_text(json.dumps(docs))
        paths = {rev: str(Path(tmp, "baseline", "src")), "today": str(root / "src")}
        best: dict[str, dict] = {}
        for _ in range(repeat):
            for name, path in paths.items():
                env = {**os.environ, "PYTHONPATH": path}
                out = subprocess.run([sys.executable, "-c", _TIMER, str(docs_path)], env=env, check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                r = json.loads(out)
                if name not in best or r["cpu"] < best[name]["cpu"]:
                    best[name] = r
    rates = {name: len(docs) / r["cpu"] for name, r in best.items()}
    print(
        f"\nbaseline {rev} against today's miner, {len(docs):,} docs, best of {repeat} (alternating subprocesses):"
    )
    for name, r in best.items():
        print(f"  {name:<10} {r['version']:<10} {rates[name]:>8,.0f} docs per CPU-second   pairs/doc "
              f"{r['pairs'] / len(docs):.1f}")  # fmt: skip
    print(f"  ratio today / baseline: {rates['today'] / rates[rev]:.2f}x  (target >= 0.90)")


def stage(docs: list[str], workers: list[int], repeat: int) -> None:
    """``synthesize()`` with the rules engine, rounds=2, at each worker count; best wall time of ``repeat``."""
    from instructpt.engines.config import EngineConfig, RulesOptions
    from instructpt.engines.rules.engine import resolve_workers
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
        print(f"\nthe synthesize stage with --engine rules, {len(docs):,} docs, rounds=2, best of {repeat}:")
        base, first = None, None
        for n in [1, *workers]:
            best = best_cpu = float("inf")
            for r in range(repeat):
                out = Path(tmp) / f"out-{n}-{r}"
                cfg = SynthesizeConfig(
                    inputs=[str(corpus)],
                    output=str(out),
                    engine=EngineConfig(name="rules", rules=RulesOptions(workers=n)),
                    progress=False,
                )
                start, cpu = time.perf_counter(), time.process_time()
                synthesize(cfg)
                best = min(best, time.perf_counter() - start)
                best_cpu = min(best_cpu, time.process_time() - cpu)  # this process only, not its workers
            data = [p.read_bytes() for p in sorted((out / "data").iterdir())]
            first = first or data
            rate = len(docs) / best
            base = base or rate
            same = "same output" if data == first else "OUTPUT DIFFERS"
            label = f"--rules-workers {n}" + (f" ({resolve_workers(n)} processes)" if n == 0 else "")
            ceiling = len(docs) / best_cpu
            print(
                f"  {label:<34} {rate:8,.0f} docs/s (wall)  x{rate / base:.2f}  {same}; main process "
                f"{best_cpu * 1e6 / len(docs):.0f} us CPU/doc (at most {ceiling:,.0f} docs/s with idle workers)"
            )


if __name__ == "__main__":
    main()
