"""Benchmark: CPU overhead of the synthesize stage on one core, against 20,000 docs/s and a bare-minimum baseline.

Runs the real ``synthesize()`` (read jsonl -> exact token counts with a 32k BPE behind ``HFCodec`` ->
chain scheduling and prompts -> engine -> parse -> sharded atomic write) with ``CannedGenerationEngine``, a
zero-latency ``ScriptedEngine`` test double (not a synthesizer): every request gets one of a pool of canned
well-formed generations (~5 pairs of 20-40 words; plain, multiple-choice and chain-of-thought conventions) with
token ids from the codec, so the chain scheduler's prefix-reuse path runs. Corpus: N generated PubMed-abstract-
sized texts (200-300 words). The process is pinned to one core with single-threaded tokenizers.

The BPE is trained here (``--tokenizer``): ``llama-layout`` (default) is the released synthesizer's layout, for
which the codec uses cached segment encoding; ``byte-level`` is a GPT-2-style stand-in, encoded by the tokenizer.

Printed (rates per CPU second and per wall second; ratios use the CPU rates, steadier on a shared machine):
two baselines (per doc ``json.loads`` + one encode by the tokenizer itself + ``json.dumps``; the same with batched
encoding); the stage (also without cached segment encoding)
at rounds=1 and 2 (and at 2 with the GC threshold the ``instructpt`` command sets); the stage with token ids
precomputed, i.e. its own overhead without tokenizing (also with that GC threshold); each component alone; a cProfile breakdown by phase.

Run:  python bench/bench_synthesize.py [--docs 20000] [--component-docs 2000] [--profile-docs 3000]
With ``orjson`` importable (e.g. ``PYTHONPATH=/path/to/orjson``) its encode cost is printed too.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    TOKENIZERS,
    abstract_text,
    gc_threshold,
    import_test_doubles,
    pin_one_core,
    rate_line,
    sentence,
    timed,
    write_jsonl,
)
from instructpt.runtime import GC_THRESHOLD
from instructpt.stages import Summary

TARGET = 20_000  # docs/s on one core
POOL = 256  # distinct canned generations


# ---- the test-double engine ----
def canned_generation(rng: random.Random, n_pairs: int = 5) -> str:
    """~``n_pairs`` well-formed pairs of 20-40 words in the synthesizer's conventions."""
    pieces = []
    for _ in range(n_pairs):
        q = sentence(rng)[:-1] + "?"
        kind = rng.random()
        if kind < 0.25:
            options = [" ".join(sentence(rng).split()[:3]) for _ in range(3)]
            q += "\nOptions:\n" + "\n".join(f"- {o}" for o in options)
            a = rng.choice(options)
        elif kind < 0.45:
            q += "\nLet's think step by step."
            a = f"{sentence(rng)}\nTherefore, the answer is {' '.join(sentence(rng).split()[:4])}"
        else:
            a = " ".join(sentence(rng).split()[: rng.randint(6, 16)]).rstrip(".") + "."
        pieces.append(f"<QUE> {q} <ANS> {a} </END>")
    return "\n\n".join(pieces)


def make_engine(codec: Any, config: Any, seed: int) -> Any:
    """A ``CannedGenerationEngine`` with a pool of pre-encoded generations (built here, outside timing)."""
    import_test_doubles()
    from tests.doubles.scripted_engine import ScriptedEngine

    from instructpt.engines.base import Generation

    class CannedGenerationEngine(ScriptedEngine):
        """Test double, not a synthesizer: each request gets a canned generation chosen by its record id."""

        name = "canned-generation-test-double"

        def __init__(self, pool: list[tuple[str, list[int]]]) -> None:
            super().__init__(codec=codec, config=config)
            self.pool = pool
            self.busy = 0.0  # seconds spent inside poll(), i.e. the double's own cost

        def submit(self, requests: Sequence[Any]) -> None:
            self._queue.extend(requests)  # unlike the base class, keeps no copy of every request

        def poll(self) -> list[Generation]:
            start = time.perf_counter()
            out = []
            while self._queue:
                req = self._queue.popleft()
                text, ids = self.pool[zlib.crc32(req.record_id.encode()) % len(self.pool)]
                n_prompt = len(req.prompt_ids or ())
                out.append(Generation(req.key, text, "stop", ids, n_prompt, len(ids)))
            self.busy += time.perf_counter() - start
            return out

    rng = random.Random(seed)
    texts = [canned_generation(rng, rng.randint(4, 6)) for _ in range(POOL)]
    pool = [(t, codec.encode(t) + [codec.eos_token_id]) for t in texts]
    return CannedGenerationEngine(pool)


# ---- the stage and the baselines ----
@dataclass
class StageRun:
    summary: Summary
    wall: float
    cpu: float
    engine_busy: float  # seconds inside the engine double's poll()


def run_stage(
    corpus: Path, out: Path, codec: Any, rounds: int, seed: int, profiler: cProfile.Profile | None = None
) -> StageRun:
    """One ``synthesize()`` run with the canned-generation test double (built before the clock starts)."""
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    engine_cfg = EngineConfig(
        name="transformers", model="canned-test-double", max_model_len=4096, max_new_tokens=400
    )
    cfg = SynthesizeConfig(
        inputs=[str(corpus)], output=str(out), engine=engine_cfg, rounds=rounds, progress=False
    )
    engine = make_engine(codec, engine_cfg, seed)
    if profiler is not None:
        profiler.enable()
    try:
        summary, wall, cpu = timed(lambda: synthesize(cfg, engine=engine))
    finally:
        if profiler is not None:
            profiler.disable()
    return StageRun(summary, wall, cpu, engine.busy)


def run_baseline(corpus: Path, out: Path, codec: Any, pairs: list[dict[str, str]], batched: bool) -> int:
    """The bare minimum: json.loads, one exact encode of each context block, json.dumps + write; no scheduling.
    ``batched``: 1000 docs per ``HFCodec.encode_batch`` call."""
    from instructpt.wire import context_block

    n = 0
    with open(corpus, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        while lines := [line for _, line in zip(range(1000 if batched else 1), src)]:
            docs = [json.loads(line) for line in lines]
            blocks = [context_block(d["text"]) for d in docs]
            all_ids = codec.encode_batch(blocks) if batched else [codec.encode(b) for b in blocks]
            for doc, ids in zip(docs, all_ids):
                row = {"id": doc["id"], "text": doc["text"], "pairs": pairs, "prompt_tokens": len(ids)}
                dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += len(docs)
    return n


class PrecomputedCodec:
    """Bench-only codec: ``encode_batch`` looks the ids up (computed beforehand), to time the stage without
    tokenizing. Everything else goes to the real codec."""

    def __init__(self, codec: Any, texts: Sequence[str]) -> None:
        self.codec, self.eos_token_id = codec, codec.eos_token_id
        self.table = dict(zip(texts, codec.encode_batch(texts)))

    def encode(self, text: str) -> list[int]:
        return self.codec.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.table[t] for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return self.codec.decode(ids)


# ---- what each component costs alone ----
def _components(lines: list[str], codec: Any, generations: list[str]) -> dict[str, Callable[[], Any]]:
    from instructpt.records import SynthRecord
    from instructpt.wire import context_block, parse_generation

    docs = [json.loads(s) for s in lines]
    blocks = [context_block(d["text"]) for d in docs]
    pairs = parse_generation(generations[0]).pairs
    info = {"engine": "transformers", "model": "m", "revision": None}
    records = [
        SynthRecord(d["id"], d["id"], "c.jsonl", d["text"], pairs, d["id"], 0, synthesizer=info) for d in docs
    ]
    chunks = [blocks[i : i + 1000] for i in range(0, len(blocks), 1000)]
    parts: dict[str, Callable[[], Any]] = {
        "json.loads per line": lambda: [json.loads(s) for s in lines],
        "HFCodec.encode per doc": lambda: [codec.encode(b) for b in blocks],
        "HFCodec.encode_batch (1000/call, as the stage)": lambda: [codec.encode_batch(c) for c in chunks],
        "parse_generation per doc": lambda: [
            parse_generation(generations[i % len(generations)]) for i in range(len(docs))
        ],
        "  its stray-marker check (any over MARKERS)": _marker_check(generations, len(docs), fast=False),
        "  the same check behind a '<' fast path": _marker_check(generations, len(docs), fast=True),
        "SynthRecord.to_dict": lambda: [r.to_dict() for r in records],
        "json.dumps(record, ensure_ascii=False)": lambda: [
            json.dumps(r.to_dict(), ensure_ascii=False) for r in records
        ],
    }
    try:
        import orjson

        parts["orjson.dumps(record)"] = lambda: [orjson.dumps(r.to_dict()) for r in records]
    except ImportError:
        pass
    return parts


def _marker_check(generations: list[str], n_docs: int, fast: bool) -> Callable[[], int]:
    """The ``stray_marker`` test of ``format._parse_piece`` over every pair of ``n_docs`` generations."""
    from instructpt.wire import MARKERS, parse_generation

    pair_lists = [[(p.question, p.answer) for p in parse_generation(g).pairs] for g in generations]

    def run() -> int:
        hits = 0
        for i in range(n_docs):
            for q, a in pair_lists[i % len(pair_lists)]:
                if fast and "<" not in q and "<" not in a:
                    continue
                hits += any(m in q or m in a for m in MARKERS)
        return hits

    return run


def measure_components(corpus: Path, n: int, codec: Any, base: float, repeats: int = 3) -> None:
    """Each component alone over the first ``n`` docs, best of ``repeats`` CPU times, printed as docs/s."""
    lines = corpus.read_text(encoding="utf-8").splitlines()[:n]
    generations = [canned_generation(random.Random(i)) for i in range(64)]
    print(f"\nComponents alone, {len(lines):,} docs, best of {repeats} (separate in-memory passes):")
    for label, fn in _components(lines, codec, generations).items():
        best = min((timed(fn) for _ in range(repeats)), key=lambda t: t[2])
        print(rate_line(label, len(lines), best[1], best[2], base, TARGET))


# ---- profile ----
def _code_key(fn: Any) -> tuple[str, int, str]:
    code = fn.__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _phases() -> dict[str, list[Any]]:
    from instructpt import wire
    from instructpt.engines.tokenizer import HFCodec
    from instructpt.io import readers, shards
    from instructpt.records import SynthRecord
    from instructpt.synthesizer import chains

    return {
        "reading (readers._read_jsonl)": [readers._read_jsonl],
        "tokenizing (HFCodec.encode/encode_batch)": [HFCodec.encode, HFCodec.encode_batch],
        "prompt building (ChainRunner.next_request)": [chains.ChainRunner.next_request],
        "parsing (parse_generation)": [wire.parse_generation],
        "chain history (ChainRunner._extend_history)": [chains.ChainRunner._extend_history],
        "record objects (ChainRunner._record)": [chains.ChainRunner._record],
        "serializing (SynthRecord.to_dict)": [SynthRecord.to_dict],
        "writing (ShardedOutput.write_shard)": [shards.ShardedOutput.write_shard],
    }


def profile_stage(corpus: Path, out: Path, codec: Any, rounds: int, seed: int) -> None:
    """cProfile one stage run; print time by phase (inclusive times of disjoint calls) and top functions."""
    profiler = cProfile.Profile()
    run_stage(corpus, out, codec, rounds, seed, profiler)
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(v[2] for v in table.values())
    print(f"\ncProfile of synthesize() rounds={rounds} ({total:.2f} s profiled), by phase:")
    poll_file = make_engine.__code__.co_filename
    rows = {
        label: sum(table.get(_code_key(f), (0, 0, 0, 0))[3] for f in fns) for label, fns in _phases().items()
    }
    rows["engine test double (poll)"] = sum(
        v[3] for k, v in table.items() if k[2] == "poll" and k[0] == poll_file
    )
    rows["rest (scheduling loop, stats, shard setup, ...)"] = total - sum(rows.values())
    for label, ct in rows.items():
        print(f"  {label:<48} {ct:7.3f} s  {100 * ct / total:5.1f} %")
    print("\nTop functions by own time:")
    stats.sort_stats("tottime").print_stats(12)


# ---- main ----
def setup(root: Path, n_docs: int, seed: int, layout: str) -> tuple[Any, Any, Path]:
    """Train the tokenizer, write the corpus, warm the tokenizer up; print what was built. Returns the codec
    the stage builds for it and the same tokenizer without cached segment encoding (``plain``), and the corpus."""
    from instructpt.engines.tokenizer import HFCodec

    rng = random.Random(seed)
    tokenizer, tok_s, _ = timed(lambda: TOKENIZERS[layout](root / "tokenizer", rng))
    codec, plain = HFCodec(tokenizer), HFCodec(tokenizer, fast=False)
    rows = ({"id": f"d{i}", "text": abstract_text(rng, rng.randint(200, 300))} for i in range(n_docs))
    corpus = write_jsonl(root / "corpus.jsonl", rows)
    sample = [json.loads(s)["text"] for s in corpus.read_text(encoding="utf-8").splitlines()[:500]]
    n_tok = sum(map(len, codec.encode_batch(sample))) / len(sample)
    n_words = sum(len(t.split()) for t in sample) / len(sample)
    print(
        f"cores {sorted(os.sched_getaffinity(0))}; tokenizer: {layout} BPE, vocab {len(tokenizer):,} "
        f"(trained in {tok_s:.1f} s); corpus {n_docs:,} docs, mean {n_words:.0f} words / {n_tok:.0f} tokens; "
        f"cached segment encoding: {'on' if codec.fast is not None else 'not for this layout'}"
    )
    return codec, plain, corpus


def baselines(root: Path, corpus: Path, codec: Any, seed: int) -> float:
    """Both baselines; returns the per-doc baseline's docs per CPU second."""
    from instructpt.wire import parse_generation

    pairs = [p.to_dict() for p in parse_generation(canned_generation(random.Random(seed))).pairs]
    n, wall, cpu = timed(lambda: run_baseline(corpus, root / "baseline.jsonl", codec, pairs, batched=False))
    _, b_wall, b_cpu = timed(
        lambda: run_baseline(corpus, root / "baseline-b.jsonl", codec, pairs, batched=True)
    )
    print(f"\nStage vs baseline and the {TARGET:,} docs/s target (one core; ratios use CPU-time rates):")
    print(rate_line("baseline: loads + encode + dumps per doc", n, wall, cpu, None, TARGET))
    print(rate_line("baseline, encode_batch per 1000", n, b_wall, b_cpu, n / cpu, TARGET))
    return n / cpu


def stage_runs(root: Path, corpus: Path, codec: Any, plain: Any, seed: int, base: float) -> None:
    """The stage at rounds=1 and 2, and with tokenization precomputed (its own overhead)."""
    from instructpt.wire import context_block

    texts = [json.loads(s)["text"] for s in corpus.read_text(encoding="utf-8").splitlines()]
    precomputed = PrecomputedCodec(codec, [context_block(t) for t in texts])
    gc.collect()
    gc.freeze()  # the bench's own objects (the id table above) stay out of every collection below
    runs = [  # label, rounds, codec, GC threshold
        ("synthesize() rounds=1", 1, codec, None),
        ("synthesize() rounds=2", 2, codec, None),
        ("  ... without cached segment encoding", 2, plain, None),
        ("  ... + the CLI's GC threshold", 2, codec, GC_THRESHOLD[0]),
        ("rounds=2, ids precomputed (no tokenizing)", 2, precomputed, None),
        ("  ... + the CLI's GC threshold", 2, precomputed, GC_THRESHOLD[0]),
    ]
    for k, (label, rounds, run_codec, threshold) in enumerate(runs):
        with gc_threshold(threshold):
            run = run_stage(corpus, root / f"out-{k}", run_codec, rounds, seed)
        c = run.summary.counts
        print(rate_line(label, c["docs_out"], run.wall, run.cpu, base, TARGET))
        print(
            f"      records {c['records_out']:,}, pairs {c['pairs_out']:,}, chains {c['chains']:,}, reused generations "
            f"{c.get('reused_generations', 0):,}; inside the engine double {run.engine_busy:.3f} s"
        )
    gc.unfreeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents in the generated corpus")
    parser.add_argument("--component-docs", type=int, default=2_000, help="documents per component pass")
    parser.add_argument(
        "--profile-docs", type=int, default=3_000, help="documents in the profiled run (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tokenizer", choices=sorted(TOKENIZERS), default="llama-layout",
        help="layout of the 32k BPE trained here (llama-layout: the released synthesizer's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    pin_one_core()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        root = Path(tmp)
        codec, plain, corpus = setup(root, args.docs, args.seed, args.tokenizer)
        base = baselines(root, corpus, plain, args.seed)
        stage_runs(root, corpus, codec, plain, args.seed, base)
        measure_components(corpus, args.component_docs, codec, base)
        if args.profile_docs:
            lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)[: args.profile_docs]
            small = root / "profile.jsonl"
            small.write_text("".join(lines), encoding="utf-8")
            profile_stage(small, root / "out-profile", codec, 2, args.seed)


if __name__ == "__main__":
    main()
