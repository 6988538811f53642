"""``instructpt evaluate --compare A/results.json B/results.json ...``: the tasks side by side, with each run's
difference to the first (how a user reads vanilla against instruction pre-training), as Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructpt.errors import InputError
from instructpt.stages import RunInfo, Summary


def result_rows(result: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    """``(metric, value, stderr)`` of one task's result (one metric for domain tasks, several for lm-eval's)."""
    if "value" in result:
        return [(result["metric"], float(result["value"]), result.get("stderr"))]
    return [(name, float(m["value"]), m.get("stderr")) for name, m in result.get("metrics", {}).items()]


def table(reports: list[dict[str, Any]]) -> dict[str, dict[str, list[float | None]]]:
    """``{"task/metric": [value of each report (None where it lacks the task)]}``, in first-seen order."""
    rows: dict[str, list[float | None]] = {}
    for i, report in enumerate(reports):
        for task, result in report.get("tasks", {}).items():
            for name, value, _ in result_rows(result):
                rows.setdefault(f"{task}/{name}", [None] * len(reports))[i] = value
    return {"rows": rows}


def compare(paths: list[str], output: str | None) -> Summary:
    reports = []
    for p in paths:
        path = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"--compare {p}: cannot read results ({exc})") from exc
    rows = table(reports)["rows"]
    names = [r.get("model", {}).get("name", str(p)) for r, p in zip(reports, paths)]
    head = "| task / metric | " + " | ".join(f"{n} ({i})" for i, n in enumerate(names)) + " |"
    lines = [head, "|---|" + "---:|" * len(names)]
    deltas: dict[str, list[float | None]] = {}
    for key, values in rows.items():
        base = values[0]
        deltas[key] = [None if v is None or base is None else v - base for v in values]
        cells = [("" if v is None else f"{v:.4f}") + ("" if i == 0 or d is None else f" ({d:+.4f})")
                 for i, (v, d) in enumerate(zip(values, deltas[key]))]  # fmt: skip
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    data = {"runs": [{"path": p, "model": n} for p, n in zip(paths, names)], "values": rows, "deltas": deltas}
    if output:
        Path(output).mkdir(parents=True, exist_ok=True)
        (Path(output) / "compare.md").write_text(text, encoding="utf-8")
        (Path(output) / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return Summary("evaluate", {"runs": len(paths), "rows": len(rows)}, {}, RunInfo("runs"), ("runs", "rows"))
