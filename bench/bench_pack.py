"""Benchmark: ``instructpt pack`` tokens/s against the bare fast tokenizer, and its memory against corpus size.

For W in ``--workers`` (default 1 and 2): the baseline tokenizes the same texts with ``encode_batch_fast`` in W
processes (one Rust thread each, shards of ``--shard-size`` texts handed out as pack does), and does nothing else;
then ``pack`` runs on the same corpus file with ``--workers W``, reading, tokenizing, writing token files, index and
stats. Prints tokens/s of both and their ratio (target >= 0.80); worker start-up is out of both timings. Every
process is single-threaded (``TOKENIZERS_PARALLELISM=false``), so W workers means W cores on both sides. Then peak memory (max RSS of a fresh process) of
``pack`` on ``--small`` and ``--large`` documents: flat means the ratio stays near 1.

Run:  python bench/bench_pack.py [--docs 20000] [--workers 1 2] [--small 10000] [--large 200000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, abstract_text, train_bpe_tokenizer  # noqa: E402

_TOK = None


def _init(tok_dir: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    global _TOK
    from transformers import AutoTokenizer

    _TOK = AutoTokenizer.from_pretrained(tok_dir)


def _encode(texts: list[str]) -> int:
    return sum(len(e.ids) for e in _TOK.backend_tokenizer.encode_batch_fast(texts, add_special_tokens=False))


def baseline(tok_dir: str, texts: list[str], workers: int, shard: int) -> tuple[int, float]:
    """Tokens and seconds of bare ``encode_batch_fast`` over ``texts`` in ``workers`` processes (pool warm)."""
    chunks = [texts[i : i + shard] for i in range(0, len(texts), shard)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(tok_dir,)) as pool:
        pool.map(_encode, [texts[:8]] * workers)  # start-up out of the timing
        start = time.perf_counter()
        tokens = sum(pool.map(_encode, chunks))
        return tokens, time.perf_counter() - start


def run_pack(corpus: Path, tok_dir: str, out: Path, workers: int, shard: int) -> tuple[int, float]:
    from instructpt.pack.run import PackConfig, pack

    cfg = PackConfig(inputs=[str(corpus)], output=str(out), tokenizer=tok_dir, workers=workers, shard_size=shard,
                     progress=False)  # fmt: skip
    s = pack(cfg)
    return s.counts["tokens_out"], s.run.work_seconds


def peak_rss(corpus: Path, tok_dir: str, out: Path, workers: int, shard: int) -> float:
    """Max RSS (MiB) of a fresh process that packs ``corpus`` (its workers are separate processes)."""
    code = (
        "import resource, sys\n"
        "from instructpt.pack.run import PackConfig, pack\n"
        f"pack(PackConfig(inputs=[{str(corpus)!r}], output={str(out)!r}, tokenizer={tok_dir!r}, workers={workers}, "
        f"shard_size={shard}, progress=False))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(proc.stdout.strip().splitlines()[-1])


def write_corpus(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": abstract_text(rng, rng.randint(120, 320))}) + "\n")
    return path


def main() -> None:
    # one thread per process everywhere (pack's own process included), so W workers means W cores on both sides
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--shard-size", type=int, default=2000)
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--large", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tok_dir = str(tmp / "tok")
        train_bpe_tokenizer(Path(tok_dir), random.Random(0))
        corpus = write_corpus(tmp / "corpus.jsonl", args.docs)
        texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
        print(f"pack vs bare encode_batch_fast, {args.docs:,} abstract-sized documents, 32k byte-level BPE")
        for w in args.workers:
            n_base, t_base = baseline(tok_dir, texts, w, args.shard_size)
            n_pack, t_pack = run_pack(corpus, tok_dir, tmp / f"out-{w}", w, args.shard_size)
            print(f"  workers={w}: bare {n_base / t_base:,.0f} tok/s, pack {n_pack / t_pack:,.0f} tok/s "
                  f"(work time; worker start-up timed apart), ratio {(n_pack / t_pack) / (n_base / t_base):.2f} "
                  f"(target >= 0.80)")  # fmt: skip
        small = write_corpus(tmp / "small.jsonl", args.small, 1)
        large = write_corpus(tmp / "large.jsonl", args.large, 2)
        rss_small = peak_rss(small, tok_dir, tmp / "rss-small", 1, args.shard_size)
        rss_large = peak_rss(large, tok_dir, tmp / "rss-large", 1, args.shard_size)
        print(f"  peak RSS: {rss_small:,.0f} MiB at {args.small:,} docs, {rss_large:,.0f} MiB at {args.large:,} docs "
              f"(ratio {rss_large / rss_small:.2f}; flat is ~1)")  # fmt: skip


if __name__ == "__main__":
    main()
