"""Benchmark: the exact-token-counting floor of the synthesize stage, per tokenizer layout and core count.

The synthesize stage encodes every context block exactly once (``<s> <CON> text </CON>\\n\\n`` with
``add_special_tokens=False``) through the Rust tokenizer's ``encode_batch_fast``; clean generations are reused as
ids and never re-encoded. So the cost of that one encode per document bounds the stage's docs/s from above. This
script measures it on PubMed-abstract-sized texts for two 32,000-token BPE layouts, both trained here with
``tokenizers`` (the released synthesizer's own tokenizer cannot be downloaded here):

- ``byte-level``: GPT-2-style byte-level BPE with regex pre-tokenization (the stand-in of bench_synthesize.py);
- ``llama-layout``: the layout of the Mistral-7B / Llama-2 ``tokenizer.json`` (the synthesizer is a Mistral-7B
  fine-tune): normalizer ``Prepend("▁")`` + ``Replace(" ", "▁")``, no pre-tokenizer (the whole text is one word
  for BPE), byte fallback. Merges are learned with a Metaspace split (training on unsplit texts is impractical);
  encoding uses the unsplit layout, which is what decides the cost.

Each (layout, threads) cell runs in its own process, so the Rust thread pool is sized by ``RAYON_NUM_THREADS``
before first use; ``1`` thread also pins the process to one core. Rates are documents per wall second (the pool's
threads make CPU time the wrong clock for the multi-threaded cells).

Run:  python bench/bench_tokenize.py [--docs 5000] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import abstract_text, import_test_doubles, train_bpe_tokenizer

TARGET = 20_000  # docs/s on one core: the synthesize stage's overhead target
LAYOUTS = ("byte-level", "llama-layout")


def train_llama_layout(out_dir: Path, rng: random.Random, vocab_size: int = 32_000) -> None:
    """A BPE in the Mistral/Llama-2 ``tokenizer.json`` layout (tests/tinymodel.py), saved to ``out_dir``."""
    from common import _tokenizer_training_text

    import_test_doubles()
    from tests.tinymodel import train_llama_layout_tokenizer

    train_llama_layout_tokenizer(out_dir, _tokenizer_training_text(rng, 2000), vocab_size)


def worker(tok_dir: str, blocks_path: str, threads: int) -> dict[str, Any]:
    """Encode every block once through the project's codec; per-document cost and throughput."""
    if threads == 1:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from instructpt.engines.base import EngineConfig
    from instructpt.engines.tokenizer import load_codec

    codec = load_codec(EngineConfig(tokenizer=tok_dir))
    blocks = json.loads(Path(blocks_path).read_text(encoding="utf-8"))
    codec.encode_batch(blocks[:200])  # warm-up: the pool starts, caches fill
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ids = [codec.encode_batch(blocks[i : i + 1000]) for i in range(0, len(blocks), 1000)]
        best = min(best, time.perf_counter() - start)
    n_tokens = sum(len(x) for chunk in ids for x in chunk)
    exact = all(codec.encode(b) == x for b, x in zip(blocks[:200], ids[0]))
    return {"seconds": best, "docs": len(blocks), "tokens": n_tokens, "exact": exact}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=5000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", nargs=3, metavar=("TOK_DIR", "BLOCKS", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], int(args.worker[2]))))
        return

    from instructpt.synthesizer.format import context_block

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as tmp:
        root = Path(tmp)
        dirs = {name: root / name for name in LAYOUTS}
        start = time.perf_counter()
        train_bpe_tokenizer(dirs["byte-level"], random.Random(args.seed))
        train_llama_layout(dirs["llama-layout"], random.Random(args.seed))
        print(f"trained both tokenizers in {time.perf_counter() - start:.1f} s")
        blocks = [context_block(abstract_text(rng, rng.randint(200, 300))) for _ in range(args.docs)]
        blocks_path = root / "blocks.json"
        blocks_path.write_text(json.dumps(blocks), encoding="utf-8")
        chars = sum(len(b) for b in blocks) / len(blocks)
        print(
            f"{len(blocks):,} context blocks, mean {chars:,.0f} characters; cores available: {os.cpu_count()}"
        )
        print(
            f"{'layout':<14} {'threads':>7} {'tokens/doc':>10} {'µs/doc':>8} {'docs/s':>9} {'x 20k':>6}  exact"
        )
        for name in LAYOUTS:
            for threads in args.threads:
                env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
                cmd = [sys.executable, __file__, "--worker", str(dirs[name]), str(blocks_path), str(threads)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rate = r["docs"] / r["seconds"]
                print(
                    f"{name:<14} {threads:>7} {r['tokens'] / r['docs']:>10.0f} {1e6 / rate:>8.0f} "
                    f"{rate:>9,.0f} {rate / TARGET:>6.2f}  {r['exact']}"
                )


if __name__ == "__main__":
    main()
