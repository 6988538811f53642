"""Benchmark: the pair-level quality rules of ``instructpt filter``, documents per CPU-second on one core.

Synthesizes the shipped demo corpus with the rules engine (real pairs: ~7.7 per document), then applies the rules
(`check_pairs`) to every document's pairs, repeated until about ``--docs`` documents are checked; then the whole
stage over the same output (read, check, write). Also a generated set of ~2,000-character documents with five
extractive-looking pairs each, so the grounding rule runs on every pair. Prints documents per CPU-second and the
ratio to the 10,000 docs/s target. Records nothing.

    python bench/bench_filter.py [--docs 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from instructpt.quality.filters import FilterRules, check_pairs  # noqa: E402

TARGET_DOCS_PER_S = 10_000.0


def timed(docs: list[tuple[str, list[tuple[str, str]]]], repeat: int) -> float:
    rules = FilterRules()
    best = float("inf")
    for _ in range(repeat):
        cpu = time.process_time()
        for text, pairs in docs:
            check_pairs(text, pairs, rules)
        best = min(best, time.process_time() - cpu)
    return len(docs) / best


def generated(n: int) -> list[tuple[str, list[tuple[str, str]]]]:
    rng = random.Random(0)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(5000)
    ]
    out = []
    for _ in range(n):
        words = [rng.choice(vocab) for _ in range(330)]
        text = " ".join(words)
        pairs = [(f"What does the text say about {words[i * 60]} and {words[i * 60 + 1]}?",
                  " ".join(words[i * 60 + 2 : i * 60 + 14]) + ".") for i in range(5)]  # fmt: skip
        out.append((text, pairs))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=20_000, help="documents checked per timed pass")
    p.add_argument("--repeat", type=int, default=3, help="timed passes (the best is reported)")
    args = p.parse_args()
    from instructpt.demo import default_corpus
    from instructpt.engines.config import EngineConfig
    from instructpt.filter.run import FilterConfig, filter_pairs
    from instructpt.io.shards import read_shard
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        pairs_dir = Path(tmp, "pairs")
        synthesize(SynthesizeConfig(inputs=[str(default_corpus())], output=str(pairs_dir), id_field="id",
                                    progress=False, engine=EngineConfig(name="rules")))  # fmt: skip
        rows = [r for f in sorted((pairs_dir / "data").glob("*")) for r in read_shard(f)]
        demo = [(r["text"], [(p["question"], p["answer"]) for p in r["pairs"]]) for r in rows]
        chars = sum(len(t) for t, _ in demo) / len(demo)
        npairs = sum(len(p) for _, p in demo) / len(demo)
        docs = (demo * (args.docs // len(demo) + 1))[: args.docs]
        rate = timed(docs, args.repeat)
        print(f"demo corpus through the rules engine: {len(demo)} documents, {chars:,.0f} characters and "
              f"{npairs:.1f} pairs each")  # fmt: skip
        print(f"  rules: {rate:,.0f} docs per CPU-second; ratio to target ({TARGET_DOCS_PER_S:,.0f}/s): "
              f"{rate / TARGET_DOCS_PER_S:.2f}x")  # fmt: skip
        best = float("inf")
        for r in range(args.repeat):
            s = filter_pairs(
                FilterConfig(inputs=[str(pairs_dir)], output=str(Path(tmp, f"f{r}")), progress=False)
            )
            best = min(best, s.run.work_seconds)
        print(f"  whole stage (read, check, write): {len(demo) / best:,.0f} docs/s (wall, work only)")
    gen = generated(min(args.docs, 5000))
    rate = timed(gen, args.repeat)
    print(f"generated: {len(gen)} documents of {sum(len(t) for t, _ in gen) / len(gen):,.0f} characters, 5 "
          f"extractive-looking pairs each: {rate:,.0f} docs per CPU-second ({rate / TARGET_DOCS_PER_S:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
