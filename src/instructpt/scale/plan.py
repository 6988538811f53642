"""Which shards a process owns: :class:`ShardPlan` (``rank`` of ``world_size``), from flags, a Slurm job array or
torchrun's variables (:func:`plan_from`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from instructpt.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardPlan:
    """The shards one process owns: shard ``i`` belongs to rank ``i % world_size``."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(
                f"rank {self.rank} of world size {self.world_size}: need 0 <= rank < world size"
            )

    def owns(self, index: int) -> bool:
        return index % self.world_size == self.rank


def plan_from(rank: int | None, world_size: int | None, environ: Mapping[str, str]) -> ShardPlan:
    """A :class:`ShardPlan` from flags (either may be None) and the environment of a Slurm job array
    (``SLURM_ARRAY_TASK_ID``/``_COUNT``/``_MIN``/``_STEP``) or of torchrun (``RANK``/``WORLD_SIZE``), in that order.
    A plan taken from the environment is logged as a warning once: a job array of unrelated runs would otherwise
    split each run without a word (``--world-size 1`` runs every shard)."""
    if rank is not None and world_size is not None:
        return _checked(rank, world_size)
    env_rank, env_world, source = _env_plan(environ)
    world = world_size if world_size is not None else env_world
    if world is None or world == 1:
        if rank not in (None, 0):
            raise ConfigError(f"--rank {rank} needs a world size above 1 (--world-size N)")
        return ShardPlan(0, 1)
    me = rank if rank is not None else env_rank
    if me is None:
        raise ConfigError(f"--world-size {world} needs --rank (or SLURM_ARRAY_TASK_ID / RANK)")
    plan = _checked(me, world)
    if source and (source, plan) not in _ANNOUNCED:
        _ANNOUNCED.add((source, plan))
        log.warning(
            "shards split by %s: this process does rank %d of %d (pass --world-size 1 to do every shard)",
            source,
            plan.rank,
            plan.world_size,
        )
    return plan


_ANNOUNCED: set[tuple[str, ShardPlan]] = set()


def _checked(rank: int, world_size: int) -> ShardPlan:
    try:
        return ShardPlan(rank, world_size)
    except ConfigError as exc:
        raise ConfigError(f"--rank/--world-size: {exc}") from None


def _env_plan(environ: Mapping[str, str]) -> tuple[int | None, int | None, str]:
    """(rank, world size, where from) of a Slurm job array or torchrun's variables; (None, None, "") without."""

    def number(name: str) -> int | None:
        value = environ.get(name, "").strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"environment variable {name}={value!r} is not a whole number") from None

    task, count = number("SLURM_ARRAY_TASK_ID"), number("SLURM_ARRAY_TASK_COUNT")
    if task is not None and count is not None:
        offset, step = task - (number("SLURM_ARRAY_TASK_MIN") or 0), number("SLURM_ARRAY_TASK_STEP") or 1
        if offset % step:
            raise ConfigError(
                f"Slurm array task {task} is not on a regular range (min, step): give --rank and --world-size"
            )
        return offset // step, count, "the Slurm job array (SLURM_ARRAY_TASK_*)"
    world = number("WORLD_SIZE")
    if world is not None:
        return number("RANK"), world, "RANK/WORLD_SIZE"
    return None, None, ""
