"""``instructpt report RUN_DIR``: a run directory seen at a glance, as a self-contained HTML page and a Markdown card.

    instructpt report pairs/                 # -> pairs/report/report.html and report.md (+ the PNGs)
    instructpt report runs/ipt -o reports/ipt

Works for every stage's output (the kind is read from ``manifest.json``): the counters of ``stats.json`` and each
breakdown as a plot; for synthesize outputs the pair quality of :mod:`instructpt.evaluate.synthesizer` (pairs per
text, task-type mix, question/answer lengths); for trainers the loss curves of ``metrics.jsonl`` (train and
validation); for evaluate the results table; a few sample documents as text. The HTML embeds its images as data URIs
(it opens from disk with no server); the Markdown card links the PNGs written beside it. Plots need matplotlib;
without it the report holds the numbers alone and says so. ``--report`` on any command runs this at its end.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError, InputError
from instructpt.report import plots
from instructpt.stages import RunInfo, Summary


@dataclass
class ReportConfig:
    """``instructpt report``: a run directory -> report.html + report.md."""

    run_dir: str = option("", "A run directory written by any instructpt command.", positional=True)
    output: str = option("", "Where to write the report (default: RUN_DIR/report).", aliases=("-o",))
    samples: int = option(2, "Sample documents shown as text.")

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ConfigError("give the RUN_DIR to report on")


@dataclass
class Section:
    title: str
    table: list[tuple[str, Any]]
    image: bytes | None = None
    text: str = ""


def report(config: ReportConfig) -> Summary:
    start = time.monotonic()
    root = Path(config.run_dir)
    manifest = root / "manifest.json"
    if not manifest.exists():
        raise InputError(f"{root} is not an instructpt run directory (no manifest.json)")
    stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage", "?")
    stats = (
        json.loads((root / "stats.json").read_text(encoding="utf-8"))
        if (root / "stats.json").exists()
        else {}
    )
    sections = build(root, stage, stats, config.samples)
    out = Path(config.output) if config.output else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    title = f"instructpt {stage}: {root.resolve().name}"
    (out / "report.html").write_text(to_html(title, sections), encoding="utf-8")
    (out / "report.md").write_text(to_markdown(title, sections, out), encoding="utf-8")
    images = sum(1 for s in sections if s.image)
    print(f"report: {out / 'report.html'} ({len(sections)} sections, {images} plots)")
    run = RunInfo("sections", len(sections), time.monotonic() - start)
    return Summary(
        "report",
        {"sections": len(sections), "plots": images},
        {},
        run,
        ("sections", "plots"),
        output=str(out),
    )


def build(root: Path, stage: str, stats: dict[str, Any], samples: int) -> list[Section]:
    """The sections of a report: counters, breakdowns, then what the kind of run adds."""
    counts = stats.get("counts", {})
    sections = [Section("Counters", [(k, v) for k, v in counts.items() if not isinstance(v, dict | list)])]
    for name, values in stats.get("by", {}).items():
        numeric = {str(k): float(v) for k, v in values.items() if isinstance(v, int | float)}
        if numeric:
            sections.append(
                Section(f"By {name.replace('_', ' ')}", list(numeric.items()), plots.bars(numeric, name))
            )
    if stage == "synthesize":
        sections += _synthesize(root)
    if (root / "metrics.jsonl").exists():
        sections += _curves(root / "metrics.jsonl")
    if (root / "results.json").exists() and stage == "evaluate":
        sections += _evaluation(root / "results.json")
    sections += _samples(root, stage, samples)
    if not plots.available():
        sections.append(
            Section("Plots", [], text="matplotlib is not installed: pip install 'instructpt[report]'")
        )
    return sections


def _synthesize(root: Path) -> list[Section]:
    from instructpt.evaluate.synthesizer import pair_quality

    try:
        q = pair_quality(str(root))
    except InputError:
        return []
    head = [
        (k, q[k]) for k in ("texts", "pairs", "parse_rate", "pairs_per_text", "duplicate_rate", "grounded")
    ]
    return [
        Section("Pair quality", head, plots.bars(q["task_types"], "task types", "pairs")),
        Section("Question length (words)", list(q["question_words"].items()),
                plots.columns(q["question_words"], "question length", "words")),
        Section("Answer length (words)", list(q["answer_words"].items()),
                plots.columns(q["answer_words"], "answer length", "words")),
    ]  # fmt: skip


def _curves(path: Path) -> list[Section]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r and not r.get("final")]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    series = {
        "train": ([s for s, _ in train], [v for _, v in train]),
        "validation": ([s for s, _ in val], [v for _, v in val]),
    }
    table = [("steps logged", len(train))] + ([("last train loss", train[-1][1])] if train else [])
    table += [("last validation loss", val[-1][1])] if val else []
    return [Section("Loss", table, plots.curves(series, "loss"))]


def _evaluation(path: Path) -> list[Section]:
    from instructpt.evaluate.compare import result_rows

    results = json.loads(path.read_text(encoding="utf-8"))
    table = [(f"{task} / {name}", value) for task, r in results.get("tasks", {}).items()
             for name, value, _ in result_rows(r)]  # fmt: skip
    return [Section("Evaluation", table, plots.bars(dict(table), "results"))]


def _samples(root: Path, stage: str, n: int) -> list[Section]:
    from instructpt.io.shards import finished_shards, read_shard

    if stage not in ("synthesize", "templify") or n <= 0:
        return []
    out: list[Section] = []
    for shard in finished_shards(root):
        for row in read_shard(shard.path):
            if len(out) >= n:
                return out
            text = row.get("text", "")
            if stage == "synthesize" and row.get("pairs"):
                text += "\n\n" + "\n".join(f"Q: {p['question']}\nA: {p['answer']}" for p in row["pairs"])
            out.append(Section(f"Sample {row.get('id', '')}", [], text=text[:4000]))
    return out


def _cell(v: Any) -> str:
    return (
        f"{v:,.4f}"
        if isinstance(v, float) and not v.is_integer()
        else (f"{int(v):,}" if isinstance(v, int | float) else str(v))
    )


def to_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td{border:1px solid #ccc;padding:2px 8px}td:last-child{text-align:right}pre{white-space:pre-wrap;"
             f"background:#f6f6f6;padding:1em}}</style></head><body><h1>{html.escape(title)}</h1>"]  # fmt: skip
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.table:
            rows = "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_cell(v))}</td></tr>" for k, v in s.table
            )
            parts.append(f"<table>{rows}</table>")
        if s.image:
            data = base64.b64encode(s.image).decode("ascii")
            parts.append(f"<p><img alt='{html.escape(s.title)}' src='data:image/png;base64,{data}'></p>")
        if s.text:
            parts.append(f"<pre>{html.escape(s.text)}</pre>")
    return "".join(parts) + "</body></html>\n"


def to_markdown(title: str, sections: list[Section], out: Path) -> str:
    lines = [f"# {title}", ""]
    for i, s in enumerate(sections):
        lines += [f"## {s.title}", ""]
        if s.table:
            lines += ["| | |", "|---|---:|"] + [f"| {k} | {_cell(v)} |" for k, v in s.table] + [""]
        if s.image:
            name = f"plot-{i:02d}.png"
            (out / name).write_bytes(s.image)
            lines += [f"![{s.title}]({name})", ""]
        if s.text:
            lines += ["```", s.text, "```", ""]
    return "\n".join(lines)


main = report
Config = ReportConfig
