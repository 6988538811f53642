"""Fault injection for the training tests (a test double, not a feature): run a training call in a child process
whose steps slow down from a given step on, and SIGKILL it as soon as a checkpoint is complete, so the kill lands
mid-run at a known place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import sys, time
from pathlib import Path
from instructpt.train import loop
real = loop.Trainer._step
def slow(self, step, total):
    if step >= {slow_from}:
        time.sleep(0.5)
    return real(self, step, total)
loop.Trainer._step = slow
{call}
"""


def kill_after_checkpoint(
    call: str, args: list[str], checkpoint: Path, slow_from: int, timeout: float = 120
) -> None:
    """Run ``call`` (Python code; ``sys.argv[1:]`` are ``args``) and kill it once ``checkpoint/state.json`` exists."""
    code = _CHILD.format(slow_from=slow_from, call=call)
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not (checkpoint / "state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
