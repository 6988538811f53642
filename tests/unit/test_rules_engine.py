"""The rules engine behind the engine protocol (--engine rules): prompts, errors, worker processes; and mine() on
arbitrary input."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructpt.engines.base import Request, load_engine
from instructpt.engines.config import EngineConfig, RulesOptions
from instructpt.engines.rules import RulesEngine, last_context, mine
from instructpt.errors import ConfigError
from instructpt.records import QAPair
from instructpt.wire import (
    build_prompt,
    context_block,
    serialize_pairs,
)
from tests.unit.test_rules import ABSTRACT, FILLER, assert_well_formed


def _engine(seed: int = 0, **rules) -> RulesEngine:
    engine = load_engine(EngineConfig(name="rules", seed=seed, rules=RulesOptions(**rules)))
    assert isinstance(engine, RulesEngine) and engine.codec is None and engine.max_model_len is None
    return engine


def test_engine_mines_only_the_last_context_of_a_few_shot_prompt() -> None:
    earlier = FILLER + "The river flooded the valley. Therefore, the harvest was lost."
    history = [(earlier, [QAPair("What flooded?", "The river.")])]
    prompt = build_prompt(history, ABSTRACT)
    assert last_context(prompt) == ABSTRACT and last_context("no context here") is None
    engine = _engine(seed=3, max_per_type=1)
    requests = [
        Request("a", prompt, record_id="rec-a"),
        Request("b", context_block("Too short."), record_id="b"),
    ]
    engine.submit(requests[:1])
    assert engine.pending == 1
    engine.poll()
    assert engine.pending == 0 and engine.poll() == []
    gen_a, gen_b = engine.generate(requests)
    expected = mine(ABSTRACT, "rec-a", seed=3, max_per_type=1).pairs
    assert (
        gen_a.finish_reason == "stop" and gen_a.pairs == expected and gen_a.text == serialize_pairs(expected)
    )
    assert gen_a.extra == {} and gen_a.prompt_tokens == gen_a.generated_tokens == 0
    assert not any("river" in p.question or "harvest" in p.answer for p in gen_a.pairs)
    assert gen_b.pairs == [] and gen_b.extra == {"skip_reason": "too_short"} and gen_b.text == ""
    assert engine.describe()["engine"] == "rules"


def test_engine_reports_a_malformed_prompt_as_an_error() -> None:
    (gen,) = _engine().generate([Request("k", "plain text without a context block")])
    assert gen.finish_reason == "error" and gen.error and gen.pairs is None


_SENTENCE = st.lists(
    st.sampled_from(
        [
            "However,",
            "Therefore,",
            "the",
            "cells",
            "<ANS>",
            "</END>",
            "i.e.,",
            "due to",
            "is defined as",
            "In other",
            "words,",
            "This study",
            "examines",
            "Moreover,",
            "refers to",
            "is about",
            "\n",
            ".",
            "<s>",
            "keratinocyte",
        ]
    ),
    min_size=3,
    max_size=14,
).map(lambda ws: " ".join(ws).capitalize() + ".")


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.text(max_size=400), st.lists(_SENTENCE, min_size=4, max_size=20).map(" ".join)),
    st.text(max_size=8),
)
def test_mine_never_raises_nor_emits_bad_pairs(text: str, record_id: str) -> None:
    result = mine(text, record_id)
    assert result.skip_reason in (None, "not_english", "too_short")
    assert not (result.pairs and result.skip_reason)
    assert_well_formed(result.pairs)


# ---- --rules-workers: mining in worker processes ----
def _worker_requests() -> list[Request]:
    texts = [
        ABSTRACT,
        FILLER + "The river flooded the valley. Therefore, the harvest was lost.",
        "Too short.",
    ]
    requests = [
        Request(
            ("t", i),
            context_block(texts[i % 3]),
            record_id=f"rec-{i}",
            context=texts[i % 3] if i % 2 else None,
        )
        for i in range(60)
    ]
    requests.insert(17, Request("malformed", "plain text without a context block", record_id="m"))
    return requests


def _fields(gens) -> list[tuple]:
    return [(g.key, g.text, g.finish_reason, g.pairs, g.extra, g.error) for g in gens]


def test_workers_answer_exactly_as_one_process() -> None:
    requests = _worker_requests()
    expected = _fields(_engine(seed=5).generate(requests))
    engine = _engine(seed=5, workers=2)
    try:
        assert engine.workers == 2 and engine.poll() == [] and engine.pending == 0
        got = _fields(engine.generate(requests))
        engine.submit(requests[:3])
        assert engine.pending == 3
        polled = []
        while engine.pending:
            polled += engine.poll()
        assert engine.pending == 0 and engine.poll() == []
        assert sorted(_fields(polled), key=str) == sorted(expected[:3], key=str)
    finally:
        engine.close()
    assert got == expected
    assert sum(f[2] == "error" for f in got) == 1 and any(
        f[3] for f in got
    )  # the malformed prompt; real pairs
    assert engine.describe() == _engine(seed=5).describe()  # the worker count changes nothing mined


def test_rules_workers_zero_means_one_per_core() -> None:
    from instructpt.engines.rules.engine import resolve_workers

    assert resolve_workers(0) == len(os.sched_getaffinity(0)) and resolve_workers(3) == 3
    with pytest.raises(ConfigError, match="--rules-workers"):
        EngineConfig(name="rules", rules=RulesOptions(workers=-1))


def _fail_on(text: str, record_id: str, seed: int = 0, max_per_type: int = 2):
    """Fault injection for the workers (RulesEngine.miner): raises on one record, ends its process on another."""
    if record_id == "boom":
        raise ValueError("injected miner bug")
    if record_id == "die":
        os._exit(3)
    return mine(text, record_id, seed, max_per_type)


def _abstract_requests(n: int, special: dict[int, str] | None = None) -> list[Request]:
    special = special or {}
    return [Request(i, context_block(ABSTRACT), record_id=special.get(i, f"r{i}")) for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_miner_failure_costs_only_its_record(workers: int) -> None:
    engine = _engine(workers=workers)
    engine.miner = _fail_on
    try:
        gens = engine.generate(_abstract_requests(20, {4: "boom"}))
    finally:
        engine.close()
    assert [g.key for g in gens if not g.ok] == [4]
    assert gens[4].error == "rules miner failed: ValueError: injected miner bug"
    assert all(g.pairs for g in gens if g.ok)


def test_a_worker_that_dies_mining_stops_the_run_with_an_engine_error() -> None:
    from instructpt.errors import EngineError

    engine = _engine(workers=2)
    engine.miner = _fail_on
    try:
        with pytest.raises(EngineError, match=r"rules worker process died \(exit code 3"):
            engine.generate(_abstract_requests(40, {9: "die"}))
        assert engine.pending == 0 and engine._pool == []  # the other worker was ended too
    finally:
        engine.close()


def test_a_worker_that_died_idle_stops_the_next_dispatch_with_an_engine_error() -> None:
    from instructpt.errors import EngineError

    engine = _engine(workers=2)
    try:
        engine.generate(_abstract_requests(4))
        victim = engine._pool[1].process
        victim.kill()
        victim.join()
        with pytest.raises(EngineError, match="rules worker process died"):
            engine.generate(_abstract_requests(40))
    finally:
        engine.close()


def test_workers_outlive_the_thread_that_started_them() -> None:
    import threading

    engine = _engine(workers=2)
    try:
        first: list = []
        thread = threading.Thread(target=lambda: first.extend(engine.generate(_abstract_requests(8))))
        thread.start()
        thread.join()
        assert len(first) == 8
        assert all(g.pairs for g in engine.generate(_abstract_requests(8)))
    finally:
        engine.close()


def test_close_ends_the_workers_and_drops_what_was_not_answered() -> None:
    engine = _engine(workers=2)
    engine.submit(_abstract_requests(200))  # more than two chunks of 32: some stay queued after a poll
    engine.poll()
    workers = [w.process for w in engine._pool]
    assert engine.pending > 0
    engine.close()
    assert engine.pending == 0 and not any(p.is_alive() for p in workers)
    assert len(engine.generate(_abstract_requests(3))) == 3  # usable again: new workers
    engine.close()


_ORPHAN_SCRIPT = """
import sys, time
from instructpt.engines.base import Request, load_engine
from instructpt.engines.config import EngineConfig, RulesOptions
from instructpt.wire import context_block
engine = load_engine(EngineConfig(name="rules", rules=RulesOptions(workers=2)))
engine.submit([Request(i, context_block("Short text that is mined quickly. It has two sentences."), record_id=str(i))
               for i in range(64)])
engine.poll()
print(" ".join(str(w.process.pid) for w in engine._pool), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers follow their parent via prctl (Linux)"
)
def test_workers_end_when_their_parent_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        proc.kill()  # SIGKILL: no cleanup runs in the parent
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "orphaned rules workers"
    finally:
        proc.kill()
