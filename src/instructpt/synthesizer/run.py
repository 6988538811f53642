"""The ``synthesize`` stage: raw corpus in, instruction-response pairs out, streaming and resumable.

    instructpt synthesize INPUT... -o OUT --engine transformers --model DIR_OR_HF_ID --rounds 2

Input records are cut into shards of ``--shard-size`` records (bad records included, so shard boundaries never
move). Each open shard's texts are split to fit the token budget, grouped into chains (chains.py) and run on the
engine; several shards are open at once so the engine always has work. What is in flight is bounded by requests
(``--max-inflight``) and by prompt + new tokens (``--max-inflight-tokens``, by default the engine's KV-cache
capacity); a chain's next step goes before chains not yet started. A finished shard is written atomically with its
rejects, stats and (with ``--id-field``) the hashes of the ids it kept, then marked done; a re-run skips done shards
and produces the same output as an uninterrupted run (greedy decoding).

A failed request (after the engine's own retries) becomes an ``engine_error`` reject and the run goes on; but
``--max-consecutive-errors`` failures in a row mean the engine or server is down, and the run stops with an error
instead of rejecting the rest of the corpus. Shards that finished during such a streak are held back, so a re-run
redoes them rather than keeping the outage's failures as rejects. ``--retry-errors`` runs finished shards that hold
``engine_error`` rejects again, whole.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from instructpt.engines.base import Engine, load_engine
from instructpt.errors import ConfigError
from instructpt.io.ids import SeenIds, unpack
from instructpt.io.inputs import input_files
from instructpt.io.readers import check_columns
from instructpt.io.shards import ShardedOutput
from instructpt.progress import Progress
from instructpt.records import RawDoc, Reject, synth_record_schema
from instructpt.stages import RunInfo, ShardPlan, Summary, open_output, summarize
from instructpt.synthesizer.config import SynthesizeConfig
from instructpt.synthesizer.ids import mark_repeated
from instructpt.synthesizer.scheduler import Synthesizer, input_shards, progress_total

__all__ = ["HEADLINE", "RENAMED", "ShardWorker", "Synthesizer", "open_synth_output", "synthesize"]

HEADLINE = ("docs_in", "rejected", "engine_errors", "docs_out", "records_out", "chains", "pairs_out")
RENAMED = {"docs_rejected": "", "pairs": "pairs_out"}


def synthesize(
    config: SynthesizeConfig, engine: Engine | None = None, plan: ShardPlan | None = None
) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``.

    ``engine``: an engine already built (it is left open); by default one is built from ``config.engine`` and
    closed at the end. Its start-up and shutdown are timed apart from the work."""
    plan = plan or config.shard_plan()
    out = open_synth_output(config, plan)
    already = len(out.completed_shards())
    if config.ray.enabled:
        if engine is not None:
            raise ConfigError("with --ray the actors build their engines: pass no engine")
        return _on_ray(config, out, plan, already)
    own_engine = engine is None
    t0 = time.monotonic()
    engine = engine or load_engine(config.engine)
    t1 = t2 = time.monotonic()
    try:
        synth = Synthesizer(config, engine, out, plan)
        synth.run()
        t2 = time.monotonic()
    finally:
        if own_engine:
            engine.close()
    t3 = time.monotonic()
    run = RunInfo("docs", synth.progress.docs, t2 - t1, t1 - t0, t3 - t2)
    run.shards_resumed, run.shards_retried = already - synth.retried, synth.retried
    return summarize(out, run, HEADLINE, _derived, plan)


def open_synth_output(config: SynthesizeConfig, plan: ShardPlan | None = None) -> ShardedOutput:
    """The run directory, created or checked for resume; a missing input, or one without the text column, fails
    here, before a model is loaded."""
    files = input_files(config.inputs, (config.output,))
    check_columns(config.inputs, config.read_options)
    return open_output(
        config, "synthesize", config.fingerprint(), plan, renamed=RENAMED, inputs=files,
        schema=functools.partial(synth_record_schema, samples=config.num_samples > 1),
    )  # fmt: skip


def _on_ray(config: SynthesizeConfig, out: ShardedOutput, plan: ShardPlan, already: int) -> Summary:
    """The driver of a run on Ray: reads and cuts the input, decides repeated ids in shard order (as one process
    would), and hands each unfinished shard to the actors (scale/ray.py); then merges the stats."""
    from instructpt.scale.ray import run_on_ray

    if config.retry_errors:
        raise ConfigError("--retry-errors is not supported with --ray yet: run it without --ray")
    total, meter = progress_total(config)
    progress = Progress("synthesize", total=total, enabled=config.progress, unit="docs")
    earlier = SeenIds() if config.id_field else None

    def shards() -> Iterator[tuple[int, list[RawDoc | Reject]]]:
        for index, chunk in input_shards(config, meter):
            if not plan.owns(index):
                progress.exclude(len(chunk))
            elif out.is_done(index):
                packed = out.read_ids(index) if earlier is not None else None
                if earlier is not None and packed is not None:
                    earlier.add_many(unpack(packed))
                progress.skip(len(chunk))
            else:
                if earlier is not None:
                    chunk, kept = mark_repeated(chunk, earlier)
                    earlier.add_many(kept)
                yield index, chunk

    def done(result: tuple[int, int]) -> None:
        progress.update(docs=result[0], pairs=result[1])

    start = time.monotonic()
    startup = run_on_ray(
        config.ray, ShardWorker, (config,), shards(), done, gpus=lambda ray: _gpus(ray, config)
    )
    progress.close()
    run = RunInfo("docs", progress.docs, time.monotonic() - start - startup, startup)
    run.shards_resumed = already
    return summarize(out, run, HEADLINE, _derived, plan)


class ShardWorker:
    """An engine replica and the output directory in a Ray actor: synthesizes one shard of records per call (with
    --id-field the driver has turned repeated ids into rejects already); returns (records read, pairs made)."""

    def __init__(self, config: SynthesizeConfig) -> None:
        # the driver opened (or cleared, with --overwrite) the directory and chose the shards: an actor, restarted
        # or not, must do neither again
        config = replace(config, progress=False, overwrite=False)
        plan = ShardPlan()
        self.synth = Synthesizer(config, load_engine(config.engine), open_synth_output(config, plan), plan)

    def __call__(self, index: int, chunk: list[RawDoc | Reject]) -> tuple[int, int]:
        before = self.synth.progress.pairs
        self.synth.run(iter([(index, chunk)]))
        return len(chunk), self.synth.progress.pairs - before


def _gpus(ray: Any, config: SynthesizeConfig) -> float:
    """GPUs per engine replica: vLLM's tensor parallel size, 1 for transformers where the cluster has GPUs."""
    e = config.engine
    if e.name == "vllm":
        return float(e.vllm.tensor_parallel_size)
    return 1.0 if e.name == "transformers" and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _derived(counts: dict[str, Any]) -> dict[str, Any]:
    docs_out = counts.get("docs_out", 0)
    return {"pairs_per_doc_mean": round(counts.get("pairs_out", 0) / docs_out, 4) if docs_out else 0.0}


main = synthesize
Config = SynthesizeConfig
