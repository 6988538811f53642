"""The learning-rate schedules and the batch split of the training loop (pure functions, no model)."""

from __future__ import annotations

import pytest

from instructpt.errors import ConfigError
from instructpt.train.distributed import World
from instructpt.train.loop import TrainOptions, lr_at


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
