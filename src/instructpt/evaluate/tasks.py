"""The domain tasks of AdaptLLM (SPEC §8) and user task files in their row format, loaded and checked.

A task file is ``<Task>/test.json`` (JSON lines or one JSON array). Each row has an ``input`` (the filled-in
prompt) and either ``options`` (a list of strings) with ``gold_index`` (classification: each option is scored as a
continuation) or ``label`` (generation: greedy decoding, compared with the label). Headline rows belong to one of
its sub-questions: the row's ``sub_question`` / ``subject`` / ``class_id`` field where it has one, else the last line
of its ``input`` (the question asked). A row that breaks the format is an error naming the file and the row:
nothing is scored silently as wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructpt.errors import InputError

SUITES: dict[str, dict[str, tuple[str, str]]] = {
    # task -> (kind, metric)
    "biomedicine": {"ChemProt": ("mc", "micro_f1"), "RCT": ("mc", "micro_f1"), "MQP": ("mc", "accuracy"),
                    "USMLE": ("mc", "accuracy"), "PubMedQA": ("mc", "accuracy")},
    "finance": {"FPB": ("mc", "weighted_f1"), "FiQA_SA": ("mc", "weighted_f1"), "Headline": ("mc", "headline_f1"),
                "NER": ("gen", "ner_f1"), "ConvFinQA": ("gen", "convfinqa_match")},
}  # fmt: skip
HUB_DATASETS = {"biomedicine": "AdaptLLM/medicine-tasks", "finance": "AdaptLLM/finance-tasks"}
MC_METRICS = ("accuracy", "weighted_f1", "micro_f1", "headline_f1")
GEN_METRICS = ("ner_f1", "convfinqa_match", "exact_match")
GROUP_FIELDS = ("sub_question", "subject", "class_id")


@dataclass
class Row:
    index: int
    input: str
    options: list[str] | None = None
    gold_index: int | None = None
    label: str | None = None
    group: str = ""


@dataclass
class Task:
    name: str
    kind: str  # "mc" (options scored) or "gen" (greedy generation)
    metric: str
    source: str  # where the rows came from
    rows: list[Row] = field(default_factory=list)


def load_rows(path: Path, kind: str, task: str) -> list[Row]:
    """The rows of one task file, checked; an :class:`InputError` names the file and row of the first bad one."""
    items = read_items(path)
    if not items:
        raise InputError(f"{path}: the task file holds no row")
    return [_row(obj, i, path, kind, task) for i, obj in enumerate(items)]


def read_items(path: Path) -> list[Any]:
    """The rows of a JSON array file or a JSON-lines file; a line that is not JSON is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the task file ({exc})") from exc
    if text.lstrip().startswith("["):
        try:
            return list(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not a valid JSON array ({exc})") from exc
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {n} (row {len(items)}): not JSON ({exc.msg})") from exc
    return items


def _row(obj: Any, i: int, path: Path, kind: str, task: str) -> Row:
    where = f"{path} row {i}"
    if not isinstance(obj, dict):
        raise InputError(f"{where}: not an object")
    text = obj.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: 'input' must be a non-empty string")
    if kind == "gen":
        label = obj.get("label")
        if not isinstance(label, str | int | float) or isinstance(label, bool):
            raise InputError(f"{where}: a generation task needs a 'label' (string)")
        return Row(i, text, label=str(label))
    options, gold = obj.get("options"), obj.get("gold_index")
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise InputError(f"{where}: 'options' must be a non-empty list of strings")
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(options):
        raise InputError(
            f"{where}: 'gold_index' must be an index into its {len(options)} options, not {gold!r}"
        )
    group = next((str(obj[k]) for k in GROUP_FIELDS if obj.get(k) is not None), "")
    if task == "Headline" and not group:
        group = text.rstrip().rsplit("\n", 1)[-1].strip()
    return Row(i, text, options=options, gold_index=gold, label=None, group=group)


def suite_tasks(
    suite: str, data_dir: str | None, limit: int | None, revision: str | None = None
) -> list[Task]:
    """The tasks of a domain suite, from ``data_dir`` (the dataset's layout) or downloaded from the hub."""
    tasks = []
    for name, (kind, metric) in SUITES[suite].items():
        path = Path(data_dir) / name / "test.json" if data_dir else _download(suite, name, revision)
        if data_dir and not path.exists():
            raise InputError(
                f"{path} does not exist: --data-dir holds <Task>/test.json for each {suite} task"
            )
        tasks.append(Task(name, kind, metric, str(path), load_rows(path, kind, name)[:limit]))
    return tasks


def _download(suite: str, task: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    from instructpt.io.hf import hub_offline, offline_hint

    repo = HUB_DATASETS[suite]
    try:
        return Path(hf_hub_download(repo, f"{task}/test.json", repo_type="dataset", revision=revision))
    except Exception as exc:  # noqa: BLE001 - network, auth and missing files all mean "cannot get this task"
        hint = offline_hint(repo, "dataset") if hub_offline() else " ".join(str(exc).split())
        raise InputError(
            f"cannot get {repo}/{task}/test.json: {hint}; or pass --data-dir with a local copy"
        ) from exc


def path_tasks(path: Path, limit: int | None) -> list[Task]:
    """A user's task files: a ``tasks.json`` manifest (``{"name": {"file": ..., "metric": ...}}``), else every
    ``<Task>/test.json`` or ``*.json``/``*.jsonl`` file (options -> accuracy, labels -> exact match)."""
    manifest = path / "tasks.json"
    if manifest.exists():
        spec = json.loads(manifest.read_text(encoding="utf-8"))
        out = []
        for name, entry in spec.items():
            metric = entry.get("metric", "accuracy")
            if metric not in MC_METRICS + GEN_METRICS:
                raise InputError(f"{manifest}: task {name!r} names metric {metric!r}; known: "
                                 f"{', '.join(MC_METRICS + GEN_METRICS)}")  # fmt: skip
            kind = "mc" if metric in MC_METRICS else "gen"
            file = path / entry["file"]
            out.append(Task(name, kind, metric, str(file), load_rows(file, kind, name)[:limit]))
        return out
    if path.is_file():
        files = [path]
    else:
        files = sorted(path.glob("*/test.json")) or sorted([*path.glob("*.json"), *path.glob("*.jsonl")])
    if not files:
        raise InputError(f"{path} holds no task file (<Task>/test.json, *.json, *.jsonl) and no lm-eval YAML")
    out = []
    for f in files:
        name = f.parent.name if f.name == "test.json" else f.name.split(".")[0]
        items = read_items(f)
        # the kind from the first row's keys: options make a classification task, a label alone a generation one
        kind = (
            "gen"
            if items and isinstance(items[0], dict) and "options" not in items[0] and "label" in items[0]
            else "mc"
        )
        rows = load_rows(f, kind, name)
        out.append(Task(name, kind, "accuracy" if kind == "mc" else "exact_match", str(f), rows[:limit]))
    return out
