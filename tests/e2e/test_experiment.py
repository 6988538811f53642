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
    assert report["arms"] == ["instruction", "vanilla", "vanilla+tune"] and report["seeds"] == [0]
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
        for arm in ("instruction", "vanilla", "vanilla+tune"):
            assert 0.0 <= row[arm]["mean"] <= 1.0 and len(row[arm]["per_seed"]) == 1
        for other in ("vanilla", "vanilla+tune"):
            diff = row[f"instruction_minus_{other}"]["per_seed"][0]
            assert diff == pytest.approx(row["instruction"]["per_seed"][0] - row[other]["per_seed"][0])
    for stage in ("pairs/*", "augmented/*", "packed/*/raw", "packed/*/augmented", "packed/*/tune",
                  "mixes/*/instruction", "mixes/*/vanilla", "mixes/*/vanilla+tune", "runs/*/instruction-s0",
                  "runs/*/vanilla-s0", "runs/*/vanilla+tune-s0", "evals/*/instruction-s0", "evals/*/vanilla-s0",
                  "evals/*/vanilla+tune-s0"):  # fmt: skip
        assert len(list(out.glob(f"{stage}/manifest.json"))) == 1, stage
    runs = Path(report["directories"]["runs"])
    # the control starts from the vanilla model and trains only its tuning steps
    tune = (Path(report["directories"]["tuned_runs"]) / "vanilla+tune-s0" / "metrics.jsonl").read_text()
    assert '"step": 40' in tune and '"step": 41' not in tune
    assert "| qa_plain |" in (out / "report.md").read_text()
    metrics = (runs / "vanilla-s0" / "metrics.jsonl").read_text()
    # a re-run finds every stage finished: nothing is trained again, the report is the same
    assert cli.main(["experiment", "--config", str(SMOKE), "-o", str(out), "-q"]) == 0
    assert json.loads((out / "experiment.json").read_text())["tasks"] == tasks
    assert len(list(out.glob("studies/*/report.md"))) == 1  # the same study
    assert (runs / "vanilla-s0" / "metrics.jsonl").read_text().count('"step": 20') == metrics.count(
        '"step": 20'
    )
    # a changed training setting trains and evaluates again, into new directories; data, pack and mix are reused
    assert (
        cli.main(["experiment", "--config", str(SMOKE), "-o", str(out), "--train.max-steps", "10", "-q"]) == 0
    )
    assert (
        len(list(out.glob("runs/*"))) == len(list(out.glob("evals/*"))) == 4
    )  # pre-trained and tuned, twice
    assert len(list(out.glob("mixes/*"))) == len(list(out.glob("pairs/*"))) == 1
    assert len(list(out.glob("packed/*"))) == 2  # the raw corpus's, and the augmented and tuning data's
    # a changed tuning setting runs the tuning phase (and its evaluation) only
    before = {p: p.read_text() for p in out.glob("runs/*/*-s0/metrics.jsonl")}
    args = [
        "experiment",
        "--config",
        str(SMOKE),
        "-o",
        str(out),
        "--train.max-steps",
        "10",
        "--tune-steps",
        "5",
    ]
    assert cli.main([*args, "-q"]) == 0
    assert len(list(out.glob("runs/*"))) == len(list(out.glob("evals/*"))) == 5
    assert {
        p: p.read_text() for p in before
    } == before  # nothing pre-trained or tuned before is trained again
    studies = {p.parent.name: json.loads(p.read_text()) for p in out.glob("studies/*/experiment.json")}
    assert len(studies) == 3 and studies[Path(report["directories"]["study"]).name]["tasks"] == tasks


@pytest.mark.slow
def test_gold_pairs_go_through_templify(tmp_path: Path) -> None:
    out = tmp_path / "gold"
    args = ["experiment", "--config", str(SMOKE), "-o", str(out), "--synthesizer", "gold", "--train.max-steps", "4",
            "--tune-steps", "2", "-q"]  # fmt: skip
    assert cli.main(args) == 0
    (stats,) = out.glob("augmented/*/stats.json")
    assert not (out / "pairs").exists() and json.loads(stats.read_text())["counts"]["pairs_out"] == 12 * 5


@pytest.mark.slow
def test_the_trained_synthesizer_goes_through_the_real_pipeline(tmp_path: Path) -> None:
    """synthesizer: trained: a base model pre-trained on the corpus, fine-tuned by train-synthesizer on the
    collection about other people, then synthesize with the transformers engine. A few steps make no usable
    synthesizer: the run then stops with the reason instead of comparing arms without pairs."""
    from instructpt.errors import InputError
    from instructpt.experiment.run import ExperimentConfig, experiment
    from instructpt.train.options import TrainOptions

    cfg = ExperimentConfig(output=str(tmp_path / "t"), entities=8, seeds=[0], synthesizer="trained",
                           synth_base_steps=4, synth_steps=4,
                           train=TrainOptions(max_steps=4, batch_size=4, seq_len=64, warmup_steps=1, device="cpu"))  # fmt: skip
    try:
        experiment(cfg)
    except InputError as exc:
        assert "--synth-steps" in str(exc)
    (model,) = (tmp_path / "t").glob("synthesizer/*/trained/model")
    assert (model / "model.safetensors").exists() and (model / "tokenizer.json").exists()
    records = [json.loads(line) for f in (tmp_path / "t").glob("pairs/*/data/*.jsonl") for line in f.open()]
    assert len(records) == 8 and all(r["synthesizer"]["engine"] == "transformers" for r in records)
    assert all(r["synthesizer"]["model"] == str(model) for r in records)


@pytest.mark.slow
def test_a_corpus_of_your_own_continual_from_a_checkpoint_with_a_synthesizer_model_and_both_arms_tuned(
    tmp_path: Path, tiny_synth: Path
) -> None:
    """--corpus (any files) with --suite, --synthesizer model (the tiny synthesizer, run as a synthesize YAML
    says), --init (continual pre-training: every arm starts from a checkpoint, with its tokenizer), --general (the
    domain recipe), --compare-tuned (instruction+tune against vanilla+tune), and every
    pre-training run through --launcher (here this Python: a separate process reading the run's YAML)."""
    import sys

    from instructpt.config import load_yaml
    from instructpt.experiment.micro import generate

    data = generate(tmp_path / "data", entities=8, seed=1)
    general = tmp_path / "general.jsonl"
    rows = [{"instruction": f"Question: What is {a} plus {a}?\nAnswer: {2 * a}"} for a in range(40)]
    general.write_text("".join(json.dumps(r) + "\n" for r in rows))
    synth_yaml = tmp_path / "synth.yaml"
    synth_yaml.write_text(
        "engine:\n  name: transformers\n  max_model_len: 512\n  max_new_tokens: 24\nrounds: 1\n"
    )
    out = tmp_path / "exp"
    args = ["experiment", "-o", str(out), "--corpus", str(data["corpus"]), "--id-field", "id",
            "--suite", str(data["tasks"]), "--synthesizer", "model", "--synthesizer-model", str(tiny_synth),
            "--synthesize-config", str(synth_yaml), "--init", str(tiny_synth), "--general", str(general),
            "--general-text-field", "instruction", "--compare-tuned", "--launcher", sys.executable, "--pack-workers", "1",
            "--seeds", "0", "--tune-steps", "2", "--eval-limit", "4", "--train.max-steps", "3",
            "--train.batch-size", "4", "--train.seq-len", "64", "--train.warmup-steps", "1", "--train.device",
            "cpu", "--train.checkpoint-every", "1000", "-q"]  # fmt: skip
    assert cli.main(args) == 0
    report = json.loads((out / "experiment.json").read_text())
    assert report["arms"] == ["instruction", "vanilla", "vanilla+tune", "instruction+tune"]
    for row in report["tasks"].values():
        diff = row["instruction+tune_minus_vanilla+tune"]["per_seed"][0]
        assert diff == pytest.approx(
            row["instruction+tune"]["per_seed"][0] - row["vanilla+tune"]["per_seed"][0]
        )
    assert "instruction+tune - vanilla+tune" in (out / "report.md").read_text()
    # every document went to the synthesizer model (the domain recipe converts all of them)
    records = [json.loads(line) for f in out.glob("pairs/*/data/*.jsonl") for line in f.open()]
    assert len(records) == 16 and {r["synthesizer"]["model"] for r in records} == {str(tiny_synth)}
    assert {r["synthesizer"]["engine"] for r in records} == {"transformers"}
    (mixture,) = out.glob("mixes/*/instruction/mixture.json")
    assert json.loads(mixture.read_text())["preset"] == "domain"
    runs, tuned = Path(report["directories"]["runs"]), Path(report["directories"]["tuned_runs"])
    for arm in report["arms"]:  # each run through the launcher, from its YAML
        where = tuned if "+" in arm else runs
        assert (where / f"{arm}-s0" / "model" / "config.json").exists()
        init = load_yaml(where / f"{arm}-s0.yaml")["init"]
        assert init == (str(runs / f"{arm.split('+')[0]}-s0" / "model") if "+" in arm else str(tiny_synth))
    metrics = (tuned / "instruction+tune-s0" / "metrics.jsonl").read_text()
    assert '"step": 2' in metrics and '"step": 3' not in metrics  # the tuning steps alone
