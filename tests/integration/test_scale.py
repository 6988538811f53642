"""Scale-out: --world-size/--rank (flags, Slurm arrays, torchrun variables), processes sharing one output
directory, `instructpt verify`, and the stages on a local Ray cluster (byte-identical output, an actor killed
mid-run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig, TransformersOptions
from instructpt.errors import ConfigError, EngineError, InputError
from instructpt.scale.ray import TEST_EXIT_ENV, RayOptions
from instructpt.stages import ShardPlan, plan_from
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify
from instructpt.verify import VerifyConfig, verify

TEXTS = [
    "Glaciers form where more snow falls in winter than melts in summer. Over many years, the snow is pressed "
    "into dense ice. Consequently, the ice begins to flow downhill under its own weight. In contrast, sea ice "
    "forms when ocean water freezes at the surface. Both kinds of ice reflect sunlight back into space.",
    "The town council met on Tuesday to discuss the new bridge. Construction was delayed due to heavy rain in "
    "the spring. Therefore, the opening has moved to next year. In addition, the budget grew by a fifth. The "
    "council thanked the engineers for their patience and asked for monthly reports on the work.",
]


def _corpus(path: Path, n: int = 40) -> Path:
    lines = [json.dumps({"id": f"d{i}", "text": f"Record {i}. " + TEXTS[i % 2]}) for i in range(n)]
    lines.insert(7, "{broken json")
    lines.insert(20, json.dumps({"id": "empty", "text": ""}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path: Path, corpus: Path, name: str, **kw) -> SynthesizeConfig:
    kw.setdefault("engine", EngineConfig(name="rules"))
    return SynthesizeConfig(
        inputs=[str(corpus)], output=str(tmp_path / name), shard_size=6, id_field="id", progress=False, **kw
    )


def _same_output(a: str, b: str) -> None:
    for name in ("data", "rejects"):
        left = sorted(p.name for p in (Path(a) / name).iterdir())
        assert left == sorted(p.name for p in (Path(b) / name).iterdir())
        for f in left:
            assert (Path(a) / name / f).read_bytes() == (Path(b) / name / f).read_bytes(), f


def test_shard_plan_from_flags_slurm_and_torchrun() -> None:
    assert plan_from(None, None, {}) == ShardPlan(0, 1)
    assert plan_from(2, 4, {}) == ShardPlan(2, 4)
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    assert plan_from(None, None, slurm) == ShardPlan(4, 8)
    assert plan_from(None, None, {"RANK": "3", "WORLD_SIZE": "4"}) == ShardPlan(3, 4)
    assert plan_from(1, 2, {"RANK": "3", "WORLD_SIZE": "4"}) == ShardPlan(1, 2)  # flags first
    with pytest.raises(ConfigError, match="--rank"):
        plan_from(None, 3, {})
    with pytest.raises(ConfigError, match="--world-size"):
        plan_from(1, None, {})
    with pytest.raises(ConfigError, match="rank 4 of world size 4"):
        plan_from(4, 4, {})
    with pytest.raises(ConfigError, match="RANK"):
        plan_from(None, None, {"RANK": "x", "WORLD_SIZE": "2"})
    assert plan_from(0, 2, {"RANK": "x", "WORLD_SIZE": "2"}) == ShardPlan(
        0, 2
    )  # flags: the environment unread
    stepped = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
               "SLURM_ARRAY_TASK_COUNT": "4"}  # fmt: skip
    assert plan_from(None, None, stepped) == ShardPlan(3, 4)
    with pytest.raises(ConfigError, match="regular range"):
        plan_from(None, None, {**stepped, "SLURM_ARRAY_TASK_ID": "5"})
    assert plan_from(None, 1, slurm) == ShardPlan(0, 1)  # --world-size 1: every shard, whatever the array


def test_verify_finds_ids_that_two_ranks_both_kept(tmp_path: Path) -> None:
    """--id-field with ranks: each rank rejects only the repeats it saw itself; verify finds the others."""
    corpus = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}" if i != 6 else "d0", "text": TEXTS[i % 2]} for i in range(12)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for rank in (0, 1):  # d0 is in shard 0 (rank 0) and again in shard 1 (rank 1)
        synthesize(_config(tmp_path, corpus, "out", world_size=2, rank=rank))
    with pytest.raises(InputError, match="duplicated=1"):
        verify(VerifyConfig(run_dir=str(tmp_path / "out")))


def test_three_processes_write_one_output_equal_to_one_process(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    one = _config(tmp_path, corpus, "one")
    synthesize(one)
    out = tmp_path / "three"
    cmd = [sys.executable, "-m", "instructpt", "synthesize", str(corpus), "-o", str(out), "--engine", "rules",
           "--shard-size", "6", "--id-field", "id", "--no-progress", "--world-size", "3"]  # fmt: skip
    env = {**os.environ, "SLURM_ARRAY_TASK_COUNT": "", "WORLD_SIZE": ""}
    procs = [
        subprocess.Popen([*cmd, "--rank", str(r)], env=env, stderr=subprocess.PIPE, text=True)
        for r in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    _same_output(one.output, str(out))
    merged = json.loads((out / "stats.json").read_text())
    assert merged["counts"] == json.loads((Path(one.output) / "stats.json").read_text())["counts"]
    assert verify(VerifyConfig(run_dir=str(out))).counts["missing"] == 0


def test_a_plan_from_the_environment_is_announced(tmp_path: Path, caplog, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), "out")
    with caplog.at_level("WARNING"):
        assert cfg.shard_plan() == ShardPlan(1, 2)
    assert "RANK/WORLD_SIZE" in caplog.text and "--world-size 1" in caplog.text


def test_ranks_that_redo_shards_leave_current_stats(tmp_path: Path) -> None:
    """A rank that redoes shards whose input changed (same shard count) leaves stats.json with the new merge."""
    corpus = _corpus(tmp_path / "c.jsonl")
    pairs = _config(tmp_path, corpus, "pairs")
    synthesize(pairs)

    def run(rank: int) -> dict:
        cfg = TemplifyConfig(
            inputs=[pairs.output], output=str(tmp_path / "t"), progress=False, world_size=2, rank=rank
        )
        return templify(cfg).counts

    run(0), run(1)
    first = sorted((Path(pairs.output) / "data").iterdir())[0]
    first.write_text(first.read_text().splitlines()[0] + "\n")  # shard 0's input changes: rank 0 redoes it
    counts = run(0)
    assert json.loads((tmp_path / "t" / "stats.json").read_text())["counts"] == counts
    assert counts["records_in"] == 42 - 2 - 5  # 40 records, the first shard now holds one of its six


def test_verify_finds_missing_duplicated_and_unknown_records(tmp_path: Path, capsys) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    cfg = _config(tmp_path, corpus, "out")
    synthesize(cfg)
    summary = verify(VerifyConfig(run_dir=cfg.output))
    assert summary.counts == {
        "records_in": 42,
        "records_found": 42,
        "missing": 0,
        "duplicated": 0,
        "unknown": 0,
    }
    data = Path(cfg.output) / "data"
    first, second = sorted(data.iterdir())[:2]
    lines = first.read_text().splitlines()
    second.write_text(second.read_text() + lines[0] + "\n")  # a record written into a second shard too
    stranger = lines[1].replace('"d1"', '"stranger"')
    first.write_text("\n".join([*lines[:2], *lines[3:], stranger]) + "\n")  # one record lost, one unknown
    lost = json.loads(lines[2])["id"]
    with pytest.raises(InputError, match="missing=1, duplicated=1, unknown=1"):
        verify(VerifyConfig(run_dir=cfg.output))
    err = capsys.readouterr().err
    assert f"missing: '{lost}'" in err and "duplicated: 'd0'" in err and "'stranger'" in err
    # a shard without its done marker counts as not there, whatever its files hold
    (Path(cfg.output) / "done" / "shard-00002").unlink()
    with pytest.raises(InputError, match="missing=7"):
        verify(VerifyConfig(run_dir=cfg.output))
    with pytest.raises(InputError, match="synthesize output"):
        templify_out = tmp_path / "t"
        templify(TemplifyConfig(inputs=[cfg.output], output=str(templify_out), progress=False))
        verify(VerifyConfig(run_dir=str(templify_out)))


# ---- Ray ----
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip(
        "ray", reason="ray is part of the development environment (requirements/dev.txt)"
    )
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


RAY = RayOptions(enabled=True, actors=2, cpus_per_actor=0.5)


@pytest.mark.slow
def test_rules_on_ray_writes_the_bytes_of_a_local_run(tmp_path: Path, ray_cluster) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    local = _config(tmp_path, corpus, "local")
    synthesize(local)
    on_ray = _config(tmp_path, corpus, "ray", ray=RAY)
    summary = synthesize(on_ray)
    _same_output(local.output, on_ray.output)
    assert summary.counts == json.loads((Path(local.output) / "stats.json").read_text())["counts"]
    # templify, a map stage, on the same actors' kind: the same bytes too
    t_local = templify(TemplifyConfig(inputs=[local.output], output=str(tmp_path / "tl"), progress=False))
    t_ray = templify(
        TemplifyConfig(inputs=[local.output], output=str(tmp_path / "tr"), progress=False, ray=RAY)
    )
    assert t_local.counts == t_ray.counts
    _same_output(str(tmp_path / "tl"), str(tmp_path / "tr"))


@pytest.mark.slow
def test_an_actor_killed_mid_run_leaves_complete_output(tmp_path: Path, ray_cluster, monkeypatch) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    local = _config(tmp_path, corpus, "local")
    synthesize(local)
    on_ray = _config(tmp_path, corpus, "ray", ray=RAY)
    synthesize(
        on_ray
    )  # a finished run: --overwrite below must clear it once, and a restarted actor never again
    monkeypatch.setenv(TEST_EXIT_ENV, f"3:{tmp_path / 'killed-once'}")
    synthesize(_config(tmp_path, corpus, "ray", ray=RAY, overwrite=True))
    assert (tmp_path / "killed-once").exists()  # the actor that took shard 3 did die
    _same_output(local.output, on_ray.output)
    assert verify(VerifyConfig(run_dir=on_ray.output)).counts["duplicated"] == 0


@pytest.mark.slow
def test_pack_on_ray_writes_the_bytes_of_a_local_run(tmp_path: Path, ray_cluster, tiny_synth) -> None:
    from instructpt.pack.run import PackConfig, pack

    corpus = _corpus(tmp_path / "c.jsonl")
    runs = {}
    for name, ray in (("local", RayOptions()), ("ray", RAY)):
        cfg = PackConfig(inputs=[str(corpus)], output=str(tmp_path / name), tokenizer=str(tiny_synth), shard_size=8,
                         id_field="id", progress=False, ray=ray)  # fmt: skip
        runs[name] = pack(cfg)
    assert runs["ray"].counts == runs["local"].counts and runs["ray"].counts["tokens_out"] > 0
    _same_output(str(tmp_path / "local"), str(tmp_path / "ray"))


@pytest.mark.slow
def test_ray_errors_are_one_line_and_impossible_pools_are_refused(tmp_path: Path, ray_cluster) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    missing = EngineConfig(name="transformers", model=str(tmp_path / "no-such-model"), max_model_len=512,
                           max_new_tokens=16)  # fmt: skip
    with pytest.raises(EngineError) as caught:  # the actor's own error, as a local run gives it
        synthesize(_config(tmp_path, corpus, "a", engine=missing, ray=RAY))
    assert "no-such-model" in str(caught.value) and "Traceback" not in str(caught.value)
    with pytest.raises(ConfigError, match="holds at most"):
        synthesize(_config(tmp_path, corpus, "b", ray=RayOptions(enabled=True, actors=5, cpus_per_actor=1)))
    with pytest.raises(ConfigError, match="GPU"):
        synthesize(_config(tmp_path, corpus, "c", ray=RayOptions(enabled=True, gpus_per_actor=1)))


@pytest.mark.slow
def test_transformers_on_ray_gives_the_records_of_a_local_run(
    tmp_path: Path, ray_cluster, tiny_synth
) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", n=8)
    engine = EngineConfig(name="transformers", model=str(tiny_synth), max_model_len=512, max_new_tokens=32,
                          transformers=TransformersOptions(batch_size=1))  # fmt: skip
    local = _config(tmp_path, corpus, "local", engine=engine)
    synthesize(local)
    on_ray = _config(tmp_path, corpus, "ray", engine=engine, ray=RAY)
    synthesize(on_ray)
    _same_output(local.output, on_ray.output)


def test_ray_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ray-actors"):
        RayOptions(actors=-1)
    corpus = _corpus(tmp_path / "c.jsonl")
    with pytest.raises(ConfigError, match="retry-errors"):
        synthesize(_config(tmp_path, corpus, "x", ray=RayOptions(enabled=True), retry_errors=True))
    shutil.rmtree(tmp_path / "x", ignore_errors=True)
