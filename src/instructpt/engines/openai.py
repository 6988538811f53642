"""The ``openai`` engine: a client for any OpenAI-compatible ``/v1/completions`` server.

Works with ``vllm serve``, SGLang, TGI and the llama.cpp server. Start a server with the synthesizer, then::

    vllm serve instruction-pretrain/instruction-synthesizer --max-model-len 4096
    instructpt synthesize --engine openai --api-base http://127.0.0.1:8000/v1 ...

Prompts go out as exact token ids by default (``--prompt-mode ids``), encoded here with the synthesizer's own
tokenizer and ``add_special_tokens=False``, so the literal ``<s>`` of the wire format is the only BOS (SPEC §3).
``--prompt-mode text`` lets the server tokenize; a server that prepends BOS itself then doubles it, which is why
that mode warns and asks the server not to add special tokens (vLLM honours ``add_special_tokens``).

Generated ids: with ``--return-token-ids`` the request asks for them (vLLM's ``return_token_ids``) and a clean
generation's ids extend the chain's next prompt verbatim, as with the offline engines, so the server's prefix cache
serves the previous prompt and generation. Without them (the default, since other servers may reject the field)
the generated text is re-encoded with the codec: the same ids whenever the text round-trips, which the
tokenizer does not promise. In ``--prompt-mode text`` generated ids are never reused: the server tokenizes the
whole prompt text, and the chain's ids (its budget) are kept equal to exactly that encoding.

At start the engine reads the server's ``/metrics``; a vLLM server reports its KV-cache size there, which
``--max-inflight-tokens auto`` then uses as the bound on prompt + new tokens in flight (other servers: no bound).

Requests run on an asyncio loop in a background thread with at most ``--concurrency`` HTTP requests in flight.
Each is retried with exponential backoff and jitter on 429, 5xx, connection errors, timeouts and unreadable
responses (honouring a capped ``Retry-After``); other 4xx fail at once. A request that still fails comes back as a
generation with ``finish_reason == "error"``; the rest of the batch is unaffected. The API key is read from the
environment variable named by ``--api-key-env`` and never appears in logs, errors, reprs or :meth:`describe`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import queue
import random
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import httpx

from instructpt.engines.base import Engine, Generation, Request, TextCodec, request_seed
from instructpt.engines.config import EngineConfig
from instructpt.engines.http_util import (
    kv_capacity_from_metrics,
    parse_retry_after,
    public_url,
    server_message,
)
from instructpt.errors import EngineError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx


class _Retryable(Exception):
    """One failed attempt that may succeed when tried again."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Servers that name "stopped at EOS" differently (TGI) map to the OpenAI name the scheduler relies on.
_FINISH_ALIASES = {"eos_token": "stop", "stop_sequence": "stop", "eos": "stop"}


class _Fatal(Exception):
    """A failed attempt that will fail the same way again (bad request, auth, unknown model)."""


_PROBE_TIMEOUT = 5.0  # seconds for the start-up request to /metrics


class OpenAIEngine(Engine):
    """Completions from an OpenAI-compatible server; see the module docstring.

    ``codec`` may be given to skip loading the tokenizer (tests); the backoff arguments bound how long retries
    wait: ``backoff_base * 2**(attempt - 1)`` seconds with jitter, at most ``backoff_cap``, and a server's
    ``Retry-After`` at most ``retry_after_cap``.
    """

    name = "openai"

    def __init__(
        self,
        config: EngineConfig,
        codec: TextCodec | None = None,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 60.0,
    ) -> None:
        super().__init__(config)
        self.mode = config.openai.prompt_mode
        self.tokenizes_prompt_text = self.mode == "text"
        self.codec = codec if codec is not None else self._load_codec(config)
        self.max_model_len = config.max_model_len
        self.api_base = config.openai.api_base.rstrip("/")
        self.url = self.api_base + "/completions"
        self.model_name = config.openai.api_model or config.model
        self.backoff_base, self.backoff_cap, self.retry_after_cap = backoff_base, backoff_cap, retry_after_cap
        key = os.environ.get(config.openai.api_key_env) if config.openai.api_key_env else None
        # The key lives only here: never in describe(), repr or logs; errors pass through _redact().
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._secret = key or None
        self._jitter = random.Random()  # timing only; never touches data, so no seed needed
        self._done: queue.Queue[Generation] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._futures: set[Future] = set()
        self._closed = False
        if self.mode == "text":
            log.warning(
                "prompt_mode=text: the server tokenizes prompts; one that prepends BOS itself doubles the literal "
                "<s> (SPEC §3), and one on transformers 5 splits Llama/Mistral-class tokenizers otherwise than "
                "their tokenizer.json (README). add_special_tokens=false is sent (vLLM honours it); "
                "prompt_mode=ids is exact."
            )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-engine", daemon=True)
        self._thread.start()
        self._client, self._slots = self._call(self._open_client())
        attempts = config.openai.max_retries + 1
        try:  # each attempt is bounded by its connect timeout and a capped backoff
            probe_bound = attempts * (_PROBE_TIMEOUT + self.backoff_cap) + 10.0
            self.kv_capacity_tokens = self._call(self._server_kv_capacity(attempts), timeout=probe_bound)
        except (EngineError, TimeoutError) as exc:
            self.close()
            if isinstance(exc, EngineError):
                raise
            raise EngineError(
                f"the server at {public_url(self.api_base)} did not answer in {probe_bound:.0f}s"
            ) from exc

    @staticmethod
    def _load_codec(config: EngineConfig) -> TextCodec | None:
        from instructpt.engines.tokenizer import load_codec

        if config.openai.prompt_mode == "ids":
            return load_codec(config)  # required: without it there are no ids to send
        try:
            return load_codec(config)
        except EngineError as exc:
            log.warning(
                "no tokenizer (%s); prompts are not budgeted and token counts come from the server", exc
            )
            return None

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run ``coro`` on the engine's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # Created on the loop's own thread: asyncio primitives belong to the loop that runs them.
        n = self.config.openai.concurrency
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.openai.request_timeout),
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
        )
        return client, asyncio.Semaphore(n)

    async def _server_kv_capacity(self, attempts: int) -> int | None:
        """The KV-cache tokens a vLLM server reports in its Prometheus ``/metrics`` (``vllm:cache_config_info``),
        so ``--max-inflight-tokens auto`` can bound what is in flight; None from any other server.

        This is also the check that the server is there: when no connection can be made in ``attempts`` tries
        (with backoff, so a server still starting gets some time), the engine fails at once rather than
        rejecting every record."""
        root = self.api_base[: -len("/v1")] if self.api_base.endswith("/v1") else self.api_base
        for attempt in range(1, attempts + 1):
            try:
                response = await self._client.get(
                    root + "/metrics", headers=self._headers, timeout=_PROBE_TIMEOUT
                )
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == attempts:
                    raise EngineError(
                        f"cannot reach the server at {public_url(self.api_base)} ({type(exc).__name__} after "
                        f"{attempts} attempts): is it running, and is --api-base right?"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, None))
            except httpx.HTTPError as exc:  # it answered, though not usefully: no capacity to read
                log.debug("no /metrics from the server: %s", type(exc).__name__)
                return None
        if response.status_code != 200:
            return None
        capacity = kv_capacity_from_metrics(response.text)
        if capacity:
            log.info("the server's KV cache holds %d tokens (vLLM /metrics)", capacity)
        return capacity

    # ---- the Engine protocol ----
    def submit(self, requests: Sequence[Request]) -> None:
        """Schedule ``requests``; returns at once."""
        if self._closed:
            raise EngineError("the openai engine is closed")
        bodies = [self._body(r) for r in requests]
        with self._lock:
            self._pending += len(bodies)
        for request, body in bodies:
            fut = asyncio.run_coroutine_threadsafe(self._run(request, body), self._loop)
            with self._lock:
                self._futures.add(fut)
            fut.add_done_callback(functools.partial(self._finished, request=request))

    def poll(self) -> list[Generation]:
        """All finished generations; blocks until there is one, ``[]`` when nothing is pending."""
        if not self.pending:
            return []
        out: list[Generation] = []
        while not out:
            try:
                out.append(self._done.get(timeout=1.0))
            except queue.Empty:
                if not self._thread.is_alive():
                    raise EngineError(
                        "the openai engine's event loop stopped with requests pending"
                    ) from None
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            self._pending -= len(out)
        return out

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(api_base=public_url(self.api_base), api_model=self.model_name, prompt_mode=self.mode)
        return info

    def close(self) -> None:
        """Cancel what is in flight, close the HTTP client and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            futures = list(self._futures)
        for fut in futures:
            fut.cancel()
        try:
            self._call(self._client.aclose(), timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.debug("closing the HTTP client failed: %s", type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __repr__(self) -> str:
        return f"OpenAIEngine(api_base={public_url(self.api_base)!r}, model={self.model_name!r}, mode={self.mode!r})"

    # ---- one request ----
    def _body(self, request: Request) -> tuple[Request, dict[str, Any]]:
        """The request (with its ids, encoded here when missing; the caller's object is left alone) and body."""
        s = self.sampling
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "n": request.n,  # vLLM's server seeds choice i with the request's seed + i
        }
        if self.mode == "ids":
            if request.prompt_ids is None:
                if self.codec is None:
                    raise EngineError("prompt_mode=ids needs the synthesizer's tokenizer")
                request = dataclasses.replace(request, prompt_ids=self.codec.encode(request.prompt))
            body["prompt"] = list(request.prompt_ids or [])
        else:
            body["prompt"] = request.prompt
            body["add_special_tokens"] = False
        if self.config.openai.return_token_ids:
            body["return_token_ids"] = True
        if self.config.openai.server_priority and request.priority:
            body["priority"] = request.priority
        if not s.greedy:
            body["seed"] = request_seed(
                s.seed, request.record_id or str(request.key)
            )  # as the offline engines
        return request, body

    def _finished(self, fut: Future, request: Request) -> None:
        with self._lock:
            self._futures.discard(fut)
        if fut.cancelled():
            gen = self._error(request, "cancelled: the engine was closed")
        elif fut.exception() is not None:  # _run catches everything; this is a last guard
            gen = self._error(request, f"internal error: {type(fut.exception()).__name__}")
        else:
            gen = fut.result()
        self._done.put(gen)

    async def _run(self, request: Request, body: dict[str, Any]) -> Generation:
        """POST with bounded retries; every outcome becomes a Generation."""
        attempts = self.config.openai.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                data = await self._attempt(body)
                return self._generation(request, data)
            except _Fatal as exc:
                return self._error(request, self._redact(str(exc)))
            except _Retryable as exc:
                reason = self._redact(str(exc))
                if attempt == attempts:
                    log.warning(
                        "request %s failed after %d attempts: %s", self._label(request), attempt, reason
                    )
                    return self._error(request, f"{reason} (after {attempt} attempts)")
                delay = self._delay(attempt, exc.retry_after)
                level = logging.DEBUG if reason.startswith("HTTP 429") else logging.WARNING
                log.log(
                    level,
                    "request %s attempt %d/%d: %s; retrying in %.2fs",
                    self._label(request),
                    attempt,
                    attempts,
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - a bug here must fail one request, not the loop
                log.exception("request %s: unexpected error", self._label(request))
                return self._error(request, self._redact(f"client error: {type(exc).__name__}: {exc}"))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, body: dict[str, Any]) -> dict[str, Any]:
        """One HTTP exchange; raises _Retryable or _Fatal, or returns the decoded response."""
        timeout = self.config.openai.request_timeout
        try:
            async with self._slots:  # the concurrency bound counts HTTP exchanges, not backoff sleeps
                response = await asyncio.wait_for(
                    self._client.post(self.url, json=body, headers=self._headers), timeout
                )
        except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
            raise _Retryable(f"timeout after {timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error: {type(exc).__name__}") from exc
        status = response.status_code
        if status in RETRY_STATUS or status >= 500:
            raise _Retryable(
                f"HTTP {status}: {server_message(response)}",
                parse_retry_after(response.headers.get("retry-after")),
            )
        if status != 200:
            raise _Fatal(f"HTTP {status}: {server_message(response)}")
        try:
            data = response.json()
            choices = data["choices"]
            if not choices or not all(isinstance(c.get("text"), str) for c in choices):
                raise TypeError("no text")
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            # A body cut off by a proxy or an overloaded server: worth another try.
            raise _Retryable(f"invalid response: {type(exc).__name__}") from exc
        return data

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        # Jitter spreads out the clients a server rejected together, so they do not all come back at once.
        return ceiling * (0.5 + 0.5 * self._jitter.random())

    def _generation(self, request: Request, data: dict[str, Any]) -> Generation:
        choices = sorted(
            data["choices"], key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0
        )
        if request.n == 1:
            return self._choice(request, data, choices[0])
        if len(choices) != request.n:
            raise _Fatal(
                f"the server returned {len(choices)} of {request.n} choices: does it support n "
                "(--num-samples)?"
            )
        # per-sample counts: usage sums the choices' completion tokens, so each sample counts its own
        samples = [self._choice(request, {**data, "usage": {}}, c) for c in choices]
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            for g in samples:
                g.prompt_tokens = usage["prompt_tokens"]
        return Generation.of_samples(samples)

    def _choice(self, request: Request, data: dict[str, Any], choice: dict[str, Any]) -> Generation:
        text: str = choice["text"]
        ids = choice.get("token_ids")  # vLLM returns them when asked (return_token_ids)
        token_ids = list(ids) if isinstance(ids, list) and all(isinstance(i, int) for i in ids) else None
        n_ids = len(token_ids) if token_ids is not None else None
        if self.mode == "text":
            token_ids = None  # the server re-tokenizes the prompt text; the chain must count what it will see
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        if not isinstance(prompt_tokens, int):
            prompt_tokens = self._count(request.prompt, request.prompt_ids if self.mode == "ids" else None)
        generated = usage.get("completion_tokens")
        if not isinstance(generated, int):
            generated = n_ids if n_ids is not None else self._count(text, None)
        reason = choice.get("finish_reason")
        reason = _FINISH_ALIASES.get(str(reason), str(reason)) if reason else "unknown"
        if reason == "abort":  # vLLM ends a request it dropped (shutdown, client gone) with a partial text
            raise _Retryable("the server aborted the request")
        return Generation(
            key=request.key,
            text=text,
            finish_reason=reason,
            token_ids=token_ids,
            prompt_tokens=prompt_tokens,
            generated_tokens=generated,
        )

    def _count(self, text: str, ids: list[int] | None) -> int:
        if ids is not None:
            return len(ids)
        return len(self.codec.encode(text)) if self.codec is not None else 0

    def _error(self, request: Request, message: str) -> Generation:
        n = len(request.prompt_ids) if self.mode == "ids" and request.prompt_ids is not None else 0
        return Generation(key=request.key, text="", finish_reason="error", prompt_tokens=n, error=message)

    def _redact(self, text: str) -> str:
        # A proxy may echo request headers into its error page; the key must not travel on from there.
        return text.replace(self._secret, "***") if self._secret else text

    @staticmethod
    def _label(request: Request) -> str:
        return request.record_id or repr(request.key)[:60]
