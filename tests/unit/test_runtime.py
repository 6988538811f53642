"""What every process of a run shares: signals, worker start, and the error family with its exit codes."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from instructpt import errors
from instructpt.runtime import Interrupted, Terminated, handle_signals, start_worker


def _report_sigint(conn) -> None:
    conn.send(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


def test_workers_start_with_ctrl_c_ignored_and_the_parent_keeps_its_handler() -> None:
    """A worker ignores SIGINT from its first instruction (Ctrl-C while it imports printed tracebacks)."""
    before = signal.getsignal(signal.SIGINT)
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = start_worker(_report_sigint, (child,), "test-worker")
    assert parent.recv() is True
    proc.join()
    plain = multiprocessing.get_context("spawn").Process(target=_report_sigint, args=(child,))
    plain.start()
    assert parent.recv() is False  # the check can tell: a process started plainly keeps Python's handler
    plain.join()
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_and_ctrl_c_unwind_with_their_exit_codes_and_handlers_are_restored() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with pytest.raises(Terminated) as term, handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)
    assert type(term.value) is Terminated and term.value.code == 143
    with pytest.raises(Interrupted) as intr, handle_signals():
        os.kill(os.getpid(), signal.SIGINT)
    assert intr.value.code == 130 and not isinstance(intr.value, KeyboardInterrupt)
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with handle_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # nothing happens
    finally:
        signal.signal(signal.SIGINT, previous)


def test_each_user_error_class_has_its_own_exit_code_and_keeps_its_builtin_base() -> None:
    classes = [errors.ConfigError, errors.InputError, errors.ResumeError, errors.EngineError]
    assert all(issubclass(c, errors.UserError) for c in classes)
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes) and 1 not in codes and errors.EXIT_CODES["ConfigError"] == 2
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.EngineError, RuntimeError)
