"""The stage platform: what every stage shares besides its own work.

- :class:`RunOptions` / :class:`ShardedOptions`: the config fields every stage has (output, progress; inputs and
  shard format for sharded stages), declared once and inherited by each stage's config dataclass.
- :class:`ShardPlan`: which shards a process owns (``rank`` of ``world_size``); a stage given a plan works on its
  shards only, so ranks and Ray actors split a run without bookkeeping of their own.
- :class:`Summary` and :class:`RunInfo`: what a stage returns and writes to ``OUT/stats.json``; each stage names
  its headline counters once, and the CLI prints any stage's summary with them.
- :func:`run_map_stage`: the runner of a map stage (one input shard in, one output shard out): skips finished
  shards, redoes a shard whose input changed, writes each shard atomically, shows progress, returns the summary.

A stage is a folder with ``run.py`` (its config dataclass and ``main(cfg) -> Summary``), one line in the CLI's
command table, ``configs/<stage>.yaml`` and tests: docs/adding-a-stage.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from instructpt.config import option
from instructpt.errors import ConfigError, EngineError, InputError
from instructpt.io.rundir import sha256_file
from instructpt.io.shards import FORMATS, ShardedOutput, ShardFile
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import Reject
from instructpt.scale.plan import ShardPlan, plan_from
from instructpt.scale.ray import RayOptions

log = logging.getLogger(__name__)


# ---- the config every stage shares ----
@dataclass
class RunOptions:
    """Fields of every stage's config that writes a run directory: where, and whether to start over there."""

    output: str = option("", "Output directory (created; re-running resumes into it).", aliases=("-o",))
    overwrite: bool = option(
        False, "Start over: delete what an earlier run of this command wrote in the output directory."
    )

    def __post_init__(self) -> None:
        if not self.output:
            raise ConfigError("--output/-o is required")


@dataclass
class ShardedOptions(RunOptions):
    """Fields of a sharded stage's config: its inputs and the format of the shards it writes."""

    inputs: list[str] = option([], "Input files or directories.", positional=True)
    format: str = option("jsonl", "Output shard format.", choices=FORMATS)
    progress: bool = option(True, "Show a progress bar (log lines when not on a terminal).")
    world_size: int | None = option(
        None,
        "Split the shards over this many independent processes writing into one output directory (default: "
        "SLURM_ARRAY_TASK_COUNT, else WORLD_SIZE, else 1).",
    )
    rank: int | None = option(
        None,
        "This process's part, 0 .. world size - 1: it does shard i when i mod world size is the rank (default: "
        "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, else RANK, else 0).",
    )
    ray: RayOptions = field(default_factory=RayOptions)

    INPUTS: ClassVar[str] = "a file, directory or glob"  # what an INPUT is, in the error when none is given

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError(f"give at least one INPUT ({self.INPUTS})")
        super().__post_init__()
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
        self.shard_plan()  # a bad rank or world size is named now

    def shard_plan(self, environ: Mapping[str, str] | None = None) -> ShardPlan:
        """The shards this process owns: ``--rank``/``--world-size``, else a Slurm job array's task, else
        torchrun-style ``RANK``/``WORLD_SIZE``, else all of them."""
        return plan_from(self.rank, self.world_size, os.environ if environ is None else environ)


# ---- what a stage returns ----
@dataclass
class RunInfo:
    """This run's timings and shard counts. ``work_seconds`` is the stage's work alone (rates use it); model or
    engine start-up and shutdown are reported apart; ``wall_seconds`` is all three."""

    unit: str  # what the stage counts: docs, chains, ...
    done_this_run: int = 0
    work_seconds: float = 0.0
    startup_seconds: float = 0.0
    shutdown_seconds: float = 0.0
    shards_total: int | None = None
    shards_resumed: int | None = None
    shards_retried: int | None = None

    @property
    def wall_seconds(self) -> float:
        return self.startup_seconds + self.work_seconds + self.shutdown_seconds

    @property
    def per_second(self) -> float | None:
        return round(self.done_this_run / self.work_seconds, 3) if self.work_seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "wall_seconds": round(self.wall_seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "work_seconds": round(self.work_seconds, 3),
            "shutdown_seconds": round(self.shutdown_seconds, 3),
            f"{self.unit}_this_run": self.done_this_run,
            f"{self.unit}_per_second": self.per_second,
        }
        for key in ("shards_total", "shards_resumed", "shards_retried"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass
class Summary:
    """A stage run's result: counters merged over all its finished work, named breakdowns, this run's timings.

    ``headline`` names the counters worth one line (the stage declares them once); ``derived`` holds figures
    computed from the counters (``pairs_per_doc_mean``). ``to_dict()`` is what ``stats.json`` holds."""

    stage: str
    counts: dict[str, Any]
    by: dict[str, dict[str, Any]]
    run: RunInfo
    headline: tuple[str, ...] = ()
    derived: dict[str, Any] = field(default_factory=dict)
    output: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "counts": self.counts,
            "by": self.by,
            **self.derived,
            "run": self.run.to_dict(),
        }

    def line(self) -> str:
        """The headline counters as ``name=value`` (what the CLI prints)."""
        shown = ", ".join(f"{k}={self.counts[k]:,}" for k in self.headline if k in self.counts)
        return shown or "the inputs held no records"

    def top_rejects(self, n: int = 3) -> str:
        """The most frequent reject reasons with their counts (``missing_text 40, invalid_json 2``)."""
        reasons = sorted(self.by.get("rejects", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        more = f", +{len(reasons) - n} more reasons" if len(reasons) > n else ""
        return ", ".join(f"{k} {v:,}" for k, v in reasons[:n]) + more


def summarize(
    out: ShardedOutput,
    run: RunInfo,
    headline: tuple[str, ...],
    derive: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    plan: ShardPlan | None = None,
) -> Summary:
    """Merge the stats of every finished shard into the summary and write it to ``OUT/stats.json`` (when this run
    wrote a shard, or there is none yet). Raises :class:`InputError` when records came in and every one of them was
    rejected: a run that produced nothing must not look like success."""
    alone = plan is None or plan.world_size == 1  # with ranks, the shards of the others may still be running
    with _stats_lock(out.root):  # ranks and Ray drivers finishing together: one merges and writes at a time
        merged = out.merged_stats().to_dict()
        run.shards_total = len(out.completed_shards())
        derived = derive(merged["counts"]) if derive else {}
        summary = Summary(out.stage, merged["counts"], merged["by"], run, headline, derived, str(out.root))
        if (out.written and alone) or _stale(out.root / "stats.json", run.shards_total, merged):
            out.write_summary(summary)
            from instructpt.io.card import write_card

            write_card(out.root, out.stage, summary.counts)
    # documents that came out of the work itself (synthesize --fraction passes some through untouched)
    made = summary.counts.get("docs_out", 0) - summary.counts.get("docs_passed_through", 0)
    if alone and summary.counts.get("rejected") and made <= 0:
        reasons = summary.by.get("rejects", {})
        # mostly failed requests: the engine's fault (exit 5), not the input's (exit 3)
        error = EngineError if reasons.get("engine_error", 0) * 2 > sum(reasons.values()) else InputError
        raise error(
            f"every record was rejected ({summary.top_rejects()}), e.g. {out.first_reject_detail()}; "
            f"each one is in {out.root}/rejects/ with its reason"
        )
    return summary


def _stale(stats: Path, shards: int, merged: dict[str, Any]) -> bool:
    """Whether ``stats.json`` is missing, covers fewer finished shards than there are now (ranks that finished
    after the last one that wrote it), or merges other counters (shards redone since): then this merge, made
    under the lock from every finished shard, replaces it."""
    try:
        written = json.loads(stats.read_text())
        shards_then = written["run"]["shards_total"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    if not isinstance(shards_then, int) or shards_then != shards:
        return not isinstance(shards_then, int) or shards_then < shards
    return written.get("counts") != merged["counts"] or written.get("by") != merged["by"]


@contextlib.contextmanager
def _stats_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the run directory's stats: an advisory flock on its manifest (which every run directory
    has, and nobody rewrites), so no lock file is left behind; none where flock is missing."""
    try:
        import fcntl
    except ImportError:  # not on POSIX
        yield
        return
    if not (root / "manifest.json").exists():
        yield
        return
    with open(root / "manifest.json", "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_output(
    config: ShardedOptions, stage: str, fingerprint: dict[str, Any], plan: ShardPlan | None = None, **kw: Any
) -> ShardedOutput:
    """The stage's output directory, created or checked for resume (``--overwrite``: started over); this run's
    ``config.yaml`` is written with its first shard (a run with nothing left to do writes nothing)."""
    check_overwrite(config, plan.world_size if plan else 1)
    out = ShardedOutput(config.output, stage, fingerprint, config.format, overwrite=config.overwrite, **kw)
    out.config = config
    return out


def check_overwrite(config: RunOptions, world_size: int) -> None:
    """``--overwrite`` deletes what is in the directory: one process must do it, before the others start."""
    if config.overwrite and world_size > 1:
        raise ConfigError(
            "--overwrite with several processes would delete what the others write: clear the output directory "
            "first (one run with --overwrite, or by hand), then start the processes without it"
        )


# ---- the map-stage runner ----
@dataclass
class ShardResult:
    """What a map stage makes of one input shard."""

    records: list[dict[str, Any]]
    rejects: list[Reject]
    stats: Stats


class MapStage(Protocol):
    """One input shard in, one output shard out; everything else comes from :func:`run_map_stage`."""

    name: str  # the stage's name (manifest, progress)
    unit: str  # what progress and the summary count (``docs``, ``chains``)
    headline: tuple[str, ...]
    renamed: dict[str, str]  # counter names earlier versions wrote -> today's

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult: ...


class MapWorker:
    """A map stage and its output directory in a Ray actor: one input shard per call, written as a local run
    writes it; returns (records written, pairs written)."""

    def __init__(
        self, stage: MapStage, config: ShardedOptions, fingerprint: dict[str, Any], kw: dict[str, Any]
    ):
        self.stage = stage  # overwrite=False: the driver cleared the directory; a restarted actor must not
        self.out = ShardedOutput(config.output, stage.name, fingerprint, config.format, overwrite=False, **kw)
        self.out.config = config

    def __call__(self, shard: ShardFile, marker: str) -> tuple[int, int]:
        result = self.stage.map_shard(shard, Progress(self.stage.name, enabled=False, unit=self.stage.unit))
        self.out.write_shard(shard.index, result.records, result.rejects, result.stats, marker=marker)
        return len(result.records), int(result.stats.counts.get("pairs_out", 0))


def run_map_stage(
    stage: MapStage,
    config: ShardedOptions,
    fingerprint: dict[str, Any],
    shards: Sequence[ShardFile],
    plan: ShardPlan | None = None,
) -> Summary:
    """Run ``stage`` over the input ``shards`` this process owns; returns the summary also in ``stats.json``.

    Each output shard has the number of its input shard and records the input's digest in its completion
    marker: a re-run skips shards whose input is unchanged and redoes those whose input changed since."""
    plan = plan or config.shard_plan()
    out = open_output(config, stage.name, fingerprint, plan, renamed=stage.renamed)
    progress = Progress(stage.name, enabled=config.progress, unit=stage.unit)
    resumed = len(out.completed_shards())
    start = time.monotonic()
    todo: list[tuple[ShardFile, str]] = []
    for shard in shards:
        if not plan.owns(shard.index):
            continue
        made_from = f"input-sha256 {sha256_file(shard.path)}"
        if out.marker(shard.index) == made_from:
            continue
        if out.is_done(shard.index):  # its input changed since (synthesize --retry-errors rewrote it, say)
            log.info("%s changed since it was processed; processing it again", shard.path)
            out.reopen(shard.index)
            resumed -= 1
        todo.append((shard, made_from))
    startup = 0.0
    if config.ray.enabled and todo:
        from instructpt.scale.ray import run_on_ray

        def done(result: tuple[int, int]) -> None:
            progress.update(docs=result[0], pairs=result[1])

        args = (stage, config, fingerprint, {"renamed": stage.renamed})
        startup = run_on_ray(config.ray, MapWorker, args, todo, done)
    else:
        for shard, made_from in todo:
            result = stage.map_shard(shard, progress)
            out.write_shard(shard.index, result.records, result.rejects, result.stats, marker=made_from)
    progress.close()
    run = RunInfo(
        stage.unit, progress.docs, time.monotonic() - start - startup, startup, shards_resumed=resumed
    )
    return summarize(out, run, stage.headline, plan=plan)
