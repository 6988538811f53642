"""The run directory contract (RunDir / ShardedOutput): manifest and resume checks, atomic writes, shard
completion markers written last, shard counters, typed read-back of jsonl and parquet shards, and several
processes creating the same directory at once."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from instructpt._version import __version__
from instructpt.errors import ResumeError
from instructpt.io import shards
from instructpt.io.rundir import RunDir, atomic_write
from instructpt.io.shards import ShardedOutput, ShardFile, finished_shards, read_records, read_shard
from instructpt.io.stats import Stats
from instructpt.records import QAPair, Reject, SynthRecord

STAGE = "synthesize"
FP = {"model": "tiny", "seed": 1}


def _open(root: Path, fp: dict | None = None, **kw) -> ShardedOutput:
    return ShardedOutput(root, STAGE, FP if fp is None else fp, **kw)


def _temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def test_new_directory_gets_manifest_and_subdirs(tmp_path: Path) -> None:
    out = _open(tmp_path / "out")
    assert _manifest(out.root) == {"stage": STAGE, "version": __version__, "fingerprint": FP}
    assert sorted(p.name for p in out.root.iterdir()) == ["data", "done", "manifest.json", "rejects", "stats"]
    assert all((out.root / d).is_dir() for d in ShardedOutput.SUBDIRS)


def test_same_fingerprint_resumes(tmp_path: Path) -> None:
    _open(tmp_path).write_shard(0, [{"x": 1}], [], Stats())
    before = (tmp_path / "manifest.json").read_bytes()
    again = _open(tmp_path)
    assert again.completed_shards() == [0] and again.is_done(0)
    assert (tmp_path / "manifest.json").read_bytes() == before


def test_changed_fingerprint_after_finished_shard_lists_differences(tmp_path: Path) -> None:
    _open(tmp_path).write_shard(0, [{"x": 1}], [], Stats())
    with pytest.raises(ResumeError, match="different configuration") as info:
        _open(tmp_path, {"model": "tiny", "seed": 2, "temperature": 0.5})
    assert "seed: 1 -> 2" in str(info.value)
    assert "temperature: None -> 0.5" in str(info.value)
    assert "model" not in str(info.value).split("configuration")[1]  # unchanged keys are not listed
    assert _manifest(tmp_path)["fingerprint"] == FP  # the refused run changed nothing


def test_changed_fingerprint_without_finished_work_starts_over(tmp_path: Path) -> None:
    out = _open(tmp_path)
    (out.root / "data" / "shard-00000.jsonl").write_text('{"half": "written"}\n')  # no done marker
    new = {"model": "other", "seed": 1}
    again = _open(tmp_path, new)
    assert _manifest(tmp_path) == {"stage": STAGE, "version": __version__, "fingerprint": new}
    assert again.completed_shards() == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"manifest.json": '{"stage": "templify"}'}, "holds output of 'templify', not 'synthesize'"),
        ({"notes.txt": "mine"}, "is not empty and is not an instructpt synthesize output"),
        ({"manifest.json": '{"stage": "synth'}, "is not a readable instructpt manifest"),
        ({"manifest.json": '["synthesize"]'}, "is not an instructpt manifest"),
        (None, "exists and is not a directory"),  # the path is a file
    ],
)
def test_directories_that_are_not_ours_are_refused(tmp_path: Path, files: dict | None, message: str) -> None:
    root = tmp_path / "out"
    if files is None:
        root.write_text("not a directory")
    else:
        root.mkdir()
        for name, text in files.items():
            (root / name).write_text(text)
    with pytest.raises(ResumeError, match=message):
        _open(root)
    assert root.is_file() or sorted(p.name for p in root.iterdir()) == sorted(files)  # left as it was


@pytest.mark.parametrize("old", [b"old content\n", None])
def test_atomic_write_that_fails_midway_leaves_target_untouched(tmp_path: Path, old: bytes | None) -> None:
    target = tmp_path / "file.json"
    if old is not None:
        target.write_bytes(old)

    def half_then_fail(f) -> None:
        f.write(b"half of the new ")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        atomic_write(target, half_then_fail)
    assert (target.read_bytes() if target.exists() else None) == old
    assert [p.name for p in tmp_path.iterdir()] == (["file.json"] if old else [])
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and _temp_files(tmp_path) == []


@pytest.mark.parametrize("failing", ["rejects", "stats"])
def test_done_marker_is_written_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    real_jsonl, real_atomic = shards.write_jsonl, shards.atomic_write

    def jsonl(path: Path, rows) -> None:
        if path.parent.name == failing:
            raise OSError(28, "No space left on device")
        real_jsonl(path, rows)

    def atomic(path: Path, data) -> None:
        if path.parent.name == failing:
            raise OSError(28, "No space left on device")
        real_atomic(path, data)

    monkeypatch.setattr(shards, "write_jsonl", jsonl)
    monkeypatch.setattr(shards, "atomic_write", atomic)
    out = _open(tmp_path)
    reject = Reject("d1", "in.jsonl", "missing_text")
    with pytest.raises(ResumeError, match="cannot write shard 3 .*No space left"):
        out.write_shard(3, [{"x": 1}], [reject], Stats())
    assert not out.is_done(3) and out.completed_shards() == [] and out.marker(3) is None
    assert finished_shards(tmp_path) == []  # its data file is there, but it is not finished
    assert (tmp_path / "data" / "shard-00003.jsonl").exists()

    monkeypatch.undo()
    out.write_shard(3, [{"x": 1}], [reject], Stats())
    assert out.completed_shards() == [3]
    assert finished_shards(tmp_path) == [ShardFile(3, tmp_path / "data" / "shard-00003.jsonl")]
    assert out.merged_stats().counts == {"shards": 1, "rejected": 1}
    assert _temp_files(tmp_path) == []


def test_write_shard_counts_shards_and_rejects(tmp_path: Path) -> None:
    out = _open(tmp_path)
    stats = Stats()
    stats.add("docs_in", 5)
    rejects = [
        Reject(f"d{i}", "in.jsonl", r) for i, r in enumerate(["missing_text", "invalid_json", "missing_text"])
    ]
    out.write_shard(0, [{"x": 1}, {"x": 2}], rejects, stats)
    written = json.loads((tmp_path / "stats" / "shard-00000.json").read_text())
    assert written == {
        "counts": {"docs_in": 5, "rejected": 3, "shards": 1},
        "by": {"rejects": {"invalid_json": 1, "missing_text": 2}},
    }
    lines = (tmp_path / "rejects" / "shard-00000.jsonl").read_text().splitlines()
    assert [json.loads(line)["reason"] for line in lines] == ["missing_text", "invalid_json", "missing_text"]
    out.write_shard(1, [], [Reject("d9", "in.jsonl", "not_an_object")], Stats())
    merged = out.merged_stats()
    assert merged.counts == {"docs_in": 5, "rejected": 4, "shards": 2}
    assert merged.by["rejects"] == {"missing_text": 2, "invalid_json": 1, "not_an_object": 1}
    assert (tmp_path / "data" / "shard-00001.jsonl").read_bytes() == b""


def test_completed_shards_markers_and_reopen(tmp_path: Path) -> None:
    out = _open(tmp_path)
    for i in (12, 0, 3):
        out.write_shard(i, [{"i": i}], [], Stats(), marker=f"input-sha256 {i:03d}")
    assert out.completed_shards() == [0, 3, 12]
    assert out.marker(3) == "input-sha256 003" and out.marker(5) is None
    out.reopen(3)
    out.reopen(5)  # not finished: nothing to do
    assert out.completed_shards() == [0, 12] and not out.is_done(3) and out.marker(3) is None
    assert [s.index for s in finished_shards(tmp_path)] == [0, 12]
    assert out.merged_stats().counts["shards"] == 2


def test_shard_stats_renames_legacy_counters_and_recounts_rejected(tmp_path: Path) -> None:
    out = _open(tmp_path, renamed={"docs": "docs_in", "obsolete": ""})
    legacy = {
        "counts": {"docs": 4, "docs_in": 1, "obsolete": 9, "shards": 1},
        "by": {"rejects": {"a": 2, "b": 1}},
    }
    (tmp_path / "stats" / "shard-00000.json").write_text(json.dumps(legacy))
    (tmp_path / "done" / "shard-00000").write_text("ok\n")
    assert out.shard_stats(0).counts == {"docs_in": 5, "shards": 1, "rejected": 3}
    current = {"counts": {"rejected": 0, "shards": 1}, "by": {"rejects": {"a": 2}}}  # rejected present: kept
    (tmp_path / "stats" / "shard-00001.json").write_text(json.dumps(current))
    (tmp_path / "done" / "shard-00001").write_text("ok\n")
    assert out.shard_stats(1).counts == {"rejected": 0, "shards": 1}
    assert out.merged_stats().counts == {"docs_in": 5, "shards": 2, "rejected": 3}


def _row(rid: str, **changes) -> dict:
    row = {
        "id": rid,
        "text": f"text of {rid}",
        "pairs": [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}],
        "chain_id": "c1",
        "chain_pos": 0,
        "drops": {"a": 1},
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


GOOD = [_row("r1"), _row("r2", chain_pos=1, drops={"a": 2, "b": 3})]
BAD = [_row("no-chain", chain_id=None), _row("bad-pairs", pairs=[{"question": "q only"}])]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_typed_read_back(tmp_path: Path, fmt: str) -> None:
    out = _open(tmp_path, fmt=fmt)
    out.write_shard(0, GOOD + BAD, [], Stats())
    out.write_shard(1, GOOD, [], Stats())
    out.write_shard(2, GOOD, [], Stats())
    out.reopen(1)  # its data file stays, unfinished
    files = finished_shards(tmp_path)
    assert files == [ShardFile(i, tmp_path / "data" / f"shard-{i:05d}.{fmt}") for i in (0, 2)]
    assert list(read_shard(files[1].path)) == GOOD

    got = list(read_records(files[0].path, SynthRecord.from_row, "templify"))
    records, rejects = got[:2], got[2:]
    assert all(isinstance(r, SynthRecord) for r in records)
    assert [(r.id, r.doc_id, r.chain_pos, r.drops) for r in records] == [
        ("r1", "r1", 0, {"a": 1}),
        ("r2", "r2", 1, {"a": 2, "b": 3}),
    ]
    assert records[0].pairs == [QAPair("q1", "a1"), QAPair("q2", "a2")]
    assert all(isinstance(r, Reject) for r in rejects)
    assert [(r.id, r.reason, r.stage) for r in rejects] == [
        ("no-chain", "missing_chain_id", "templify"),
        ("bad-pairs", "malformed_pairs", "templify"),
    ]
    assert rejects[0].record is not None  # the row as read, for the reject entry


def test_jsonl_lines_that_cannot_be_read_become_rejects(tmp_path: Path) -> None:
    path = tmp_path / "shard-00000.jsonl"
    lines = [json.dumps(GOOD[0]), "[1, 2]", "", '{"id": "cut', json.dumps(GOOD[1])]
    path.write_text("\n".join(lines) + "\n")
    got = list(read_records(path, SynthRecord.from_row, "templify"))
    assert [r.id for r in got] == ["r1", "shard-00000.jsonl:2", "shard-00000.jsonl:4", "r2"]
    assert [type(r) for r in got] == [SynthRecord, Reject, Reject, SynthRecord]
    assert [(r.reason, r.record) for r in got[1:3]] == [
        ("not_an_object", "[1, 2]"),
        ("invalid_json", '{"id": "cut'),
    ]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_parquet_is_one_reject(tmp_path: Path, damage: str) -> None:
    _open(tmp_path, fmt="parquet").write_shard(0, GOOD, [], Stats())
    path = tmp_path / "data" / "shard-00000.parquet"
    data = path.read_bytes()
    path.write_bytes(b"PAR1 not really parquet" if damage == "garbage" else data[: len(data) // 2])
    got = list(read_records(path, SynthRecord.from_row, "templify"))
    assert len(got) == 1 and isinstance(got[0], Reject)
    assert (got[0].id, got[0].reason, got[0].stage) == (
        "shard-00000.parquet:file",
        "unreadable_file",
        "templify",
    )


def test_manifest_created_by_another_process_meanwhile_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the race the concurrent tests below can hit: another rank links the manifest (and
    creates the subdirectories) right after this one found none."""
    real = RunDir._read_manifest
    raced: list[bool] = []

    def read_then_lose_the_race(self: RunDir):
        found = real(self)
        if not raced:
            raced.append(True)
            ShardedOutput(self.root, STAGE, FP)  # the other rank wins
        return found

    monkeypatch.setattr(RunDir, "_read_manifest", read_then_lose_the_race)
    out = _open(tmp_path / "out")
    assert raced and _manifest(out.root)["fingerprint"] == FP


def _open_in_child(root: str, fp: dict, barrier, results, i: int) -> None:
    barrier.wait(timeout=60)
    try:
        ShardedOutput(root, STAGE, fp)
        results.put((i, "ok"))
    except ResumeError as exc:
        results.put((i, f"ResumeError: {exc}"))
    except Exception as exc:  # reported to the test, never lost in a child
        results.put((i, f"{type(exc).__name__}: {exc}"))


def _open_at_once(root: Path, fingerprints: list[dict]) -> dict[int, str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(fingerprints)), ctx.Queue()
    procs = [
        ctx.Process(target=_open_in_child, args=(str(root), fp, barrier, results, i))
        for i, fp in enumerate(fingerprints)
    ]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return got


def test_processes_creating_one_directory_at_once(tmp_path: Path) -> None:
    root = tmp_path / "out"
    got = _open_at_once(root, [FP] * 6)
    assert set(got.values()) == {"ok"}, got  # every rank is let in: the first writer wins, the others check
    assert _manifest(root)["fingerprint"] == FP
    assert sorted(p.name for p in root.iterdir()) == ["data", "done", "manifest.json", "rejects", "stats"]


def test_process_with_another_fingerprint_is_refused_among_others(tmp_path: Path) -> None:
    _open(tmp_path).write_shard(0, [{"x": 1}], [], Stats())
    other = {"model": "tiny", "seed": 2}
    got = _open_at_once(tmp_path, [FP, FP, other, FP, FP])
    assert {i: msg for i, msg in got.items() if i != 2} == dict.fromkeys([0, 1, 3, 4], "ok")
    assert got[2].startswith("ResumeError:") and "seed: 1 -> 2" in got[2]
    assert _manifest(tmp_path)["fingerprint"] == FP and _temp_files(tmp_path) == []


def test_a_write_cut_short_leaves_nothing_once_the_shard_is_written_again(tmp_path: Path) -> None:
    """A SIGKILL mid-write leaves the shard's temporary file; writing the shard again (on resume) replaces it,
    so no stray file stays in data/ (each shard file has one temporary name)."""
    out = _open(tmp_path)
    (tmp_path / "data" / ".tmp-shard-00000.jsonl").write_bytes(b'{"half": ')  # what the killed run left
    out.write_shard(0, [{"x": 1}], [], Stats())
    assert _temp_files(tmp_path) == [] and sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "shard-00000.jsonl"
    ]
