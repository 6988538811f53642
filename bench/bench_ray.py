"""Benchmark: the overhead of ``synthesize --ray`` against a local run, rules engine, on one machine.

Generates abstract-sized documents (bench_rules.py's generator), synthesizes them with the rules engine locally,
then on a local Ray cluster with 1 and with 2 actors, into fresh directories; checks that every output is byte for
byte the local one's; prints per run the start-up (cluster + actors ready), the work, documents per second of the
work, and the ratio to the local run. Records nothing.

    python bench/bench_ray.py [--docs 6000] [--shard-size 250] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rules import make_doc  # noqa: E402
from instructpt.engines.config import EngineConfig  # noqa: E402
from instructpt.scale.ray import RayOptions  # noqa: E402
from instructpt.synthesizer.run import SynthesizeConfig, synthesize  # noqa: E402


def _same(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in (a / "data").iterdir())
    return files == sorted(p.relative_to(b) for p in (b / "data").iterdir()) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=6000)
    ap.add_argument("--shard-size", type=int, default=250)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import random

    import ray

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus.jsonl")
        corpus.write_text("".join(json.dumps({"text": make_doc(rng)}) + "\n" for _ in range(args.docs)))

        def run(name: str, options: RayOptions) -> tuple[float, float, float]:
            cfg = SynthesizeConfig(inputs=[str(corpus)], output=str(Path(tmp, name)), shard_size=args.shard_size,
                                   progress=False, engine=EngineConfig(name="rules"), ray=options)  # fmt: skip
            t0 = time.monotonic()
            summary = synthesize(cfg)
            wall = time.monotonic() - t0
            return wall, summary.run.startup_seconds, summary.run.work_seconds

        local = run("local", RayOptions())
        print(
            f"{args.docs:,} documents, shards of {args.shard_size}, rules engine; local Ray cluster of {args.cpus} CPUs"
        )
        print(
            f"{'run':<12}{'wall s':>8}{'start-up s':>12}{'work s':>8}{'docs/s (work)':>15}{'ratio':>8}  same bytes"
        )
        print(
            f"{'local':<12}{local[0]:>8.2f}{local[1]:>12.2f}{local[2]:>8.2f}{args.docs / local[2]:>15,.0f}{1:>8.2f}"
        )
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            for n in (1, 2):
                wall, startup, work = run(f"ray{n}", RayOptions(enabled=True, actors=n, cpus_per_actor=1))
                same = _same(Path(tmp, "local"), Path(tmp, f"ray{n}"))
                print(f"{f'ray x{n}':<12}{wall:>8.2f}{startup:>12.2f}{work:>8.2f}{args.docs / work:>15,.0f}"
                      f"{local[2] / work:>8.2f}  {same}")  # fmt: skip
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
