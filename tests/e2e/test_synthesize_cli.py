"""``instructpt synthesize`` as a user runs it: the real transformers engine on the tiny synthesizer, a corpus
with bad records, stats, and resume after SIGKILL producing the same bytes as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tinymodel import make_example

pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "instructpt", *args]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    rng = random.Random(7)
    lines = [
        json.dumps({"text": make_example(rng, rng.randint(2, 9))[0], "uid": f"u{i}"}) for i in range(120)
    ]
    lines[10] = "{oops"
    lines[20] = json.dumps({"uid": "no-text"})
    lines[30] = json.dumps({"text": " ".join(make_example(rng, 40)[0] for _ in range(4)), "uid": "long"})
    (d / "part1.jsonl").write_text("\n".join(lines[:60]) + "\n")
    (d / "part2.jsonl").write_text("\n".join(lines[60:]) + "\n")
    return d


def _args(corpus: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return _cli(
        "synthesize",
        str(corpus),
        "-o",
        str(out),
        "--engine",
        "transformers",
        "--model",
        str(model),
        "--max-model-len",
        "384",
        "--max-new-tokens",
        "48",
        "--rounds",
        "3",
        "--shard-size",
        "8",
        "--max-inflight",
        "6",
        "--batch-size",
        "8",
        "--id-field",
        "uid",
        "--no-progress",
        *extra,
    )


def _data(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((out / "data").iterdir())]


def test_synthesize_end_to_end(corpus: Path, tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(_args(corpus, tiny_synth, out), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    c = stats["counts"]
    assert c["docs_in"] == 120 and c["rejected"] == 2 and c["docs_out"] == 118
    assert c["docs_split"] == 1 and c["pairs_out"] > 0 and c["chains"] < c["records_out"]
    assert stats["by"]["rejects"] == {"invalid_json": 1, "missing_text": 1}
    assert c["reused_generations"] > 0  # clean generations were extended token for token
    records = [
        json.loads(line) for p in sorted((out / "data").iterdir()) for line in p.read_text().splitlines()
    ]
    assert {r["doc_id"] for r in records} >= {"u0", "long"}
    pieces = [r for r in records if r["doc_id"] == "long"]
    assert len(pieces) > 1 and [r["piece"] for r in pieces] == list(range(len(pieces)))
    assert all(r["prompt_tokens"] <= 384 - 48 for r in records)
    assert all(r["synthesizer"]["model"] == str(tiny_synth) for r in records)
    assert any(r["chain_pos"] == 2 for r in records)
    assert "docs_in=120" in proc.stderr


def test_sigkill_then_resume_equals_uninterrupted_run(corpus: Path, tiny_synth: Path, tmp_path: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    subprocess.run(_args(corpus, tiny_synth, full), check=True, capture_output=True, timeout=300)
    n_shards = len(list((full / "done").iterdir()))

    proc = subprocess.Popen(
        _args(corpus, tiny_synth, part), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    waited = _wait_for_a_done_shard(part, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(list((part / "done").iterdir())) if (part / "done").exists() else 0
    assert 0 < done < n_shards, (
        f"the kill must land mid-run: {done} of {n_shards} shards done after waiting {waited:.1f} s, "
        f"exit status {proc.returncode}"
    )

    resumed = subprocess.run(_args(corpus, tiny_synth, part), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    stats = json.loads((part / "stats.json").read_text())
    assert stats["run"]["shards_resumed"] == done
    assert _data(part) == _data(full)
    assert json.loads((full / "stats.json").read_text())["counts"] == stats["counts"]


def _wait_for_a_done_shard(out: Path, proc: subprocess.Popen, timeout: float = 300) -> float:
    """Seconds waited until the first shard is marked done (or the process ended, or the timeout: a loaded
    machine can take minutes to start the run)."""
    start = time.monotonic()
    while time.monotonic() < start + timeout and proc.poll() is None:
        if (out / "done").exists() and any((out / "done").glob("shard-*")):
            break
        time.sleep(0.02)
    return time.monotonic() - start


def test_resume_with_other_settings_is_refused(corpus: Path, tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(
        _args(corpus, tiny_synth, out, "--limit", "8"), check=True, capture_output=True, timeout=300
    )
    args = _args(corpus, tiny_synth, out, "--limit", "8")
    args[args.index("--rounds") + 1] = "2"
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4
    assert "different configuration" in proc.stderr and "rounds: 3 -> 2" in proc.stderr


def test_a_hub_id_loads_from_the_cache_and_records_its_commit(
    corpus: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    """``--model org/name`` goes through the Hugging Face hub loaders (offline, from a cache laid out as the hub
    client writes it), and every record names the commit the id resolved to."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--instructpt-test--tiny-synth"
    shutil.copytree(tiny_synth, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "out"
    args = _args(corpus, "instructpt-test/tiny-synth", out, "--limit", "8")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    records = [
        json.loads(line) for p in sorted((out / "data").iterdir()) for line in p.read_text().splitlines()
    ]
    assert records and all(
        r["synthesizer"]
        == {"engine": "transformers", "model": "instructpt-test/tiny-synth", "revision": None, "commit": sha}
        for r in records
    )
