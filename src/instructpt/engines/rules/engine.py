"""The ``rules`` engine: the model-free miner behind the :class:`~instructpt.engines.base.Engine` protocol.

Each request's prompt ends with the context block of the text to synthesize (earlier few-shot examples may
precede it and are ignored); the engine mines that text with :func:`~instructpt.engines.rules.miner.mine` and
answers with the pairs, both structured (``Generation.pairs``) and in wire format (``Generation.text``).
No model, no tokenizer, no token budget: ``codec`` and ``max_model_len`` are ``None``.

With ``--rules-workers N`` (N > 1, or 0 for one per CPU core) the mining runs in N worker processes while this
process reads, schedules and writes; mining is deterministic per (seed, record id), so the output is the same
as with one. Workers are spawned (a script that starts such a run needs the usual
``if __name__ == "__main__":`` guard), each with a pipe of its own and one chunk of texts at a time: a worker
that dies can only take its own chunk with it, and the run stops with an error instead of waiting for it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from typing import Any

from instructpt.engines.base import Generation, QueuedEngine, Request
from instructpt.engines.config import EngineConfig
from instructpt.engines.rules.miner import RULES_VERSION, MineResult, mine
from instructpt.errors import EngineError
from instructpt.records import QAPair
from instructpt.runtime import start_worker, worker_setup
from instructpt.wire import BOS, CON_CLOSE, CON_OPEN, PAIR_SEP, serialize_pairs

_OPEN = f"{BOS} {CON_OPEN} "
_CLOSE = f" {CON_CLOSE}{PAIR_SEP}"
_MIN_CHUNK, _MAX_CHUNK = 8, 32  # texts per task sent to a worker (see RulesEngine._dispatch)

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


def sample_id(record_id: str, text: str, sample: int) -> str:
    """The id a text is mined under for its sample ``sample`` (``--num-samples``): sample 0 under the record's
    own id (the output of a run with one sample), sample i under a name of its own, so each sample draws from
    (seed, record id, sample index)."""
    if sample == 0:
        return record_id
    return f"{record_id or 'text:' + text}\x1fsample {sample}"


def _mine_one(
    text: str, record_id: str, seed: int, max_per_type: int, miner: Callable, sample: int = 0
) -> MineResult | str:
    try:
        return miner(text, sample_id(record_id, text, sample), seed, max_per_type)
    except Exception as exc:  # a miner bug must cost one record (rejected with the reason), not the run
        return f"rules miner failed: {type(exc).__name__}: {exc}"


def _mine_chunk(
    texts: Sequence[tuple[str, str, int]], seed: int, max_per_type: int, miner: Callable
) -> list[_Mined]:
    """Worker side: mine each (text, record id, sample); pairs go back as plain tuples (cheaper to pickle)."""
    out: list[_Mined] = []
    for text, record_id, sample in texts:
        result = _mine_one(text, record_id, seed, max_per_type, miner, sample)
        if isinstance(result, str):
            out.append(result)
        else:
            out.append(([(p.question, p.answer, p.task_type) for p in result.pairs], result.skip_reason))
    return out


def _worker_main(conn: Connection, seed: int, max_per_type: int, miner: Callable) -> None:
    """A worker process: mine each chunk received and send the results back, until the pipe closes.

    A worker holds only its own end of its pipe: when the main process dies, even by SIGKILL, the pipe closes and
    the worker ends. It ignores Ctrl-C (the main process ends it) and mines with the stages' GC setting."""
    worker_setup()
    while True:
        try:
            conn.send(_mine_chunk(conn.recv(), seed, max_per_type, miner))
        except (EOFError, OSError):  # the main process went away
            return


class _Worker:
    """One worker process, its pipe, and the requests of the chunk it is mining (at most one at a time, so
    neither side can block on a full pipe while the other does)."""

    def __init__(self, seed: int, max_per_type: int, miner: Callable) -> None:
        self.conn, child = multiprocessing.get_context("spawn").Pipe()
        self.process = start_worker(_worker_main, (child, seed, max_per_type, miner), "instructpt-rules")
        child.close()
        self.requests: list[Request] | None = None


def _stop(workers: list[_Worker], grace: float = 2.0) -> None:
    """End workers: closing its pipe ends an idle worker (EOF) and a busy one (its send fails); any still alive
    after ``grace`` seconds in all is killed."""
    for w in workers:
        w.conn.close()
    deadline = time.monotonic() + grace
    for w in workers:
        w.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            w.process.kill()
            w.process.join()


class RulesEngine(QueuedEngine):
    """Mines pairs with regular expressions; deterministic per (seed, record id), offline, optionally parallel."""

    name = "rules"
    codec = None
    max_model_len = None
    miner: Callable = staticmethod(mine)  # called per text, here or in the workers (tests inject faults)

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.max_per_type = config.rules.max_per_type
        self.workers = resolve_workers(config.rules.workers)
        self._pool: list[_Worker] = []  # started at the first poll with work
        self._answered: list[Generation] = []  # errors found before mining, returned by the next poll

    @property
    def pending(self) -> int:
        busy = sum(len(w.requests) for w in self._pool if w.requests is not None)
        return len(self._queue) + busy + len(self._answered)

    def poll(self) -> list[Generation]:
        if self.workers == 1:
            return [self._answer(req, self._mine_here(req)) for req in self.take()]
        self._dispatch()
        out, self._answered = self._answered, []
        busy = [w for w in self._pool if w.requests is not None]
        if not busy:
            return out
        waiting: dict[Any, _Worker] = {w.conn: w for w in busy} | {w.process.sentinel: w for w in busy}
        for ready in connection_wait(list(waiting), timeout=0 if out else None):
            w = waiting[ready]
            if w.requests is None:  # its pipe and its sentinel were both ready: answered already
                continue
            try:
                results = w.conn.recv()
            except (EOFError, OSError) as exc:  # the worker died (killed, out of memory): no answer will come
                raise self._died(w) from exc
            requests, w.requests = w.requests, None
            mined = iter(results)  # each request's samples, in order
            for req in requests:
                out.append(self._answer(req, [self._from_worker(next(mined)) for _ in range(req.n)]))
        return out

    def _dispatch(self) -> None:
        """Give each idle worker a chunk of the queue: small enough that every worker gets work, large enough that
        a round trip costs little per text. What is left waits for a worker to finish."""
        if not self._queue:
            return
        if not self._pool:
            self._pool = [
                _Worker(self.config.seed, self.max_per_type, self.miner) for _ in range(self.workers)
            ]
        queued = sum(r.n for r in self._queue)  # a request mines one text per sample
        per_task = max(_MIN_CHUNK, min(_MAX_CHUNK, queued // self.workers))
        for w in self._pool:
            if not self._queue:
                return
            if w.requests is not None:
                continue
            requests: list[Request] = []
            texts: list[tuple[str, str, int]] = []
            while self._queue and len(texts) < per_task:
                req = self._queue.popleft()
                text = self._text(req)
                if text is None:  # nothing to mine: answered without a worker
                    self._answered.append(self._answer(req, [_NO_CONTEXT]))
                else:
                    requests.append(req)
                    texts.extend((text, req.record_id, i) for i in range(req.n))
            if not requests:
                continue
            try:
                w.conn.send(texts)
            except OSError as exc:  # the worker died while idle
                raise self._died(w) from exc
            w.requests = requests

    def _died(self, worker: _Worker) -> EngineError:
        """The error that stops the run when a worker is gone; every worker is ended first."""
        worker.process.join(timeout=1)
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        self.close()
        return EngineError(f"a rules worker process died ({how}); finished shards are kept, re-run to resume")

    @staticmethod
    def _text(req: Request) -> str | None:
        # the verbatim context when the scheduler passes it; parsing the prompt cannot tell a marker-like
        # string inside the text from the real opening of the block
        return req.context if req.context is not None else last_context(req.prompt)

    def _mine_here(self, req: Request) -> list[MineResult | str]:
        text = self._text(req)
        if text is None:
            return [_NO_CONTEXT]
        return [
            _mine_one(text, req.record_id, self.config.seed, self.max_per_type, self.miner, i)
            for i in range(req.n)
        ]

    @staticmethod
    def _from_worker(mined: _Mined) -> MineResult | str:
        if isinstance(mined, str):
            return mined
        pairs, skip = mined
        return MineResult([QAPair(q, a, t) for q, a, t in pairs], skip)

    @staticmethod
    def _answer(req: Request, results: list[MineResult | str]) -> Generation:
        """One generation for a request: its samples' pairs, or the first error (which fails them all)."""
        samples = []
        for result in results:
            if isinstance(result, str):
                return Generation(req.key, "", "error", error=result)
            extra = {"skip_reason": result.skip_reason} if not result.pairs and result.skip_reason else {}
            pairs = result.pairs
            samples.append(Generation(req.key, serialize_pairs(pairs), "stop", pairs=pairs, extra=extra))
        return Generation.of_samples(samples)

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
        """End the workers and drop every request not answered yet."""
        pool, self._pool = self._pool, []
        _stop(pool)
        self._queue.clear()
        self._answered.clear()
