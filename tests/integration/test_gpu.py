"""The transformers engine and the stage on a CUDA GPU, with the tiny trained synthesizer. These run on the
accelerator machine when one is lent (``scripts/gpu-check.sh``) and are skipped elsewhere with the reason."""

from __future__ import annotations

import json
import shutil
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


def test_pretrain_on_cuda_learns_resumes_and_exports(tiny_synth: Path, tmp_path: Path) -> None:
    """bf16 autocast, fused AdamW, document masking, DCP checkpoints written from CUDA tensors and read back, and
    an export that loads on the CPU."""
    from transformers import AutoModelForCausalLM

    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.train.options import TrainOptions
    from tests.integration.test_pretrain import make_mixture

    mix_dir = make_mixture(tmp_path, tiny_synth)

    def run(out: Path, export: bool = False) -> dict:
        opts = TrainOptions(max_steps=40, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=3, checkpoint_every=5,
                            keep_checkpoints=10, log_every=5, eval_blocks=4, device="cuda", doc_masking=True)  # fmt: skip
        cfg = PretrainConfig(data=str(mix_dir), output=str(out), progress=False, export=export, train=opts)
        return pretrain(cfg).to_dict()

    def losses(out: Path) -> list[float]:
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if not r.get("final")]

    whole = run(tmp_path / "whole", export=True)
    curve = losses(tmp_path / "whole")
    assert len(curve) == 40 and curve[-1] < 0.6 * curve[0]
    assert whole["counts"]["val_loss"] < curve[0]
    # the same run as if it had stopped after its step-20 checkpoint, resumed to the end
    shutil.copytree(tmp_path / "whole", tmp_path / "split", ignore=shutil.ignore_patterns("model"))
    for late in sorted((tmp_path / "split" / "checkpoints").glob("step-*"))[4:]:
        shutil.rmtree(late)
    resumed = run(tmp_path / "split")
    assert resumed["run"]["steps_this_run"] == 20
    again = losses(tmp_path / "split")
    assert len(again) == 40 and again[:20] == curve[:20]
    assert again[-1] == pytest.approx(curve[-1], rel=0.05)  # GPU kernels need not be bitwise repeatable
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "whole" / "model")
    assert model.dtype == torch.float32 and next(model.parameters()).device.type == "cpu"


def test_train_synthesizer_on_cuda_learns_and_measures_quality(tiny_synth: Path, tmp_path: Path) -> None:
    """bf16 autocast with the pair-only loss, held-out generation on CUDA, and the exported synthesizer."""
    from transformers import AutoModelForCausalLM

    from instructpt.train_synthesizer.run import SynthTrainOptions, TrainSynthesizerConfig, train_synthesizer

    sample = Path(__file__).resolve().parents[2] / "src" / "instructpt" / "resources" / "ft_sample"
    base = tmp_path / "base"
    torch.manual_seed(0)
    config = AutoModelForCausalLM.from_pretrained(tiny_synth).config
    AutoModelForCausalLM.from_config(config).save_pretrained(base)  # the tiny synthesizer's shape, untrained
    (base / "tokenizer.json").write_bytes((tiny_synth / "tokenizer.json").read_bytes())
    (base / "tokenizer_config.json").write_bytes((tiny_synth / "tokenizer_config.json").read_bytes())
    train = SynthTrainOptions(max_steps=200, batch_size=8, seq_len=384, lr=3e-3, warmup_steps=10, device="cuda",
                              checkpoint_every=100, log_every=50)  # fmt: skip
    s = train_synthesizer(TrainSynthesizerConfig(inputs=[str(sample)], output=str(tmp_path / "run"), init=str(base),
                                                 heldout_sources=["timetable_exam"], eval_examples=24,
                                                 progress=False, train=train))  # fmt: skip
    counts = s.to_dict()["counts"]
    assert counts["final_loss"] < 1.0 and counts["parse_rate"] >= 0.5
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
