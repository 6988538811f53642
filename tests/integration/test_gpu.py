"""The transformers engine and the stage on a CUDA GPU, with the tiny trained synthesizer. These run on the
accelerator machine when one is lent (``scripts/gpu-check.sh``) and are skipped elsewhere with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from instructpt.engines.base import Request, load_engine  # noqa: E402
from instructpt.engines.config import EngineConfig, TransformersOptions  # noqa: E402
from instructpt.io.shards import read_shard  # noqa: E402
from instructpt.synthesizer.run import SynthesizeConfig, synthesize  # noqa: E402
from instructpt.wire import build_prompt, parse_generation  # noqa: E402
from tests.tinymodel import make_example  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the accelerator machine)"),
]

TEXTS = [
    "The small river feeds the garden. The old doctor opens the bank.",
    "The bright engine heats the bridge.",
    "The careful farmer builds the library. The warm cell moves the forest. The quiet queen holds the sensor.",
]


def _engine(tiny_synth: Path, **kw):
    kw = {"max_model_len": 512, "max_new_tokens": 48, **kw}
    options = TransformersOptions(device="cuda", batch_size=2)
    return load_engine(EngineConfig(name="transformers", model=str(tiny_synth), **kw, transformers=options))


def _requests(engine):
    prompts = [build_prompt([], t) for t in TEXTS]
    return [Request(i, p, engine.codec.encode(p), f"r{i}") for i, p in enumerate(prompts)]


def test_auto_dtype_on_cuda_is_half_precision_and_generates_pairs(tiny_synth: Path) -> None:
    with _engine(tiny_synth) as engine:
        assert engine.device.type == "cuda" and engine.model.dtype in (torch.bfloat16, torch.float16)
        gens = engine.generate(_requests(engine))
    assert [g.key for g in gens] == [0, 1, 2] and all(g.ok for g in gens)
    stopped = [g for g in gens if g.finish_reason == "stop"]
    assert stopped and all(parse_generation(g.text).pairs for g in stopped)


def test_float32_on_cuda_matches_the_cpu_engine(tiny_synth: Path) -> None:
    with _engine(tiny_synth, dtype="float32") as gpu:
        on_gpu = gpu.generate(_requests(gpu))
    with load_engine(
        EngineConfig(
            name="transformers",
            model=str(tiny_synth),
            max_model_len=512,
            max_new_tokens=48,
            transformers=TransformersOptions(device="cpu"),
        )
    ) as cpu:
        on_cpu = cpu.generate(_requests(cpu))
    assert [g.token_ids for g in on_gpu] == [g.token_ids for g in on_cpu]


def test_the_stage_runs_chains_on_cuda(tiny_synth: Path, tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": make_example(rng)[0]}) + "\n" for _ in range(60)))
    engine = EngineConfig(
        name="transformers",
        model=str(tiny_synth),
        max_model_len=384,
        max_new_tokens=48,
        transformers=TransformersOptions(device="cuda"),
    )
    cfg = SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "out"), engine=engine, rounds=3,
                           shard_size=20, progress=False)  # fmt: skip
    summary = synthesize(cfg)
    records = [r for p in sorted((tmp_path / "out" / "data").iterdir()) for r in read_shard(p)]
    assert summary.counts["docs_out"] == 60 and len(records) == 60
    assert summary.counts["pairs_out"] > 0 and max(r["chain_pos"] for r in records) >= 1
    assert all(r["prompt_tokens"] <= 384 - 48 for r in records)
