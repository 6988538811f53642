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

Each layout is encoded by the tokenizer (``encode_batch_fast``) and, where the codec uses it, by cached segment
encoding (``engines/fast_encode.py``, one thread; the Llama layout only); "exact" compares every document's ids with
the tokenizer's. Rates are the best of three passes over the same documents; "1st pass" is the first, when most
words are new to the segment cache.

Each (layout, encoder, threads) cell runs in its own process, so the Rust thread pool is sized by ``RAYON_NUM_THREADS``
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

from common import abstract_text, train_bpe_tokenizer, train_llama_layout_tokenizer

TARGET = 20_000  # docs/s on one core: the synthesize stage's overhead target
LAYOUTS = ("byte-level", "llama-layout")


def worker(tok_dir: str, blocks_path: str, threads: int, segments: bool) -> dict[str, Any]:
    """Encode every block once through the project's codec; per-document cost and throughput."""
    if threads == 1:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from instructpt.engines.base import EngineConfig
    from instructpt.engines.tokenizer import HFCodec, load_tokenizer

    codec = HFCodec(load_tokenizer(EngineConfig(tokenizer=tok_dir)), fast=segments)
    if segments and codec.fast is None:
        return {"skip": True}
    blocks = json.loads(Path(blocks_path).read_text(encoding="utf-8"))
    codec.encode_batch(blocks[:200])  # warm-up: the pool starts, caches fill
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ids = [codec.encode_batch(blocks[i : i + 1000]) for i in range(0, len(blocks), 1000)]
        times.append(time.perf_counter() - start)
    best, first = min(times), times[0]  # the first pass meets most words for the first time
    n_tokens = sum(len(x) for chunk in ids for x in chunk)
    reference = HFCodec(codec.tokenizer, fast=False)
    exact = [x for chunk in ids for x in chunk] == reference.encode_batch(blocks)
    return {"seconds": best, "first": first, "docs": len(blocks), "tokens": n_tokens, "exact": exact}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=5000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--worker", nargs=4, metavar=("TOK_DIR", "BLOCKS", "THREADS", "SEGMENTS"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.worker:
        tok_dir, blocks, threads, segments = args.worker
        print(json.dumps(worker(tok_dir, blocks, int(threads), segments == "1")))
        return

    from instructpt.synthesizer.format import context_block

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as tmp:
        root = Path(tmp)
        dirs = {name: root / name for name in LAYOUTS}
        start = time.perf_counter()
        train_bpe_tokenizer(dirs["byte-level"], random.Random(args.seed))
        train_llama_layout_tokenizer(dirs["llama-layout"], random.Random(args.seed))
        print(f"trained both tokenizers in {time.perf_counter() - start:.1f} s")
        blocks = [context_block(abstract_text(rng, rng.randint(200, 300))) for _ in range(args.docs)]
        blocks_path = root / "blocks.json"
        blocks_path.write_text(json.dumps(blocks), encoding="utf-8")
        chars = sum(len(b) for b in blocks) / len(blocks)
        print(
            f"{len(blocks):,} context blocks, mean {chars:,.0f} characters; cores available: {os.cpu_count()}"
        )
        print(
            f"{'layout':<14} {'encoder':<10} {'threads':>7} {'tokens/doc':>10} {'µs/doc':>8} {'docs/s':>9}"
            f" {'x 20k':>6} {'1st pass':>9}  exact"
        )
        for name in LAYOUTS:
            for segments in ("0", "1"):
                for threads in args.threads if segments == "0" else [1]:  # the segment path is one thread
                    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        str(dirs[name]),
                        str(blocks_path),
                        str(threads),
                    ]
                    out = subprocess.run(
                        [*cmd, segments], env=env, capture_output=True, text=True, check=True
                    )
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    if r.get("skip"):
                        continue
                    rate = r["docs"] / r["seconds"]
                    encoder = "segments" if segments == "1" else "tokenizer"
                    print(
                        f"{name:<14} {encoder:<10} {threads:>7} {r['tokens'] / r['docs']:>10.0f} "
                        f"{1e6 / rate:>8.0f} {rate:>9,.0f} {rate / TARGET:>6.2f} {r['docs'] / r['first']:>9,.0f}"
                        f"  {r['exact']}"
                    )


if __name__ == "__main__":
    main()
