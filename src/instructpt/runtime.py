"""What every process of a run shares: stopping on signals, GC tuning, and starting worker processes.

Used by the CLI, the rules engine's workers, and (later) Ray actors and torchrun ranks; it imports nothing of the
project, so any module may use it.

- :func:`handle_signals`: SIGTERM raises :class:`Terminated`, Ctrl-C :class:`Interrupted` (exit codes 143 / 130),
  so a run unwinds through its ``finally`` blocks (engines closed, finished shards kept).
- :func:`tune_gc`: fewer young-generation collections for stages that allocate many short-lived objects.
- :func:`start_worker`: a spawned daemon process that ignores Ctrl-C (the parent stops it).
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from typing import Any

# The stages allocate many small, short-lived containers (records, pairs, token lists) and few reference cycles;
# Python's default young-generation threshold (700) runs a collection every few documents. A larger one cut the
# synthesize stage's own overhead by about a quarter (bench/RESULTS.md).
GC_THRESHOLD = (50_000, 20, 20)


class Terminated(BaseException):
    """SIGTERM (a scheduler preempting the job, ``kill``): unwinds like Ctrl-C, so engines are closed.

    Not a KeyboardInterrupt: vLLM swallows those while its engine starts (``except KeyboardInterrupt`` around
    the start-up handshake), and the run then waited up to 600 s for an engine core the same signal had killed,
    then failed with exit 1."""

    how, code = "terminated", 143


class Interrupted(Terminated):
    """SIGINT (Ctrl-C), raised by our handler for the same reason instead of KeyboardInterrupt."""

    how, code = "interrupted", 130


def _on_signal(signum: int, frame: Any) -> None:
    raise Interrupted if signum == signal.SIGINT else Terminated


@contextmanager
def handle_signals() -> Iterator[None]:
    """SIGTERM -> :class:`Terminated` and Ctrl-C -> :class:`Interrupted` inside the block (main thread only: only
    there can handlers be set). SIGINT is taken only where Python's own handler is set, so a job started with
    SIGINT ignored keeps ignoring it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, _on_signal) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def tune_gc() -> None:
    """Freeze what is allocated so far (modules, configs) out of collections and raise the collection threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored inside the block (an ignored signal stays ignored in a process started meanwhile); only the
    main thread may change signal handlers, elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start_worker(target: Callable[..., None], args: tuple[Any, ...], name: str) -> BaseProcess:
    """Start ``target(*args)`` in a spawned daemon process that ignores Ctrl-C from its first instruction.

    Spawned, not forked: the parent may hold threads (pyarrow, tokenizers) that a fork would copy mid-lock. Ctrl-C
    reaches the whole process group; the parent stops the run and ends its workers, so they ignore it rather than
    print tracebacks while they import. A script that starts workers needs the ``if __name__ == "__main__":``
    guard."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, name=name, daemon=True)
    with sigint_ignored():
        process.start()
    return process


def worker_setup() -> None:
    """First thing in a worker process: Ctrl-C ignored (the parent ends it) and the stages' GC setting."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLD)


class StopRequest:
    """Set by SIGTERM / Ctrl-C inside :func:`deferred_signals`; the holder stops at a safe point."""

    def __init__(self) -> None:
        self.signal: Terminated | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def raise_if_set(self) -> None:
        if self.signal is not None:
            raise self.signal


@contextmanager
def deferred_signals() -> Iterator[StopRequest]:
    """SIGTERM and Ctrl-C only *request* a stop inside the block, so work that must not be cut in the middle (an
    optimizer step, a checkpoint) finishes first; the holder checks the request at safe points and raises it (exit
    codes 143 / 130 as usual). Main thread only; elsewhere signals keep their handlers."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum: int, frame: Any) -> None:
        stop.signal = Interrupted() if signum == signal.SIGINT else Terminated()

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
        handled.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, request) for sig in handled}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
