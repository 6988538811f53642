"""instructpt report on each kind of run directory that exists: it renders, every embedded image decodes as a PNG,
and the numbers shown are the run's own."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig
from instructpt.report.run import ReportConfig, report
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "instructpt" / "resources" / "demo" / "corpus-a.jsonl"
pytest.importorskip("matplotlib")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    corpus = root / "c.jsonl"
    corpus.write_text("".join(DEMO.read_text().splitlines(keepends=True)[:15]))
    synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(root / "pairs"), progress=False,
                                engine=EngineConfig(name="rules")))  # fmt: skip
    templify(TemplifyConfig(inputs=[str(root / "pairs")], output=str(root / "docs"), progress=False))
    return {"synthesize": root / "pairs", "templify": root / "docs"}


@pytest.mark.parametrize("kind", ["synthesize", "templify"])
def test_report_renders_with_png_images_and_the_runs_numbers(runs: dict[str, Path], kind: str) -> None:
    summary = report(ReportConfig(run_dir=str(runs[kind])))
    page = (runs[kind] / "report" / "report.html").read_text()
    images = _images(page)
    assert images and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert summary.counts["plots"] == len(images)
    stats = json.loads((runs[kind] / "stats.json").read_text())
    for key in ("docs_out", "pairs_out"):
        assert f"<td>{key}</td><td>{stats['counts'][key]:,}</td>" in page
    card = (runs[kind] / "report" / "report.md").read_text()
    assert f"| docs_out | {stats['counts']['docs_out']:,} |" in card
    for name in re.findall(r"\]\((plot-\d+\.png)\)", card):
        assert (runs[kind] / "report" / name).read_bytes().startswith(b"\x89PNG")
    if kind == "synthesize":
        from instructpt.evaluate.synthesizer import pair_quality

        assert f"<td>pairs</td><td>{pair_quality(str(runs[kind]))['pairs']:,}</td>" in page
        assert "Sample " in page


def test_a_loss_curve_and_an_evaluation_table(tmp_path: Path) -> None:
    from instructpt.io.rundir import RunDir

    run = tmp_path / "train"
    RunDir(run, "pretrain", {"x": 1})
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 5.0 / s}) + "\n" for s in range(1, 6))
                                       + json.dumps({"step": 5, "loss": 1.0, "val_loss": 1.2, "final": True}) + "\n")  # fmt: skip
    report(ReportConfig(run_dir=str(run)))
    page = (run / "report" / "report.html").read_text()
    assert (
        "<h2>Loss</h2>" in page and "<td>last validation loss</td><td>1.2000</td>" in page and _images(page)
    )
    ev = tmp_path / "eval"
    RunDir(ev, "evaluate", {"x": 1})
    (ev / "results.json").write_text(
        json.dumps({"tasks": {"FPB": {"metric": "weighted_f1", "value": 0.5, "n": 4}}})
    )
    report(ReportConfig(run_dir=str(ev)))
    assert "<td>FPB / weighted_f1</td><td>0.5000</td>" in (ev / "report" / "report.html").read_text()


def test_the_report_flag_runs_it_at_the_end_of_a_command(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(DEMO.read_text().splitlines(keepends=True)[:5]))
    proc = subprocess.run([sys.executable, "-m", "instructpt", "synthesize", str(corpus), "-o", str(tmp_path / "p"),
                           "--engine", "rules", "--no-progress", "--report"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "p" / "report" / "report.html").exists() and "report:" in proc.stdout
    with pytest.raises(Exception, match="not an instructpt run directory"):
        report(ReportConfig(run_dir=str(tmp_path)))
