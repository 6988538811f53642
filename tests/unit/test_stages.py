"""The stage platform's map-stage runner (run_map_stage), driven by a test double of a stage: one output shard
per input shard, resume that skips finished shards and redoes changed ones, ranks splitting a run (ShardPlan),
and the summary every stage returns (Summary / RunInfo)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from instructpt.errors import ConfigError, InputError
from instructpt.io.shards import ShardFile, finished_shards, read_shard
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import Reject
from instructpt.stages import RunInfo, ShardedOptions, ShardPlan, ShardResult, Summary, run_map_stage

FP = {"double": "uppercase", "version": 1}
INDICES = (0, 1, 2, 5)  # output shards keep these numbers, gaps included


@dataclass
class UpperCaseStage:
    """Test double of a map stage: upper-cases each row's ``text``; a row without text is rejected."""

    name: str = "uppercase"
    unit: str = "docs"
    headline: tuple[str, ...] = ("docs_in", "docs_out")
    renamed: dict[str, str] = field(default_factory=dict)
    calls: list[int] = field(default_factory=list)  # the shards it was given, in order

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult:
        self.calls.append(shard.index)
        records, rejects, stats = [], [], Stats()
        for row in read_shard(shard.path):
            stats.add("docs_in")
            if not isinstance(row.get("text"), str):
                rejects.append(Reject(row["id"], shard.path.name, "missing_text", "", self.name, row))
                continue
            records.append({**row, "text": row["text"].upper()})
            stats.add("docs_out")
            progress.update(1)
        return ShardResult(records, rejects, stats)


def _inputs(root: Path, rows_per_shard: int = 3) -> list[ShardFile]:
    root.mkdir(exist_ok=True)
    shards = []
    for i in INDICES:
        path = root / f"shard-{i:05d}.jsonl"
        rows = [{"id": f"s{i}-{j}", "text": f"text {j} of shard {i}"} for j in range(rows_per_shard)]
        if i == 1:
            rows.append({"id": "s1-notext", "text": None})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        shards.append(ShardFile(i, path))
    return shards


def _config(inputs: Path, out: Path) -> ShardedOptions:
    return ShardedOptions(inputs=[str(inputs)], output=str(out), progress=False)


def _run(
    tmp_path: Path, out: str = "out", plan: ShardPlan | None = None, stage: UpperCaseStage | None = None
) -> tuple[Summary, UpperCaseStage]:
    stage = stage or UpperCaseStage()
    shards = [ShardFile(i, tmp_path / "in" / f"shard-{i:05d}.jsonl") for i in INDICES]
    return run_map_stage(stage, _config(tmp_path / "in", tmp_path / out), FP, shards, plan), stage


def _files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def _age(root: Path) -> None:
    """Date every file back to 2001: a file rewritten later has another mtime, however coarse the clock."""
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(10**18, 10**18))


def test_one_output_shard_per_input_shard(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in")
    summary, stage = _run(tmp_path)
    out = tmp_path / "out"
    assert stage.calls == list(INDICES)
    assert [s.index for s in finished_shards(out)] == list(INDICES)
    for shard in inputs:
        rows = [r for r in read_shard(shard.path) if r["text"] is not None]
        assert list(read_shard(out / "data" / shard.path.name)) == [
            {**r, "text": r["text"].upper()} for r in rows
        ]
        digest = hashlib.sha256(shard.path.read_bytes()).hexdigest()
        assert (out / "done" / shard.path.stem).read_text() == f"input-sha256 {digest}\n"
    rejects = [json.loads(line) for line in (out / "rejects" / "shard-00001.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"], r["stage"]) for r in rejects] == [
        ("s1-notext", "missing_text", "uppercase")
    ]
    assert summary.counts == {"docs_in": 13, "docs_out": 12, "rejected": 1, "shards": 4}
    assert summary.by == {"rejects": {"missing_text": 1}}
    assert (summary.run.done_this_run, summary.run.shards_resumed, summary.run.shards_total) == (12, 0, 4)
    assert json.loads((out / "stats.json").read_text()) == summary.to_dict()
    assert "uppercase" in (out / "manifest.json").read_text() and (out / "config.yaml").exists()
    assert summary.line() == "docs_in=13, docs_out=12" and summary.output == str(out)


def test_rerun_skips_everything_and_writes_nothing(tmp_path: Path) -> None:
    _inputs(tmp_path / "in")
    first, _ = _run(tmp_path)
    _age(tmp_path / "out")
    before = _files(tmp_path / "out")
    again, stage = _run(tmp_path)
    assert stage.calls == []
    assert (again.run.shards_resumed, again.run.done_this_run, again.run.shards_total) == (4, 0, 4)
    assert again.counts == first.counts and again.by == first.by
    assert _files(tmp_path / "out") == before  # same bytes, not even rewritten (stats.json included)


def test_changed_input_redoes_only_that_shard(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in")
    _run(tmp_path)
    out = tmp_path / "out"
    _age(out)
    before = _files(out)
    with open(inputs[2].path, "a") as f:
        f.write(json.dumps({"id": "s2-new", "text": "added later"}) + "\n")
    summary, stage = _run(tmp_path)
    assert stage.calls == [2]
    assert (summary.run.shards_resumed, summary.run.done_this_run, summary.run.shards_total) == (3, 4, 4)
    assert summary.counts == {"docs_in": 14, "docs_out": 13, "rejected": 1, "shards": 4}
    assert list(read_shard(out / "data" / "shard-00002.jsonl"))[-1] == {"id": "s2-new", "text": "ADDED LATER"}
    after = _files(out)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {
        "data/shard-00002.jsonl",
        "rejects/shard-00002.jsonl",
        "stats/shard-00002.json",
        "done/shard-00002",
        "stats.json",
    }


def test_ranks_together_write_what_one_run_writes(tmp_path: Path) -> None:
    _inputs(tmp_path / "in")
    whole, _ = _run(tmp_path, "whole")
    first, rank0 = _run(tmp_path, "ranks", ShardPlan(0, 2))
    assert rank0.calls == [0, 2] and first.run.shards_total == 2
    last, rank1 = _run(tmp_path, "ranks", ShardPlan(1, 2))
    assert rank1.calls == [1, 5]
    assert last.run.shards_resumed == 2 and last.run.shards_total == 4
    assert (last.counts, last.by) == (whole.counts, whole.by)  # the summary merges every rank's shards
    skip = ("config.yaml", "stats.json")  # the output path, and this run's timings

    def contents(root: Path) -> dict[str, bytes]:
        return {name: data for name, (data, _) in _files(root, skip).items()}

    assert contents(tmp_path / "ranks") == contents(tmp_path / "whole")
    assert len(contents(tmp_path / "whole")) == 1 + 4 * 4  # manifest; data, rejects, stats, done per shard


@pytest.mark.parametrize(("rank", "world_size"), [(2, 2), (3, 2), (-1, 2), (0, 0), (0, -1)])
def test_shard_plan_validation(rank: int, world_size: int) -> None:
    with pytest.raises(
        ConfigError, match=f"rank {rank} of world size {world_size}: need 0 <= rank < world size"
    ):
        ShardPlan(rank, world_size)


def test_shard_plan_ownership() -> None:
    assert [i for i in range(8) if ShardPlan(1, 3).owns(i)] == [1, 4, 7]
    assert all(ShardPlan().owns(i) for i in range(8))
    plans = [ShardPlan(r, 4) for r in range(4)]
    assert all(sum(p.owns(i) for p in plans) == 1 for i in range(20))  # every shard has exactly one owner


def test_summary_to_dict() -> None:
    run = RunInfo("chains", 10, work_seconds=4.0, startup_seconds=1.5, shutdown_seconds=0.25)
    run.shards_total, run.shards_resumed = 3, 1
    summary = Summary(
        "templify", {"chains": 10}, {"layouts": {"a": 10}}, run, derived={"pairs_per_doc_mean": 1.5}
    )
    d = summary.to_dict()
    assert list(d) == ["stage", "counts", "by", "pairs_per_doc_mean", "run"]
    assert d["run"] == {
        "wall_seconds": 5.75,
        "startup_seconds": 1.5,
        "work_seconds": 4.0,
        "shutdown_seconds": 0.25,
        "chains_this_run": 10,
        "chains_per_second": 2.5,
        "shards_total": 3,
        "shards_resumed": 1,
    }  # shards_retried: not set, not shown
    assert run.wall_seconds == run.startup_seconds + run.work_seconds + run.shutdown_seconds
    assert (d["stage"], d["counts"], d["by"]) == ("templify", {"chains": 10}, {"layouts": {"a": 10}})
    assert RunInfo("docs").to_dict()["docs_per_second"] is None  # no work time: no rate


def test_summary_line() -> None:
    def line(counts: dict) -> str:
        return Summary("synthesize", counts, {}, RunInfo("docs"), ("docs_in", "docs_out", "pairs")).line()

    assert line({"pairs": 3, "docs_in": 12345, "other": 9}) == "docs_in=12,345, pairs=3"
    assert line({"docs_in": 0}) == "docs_in=0"
    assert line({}) == "the inputs held no records"
    assert line({"shards": 2, "rejected": 0}) == "the inputs held no records"


def test_inputs_without_records(tmp_path: Path) -> None:
    _inputs(tmp_path / "in", rows_per_shard=0)
    (tmp_path / "in" / "shard-00001.jsonl").write_text("")  # no rows at all in any shard
    summary, stage = _run(tmp_path)
    assert stage.calls == list(INDICES) and summary.counts == {"rejected": 0, "shards": 4}
    assert summary.line() == "the inputs held no records"
    assert [p.stat().st_size for p in sorted((tmp_path / "out" / "data").iterdir())] == [0, 0, 0, 0]


def test_every_record_rejected_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "shard-00000.jsonl"
    path.write_text(json.dumps({"id": "a"}) + "\n" + json.dumps({"id": "b", "text": 1}) + "\n")
    config = _config(tmp_path / "in", tmp_path / "out")
    with pytest.raises(
        InputError, match=r"every record was rejected \(missing_text 2\), e.g. a: missing_text"
    ):
        run_map_stage(UpperCaseStage(), config, FP, [ShardFile(0, path)])
    assert finished_shards(tmp_path / "out") == [
        ShardFile(0, tmp_path / "out" / "data" / "shard-00000.jsonl")
    ]
