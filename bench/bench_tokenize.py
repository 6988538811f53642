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
words are new to the segment cache. Three corpora: generated abstracts (a small vocabulary: the cache's best
case), real Python documentation and standard-library source (a natural vocabulary, code included), and random
letter strings (every word new: the cache's worst case).

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
import sysconfig
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
    from instructpt.engines.config import EngineConfig
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

    from instructpt.wire import context_block

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as tmp:
        root = Path(tmp)
        dirs = {name: root / name for name in LAYOUTS}
        start = time.perf_counter()
        train_bpe_tokenizer(dirs["byte-level"], random.Random(args.seed))
        train_llama_layout_tokenizer(dirs["llama-layout"], random.Random(args.seed))
        print(f"trained both tokenizers in {time.perf_counter() - start:.1f} s")
        corpora = {
            "abstracts": [context_block(abstract_text(rng, rng.randint(200, 300))) for _ in range(args.docs)],
            "python text": [context_block(t) for t in python_text(args.docs)],
            "unseen words": [
                context_block(unseen_words(rng, rng.randint(200, 300))) for _ in range(args.docs)
            ],
        }
        print(f"{args.docs:,} context blocks per corpus; cores available: {os.cpu_count()}")
        print(
            f"{'corpus':<13} {'layout':<13} {'encoder':<10} {'threads':>7} {'tokens/doc':>10} {'µs/doc':>8}"
            f" {'docs/s':>9} {'x 20k':>6} {'1st pass':>9}  exact"
        )
        for corpus, blocks in corpora.items():
            blocks_path = root / "blocks.json"
            blocks_path.write_text(json.dumps(blocks), encoding="utf-8")
            for name in LAYOUTS:
                for segments in ("0", "1"):
                    for threads in args.threads if segments == "0" else [1]:  # the segment path: one thread
                        r = run_cell(dirs[name], blocks_path, threads, segments)
                        if r.get("skip"):
                            continue
                        rate = r["docs"] / r["seconds"]
                        encoder = "segments" if segments == "1" else "tokenizer"
                        print(
                            f"{corpus:<13} {name:<13} {encoder:<10} {threads:>7} {r['tokens'] / r['docs']:>10.0f} "
                            f"{1e6 / rate:>8.0f} {rate:>9,.0f} {rate / TARGET:>6.2f} {r['docs'] / r['first']:>9,.0f}"
                            f"  {r['exact']}"
                        )


def python_text(n: int, chars: int = 2000) -> list[str]:
    """Real text with a natural vocabulary: Python's pydoc topics (prose), then the standard library's sources
    (code, comments, docstrings), cut at line ends into ~``chars``-character texts."""
    from pydoc_data.topics import topics

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = ["\n".join(topics.values())]
    sources += [p.read_text(encoding="utf-8", errors="ignore") for p in sorted(stdlib.glob("*.py"))]
    out: list[str] = []
    for source in sources:
        piece: list[str] = []
        size = 0
        for line in source.splitlines():
            piece.append(line)
            size += len(line) + 1
            if size >= chars:
                out.append("\n".join(piece))
                if len(out) == n:
                    return out
                piece, size = [], 0
    return out


def unseen_words(rng: random.Random, n_words: int) -> str:
    """Random lower-case "words" of 3-12 letters: nearly every word is new (the segment cache's worst case)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join("".join(rng.choices(letters, k=rng.randint(3, 12))) for _ in range(n_words))


def run_cell(tok_dir: Path, blocks_path: Path, threads: int, segments: str) -> dict[str, Any]:
    """One (layout, encoder, threads) cell in its own process: the Rust pool is sized before first use."""
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
    cmd = [sys.executable, __file__, "--worker", str(tok_dir), str(blocks_path), str(threads), segments]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
