"""The learning-rate schedules, the batch split and the precision of the training loop (no model)."""

from __future__ import annotations

import pytest

from instructpt.errors import ConfigError
from instructpt.train.distributed import World
from instructpt.train.options import TrainOptions, lr_at


def _o(**kw) -> TrainOptions:
    return TrainOptions(max_steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1, **kw)


def test_warmup_then_cosine_to_the_floor() -> None:
    o = _o()
    lrs = [lr_at(s, 100, o) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then it only falls
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_wsd_holds_then_decays_over_the_last_share() -> None:
    o = _o(schedule="wsd", decay_fraction=0.2)
    lrs = [lr_at(s, 100, o) for s in range(100)]
    assert set(lrs[10:80]) == {1.0} and lrs[80] < 1.0 and lrs[-1] == pytest.approx(0.1)
    assert lr_at(50, 100, _o(schedule="constant")) == 1.0


def test_batches_split_over_ranks_and_micro_batches() -> None:
    o = TrainOptions(max_steps=1, batch_size=8, micro_batch_size=2)
    assert o.micro(World(0, 2, 0, "cpu")) == (2, 2)  # 4 sequences per rank in 2 micro-batches of 2
    with pytest.raises(ConfigError, match="multiple of the 3 ranks"):
        o.micro(World(0, 3, 0, "cpu"))
    assert TrainOptions(max_tokens=10_000, batch_size=4, seq_len=100).total_steps() == 25
    assert TrainOptions(epochs=2.5, batch_size=4).total_steps(sequences=10) == 7  # ceil(2.5 x 10 / 4)
    assert TrainOptions(max_steps=3, epochs=2.0).total_steps(sequences=10) == 3  # --max-steps wins
    with pytest.raises(ConfigError, match="needs the number of training sequences"):
        TrainOptions(epochs=1.0).total_steps()
    with pytest.raises(ConfigError, match="--max-steps, --max-tokens or --epochs"):
        TrainOptions()


def test_precision_bf16_autocasts_on_cpu_only_when_asked_and_enters_the_fingerprint_only_when_set() -> None:
    import torch

    from instructpt.train.loop import _autocast

    cpu, a = torch.device("cpu"), torch.ones(4, 4)
    with _autocast(cpu, "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    for precision in ("auto", "fp32"):
        with _autocast(cpu, precision):
            assert (a @ a).dtype == torch.float32
    assert "precision" not in _o().fingerprint()  # runs made before the option keep their fingerprints
    assert _o(precision="bf16").fingerprint()["precision"] == "bf16"
    # written out by hand: a key added or dropped here changes every run's fingerprint (old runs would not resume)
    assert sorted(_o().fingerprint()) == sorted(
        [
            "batch_size",
            "seq_len",
            "max_steps",
            "max_tokens",
            "epochs",
            "lr",
            "min_lr_ratio",
            "warmup_steps",
            "schedule",
            "decay_fraction",
            "weight_decay",
            "beta1",
            "beta2",
            "grad_clip",
            "seed",
            "report_to",
            "doc_masking",
        ]
    )
    with pytest.raises(ConfigError, match="--train.precision takes auto | bf16 | fp32"):
        _o(precision="fp16")
