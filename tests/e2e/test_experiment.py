"""``instructpt experiment`` on the smoke settings: every stage runs (generated data -> rules -> templify -> pack ->
mix -> pretrain both arms -> evaluate -> report), both arms at one token budget, and a re-run redoes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt import cli

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "experiment-smoke.yaml"


@pytest.mark.slow
def test_smoke_experiment_runs_every_stage_and_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "exp"
    assert cli.main(["experiment", "--config", str(SMOKE), "-o", str(out), "-q"]) == 0
    report = json.loads((out / "experiment.json").read_text())
    assert report["arms"] == ["instruction", "vanilla"] and report["seeds"] == [0]
    tokens = report["train_tokens"]
    # the same budget: vanilla takes whole documents up to the instruction mixture's tokens (within one document);
    # both arms then train the same steps of the same batch shape
    assert (
        tokens["instruction"] > 0
        and abs(tokens["vanilla"] - tokens["instruction"]) < 0.05 * tokens["instruction"]
    )
    tasks = report["tasks"]
    assert set(tasks) == {f"{k}_{g}" for k in ("qa", "exact", "storage") for g in ("augmented", "plain")}
    for row in tasks.values():
        for arm in ("instruction", "vanilla"):
            assert 0.0 <= row[arm]["mean"] <= 1.0 and len(row[arm]["per_seed"]) == 1
        diff = row["instruction_minus_vanilla"]["per_seed"][0]
        assert diff == pytest.approx(row["instruction"]["per_seed"][0] - row["vanilla"]["per_seed"][0])
    for stage in ("pairs", "augmented", "packed/raw", "packed/augmented", "mixes/instruction", "mixes/vanilla",
                  "runs/instruction-s0", "runs/vanilla-s0", "evals/instruction-s0", "evals/vanilla-s0"):  # fmt: skip
        assert (out / stage / "manifest.json").exists(), stage
    assert "| qa_plain |" in (out / "report.md").read_text()
    metrics = (out / "runs" / "vanilla-s0" / "metrics.jsonl").read_text()
    # a re-run finds every stage finished: nothing is trained again, the report is the same
    assert cli.main(["experiment", "--config", str(SMOKE), "-o", str(out), "-q"]) == 0
    assert json.loads((out / "experiment.json").read_text())["tasks"] == tasks
    assert (out / "runs" / "vanilla-s0" / "metrics.jsonl").read_text().count('"step": 20') == metrics.count(
        '"step": 20'
    )
