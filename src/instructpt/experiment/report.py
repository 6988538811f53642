"""The experiment's report: per-seed scores of every arm, means and spread, and paired per-seed differences
(``experiment.json`` and ``report.md``)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from instructpt.experiment.config import INSTRUCTION_TUNE, TUNE, ExperimentConfig

STORAGE_BAR = 0.75  # storage accuracy both compared arms need before their question accuracy is compared
# (arm, against): the differences reported, per seed; the first is the claim
COMPARISONS = (("instruction", TUNE), ("instruction", "vanilla"), (INSTRUCTION_TUNE, TUNE))


def scores(results: Path) -> dict[str, float]:
    """Task -> its first metric's value, from evaluate's results.json (read as ``evaluate --compare`` reads it)."""
    from instructpt.evaluate.compare import result_rows

    data = json.loads(results.read_text(encoding="utf-8"))
    return {task: result_rows(result)[0][1] for task, result in data["tasks"].items()}


def compare(results: dict[str, dict[int, dict[str, float]]], seeds: list[int]) -> dict[str, Any]:
    """Per task: every arm's per-seed values, mean and spread, and the per-seed differences of each comparison
    whose two arms ran (``instruction_minus_vanilla+tune``, ...)."""
    arms = list(results)
    tasks = sorted(results[arms[0]][seeds[0]])
    table: dict[str, Any] = {}
    for task in tasks:
        row: dict[str, Any] = {}
        for arm in arms:
            row[arm] = _stats([results[arm][s][task] for s in seeds])
        for arm, other in COMPARISONS:
            if arm in results and other in results:
                row[f"{arm}_minus_{other}"] = _stats(
                    [results[arm][s][task] - results[other][s][task] for s in seeds]
                )
        table[task] = row
    return {"seeds": seeds, "arms": arms, "tasks": table}


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "per_seed": values,
        "mean": statistics.fmean(values),
        "spread": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def storage_ok(report: dict[str, Any], arms: tuple[str, ...]) -> bool | None:
    """Whether every ``storage_*`` task clears the bar in ``arms`` (None: the suite has no storage task)."""
    means = [row[a]["mean"] for t, row in report["tasks"].items() if t.startswith("storage") for a in arms]
    return min(means) >= STORAGE_BAR if means else None


def _schedule(config: ExperimentConfig) -> str:
    t = config.train
    if t.max_steps is not None:
        return f"{t.max_steps} steps"
    return (
        f"{t.max_tokens:,} tokens in steps" if t.max_tokens is not None else f"{t.epochs:g} epoch(s) in steps"
    )


def markdown(report: dict[str, Any], config: ExperimentConfig) -> str:
    arms = report["arms"]
    data = (
        f"corpus {', '.join(config.corpus)} ({1 if config.general else config.augment_fraction:g} of its documents "
        "augmented"
        + (f"; domain recipe with general instructions {', '.join(config.general)}" if config.general else "")
        + f"); suite {config.suite}"
        if config.corpus
        else f"generated data: {config.entities} people (half augmented)"
    )
    model = f"continual pre-training from {config.init}" if config.init else f"model {config.model_config}"
    gold = " (the generator's gold pairs: an upper bound)" if config.synthesizer == "gold" else ""
    lines = [
        "# Experiment: instruction vs vanilla pre-training at the same token budget",
        "",
        f"{data}; pairs: {config.synthesizer}{gold}; {model}; seeds {report['seeds']}; "
        f"{_schedule(config)} of {config.train.batch_size} x {config.train.seq_len} tokens; training "
        "tokens in the mixtures: "
        + ", ".join(f"{arm} {n:,}" for arm, n in report["train_tokens"].items())
        + ".",
        "",
    ]
    if not config.corpus:
        lines += [
            "`qa_*`: held-out question wordings (multiple choice, chance 0.25); `exact_*`: the same, exact match;",
            "`storage_*`: a sentence of the person's own document, cut before the value (multiple choice): whether",
            f"the fact was memorised. A comparison counts only where storage is {STORAGE_BAR} or more in both arms.",
        ]
    lines += [
        f"Plain vanilla never saw a question-answer format: it is the format floor; the control is `{TUNE}` (the",
        f"vanilla model, then {config.tune_steps} steps of tuning on the instruction arm's pairs alone, peak learning",
        f"rate {config.tune_lr or config.train.lr / 10:g}), and the claim is instruction against it."
        + (
            f" `{INSTRUCTION_TUNE}`: the instruction model tuned the same way (the paper's second comparison)."
            if INSTRUCTION_TUNE in arms
            else ""
        ),  # fmt: skip
        "",
    ]
    against_control = [(a, o) for a, o in COMPARISONS if o == TUNE and a in arms and o in arms]
    for compared in against_control:
        if storage_ok(report, compared) is False:
            lines += [f"**Storage is below {STORAGE_BAR} in {' or '.join(compared)}: the facts were not memorised "
                      "well enough for that comparison to count (more steps, or a larger model).**", ""]  # fmt: skip
    head = [*arms, *(f"{a} - {o} (per seed)" for a, o in against_control), "instruction - vanilla"]
    lines += [
        "| task | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(arms) + "---|" * len(against_control) + "---:|",
    ]
    for task, row in report["tasks"].items():
        cells = [f"{row[arm]['mean']:.3f} ± {row[arm]['spread']:.3f}" for arm in arms]
        for a, o in against_control:
            d = row[f"{a}_minus_{o}"]
            cells.append(f"{d['mean']:+.3f} ({', '.join(f'{x:+.3f}' for x in d['per_seed'])})")
        cells.append(f"{row['instruction_minus_vanilla']['mean']:+.3f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
