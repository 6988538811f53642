"""The ``openai`` engine against a fault-injecting local server (tests/doubles/fault_server.py).

Everything runs on 127.0.0.1 with small timeouts and backoff; the codec is a real byte-level BPE tokenizer
trained in about a second by tests/tinymodel.py. Run with::

    pytest tests/integration/test_openai_engine.py
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from instructpt.engines.base import Request, load_engine, request_seed  # noqa: E402
from instructpt.engines.config import EngineConfig, OpenAIOptions
from instructpt.engines.http_util import parse_retry_after, public_url  # noqa: E402
from instructpt.engines.openai import OpenAIEngine  # noqa: E402
from instructpt.engines.tokenizer import HFCodec, load_codec  # noqa: E402
from instructpt.errors import EngineError
from instructpt.records import QAPair  # noqa: E402
from instructpt.wire import build_prompt  # noqa: E402
from tests.doubles.fault_server import Fault, FaultServer, canned_completion  # noqa: E402

SECRET = "sk-test-7f3a9c1e5b-DO-NOT-LEAK"
KEY_ENV = "INSTRUCTPT_TEST_OPENAI_KEY"
HISTORY = [("The river holds the bridge.", [QAPair("What holds the bridge?", "The river.")])]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tinymodel import train_tokenizer

    out = tmp_path_factory.mktemp("openai_tok")
    train_tokenizer(out, random.Random(0))
    return out


@pytest.fixture(scope="module")
def codec(tok_dir: Path) -> HFCodec:
    return load_codec(EngineConfig(name="openai", tokenizer=str(tok_dir)))


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Servers and engines opened by a test are closed when it ends, pass or fail."""
    with ExitStack() as s:
        yield s


@pytest.fixture
def serve(stack: ExitStack, codec: HFCodec) -> Callable[..., FaultServer]:
    def start(script: dict[str, Fault] | None = None, **kw) -> FaultServer:
        kw.setdefault("decode", codec.decode)
        return stack.enter_context(FaultServer(script, **kw))

    return start


@pytest.fixture
def engine_for(stack: ExitStack, codec: HFCodec) -> Callable[..., OpenAIEngine]:
    def build(server: FaultServer, **overrides) -> OpenAIEngine:
        """The engine on ``server``; ``overrides``: decoding settings and ``engine.openai`` options."""
        decoding = {k: overrides.pop(k) for k in ("temperature", "top_p", "seed") if k in overrides}
        options = {"api_base": server.api_base, "request_timeout": 2.0, "max_retries": 3, "concurrency": 4}
        options.update(api_key_env=KEY_ENV, **overrides)
        cfg = EngineConfig(
            name="openai", model="tiny-synth", max_new_tokens=16, max_model_len=512, **decoding,
            openai=OpenAIOptions(**options),
        )  # fmt: skip
        engine = OpenAIEngine(cfg, codec, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.3)
        return stack.enter_context(engine)

    return build


def prompt_for(i: int) -> str:
    return build_prompt(HISTORY, f"Text number {i}: the quiet farmer feeds the market.")


def requests_for(codec: HFCodec | None, n: int) -> list[Request]:
    out = []
    for i in range(n):
        p = prompt_for(i)
        out.append(
            Request(
                key=("doc", i), prompt=p, prompt_ids=codec.encode(p) if codec else None, record_id=f"doc{i}"
            )
        )
    return out


def test_ids_mode_sends_exact_ids_and_keeps_order(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 5)
    # The first prompt answers last, so generate() must reorder what poll() returned.
    server = serve({reqs[0].prompt: Fault("delay", delay=0.3)})
    engine = engine_for(server)
    gens = engine.generate(reqs)
    assert [g.key for g in gens] == [r.key for r in reqs]
    for req, gen in zip(reqs, gens):
        assert gen.ok and gen.finish_reason == "stop"
        assert gen.text == canned_completion(req.prompt)
        assert gen.prompt_tokens == len(req.prompt_ids)
        assert gen.generated_tokens == len(gen.text.split())
    body = server.requests[0].body
    assert isinstance(body["prompt"], list) and all(isinstance(i, int) for i in body["prompt"])
    assert body["prompt"][0] == codec.bos_token_id
    # One BOS per example (the few-shot one and the new one): the literal <s>, none added.
    assert body["prompt"].count(codec.bos_token_id) == len(HISTORY) + 1
    assert body["model"] == "tiny-synth" and body["max_tokens"] == 16 and body["n"] == 1
    assert body["temperature"] == 0.0 and body["top_p"] == 1.0
    assert "seed" not in body and "add_special_tokens" not in body and "return_token_ids" not in body
    assert all(g.token_ids is None for g in gens)  # not asked for: the scheduler re-encodes the text
    assert {tuple(r.body["prompt"]) for r in server.requests} == {tuple(r.prompt_ids) for r in reqs}


def test_several_samples_are_asked_as_n_choices_in_index_order(serve, engine_for, codec) -> None:
    reqs = [dataclasses.replace(r, n=3) for r in requests_for(codec, 2)]
    server = serve(encode=codec.encode)
    gens = engine_for(server, temperature=0.7, return_token_ids=True).generate(reqs)
    assert all(r.body["n"] == 3 and isinstance(r.body["seed"], int) for r in server.requests)
    for req, gen in zip(reqs, gens):
        assert [s.text for s in gen.samples] == [canned_completion(req.prompt, i) for i in range(3)]
        for s in gen.samples:  # each counts its own tokens; the prompt is counted once per sample
            assert s.ok and s.token_ids == codec.encode(s.text) and s.generated_tokens == len(s.token_ids)
            assert s.prompt_tokens == len(req.prompt_ids)


def test_a_server_that_ignores_n_fails_the_request_at_once(serve, engine_for, codec, monkeypatch) -> None:
    monkeypatch.setattr(FaultServer, "completion", lambda self, body, prompt: {
        "choices": [{"index": 0, "text": canned_completion(prompt), "finish_reason": "stop"}]})  # fmt: skip
    server = serve()
    (gen,) = engine_for(server, temperature=0.7).generate(
        [dataclasses.replace(requests_for(codec, 1)[0], n=2)]
    )
    assert not gen.ok and "1 of 2 choices" in (gen.error or "") and len(server.requests) == 1


def test_return_token_ids_asks_for_and_keeps_the_generated_ids(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 3)
    server = serve(encode=codec.encode)
    gens = engine_for(server, return_token_ids=True).generate(reqs)
    assert all(r.body["return_token_ids"] is True for r in server.requests)
    for req, gen in zip(reqs, gens):
        assert gen.ok and gen.token_ids == codec.encode(canned_completion(req.prompt))
        assert gen.generated_tokens == len(gen.text.split())  # usage still counts, as the server reports it


def test_text_mode_never_hands_back_generated_ids(serve, engine_for, codec) -> None:
    """The server tokenizes the prompt text, so the chain must count the re-encoded text, not the model's ids."""
    server = serve(encode=codec.encode, usage=False)
    gens = engine_for(server, prompt_mode="text", return_token_ids=True).generate(requests_for(None, 2))
    assert all(r.body["return_token_ids"] is True for r in server.requests)
    for gen in gens:
        assert gen.ok and gen.token_ids is None
        assert gen.generated_tokens == len(codec.encode(gen.text))  # the server's ids, counted


def test_server_priority_is_sent_only_when_asked_and_non_zero(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 3)
    reqs[1].priority, reqs[2].priority = -1, -2
    server = serve()
    engine_for(server).generate(reqs)
    assert all("priority" not in r.body for r in server.requests)
    server = serve()
    engine_for(server, server_priority=True).generate(reqs)
    by_prompt = {tuple(r.body["prompt"]): r.body.get("priority") for r in server.requests}
    assert [by_prompt[tuple(r.prompt_ids)] for r in reqs] == [None, -1, -2]


def test_ids_mode_encodes_prompts_without_ids(serve, engine_for, codec) -> None:
    server = serve()
    engine = engine_for(server, api_model="served-name")
    [gen] = engine.generate([Request(key=1, prompt=prompt_for(0))])
    assert gen.ok
    assert server.requests[0].body["prompt"] == codec.encode(prompt_for(0))
    assert server.requests[0].body["model"] == "served-name"


def test_text_mode_body_warning_and_fallback_counts(serve, engine_for, codec, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="instructpt.engines.openai")
    server = serve(usage=False, finish_reason="length")
    engine = engine_for(server, prompt_mode="text", temperature=0.7, top_p=0.9, seed=5)
    gens = engine.generate(requests_for(None, 3))
    assert sum("double" in r.getMessage() and "BOS" in r.getMessage() for r in caplog.records) == 1
    body = server.requests[0].body
    assert isinstance(body["prompt"], str) and body["prompt"].startswith("<s> <CON>")
    assert body["add_special_tokens"] is False
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9
    # each record's seed comes from (seed, record id), as in the offline engines: the same wherever it is batched
    seeds = {r.body["prompt"]: r.body["seed"] for r in server.requests}
    assert seeds == {prompt_for(i): request_seed(5, f"doc{i}") for i in range(3)}
    for i, gen in enumerate(gens):
        assert gen.finish_reason == "length"
        # No usage in the response: counted with the synthesizer's tokenizer.
        assert gen.prompt_tokens == len(codec.encode(prompt_for(i)))
        assert gen.generated_tokens == len(codec.encode(gen.text))


@pytest.mark.parametrize(
    "fault",
    [
        Fault("429", times=2, retry_after="0"),
        Fault("500", times=2),
        Fault("503", times=2),
        Fault("drop", times=2),
        Fault("bad_json", times=2),
        Fault("delay", times=2, delay=1.5),
    ],
    ids=lambda f: f.kind,
)
def test_transient_faults_are_retried(serve, engine_for, codec, fault) -> None:
    reqs = requests_for(codec, 3)
    server = serve({reqs[1].prompt: fault})
    engine = engine_for(server, request_timeout=0.4)
    gens = engine.generate(reqs)
    assert all(g.ok for g in gens), [g.error for g in gens]
    assert gens[1].text == canned_completion(reqs[1].prompt)
    assert server.attempts[reqs[1].prompt] == 3
    assert server.attempts[reqs[0].prompt] == server.attempts[reqs[2].prompt] == 1


def test_retry_after_is_honoured_and_capped(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 1)
    server = serve({reqs[0].prompt: Fault("429", times=1, retry_after="5")})
    engine = engine_for(server)
    t0 = time.monotonic()
    [gen] = engine.generate(reqs)
    elapsed = time.monotonic() - t0
    assert gen.ok and server.attempts[reqs[0].prompt] == 2
    assert 0.25 <= elapsed < 2.0  # waited the capped 0.3 s, not the tiny backoff and not the full 5 s


def test_exhausted_retries_fail_one_request_only(serve, engine_for, codec, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    reqs = requests_for(codec, 4)
    server = serve({reqs[2].prompt: Fault("503", message="model overloaded")})
    engine = engine_for(server, max_retries=2)
    gens = engine.generate(reqs)
    bad = gens[2]
    assert bad.finish_reason == "error" and not bad.ok and bad.text == ""
    assert "HTTP 503" in bad.error and "model overloaded" in bad.error and "3 attempts" in bad.error
    assert server.attempts[reqs[2].prompt] == 3
    assert all(g.ok for i, g in enumerate(gens) if i != 2)
    assert "attempt 1/3" in caplog.text and "attempt 2/3" in caplog.text


def test_client_errors_are_not_retried(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 3)
    message = "This model's maximum context length is 512 tokens. " + "x" * 500
    server = serve({reqs[0].prompt: Fault("400", message=message)})
    engine = engine_for(server)
    gens = engine.generate(reqs)
    assert gens[0].finish_reason == "error"
    assert gens[0].error.startswith("HTTP 400: This model's maximum context length is 512 tokens.")
    assert len(gens[0].error) < 300  # the server's message is trimmed
    assert server.attempts[reqs[0].prompt] == 1
    assert gens[1].ok and gens[2].ok


def test_timeout_gives_an_error_generation(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 2)
    server = serve({reqs[0].prompt: Fault("delay", delay=3.0)})
    engine = engine_for(server, request_timeout=0.3, max_retries=1)
    t0 = time.monotonic()
    gens = engine.generate(reqs)
    assert time.monotonic() - t0 < 2.0
    assert gens[0].finish_reason == "error" and "timeout" in gens[0].error
    assert server.attempts[reqs[0].prompt] == 2
    assert gens[1].ok


def test_concurrency_is_bounded(serve, engine_for, codec) -> None:
    server = serve(latency=0.1)
    engine = engine_for(server, concurrency=3)
    gens = engine.generate(requests_for(codec, 12))
    assert all(g.ok for g in gens)
    assert 1 < server.max_concurrent <= 3


def test_api_key_is_sent_but_never_shown(serve, engine_for, codec, caplog, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    reqs = requests_for(codec, 3)
    # A careless server echoes the Authorization header into its error messages.
    server = serve(
        {
            reqs[0].prompt: Fault("400", message="rejected {authorization}"),
            reqs[1].prompt: Fault("500", message="crashed on {authorization}"),
        }
    )
    engine = engine_for(server, max_retries=1)
    gens = engine.generate(reqs)
    assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in server.requests)
    assert not gens[0].ok and not gens[1].ok and gens[2].ok
    assert "***" in gens[0].error
    shown = [caplog.text, repr(engine), str(engine.describe()), *(g.error or "" for g in gens)]
    assert not any(SECRET in s for s in shown)


def test_no_key_no_authorization_header(serve, engine_for, codec, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    server = serve()
    engine_for(server).generate(requests_for(codec, 1))
    assert "Authorization" not in server.requests[0].headers


def test_submit_and_poll_while_others_are_pending(serve, engine_for, codec) -> None:
    reqs = requests_for(codec, 4)
    server = serve({reqs[0].prompt: Fault("delay", delay=0.5)})
    engine = engine_for(server)
    assert engine.poll() == [] and engine.pending == 0
    t0 = time.monotonic()
    engine.submit(reqs[:2])
    assert time.monotonic() - t0 < 0.2  # submit does not wait for the server
    first = engine.poll()
    assert [g.key for g in first] == [reqs[1].key]  # the fast one comes back while the slow one runs
    engine.submit(reqs[2:])
    seen = [g.key for g in first]
    deadline = time.monotonic() + 10
    while engine.pending and time.monotonic() < deadline:
        batch = engine.poll()
        assert batch
        seen += [g.key for g in batch]
    assert sorted(seen) == sorted(r.key for r in reqs)
    assert engine.pending == 0 and engine.poll() == []


def test_close_cancels_requests_in_flight(serve, codec) -> None:
    reqs = requests_for(codec, 1)
    server = serve({reqs[0].prompt: Fault("delay", delay=5.0)})
    engine = OpenAIEngine(
        EngineConfig(name="openai", openai=OpenAIOptions(api_base=server.api_base, request_timeout=10.0)),
        codec,
    )
    engine.submit(reqs)
    time.sleep(0.1)
    t0 = time.monotonic()
    engine.close()
    assert time.monotonic() - t0 < 3.0
    [gen] = engine.poll()
    assert gen.finish_reason == "error" and "closed" in gen.error
    engine.close()  # idempotent


def test_load_engine_builds_it_with_the_tokenizer(serve, tok_dir, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    server = serve()
    base = server.api_base.replace("http://", "http://user:pw@")
    config = EngineConfig(
        name="openai",
        tokenizer=str(tok_dir),
        max_model_len=1024,
        max_new_tokens=32,
        openai=OpenAIOptions(api_base=base, api_key_env=KEY_ENV),
    )
    with load_engine(config) as engine:
        assert isinstance(engine, OpenAIEngine)
        assert isinstance(engine.codec, HFCodec) and engine.max_model_len == 1024
        info = engine.describe()
        assert info["engine"] == "openai" and info["api_base"] == server.api_base
        assert "pw" not in repr(engine) and SECRET not in repr(engine)
        [gen] = engine.generate([Request(key="a", prompt=prompt_for(0))])
        assert gen.ok and gen.text == canned_completion(prompt_for(0))


def test_helpers() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    assert public_url("https://u:p@api.example.com:8443/v1?key=k#x") == "https://api.example.com:8443/v1"


def test_tgi_finish_reason_names_map_to_stop(serve, engine_for, codec) -> None:
    server = serve(finish_reason="eos_token")
    gens = engine_for(server).generate(requests_for(codec, 2))
    assert [g.finish_reason for g in gens] == ["stop", "stop"]


def test_an_aborted_request_is_retried_then_an_error(serve, engine_for, codec) -> None:
    server = serve(finish_reason="abort")
    (gen,) = engine_for(server, max_retries=1).generate(requests_for(codec, 1))
    assert not gen.ok and "aborted" in gen.error and len(server.requests) == 2


def test_kv_capacity_is_read_from_vllm_metrics_text() -> None:
    from instructpt.engines.http_util import kv_capacity_from_metrics

    text = (
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
        "# TYPE vllm:cache_config_info gauge\n"
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",num_gpu_blocks="27000"} 1.0\n'
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="1",num_gpu_blocks="26000"} 1.0\n'
        'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
    )
    assert kv_capacity_from_metrics(text) == 16 * (27000 + 26000)  # data-parallel engines each have a cache
    assert kv_capacity_from_metrics('vllm:num_requests_running{engine="0"} 3.0\n') is None
    assert (
        kv_capacity_from_metrics('vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0') is None
    )


def test_an_unreachable_server_fails_at_start(codec) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = EngineConfig(
        name="openai", model="m", openai=OpenAIOptions(api_base=f"http://127.0.0.1:{port}/v1", max_retries=2)
    )
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"cannot reach the server at http://127.0.0.1:\d+/v1 .*3 attempts"):
        OpenAIEngine(cfg, codec, backoff_base=0.01, backoff_cap=0.05)
    assert time.monotonic() - start < 10


def test_a_server_without_metrics_gives_no_capacity(serve, engine_for) -> None:
    assert engine_for(serve()).kv_capacity_tokens is None
