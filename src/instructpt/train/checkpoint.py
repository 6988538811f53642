"""Training checkpoints: model and optimizer through PyTorch's distributed checkpoint (DCP: one format for a single
process, DDP and FSDP2, resharded on load), plus the loop's own state; atomic, kept ``--keep-checkpoints`` deep.

    OUT/checkpoints/step-000100/   DCP files (model, optimizer), rng-rank*.pt, state.json (written last)

A checkpoint is complete when its ``state.json`` exists: it is written into a temporary directory that is renamed
into place after every rank has written its part. Loading takes the newest complete checkpoint; one that fails to
load is reported and the one before it is used.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

from instructpt.io.rundir import RunDir, atomic_write, json_bytes

log = logging.getLogger(__name__)

STATE = "state.json"


class TrainDir(RunDir):
    """The run directory of a trainer: ``--overwrite`` also removes its checkpoints, metrics, exported model and
    the stage's own extra folders (``EXTRA_DIRS``)."""

    EXTRA_DIRS: tuple[str, ...] = ("checkpoints", "model", "tensorboard")
    OWN_FILES: tuple[str, ...] = (*RunDir.OWN_FILES, "metrics.jsonl")

    def has_results(self) -> bool:
        return any((self.root / "checkpoints").glob("step-*"))


def _dcp(op: Any, state: dict[str, Any], path: Path) -> None:
    """A DCP save or load, without its warning that a single process is not a process group."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.distributed is disabled.*")
        op(state, checkpoint_id=str(path))


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def complete(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    return sorted(p for p in root.glob("step-*") if (p / STATE).exists() and not p.name.endswith(".tmp"))


def save(root: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any], keep: int) -> Path:
    """Write checkpoint ``step`` (every rank calls this), then drop all but the newest ``keep``."""
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = step_dir(root, step)
    tmp = final.with_name(final.name + ".tmp")
    if _rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    _dcp(dcp.save, {"model": model_sd, "optim": optim_sd}, tmp)
    rng = {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(rng, tmp / f"rng-rank{_rank()}.pt")
    _barrier()
    if _rank() == 0:
        atomic_write(tmp / STATE, json_bytes({**state, "step": step}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in complete(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def load_latest(root: Path, model: Any, optimizer: Any) -> dict[str, Any] | None:
    """Restore the newest complete checkpoint that loads (its state.json content), or None when there is none."""
    from torch.distributed.checkpoint.api import CheckpointException  # a BaseException, not an Exception

    for path in reversed(complete(root)):
        try:
            return load(path, model, optimizer)
        except (Exception, CheckpointException) as exc:  # noqa: BLE001 - a damaged checkpoint: use the one before
            log.warning(
                "checkpoint %s cannot be loaded (%s: %s); trying the one before it",
                path,
                type(exc).__name__,
                exc,
            )
    return None


def load(path: Path, model: Any, optimizer: Any | None) -> dict[str, Any]:
    """Restore model (and optimizer, when given) and this rank's RNG state from checkpoint ``path``."""
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    state = json.loads((path / STATE).read_text(encoding="utf-8"))
    model_sd, optim_sd = (
        get_state_dict(model, optimizer) if optimizer is not None else (get_state_dict(model, [])[0], None)
    )
    target: dict[str, Any] = {"model": model_sd}
    if optimizer is not None:
        target["optim"] = optim_sd
    _dcp(dcp.load, target, path)
    if optimizer is not None:
        set_state_dict(model, optimizer, model_state_dict=target["model"], optim_state_dict=target["optim"])
    else:
        set_state_dict(model, [], model_state_dict=target["model"], optim_state_dict={})
    rng_file = path / f"rng-rank{_rank()}.pt"
    if rng_file.exists():
        rng = torch.load(rng_file, weights_only=True)
        torch.set_rng_state(rng["cpu"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    return state
