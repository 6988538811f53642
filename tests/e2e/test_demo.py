"""``instructpt demo`` (what ``make demo`` runs): the shipped corpus through rules -> templify, offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from instructpt.demo import default_corpus


def test_shipped_corpus_is_complete() -> None:
    files = sorted(Path(default_corpus()).glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    assert all(r["text"].startswith(r["title"] + "\n\n") for r in rows)
    assert (Path(default_corpus()) / "README.md").exists()


def test_demo_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "instructpt", "demo", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "read 300, rejected 0" in text and "not_english 2" in text and "too_short 1" in text
    assert "task types   " in text and "nli" in text and "definition" in text
    assert text.count("--- sample: ") == 2
    pairs = json.loads((out / "pairs" / "stats.json").read_text())
    aug = json.loads((out / "augmented" / "stats.json").read_text())
    assert pairs["counts"]["pairs_out"] > 1000 and pairs["pairs_per_doc_mean"] > 3
    assert aug["counts"]["docs_out"] == pairs["counts"]["chains"]
    assert (
        aug["counts"]["pairs_out"] + sum(aug["by"].get("drops", {}).values()) == pairs["counts"]["pairs_out"]
    )
    # the model half, through the stages
    assert "the model half" in text and "accuracy 0." in text and "raw documents replaced" in text
    assert re.search(r"steps; final loss \d+\.\d{3}, val_loss \d+\.\d{3}\n", text), text
    for stage in ("packed/raw", "packed/augmented", "mix", "model", "eval"):
        assert (out / stage / "manifest.json").exists(), stage
    assert (out / "model" / "model" / "model.safetensors").exists() and (
        out / "model" / "report" / "report.html"
    ).exists()
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["tasks"]["completion"]["n"] >= 50
    again = subprocess.run(
        [sys.executable, "-m", "instructpt", "demo", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and again.stdout == text  # resumed: same summary, same samples
