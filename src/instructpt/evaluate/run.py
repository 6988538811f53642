"""``instructpt evaluate``: a model on the paper's general suite (lm-eval), the AdaptLLM domain tasks, or your own.

    instructpt evaluate runs/ipt/model --suite general -o evals/ipt-general
    instructpt evaluate AdaptLLM/finance-LLM --suite finance --data-dir finance-tasks/ -o evals/fin
    instructpt evaluate runs/ipt/model --suite my-tasks/ -o evals/mine          # task files or lm-eval YAMLs
    instructpt evaluate --compare evals/vanilla/results.json evals/ipt/results.json
    instructpt evaluate --print-tasks-path [--data-dir DIR]                       # for lm_eval --include_path

Outputs in OUT: ``results.json`` (per task and metric: value, stderr where defined, rows; the model, revision,
commit, dtype, BOS setting, lm-eval version, seed), ``results.md`` and ``samples/<task>.jsonl`` (one line per row:
its prediction, gold and score). Each finished task is kept (``tasks/<task>.json``): a re-run resumes after it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError, InputError
from instructpt.evaluate.compare import result_rows
from instructpt.io.rundir import RunDir, json_bytes
from instructpt.io.shards import write_jsonl
from instructpt.stages import RunInfo, RunOptions, Summary

HEADLINE = ("tasks", "rows")


@dataclass
class EvaluateConfig(RunOptions):
    """``instructpt evaluate``: a model -> results of a task suite."""

    model: str = option(
        "", "HF id or directory of the model (what pretrain / export write).", positional=True
    )
    suite: str = option("general", "general | biomedicine | finance | PATH (task files or lm-eval YAMLs).")
    data_dir: str | None = option(
        None, "biomedicine / finance: a local copy of the tasks (<Task>/test.json)."
    )
    revision: str | None = option(None, "Revision of a hub model.")
    dtype: str = option("auto", "auto (bf16 on GPUs, fp32 on CPU) | float32 | bfloat16 | float16.")
    device: str = option("auto", "auto | cpu | cuda | cuda:N.")
    batch_size: int = option(8, "Sequences per forward pass.", aliases=("--batch-size",))
    add_bos_token: bool | None = option(
        None,
        "Prepend BOS to every prompt (default: the model's BOS/EOS policy; on for Mistral/Llama models).",
    )
    limit: int | None = option(None, "Rows per task (quick runs).", aliases=("--limit",))
    seed: int = option(1234, "Seed of lm-eval's few-shot sampling.")
    trust_remote_code: bool = option(False, "Allow model repos to run their own code (off by default).")
    compare: list[str] = option(
        [], "results.json files to print side by side (first = baseline); no model runs."
    )
    print_tasks_path: bool = option(
        False, "Print the folder of the shipped lm-eval YAMLs (with --data-dir: a local copy)."
    )

    def __post_init__(self) -> None:
        if self.print_tasks_path and self.data_dir and not self.output:
            raise ConfigError(
                "--print-tasks-path --data-dir writes a copy of the task YAMLs: give -o DIR for it"
            )
        if self.compare or self.print_tasks_path:
            return
        super().__post_init__()
        if not self.model:
            raise ConfigError("give the MODEL to evaluate (an HF id or directory)")
        if self.batch_size < 1 or (self.limit is not None and self.limit < 1):
            raise ConfigError("--batch-size and --limit must be >= 1")
        if self.data_dir and self.suite not in ("biomedicine", "finance"):
            raise ConfigError("--data-dir is for --suite biomedicine or finance")
        if self.suite not in ("general", "biomedicine", "finance") and not Path(self.suite).exists():
            raise ConfigError(
                f"--suite {self.suite!r}: general, biomedicine, finance, or a task file or directory"
            )

    def fingerprint(self) -> dict[str, Any]:
        return {"model": self.model, "revision": self.revision, "suite": self.suite, "data_dir": self.data_dir,
                "dtype": self.dtype, "add_bos_token": self.add_bos_token, "limit": self.limit, "seed": self.seed}  # fmt: skip


class EvaluateDir(RunDir):
    EXTRA_DIRS = ("tasks", "samples", "lm_eval_tasks")
    OWN_FILES = (*RunDir.OWN_FILES, "results.json", "results.md")

    def has_results(self) -> bool:
        return any((self.root / "tasks").glob("*.json"))


def evaluate(config: EvaluateConfig) -> Summary:
    """Run the suite (or compare results, or print the tasks path); returns the summary."""
    from instructpt.evaluate.harness import local_tasks_path, shipped_tasks_path

    if config.print_tasks_path:
        path = (
            local_tasks_path(config.data_dir, Path(config.output or "."))
            if config.data_dir
            else shipped_tasks_path()
        )
        print(path)
        return Summary("evaluate", {}, {}, RunInfo("tasks"), ())
    if config.compare:
        from instructpt.evaluate.compare import compare

        return compare(config.compare, config.output or None)
    t0 = time.monotonic()
    from instructpt.io.inputs import local_files

    # a model exported again to the same place, or changed task files, are not resumed as if nothing had changed
    inputs = local_files([config.model, config.data_dir or config.suite], exclude=(config.output,))
    out = EvaluateDir(
        config.output, "evaluate", config.fingerprint(), inputs=inputs, overwrite=config.overwrite
    )
    out.write_config(config)
    model, tokenizer, device, info = _load(config)
    t1 = time.monotonic()
    results = _run_suite(config, out.root, model, tokenizer, device, info)
    t2 = time.monotonic()
    report = {**info, "suite": config.suite, "seed": config.seed, "limit": config.limit, "tasks": results}
    out.write_file("results.json", json_bytes(report))
    out.write_file("results.md", markdown(report).encode("utf-8"))
    counts = {"tasks": len(results), "rows": sum(int(r.get("n") or 0) for r in results.values())}
    summary = Summary("evaluate", counts, {"values": _values(results)}, RunInfo("tasks", len(results), t2 - t1, t1 - t0),
                      HEADLINE, output=str(out.root))  # fmt: skip
    out.write_summary(summary)
    return summary


def _load(config: EvaluateConfig) -> tuple[Any, Any, Any, dict[str, Any]]:
    from transformers import AutoModelForCausalLM

    from instructpt.engines.hf import resolve_device_dtype
    from instructpt.engines.hub import hub_commit
    from instructpt.engines.tokenizer import load_hf_tokenizer

    tokenizer = load_hf_tokenizer(config.model, config.revision, config.trust_remote_code, error=InputError)
    device, dtype = resolve_device_dtype(config.device, config.dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(config.model, revision=config.revision, dtype=dtype,
                                                     trust_remote_code=config.trust_remote_code, use_safetensors=True)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any loader failure is one clear error
        raise InputError(f"cannot load model {config.model!r}: {' '.join(str(exc).split())[:400]}") from exc
    model.to(device).eval()
    add_bos = (
        config.add_bos_token
        if config.add_bos_token is not None
        else _policy_bos(config.model, tokenizer, model)
    )
    info = {"model": {"name": config.model, "revision": config.revision, "commit": hub_commit(config.model, config.revision),
                      "dtype": str(dtype).removeprefix("torch."), "add_bos_token": add_bos, "device": str(device)},
            "lm_eval_version": _lm_eval_version()}  # fmt: skip
    return model, tokenizer, device, info


def _policy_bos(name: str, tokenizer: Any, model: Any) -> bool:
    """BOS as the model directory records it (export writes the policy), else by the project's policy table."""
    from instructpt.special_tokens import policy_for

    recorded = Path(name) / "instructpt_special_tokens.json"
    if recorded.exists():
        return bool(json.loads(recorded.read_text(encoding="utf-8")).get("add_bos"))
    return policy_for(tokenizer, getattr(model.config, "model_type", None)).add_bos


def _lm_eval_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("lm_eval")
    except Exception:  # noqa: BLE001 - not installed
        return None


def _run_suite(config: EvaluateConfig, root: Path, model: Any, tokenizer: Any, device: Any,
               info: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Every task's result; finished tasks (``tasks/<task>.json``) are read back, the others run and kept."""
    from instructpt.evaluate import harness
    from instructpt.evaluate.scoring import Scorer, score_task
    from instructpt.evaluate.tasks import path_tasks, suite_tasks

    add_bos = info["model"]["add_bos_token"]
    (root / "tasks").mkdir(exist_ok=True)
    results: dict[str, Any] = {
        r.stem: json.loads(r.read_text(encoding="utf-8")) for r in (root / "tasks").glob("*.json")
    }
    custom = Path(config.suite) if config.suite not in ("general", "biomedicine", "finance") else None
    yamls = _yaml_tasks(custom, root) if custom else []
    if config.suite == "general" or yamls:
        todo = [(name, shots) for name, shots in (yamls or harness.GENERAL) if name not in results]
        if todo:  # the tasks not finished by an earlier run
            found, logged = harness.run(model, tokenizer, todo, custom, add_bos, config.batch_size, config.limit,
                                        str(device), config.seed)  # fmt: skip
            for name, result in found.items():
                _keep(root, name, result, logged.get(name, []))
                results[name] = result
        return results
    tasks = (
        path_tasks(custom, config.limit)
        if custom
        else suite_tasks(config.suite, config.data_dir, config.limit)
    )
    scorer = Scorer(model, tokenizer, add_bos, device, config.batch_size)
    for task in tasks:
        if task.name not in results:
            result, samples = score_task(scorer, task)
            _keep(root, task.name, result, samples)
            results[task.name] = result
    return {t.name: results[t.name] for t in tasks}


def _yaml_tasks(path: Path, output: Path) -> list[tuple[str, int | None]]:
    """``(task name, None)`` of the lm-eval task YAMLs under ``path`` (not those of the output directory): each
    runs with its own ``num_fewshot``."""
    import yaml

    names: list[tuple[str, int | None]] = []
    for f in sorted(path.rglob("*.yaml")):
        if f.resolve().is_relative_to(output.resolve()):
            continue
        doc = yaml.safe_load(f.read_text(encoding="utf-8").replace("!function", "")) or {}
        if isinstance(doc, dict) and isinstance(doc.get("task"), str):
            names.append((doc["task"], None))
    return names


def _keep(root: Path, task: str, result: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """A finished task: its samples, then its result (written last: the task is done)."""
    from instructpt.io.rundir import atomic_write

    (root / "samples").mkdir(exist_ok=True)
    write_jsonl(root / "samples" / f"{task}.jsonl", samples)
    atomic_write(root / "tasks" / f"{task}.json", json_bytes(result))


def _values(results: dict[str, Any]) -> dict[str, float]:
    out = {}
    for task, r in results.items():
        if "value" in r:
            out[task] = round(float(r["value"]), 6)
        for name, m in r.get("metrics", {}).items():
            out[f"{task}/{name}"] = round(float(m["value"]), 6)
    return out


def markdown(report: dict[str, Any]) -> str:
    m = report["model"]
    lines = [f"# {m['name']} on {report['suite']}", "",
             f"dtype {m['dtype']}, BOS {'added' if m['add_bos_token'] else 'not added'}, lm-eval "
             f"{report.get('lm_eval_version') or 'not installed'}, seed {report['seed']}"
             + (f", limit {report['limit']} rows per task" if report.get("limit") else ""), "",
             "| task | metric | value | stderr | rows |", "|---|---|---:|---:|---:|"]  # fmt: skip
    for task, r in report["tasks"].items():
        for name, value, stderr in result_rows(r):
            shown = f"{stderr:.4f}" if isinstance(stderr, float) else ""
            lines.append(f"| {task} | {name} | {value:.4f} | {shown} | {r.get('n') or ''} |")
    return "\n".join(lines) + "\n"


main = evaluate
Config = EvaluateConfig
