"""pretrain and export on CPU with the tiny preset: end to end, exact resume, torchrun DDP / FSDP2, continual
pre-training, and the refusals."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.errors import ConfigError, InputError, ResumeError
from instructpt.mix.run import MixConfig, mix
from instructpt.pack.run import PackConfig, pack
from instructpt.pretrain.run import PretrainConfig, pretrain
from instructpt.train.options import TrainOptions
from tests.faults import kill_after_checkpoint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TEXT = "The river feeds the garden. However, the old doctor opens the bank. Therefore, the market moves. "


@pytest.fixture(scope="module")
def mixture(tmp_path_factory: pytest.TempPathFactory, tiny_synth: Path) -> Path:
    return make_mixture(tmp_path_factory.mktemp("pretrain-data"), tiny_synth)


def make_mixture(root: Path, tiny_synth: Path) -> Path:
    """A small mixture packed with the tiny synthesizer's tokenizer (blocks of 32 tokens)."""
    corpus = root / "raw.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"r{i}", "text": f"Note {i}. " + TEXT * (1 + i % 3)}) + "\n"
                              for i in range(240)))  # fmt: skip
    pack(
        PackConfig(
            inputs=[str(corpus)], output=str(root / "packed"), tokenizer=str(tiny_synth), progress=False
        )
    )
    mix(
        MixConfig(output=str(root / "mix"), sources=[f"raw={root / 'packed'}"], seq_len=32, val_fraction=0.02)
    )
    return root / "mix"


def _opts(**kw) -> TrainOptions:
    base = {"max_steps": 20, "batch_size": 4, "seq_len": 32, "lr": 3e-3, "warmup_steps": 3, "checkpoint_every": 5,
            "log_every": 5, "eval_blocks": 4}  # fmt: skip
    return TrainOptions(**{**base, **kw})


def _run(mix_dir: Path, out: Path, **kw) -> dict:
    export = kw.pop("export", False)
    init = kw.pop("init", None)
    s = pretrain(PretrainConfig(data=str(mix_dir), output=str(out), progress=False, export=export, init=init,
                                train=_opts(**kw)))  # fmt: skip
    return s.to_dict()


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
            if not json.loads(line).get("final")]  # fmt: skip


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_end_to_end_loss_falls_and_the_export_loads_and_generates(mixture: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    summary = _run(mixture, out, max_steps=40, export=True)
    losses = _losses(out)
    assert (
        len(losses) == 40 and losses[-1] < 0.6 * losses[0]
    )  # from ~ln(2000) = 7.6 towards the data's entropy
    assert summary["counts"]["val_loss"] < losses[0] and summary["run"]["steps_this_run"] == 40
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    ids = tok("Note 3. The river", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        new = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert new.shape[1] == ids.shape[1] + 8 or tok.eos_token_id in new[0].tolist()
    policy = json.loads((out / "model" / "instructpt_special_tokens.json").read_text())
    assert policy["add_bos"] and policy["add_eos"]
    from instructpt import cli

    assert cli.main(["export", str(out), "-o", str(tmp_path / "exported"), "-q"]) == 0
    a, b = _weights(out / "model"), _weights(tmp_path / "exported")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_and_resumed_ends_exactly_as_an_uninterrupted_one(mixture: Path, tmp_path: Path) -> None:
    import torch

    full, part = tmp_path / "full", tmp_path / "part"
    _run(mixture, full)
    call = "from tests.integration.test_pretrain import _run; _run(Path(sys.argv[1]), Path(sys.argv[2]))"
    kill_after_checkpoint(call, [str(mixture), str(part)], part / "checkpoints" / "step-000010", slow_from=12)
    assert (part / "checkpoints" / "step-000010").exists() and not (
        part / "checkpoints" / "step-000020"
    ).exists()
    _run(mixture, part)
    assert _losses(part) == _losses(full)  # the same curve, bitwise (CPU, fp32)
    from instructpt.train.checkpoint import complete

    def params(root: Path) -> dict:
        from instructpt.pretrain.export import ExportConfig, export

        export(ExportConfig(checkpoint=str(root), output=str(root / "hf")))
        return _weights(root / "hf")

    a, b = params(full), params(part)
    assert all(torch.equal(a[k], b[k]) for k in a) and len(complete(part / "checkpoints")) == 2
    metrics = (full / "metrics.jsonl").read_text()
    again = _run(
        mixture, full
    )  # a finished run, run again: nothing trains or is evaluated, and it ends as it did
    assert _losses(full) == _losses(part) and (full / "metrics.jsonl").read_text() == metrics
    final = json.loads(metrics.splitlines()[-1])
    assert final["final"] and again["counts"]["val_loss"] == round(final["val_loss"], 6)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_torchrun_on_two_cpu_processes_matches_one_process(
    mixture: Path, tmp_path: Path, parallel: str
) -> None:
    one = tmp_path / "one"
    _run(mixture, one, max_steps=8)
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "instructpt", "pretrain", "--data", str(mixture), "-o", str(two), "--max-steps", "8", "--batch-size", "4",
           "--seq-len", "32", "--lr", "0.003", "--train.warmup-steps", "3", "--checkpoint-every", "5",
           "--train.eval-blocks", "4", "--train.parallel", parallel, "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same global batches; summed in another order across ranks: equal up to float rounding
    assert _losses(two) == pytest.approx(_losses(one), rel=2e-4)
    assert (two / "model" / "model.safetensors").exists() and json.loads((two / "stats.json").read_text())[
        "counts"
    ]["ranks"] == 2


def test_continual_pretraining_starts_from_the_checkpoints_loss(
    mixture: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from instructpt.mix.reader import MixtureReader
    from instructpt.train.loop import next_token_loss

    reader = MixtureReader(mixture, seq_len=32)
    batch = torch.from_numpy(__import__("numpy").stack([reader.block(k) for k in range(4)]))
    with torch.no_grad():
        want = float(next_token_loss(AutoModelForCausalLM.from_pretrained(tiny_synth), batch))
    out = tmp_path / "continual"
    _run(mixture, out, init=str(tiny_synth), max_steps=3, lr=1e-4)
    assert _losses(out)[0] == pytest.approx(want, rel=1e-5)


def test_refusals_and_a_damaged_checkpoint(mixture: Path, tiny_synth: Path, tmp_path: Path, caplog) -> None:
    from transformers import AutoModelForCausalLM, MistralConfig

    from tests.tinymodel import train_llama_layout_tokenizer

    other_tok = tmp_path / "tok"
    train_llama_layout_tokenizer(other_tok, [TEXT] * 50, vocab_size=400)
    with pytest.raises(
        InputError, match="was packed with tokenizer .* pack the sources with the model's tokenizer"
    ):
        pretrain(
            PretrainConfig(
                data=str(mixture), output=str(tmp_path / "x"), tokenizer=str(other_tok), train=_opts()
            )
        )
    small = tmp_path / "small"  # a checkpoint whose embedding is smaller than the tokenizer
    cfg = MistralConfig(vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                        num_key_value_heads=1, head_dim=16)  # fmt: skip
    AutoModelForCausalLM.from_config(cfg).save_pretrained(small)
    shutil.copy(tiny_synth / "tokenizer.json", small)
    shutil.copy(tiny_synth / "tokenizer_config.json", small)
    with pytest.raises(
        ConfigError, match="embedding 500: use the checkpoint's tokenizer, or --resize-embeddings"
    ):
        _run(mixture, tmp_path / "y", init=str(small))
    out = tmp_path / "z"
    _run(mixture, out, max_steps=10)
    shutil.rmtree(out / "checkpoints" / "step-000010")
    (out / "checkpoints" / "step-000010").mkdir()
    (out / "checkpoints" / "step-000010" / "state.json").write_text(
        '{"step": 10}'
    )  # complete, but no weights
    caplog.set_level(logging.WARNING)
    _run(mixture, out, max_steps=10)
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)
    assert len(_losses(out)) == 10  # resumed from step 5 and trained 6-10 again


def test_a_model_config_file_edited_in_place_is_another_model(
    mixture: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from instructpt.train.model import model_config

    vocab = len(AutoTokenizer.from_pretrained(tiny_synth))
    model_config("tiny", vocab, 32, {}).save_pretrained(tmp_path / "model")
    config_json = tmp_path / "model" / "config.json"

    def run(out: Path) -> dict:
        return pretrain(PretrainConfig(data=str(mixture), output=str(out), model_config=str(config_json),
                                       progress=False, export=False, train=_opts(max_steps=5))).to_dict()  # fmt: skip

    out, legacy = tmp_path / "run", tmp_path / "legacy"
    run(out)
    shutil.copytree(out, legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    assert manifest["fingerprint"]["model_file"]["num_hidden_layers"] == 2
    del manifest["fingerprint"]["model_file"]  # as runs made before the file's contents were recorded
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    assert run(legacy)["counts"]["steps"] == 5  # such a run still resumes (here: is finished)
    unfinished = tmp_path / "unfinished"  # a directory with the old manifest but no checkpoint: recorded anew
    unfinished.mkdir()
    (unfinished / "manifest.json").write_text(json.dumps(manifest))
    run(unfinished)
    assert "model_file" in json.loads((unfinished / "manifest.json").read_text())["fingerprint"]
    edited = json.loads(config_json.read_text())
    edited["num_hidden_layers"] = 1
    config_json.write_text(json.dumps(edited))
    with pytest.raises(ResumeError, match="model_file"):
        run(out)  # the same path, another model: not the finished run of the old one
    with pytest.raises(ResumeError, match="model_file"):
        run(unfinished)
    config_json.write_text("{not json")
    with pytest.raises(ConfigError, match="--model-config .*config.json: cannot read"):
        run(tmp_path / "bad")


_STOPPABLE = """
import sys, time
from instructpt import cli
from instructpt.train import loop
real = loop.Trainer._step
def slow(self, step, total):
    if step >= 2:
        print("STEP", step, flush=True)
        time.sleep(0.3)  # fault injection: slow steps, so SIGTERM lands while training
    return real(self, step, total)
loop.Trainer._step = slow
sys.exit(cli.main(["pretrain", "--data", sys.argv[1], "-o", sys.argv[2], "--max-steps", "40", "--batch-size", "4",
                   "--seq-len", "32", "--checkpoint-every", "100", "--no-export", "-q"]))
"""


def test_sigterm_writes_a_checkpoint_and_exits_143_and_a_rerun_resumes(mixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _STOPPABLE, str(mixture), str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().startswith("STEP")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    from instructpt.train.checkpoint import complete

    (stopped,) = complete(out / "checkpoints")  # written at the step it stopped after (not every 100)
    step = int(stopped.name.split("-")[1])
    assert 2 < step < 40
    s = pretrain(PretrainConfig(data=str(mixture), output=str(out), progress=False, export=False,
                                train=_opts(max_steps=40, checkpoint_every=100, lr=3e-4, warmup_steps=100)))  # fmt: skip
    assert s.run.done_this_run == 40 - step and len(_losses(out)) == 40


def test_document_masking_keeps_attention_within_a_document(mixture: Path, tmp_path: Path) -> None:
    import torch

    from instructpt.train.loop import doc_attention
    from instructpt.train.model import build_model, model_config

    model = build_model(model_config("tiny", 500, 64, {"bos_token_id": 1, "eos_token_id": 2}), 0).eval()
    ids = torch.randint(0, 500, (1, 16))
    doc = torch.tensor([[0] * 8 + [1] * 8])
    with torch.no_grad():
        masked = model(input_ids=ids, **doc_attention(doc)).logits
        alone = model(input_ids=ids[:, 8:]).logits
        plain = model(input_ids=ids).logits
    assert torch.allclose(masked[0, 8:], alone[0], atol=1e-4)  # the second document sees nothing of the first
    assert torch.allclose(masked[0, :8], plain[0, :8], atol=1e-4)
    assert not torch.allclose(masked[0, 8:], plain[0, 8:], atol=1e-4)
    _run(mixture, tmp_path / "masked", max_steps=6, doc_masking=True)
    assert len(_losses(tmp_path / "masked")) == 6
    # the same in bf16 autocast on CPU (--train.precision bf16): the masks and the loss work in bf16 too
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        half = model(input_ids=ids, **doc_attention(doc)).logits
    assert half.dtype == torch.bfloat16 and torch.allclose(half[0, 8:].float(), alone[0], atol=0.1)
    _run(mixture, tmp_path / "bf16", max_steps=6, doc_masking=True, precision="bf16")
    losses = _losses(tmp_path / "bf16")
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)


class _FakeSummaryWriter:
    """Test double of torch.utils.tensorboard.SummaryWriter: records what the loop writes."""

    scalars: list[tuple[str, float, int]] = []

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        pass


def test_metrics_also_go_to_tensorboard_when_asked(mixture: Path, tmp_path: Path, monkeypatch) -> None:
    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _FakeSummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _run(mixture, tmp_path / "tb", max_steps=4, report_to=["tensorboard"])
    losses = [(v, s) for tag, v, s in _FakeSummaryWriter.scalars if tag == "train/loss"]
    assert [s for _, s in losses] == [1, 2, 3, 4, 4]  # then the final line, with the last validation loss
    assert [v for v, _ in losses[:4]] == _losses(tmp_path / "tb")
    assert any(tag == "train/val_loss" for tag, _, _ in _FakeSummaryWriter.scalars)
    with pytest.raises(ConfigError, match="report-to takes tensorboard and wandb"):
        _opts(report_to=["mlflow"])


def test_gradient_accumulation_and_activation_checkpointing_follow_the_same_curve(
    mixture: Path, tmp_path: Path
) -> None:
    _run(mixture, tmp_path / "whole", max_steps=5)
    _run(mixture, tmp_path / "accum", max_steps=5, micro_batch_size=1, activation_checkpointing=True)
    assert _losses(tmp_path / "accum") == pytest.approx(_losses(tmp_path / "whole"), rel=1e-5)


def test_overwrite_starts_over_with_no_checkpoint_left(mixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(mixture, out, max_steps=5, export=True)
    assert (out / "checkpoints" / "step-000005").exists() and (out / "model").exists()
    s = pretrain(PretrainConfig(data=str(mixture), output=str(out), progress=False, export=False, overwrite=True,
                                train=_opts(max_steps=3, lr=1e-3)))  # fmt: skip
    assert s.run.done_this_run == 3 and len(_losses(out)) == 3
    assert not (out / "checkpoints" / "step-000005").exists() and not (out / "model").exists()
