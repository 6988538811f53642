"""lm-evaluation-harness as a library: the paper's general suite, a directory of lm-eval YAML tasks, and the
shipped YAMLs of the domain tasks (``lm_eval_tasks/``), over a model already loaded (``HFLM(pretrained=model)``).

General suite (SPEC §8): ARC-e, ARC-c, BoolQ, SIQA, WinoGrande, PIQA, OBQA, HellaSwag zero-shot, MMLU 5-shot, by
their lm-eval task names. lm-eval loads their datasets from the HF hub (or its cache: with ``HF_DATASETS_OFFLINE=1``
and ``HF_HUB_OFFLINE=1`` a pre-filled cache is used without network).
"""

from __future__ import annotations

import json
import math
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from instructpt.errors import ConfigError, InputError

GENERAL: list[tuple[str, int | None]] = [("arc_easy", 0), ("arc_challenge", 0), ("boolq", 0), ("social_iqa", 0),
                                         ("winogrande", 0), ("piqa", 0), ("openbookqa", 0), ("hellaswag", 0), ("mmlu", 5)]  # fmt: skip


def shipped_tasks_path() -> Path:
    """The folder of the shipped domain-task YAMLs (``lm_eval --include_path`` takes it)."""
    return Path(str(resources.files("instructpt.evaluate") / "lm_eval_tasks"))


def local_tasks_path(data_dir: str, out: Path) -> Path:
    """A copy of the shipped YAMLs reading ``data_dir`` (``<Task>/test.json``) instead of the hub, under ``out``."""
    target = out / "lm_eval_tasks"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(shipped_tasks_path(), target, ignore=shutil.ignore_patterns("__pycache__"))
    for yaml_path in target.rglob("*.yaml"):
        text = yaml_path.read_text(encoding="utf-8")
        task_file = text.split("test: ", 1)[1].split("\n", 1)[0]
        local = (Path(data_dir) / task_file).resolve()  # lm-eval resolves relative paths against the cwd
        text = text.replace(f"test: {task_file}", f"test: {json.dumps(str(local))}")
        text = "\n".join(
            "dataset_path: json" if ln.startswith("dataset_path:") else ln for ln in text.splitlines()
        )
        yaml_path.write_text(text + "\n", encoding="utf-8")
    return target


def with_bos(tokenizer: Any) -> Any:
    """A copy of a fast tokenizer that adds BOS itself (``add_special_tokens=True``), as lm-eval's ``add_bos_token``
    expects: lm-eval asks the tokenizer for special tokens, and many (byte-level BPEs, some exports) add none."""
    import copy

    bos = tokenizer.bos_token
    if bos is None:
        raise ConfigError("--add-bos-token: the tokenizer has no BOS token")
    if tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]:
        return tokenizer
    from tokenizers import processors

    tok = copy.deepcopy(tokenizer)
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.bos_token_id)]
    )
    if tok("x").input_ids[:1] != [tokenizer.bos_token_id]:
        raise ConfigError("--add-bos-token: cannot make this tokenizer add BOS for lm-eval")
    return tok


def run(model: Any, tokenizer: Any, tasks: list[tuple[str, int | None]], include_path: Path | None, add_bos: bool,
        batch_size: int, limit: int | None, device: str, seed: int) -> tuple[dict[str, Any], dict[str, list]]:  # fmt: skip
    """``(results, samples)`` by task: each metric's value and stderr, and lm-eval's logged samples. A task's shots
    are given, or None for its own YAML's ``num_fewshot``."""
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise ConfigError("this suite needs lm-evaluation-harness: pip install 'instructpt[eval]'") from exc
    tok = with_bos(tokenizer) if add_bos else tokenizer
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, add_bos_token=add_bos, device=device)
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    results: dict[str, Any] = {}
    samples: dict[str, list] = {}
    for shots in sorted({n for _, n in tasks}, key=lambda n: -1 if n is None else n):
        names = [t for t, n in tasks if n == shots]
        try:
            out = lm_eval.simple_evaluate(model=lm, tasks=names, num_fewshot=shots, limit=limit, task_manager=manager,
                                          log_samples=True, random_seed=seed, numpy_random_seed=seed,
                                          torch_random_seed=seed, fewshot_random_seed=seed, bootstrap_iters=1000)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - lm-eval raises many types for a task it cannot load
            raise InputError(
                f"lm-eval could not run {', '.join(names)}: {' '.join(str(exc).split())[:500]}"
            ) from exc
        if out is None:
            continue
        for task, figures in out["results"].items():
            results[task] = {
                "shots": shots,
                "n": out.get("n-samples", {}).get(task, {}).get("effective"),
                **_figures(figures),
            }
        for task, rows in out.get("samples", {}).items():
            samples[task] = [_sample(r) for r in rows]
    return results, samples


def _figures(figures: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's ``"acc,none"`` / ``"acc_stderr,none"`` as ``{"acc": {"value", "stderr"}}`` (plain floats)."""
    out: dict[str, Any] = {}
    for key, value in figures.items():
        name, _, filt = key.partition(",")
        if not isinstance(value, int | float) or name.endswith("_stderr") or isinstance(value, bool):
            continue
        stderr = figures.get(f"{name}_stderr,{filt}")
        label = name if filt in ("none", "") else f"{name},{filt}"
        out[label] = {"value": float(value),
                      "stderr": float(stderr) if isinstance(stderr, int | float) and math.isfinite(stderr) else None}  # fmt: skip
    return {"metrics": out}


def _sample(row: dict[str, Any]) -> dict[str, Any]:
    def plain(x: Any) -> Any:
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if hasattr(x, "item"):
            return x.item()
        return x if isinstance(x, str | int | float | bool) or x is None else str(x)

    keep = ("doc_id", "target", "filtered_resps")
    return {k: plain(row[k]) for k in keep if k in row} | {
        k: plain(v) for k, v in row.items() if k not in keep and k not in ("doc", "arguments", "resps")
        and not k.endswith("_hash")
    }  # fmt: skip
