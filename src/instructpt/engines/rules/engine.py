"""The ``rules`` engine: the model-free miner behind the :class:`~instructpt.engines.base.Engine` protocol.

Each request's prompt ends with the context block of the text to synthesize (earlier few-shot examples may
precede it and are ignored); the engine mines that text with :func:`~instructpt.engines.rules.miner.mine` and
answers with the pairs, both structured (``Generation.pairs``) and in wire format (``Generation.text``).
No model, no tokenizer, no token budget: ``codec`` and ``max_model_len`` are ``None``.

With ``--rules-workers N`` (N > 1, or 0 for one per CPU core) the mining runs in N worker processes while this
process reads, schedules and writes; mining is deterministic per (seed, record id), so the output is the same
as with one.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from instructpt.engines.base import EngineConfig, EngineError, Generation, QueuedEngine, Request
from instructpt.engines.rules.miner import MineResult, mine
from instructpt.records import QAPair
from instructpt.synthesizer.format import BOS, CON_CLOSE, CON_OPEN, PAIR_SEP, serialize_pairs

RULES_VERSION = "rules-v2"  # bump when mining output changes for the same input
_OPEN = f"{BOS} {CON_OPEN} "
_CLOSE = f" {CON_CLOSE}{PAIR_SEP}"
_MIN_CHUNK, _MAX_CHUNK = 8, 32  # texts per task sent to a worker (see RulesEngine._dispatch)
# as the CLI's own (cli.GC_THRESHOLD): mining allocates many small objects that live briefly
_WORKER_GC_THRESHOLD = (50_000, 20, 20)

_NO_CONTEXT = "prompt does not end with a context block '<s> <CON> ... </CON>\\n\\n'"

# What a worker sends back per text: (pairs as tuples, skip reason) or an error message.
_Mined = tuple[list[tuple[str, str, str | None]], str | None] | str


def last_context(prompt: str) -> str | None:
    """The text of the prompt's final context block, or ``None`` when the prompt does not end with one."""
    start = prompt.rfind(_OPEN)
    if start < 0 or not prompt.endswith(_CLOSE) or start + len(_OPEN) > len(prompt) - len(_CLOSE):
        return None
    return prompt[start + len(_OPEN) : len(prompt) - len(_CLOSE)]


def resolve_workers(n: int) -> int:
    """``--rules-workers``: 0 means one per CPU core this process may run on."""
    if n > 0:
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _mine_one(text: str, record_id: str, seed: int, max_per_type: int) -> MineResult | str:
    try:
        return mine(text, record_id, seed, max_per_type)
    except Exception as exc:  # a miner bug must cost one record (rejected with the reason), not the run
        return f"rules miner failed: {type(exc).__name__}: {exc}"


def _exit_with_parent(parent: int) -> None:
    """A worker ends when the process that started it dies, even by SIGKILL (Linux: ``PR_SET_PDEATHSIG``).
    A forked worker holds the write end of its own task queue, so it would never see the queue close."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the worker stays until the pool is shut down
        return
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _worker_init(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the main process stops the run and shuts the pool down, so the
    # workers do not print tracebacks of their own. SIGTERM ends a worker at once (a forked worker would
    # otherwise inherit the CLI's handler, and the pool would catch what it raises and go on).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(parent)
    gc.set_threshold(*_WORKER_GC_THRESHOLD)


def _start_method() -> str:
    """``fork`` where it is the platform's usual way (Linux): workers start at once and a script that starts a
    run needs no ``if __name__ == "__main__":`` guard. The pool forks every worker before it starts its own
    manager thread, and the ``instructpt`` command runs no other thread then. Elsewhere ``spawn``."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _mine_chunk(texts: Sequence[tuple[str, str]], seed: int, max_per_type: int) -> list[_Mined]:
    """Worker side: mine each (text, record id); pairs go back as plain tuples (cheaper to pickle)."""
    out: list[_Mined] = []
    for text, record_id in texts:
        result = _mine_one(text, record_id, seed, max_per_type)
        if isinstance(result, str):
            out.append(result)
        else:
            out.append(([(p.question, p.answer, p.task_type) for p in result.pairs], result.skip_reason))
    return out


class RulesEngine(QueuedEngine):
    """Mines pairs with regular expressions; deterministic per (seed, record id), offline, optionally parallel."""

    name = "rules"
    codec = None
    max_model_len = None

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.max_per_type = config.rules_max_per_type
        self.workers = resolve_workers(config.rules_workers)
        self._pool: ProcessPoolExecutor | None = None  # started at the first poll with work
        self._tasks: dict[Future, list[Request]] = {}
        self._finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._in_pool = 0  # requests handed to the pool and not yet returned
        self._answered: list[Generation] = []  # errors found before mining, returned by the next poll

    @property
    def pending(self) -> int:
        return len(self._queue) + self._in_pool + len(self._answered)

    def poll(self) -> list[Generation]:
        if self.workers == 1:
            return [self._answer(req, self._mine_here(req)) for req in self.take()]
        self._dispatch()
        out, self._answered = self._answered, []
        if not self._in_pool:
            return out
        # Finished tasks arrive through their done-callbacks: waiting costs O(1) per task, where
        # concurrent.futures.wait() would lock every pending future on every call.
        finished = [] if out else [self._finished.get()]
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                break
        for task in finished:
            requests = self._tasks.pop(task)
            self._in_pool -= len(requests)
            try:
                results = task.result()
            except BrokenProcessPool as exc:
                raise EngineError(
                    f"a rules worker process died ({exc}); finished shards are kept, re-run to resume"
                ) from exc
            out.extend(self._answer(req, self._from_worker(res)) for req, res in zip(requests, results))
        return out

    def _dispatch(self) -> None:
        """Hand queued requests to the pool in chunks: small enough that every worker gets work, large enough
        that a task's round trip costs little per text. A remainder under ``_MIN_CHUNK`` waits for the next poll
        while every worker has a task."""
        if not self._queue:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(_start_method()),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        per_task = max(_MIN_CHUNK, min(_MAX_CHUNK, len(self._queue) // (2 * self.workers)))
        while self._queue:
            if len(self._queue) < per_task and len(self._tasks) >= self.workers:
                return
            requests, texts = [], []
            for req in self.take(per_task):
                text = self._text(req)
                if text is None:  # nothing to mine: answered without a worker
                    self._answered.append(self._answer(req, _NO_CONTEXT))
                else:
                    requests.append(req)
                    texts.append((text, req.record_id))
            if requests:
                task = self._pool.submit(_mine_chunk, texts, self.config.seed, self.max_per_type)
                self._tasks[task] = requests
                self._in_pool += len(requests)
                task.add_done_callback(self._finished.put)

    @staticmethod
    def _text(req: Request) -> str | None:
        # the verbatim context when the scheduler passes it; parsing the prompt cannot tell a marker-like
        # string inside the text from the real opening of the block
        return req.context if req.context is not None else last_context(req.prompt)

    def _mine_here(self, req: Request) -> MineResult | str:
        text = self._text(req)
        if text is None:
            return _NO_CONTEXT
        return _mine_one(text, req.record_id, self.config.seed, self.max_per_type)

    @staticmethod
    def _from_worker(mined: _Mined) -> MineResult | str:
        if isinstance(mined, str):
            return mined
        pairs, skip = mined
        return MineResult([QAPair(q, a, t) for q, a, t in pairs], skip)

    @staticmethod
    def _answer(req: Request, result: MineResult | str) -> Generation:
        if isinstance(result, str):
            return Generation(req.key, "", "error", error=result)
        extra = {"skip_reason": result.skip_reason} if not result.pairs and result.skip_reason else {}
        return Generation(req.key, serialize_pairs(result.pairs), "stop", pairs=result.pairs, extra=extra)

    def describe(self) -> dict[str, Any]:
        # The generic description names the default LLM synthesizer, which the rules engine never uses.
        # The worker count is left out: it does not change what is mined.
        return {
            "engine": self.name,
            "model": RULES_VERSION,
            "revision": None,
            "seed": self.config.seed,
            "max_per_type": self.max_per_type,
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._tasks.clear()
        self._finished = queue.SimpleQueue()
        self._in_pool = 0
        self._answered.clear()
