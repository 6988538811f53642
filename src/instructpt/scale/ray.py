"""Stages on a Ray cluster (``--ray``): shards go to a pool of actors, each writing its finished shards into the
same output directory, in the same layout, as a local run (same shard numbers, done markers, per-shard stats,
merged into ``stats.json`` by the driver at the end).

- ``synthesize``: the driver reads the input and cuts it into shards as a local run does, skips the finished
  ones, and hands each shard's records to an actor holding an engine replica (one per GPU, or per
  ``--ray-gpus-per-actor`` GPUs with tensor parallelism; CPU actors for the rules engine), which runs the chain
  scheduler over it. With ``--id-field`` the driver decides repeated ids, in shard order, as one process would.
- map stages on the platform runner (templify, filter, decontaminate): each input shard goes to an actor holding
  the stage (built once by the driver and shipped to the actors).

The workers are the stages' own (``synthesizer.run.ShardWorker``, ``stages.MapWorker``); this module only knows
how to connect, start a pool of :class:`Actor` around a worker factory, and keep it busy (:func:`run_on_ray`).

An actor that dies is restarted by Ray (``--ray-max-restarts``) and its shard runs again (a shard is written
atomically before its done marker, so nothing is written twice); if the driver dies, re-running skips finished
shards. At most two shards per actor are in flight, so the driver holds little of the input at a time.

Fault injection for tests: with ``INSTRUCTPT_RAY_TEST_EXIT=INDEX:PATH`` in the environment, the actor that starts
shard INDEX first exits its process at once (PATH is created so that it happens once).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError, EngineError, UserError

log = logging.getLogger(__name__)
TEST_EXIT_ENV = "INSTRUCTPT_RAY_TEST_EXIT"
IN_FLIGHT_PER_ACTOR = 2


@dataclass
class RayOptions:
    """--ray: the stage's shards on the actors of a Ray cluster (pip install 'instructpt[ray]')."""

    enabled: bool = option(
        False, "Run the stage on a Ray cluster (a local one unless --ray-address).", aliases=("--ray",)
    )
    address: str | None = option(
        None,
        "'auto' or HOST:PORT of a running cluster (default: start a local one).",
        aliases=("--ray-address",),
    )
    actors: int = option(
        0,
        "Actors (engine replicas); 0: one per GPU / --ray-gpus-per-actor, or per --ray-cpus-per-actor CPUs.",
        aliases=("--ray-actors",),
    )
    cpus_per_actor: float = option(1.0, "CPUs each actor reserves.", aliases=("--ray-cpus-per-actor",))
    gpus_per_actor: float | None = option(
        None,
        "GPUs each actor reserves (default: the engine's --tensor-parallel-size for vllm, 1 for transformers on a "
        "cluster with GPUs, else 0).",
        aliases=("--ray-gpus-per-actor",),
    )
    max_restarts: int = option(
        3, "Times Ray restarts a dead actor (its shard then runs again).", aliases=("--ray-max-restarts",)
    )
    start_timeout: float = option(
        1800.0,
        "Seconds to wait for every actor to be ready (its model loaded).",
        aliases=("--ray-start-timeout",),
    )
    num_cpus: int | None = option(
        None,
        "CPUs of the local cluster started without --ray-address (default: all).",
        aliases=("--ray-num-cpus",),
    )

    def __post_init__(self) -> None:
        if (
            self.actors < 0
            or self.cpus_per_actor < 0
            or (self.gpus_per_actor or 0) < 0
            or self.max_restarts < 0
        ):
            raise ConfigError(
                "--ray-actors, --ray-cpus-per-actor, --ray-gpus-per-actor, --ray-max-restarts >= 0"
            )


def connect(options: RayOptions) -> Any:
    """The ``ray`` module, connected to the cluster (started locally when no address is given)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'instructpt[ray]'") from exc
    if not ray.is_initialized():
        if options.address:
            ray.init(address=options.address)
        else:
            ray.init(num_cpus=options.num_cpus, include_dashboard=False)
    return ray


def pool_size(ray: Any, options: RayOptions, gpus: float, cpus: float) -> int:
    """How many actors: ``--ray-actors``, else as many as the cluster's GPUs (or CPUs) hold; a pool the
    cluster cannot hold is refused (its actors would wait for resources forever)."""
    res = ray.cluster_resources()
    fit = [res.get("CPU", 0) / cpus] if cpus else []
    if gpus:
        fit.append(res.get("GPU", 0) / gpus)
    most = int(min(fit)) if fit else max(1, options.actors)
    if most < 1:
        raise ConfigError(
            f"an actor needs {cpus:g} CPU and {gpus:g} GPU; the Ray cluster has {res.get('CPU', 0):g} CPU and "
            f"{res.get('GPU', 0):g} GPU (--ray-cpus-per-actor, --ray-gpus-per-actor)"
        )
    if options.actors > most:
        raise ConfigError(f"--ray-actors {options.actors}: the Ray cluster holds at most {most} such actors")
    return options.actors or most


def start_actors(ray: Any, cls: type, options: RayOptions, gpus: float, *args: Any) -> list[Any]:
    """The pool of actors, started and ready (an actor that cannot start stops the run with its error)."""
    env = {TEST_EXIT_ENV: os.environ[TEST_EXIT_ENV]} if TEST_EXIT_ENV in os.environ else {}
    remote = ray.remote(cls).options(
        num_cpus=options.cpus_per_actor,
        num_gpus=gpus,
        max_restarts=options.max_restarts,
        max_task_retries=options.max_restarts,
        **({"runtime_env": {"env_vars": env}} if env else {}),
    )
    n = pool_size(ray, options, gpus, options.cpus_per_actor)
    log.info("Ray: %d actor(s), %g CPU and %g GPU each", n, options.cpus_per_actor, gpus)
    actors = [remote.remote(*args) for _ in range(n)]
    try:
        pending = [a.ready.remote() for a in actors]
        done, waiting = ray.wait(pending, num_returns=len(pending), timeout=options.start_timeout)
        if waiting:
            raise EngineError(
                f"{len(waiting)} of {n} Ray actors were not ready after {options.start_timeout:g}s (resources taken "
                "by other work? --ray-start-timeout)"
            )
        ray.get(done)
    except Exception as exc:
        for a in actors:
            ray.kill(a)
        if isinstance(exc, UserError):
            raise
        raise _user_error(exc, "a Ray actor could not start") from exc
    return actors


def _user_error(exc: Exception, what: str) -> Exception:
    """The error a stage raised inside an actor, as it was raised (a UserError: one line for the CLI), else an
    EngineError saying ``what``."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, UserError):
        return cause
    return EngineError(f"{what}: {type(cause or exc).__name__}: {cause or exc}")


def drive(
    ray: Any, actors: list[Any], tasks: Iterable[tuple[Any, ...]], on_done: Callable[[Any], None]
) -> None:
    """Run ``actor.run.remote(*task)`` for every task, at most IN_FLIGHT_PER_ACTOR per actor at a time, taking
    tasks from ``tasks`` only as slots free up; ``on_done`` gets each result."""
    from ray.exceptions import RayActorError, RayTaskError

    inflight: dict[Any, Any] = {}  # ref -> actor
    load = {id(a): 0 for a in actors}
    it = iter(tasks)
    exhausted = False
    while True:
        while not exhausted and len(inflight) < IN_FLIGHT_PER_ACTOR * len(actors):
            task = next(it, None)
            if task is None:
                exhausted = True
                break
            actor = min(actors, key=lambda a: load[id(a)])
            inflight[actor.run.remote(*task)] = actor
            load[id(actor)] += 1
        if not inflight:
            return
        done, _ = ray.wait(list(inflight), num_returns=1)
        for ref in done:
            actor = inflight.pop(ref)
            load[id(actor)] -= 1
            try:
                on_done(ray.get(ref))
            except RayActorError as exc:
                raise EngineError(
                    f"a Ray actor died more than --ray-max-restarts times ({exc}); finished shards are kept, "
                    "re-run to resume"
                ) from exc
            except RayTaskError as exc:  # the stage's own error inside the actor
                raise _user_error(exc, "a shard failed on a Ray actor") from exc


def maybe_exit_for_test(index: int) -> None:
    """The fault-injection hook (see the module's docstring)."""
    spec = os.environ.get(TEST_EXIT_ENV)
    if not spec:
        return
    at, _, marker = spec.partition(":")
    if int(at) == index:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


class Actor:
    """One replica: ``factory(*args)`` builds its worker once (an engine, a stage and the output directory);
    each call runs the worker on one task, whose first item is the shard's number (or a shard file)."""

    def __init__(self, factory: Callable[..., Callable[..., Any]], *args: Any) -> None:
        from instructpt.runtime import worker_setup

        worker_setup()
        # an error while building the worker (a model that cannot load) is raised by ready(), as a task error
        # whose cause is the error itself: the driver shows it in one line, as a local run would
        self.error: Exception | None = None
        try:
            self.work = factory(*args)
        except Exception as exc:  # noqa: BLE001 - re-raised by ready()
            self.error = exc

    def ready(self) -> bool:
        if self.error is not None:
            raise self.error
        return True

    def run(self, *task: Any) -> Any:
        first = task[0]
        maybe_exit_for_test(first if isinstance(first, int) else first.index)
        return self.work(*task)


def run_on_ray(
    options: RayOptions,
    factory: Callable[..., Callable[..., Any]],
    args: tuple[Any, ...],
    tasks: Iterable[tuple[Any, ...]],
    on_done: Callable[[Any], None],
    gpus: Callable[[Any], float] | float = 0.0,
) -> float:
    """Run every task on a pool of actors built by ``factory(*args)``; returns the start-up seconds (connecting,
    and the actors ready). ``gpus``: GPUs per actor, or a function of the ``ray`` module that decides them."""
    t0 = time.monotonic()
    ray = connect(options)
    per_actor = gpus(ray) if callable(gpus) else gpus
    if options.gpus_per_actor is not None:
        per_actor = options.gpus_per_actor
    actors = start_actors(ray, Actor, options, per_actor, factory, *args)
    startup = time.monotonic() - t0
    try:
        drive(ray, actors, tasks, on_done)
    finally:
        for a in actors:
            ray.kill(a)
    return startup
