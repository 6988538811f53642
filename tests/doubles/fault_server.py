"""Test double: a fault-injecting OpenAI-compatible ``/v1/completions`` server on the loopback interface.

Not a model server. It answers each request with a canned completion computed from the prompt
(:func:`canned_completion`), or, following a per-test script keyed by prompt text, fails the first K attempts of a
prompt (or every attempt) with 429 + ``Retry-After``, 500, 503, 400, a dropped connection, a delay longer than the
client's timeout, or a truncated JSON body. It records every request (headers and body), the attempts per prompt
and the most requests it handled at the same time. Usage::

    with FaultServer(script={"bad prompt": Fault("400")}) as server:
        engine = OpenAIEngine(EngineConfig(name="openai", api_base=server.api_base, ...))

It binds 127.0.0.1 on an OS-chosen port; every wait is bounded and ends early when the server stops.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("429", "500", "503", "400", "drop", "delay", "bad_json")


@dataclass
class Fault:
    """How a prompt fails: ``kind`` on its first ``times`` attempts (``None``: on every attempt).

    ``message`` is the error text sent with status faults; ``{authorization}`` in it is replaced by the request's
    Authorization header, the way a careless proxy echoes headers back.
    """

    kind: str
    times: int | None = None
    retry_after: str | None = None
    delay: float = 1.0
    message: str = "injected fault"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {FAULT_KINDS}")


def canned_completion(prompt: str, choice: int = 0) -> str:
    """The completion every healthy request gets: a well-formed pair that names the prompt's length (and, for
    choices after the first of a request with n > 1, the choice's index)."""
    tag = f" (choice {choice})" if choice else ""
    return f"<QUE> How long is the prompt? <ANS> {len(prompt)} characters{tag}. </END>"


@dataclass
class Recorded:
    """One request as received."""

    headers: dict[str, str]
    body: dict[str, Any]
    prompt: str


class FaultServer:
    """The server and its script; a context manager that starts and stops it."""

    def __init__(
        self,
        script: dict[str, Fault] | None = None,
        *,
        decode: Callable[[list[int]], str] | None = None,
        encode: Callable[[str], list[int]] | None = None,
        latency: float = 0.0,
        usage: bool = True,
        finish_reason: str = "stop",
        max_wait: float = 5.0,
    ) -> None:
        self.script = dict(script or {})
        self.decode = decode  # turns id prompts into text so the script can be keyed by text alike
        self.encode = encode  # answers return_token_ids requests with the ids of the canned text
        self.latency = latency  # seconds each healthy answer takes, so concurrent requests overlap
        self.usage = usage
        self.finish_reason = finish_reason
        self.max_wait = max_wait  # upper bound on any sleep in a handler
        self.requests: list[Recorded] = []
        self.attempts: Counter[str] = Counter()
        self.max_concurrent = 0
        self._active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----
    def __enter__(self) -> FaultServer:
        handler = type("Handler", (_Handler,), {"server_double": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def api_base(self) -> str:
        assert self._httpd is not None, "the server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # ---- what the handler asks ----
    def prompt_text(self, prompt: Any) -> str:
        if isinstance(prompt, list):
            return self.decode(prompt) if self.decode else ",".join(map(str, prompt))
        return str(prompt)

    def begin(self, record: Recorded) -> Fault | None:
        """Record a request and return the fault to inject on this attempt, if any."""
        with self._lock:
            self.requests.append(record)
            self.attempts[record.prompt] += 1
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            fault = self.script.get(record.prompt)
            attempt = self.attempts[record.prompt]
        if fault is not None and (fault.times is None or attempt <= fault.times):
            return fault
        return None

    def end(self) -> None:
        with self._lock:
            self._active -= 1

    def wait(self, seconds: float) -> None:
        self._stopping.wait(min(seconds, self.max_wait))

    def completion(self, body: dict[str, Any], prompt: str) -> dict[str, Any]:
        n = body.get("n", 1)
        # with n > 1, choice i (i > 0) names its index; the choices come last first, as a server may send them
        texts = [canned_completion(prompt, i) for i in range(n)]
        choices = [
            {"index": i, "text": t, "finish_reason": self.finish_reason, "logprobs": None}
            for i, t in enumerate(texts)
        ][::-1]
        out: dict[str, Any] = {
            "id": "cmpl-test",
            "object": "text_completion",
            "model": body.get("model"),
            "choices": choices,
        }
        if body.get("return_token_ids") and self.encode is not None:
            for choice in choices:
                choice["token_ids"] = self.encode(choice["text"])
        if self.usage:
            n_prompt = len(body["prompt"]) if isinstance(body.get("prompt"), list) else len(prompt.split())
            generated = sum(len(t.split()) for t in texts)
            out["usage"] = {
                "prompt_tokens": n_prompt,
                "completion_tokens": generated,
                "total_tokens": n_prompt + generated,
            }
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do; needs Content-Length on every answer
    timeout = 5.0  # an idle keep-alive connection ends after this, so handler threads cannot linger
    server_double: FaultServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # keep test output quiet

    def do_POST(self) -> None:
        double = self.server_double
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        prompt = double.prompt_text(body.get("prompt"))
        fault = double.begin(Recorded(dict(self.headers.items()), body, prompt))
        try:
            self._answer(double, body, prompt, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (its timeout): nothing left to tell it
        finally:
            double.end()

    def _answer(self, double: FaultServer, body: dict[str, Any], prompt: str, fault: Fault | None) -> None:
        if fault is None:
            if double.latency:
                double.wait(double.latency)
            self._send(200, double.completion(body, prompt))
        elif fault.kind == "drop":
            self.close_connection = True  # no response at all: the client sees the connection end
        elif fault.kind == "delay":
            double.wait(fault.delay)
            self._send(200, double.completion(body, prompt))
        elif fault.kind == "bad_json":
            data = json.dumps(double.completion(body, prompt)).encode()
            self._send_raw(200, data[: len(data) // 2])
        else:
            message = fault.message.replace("{authorization}", self.headers.get("Authorization", ""))
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(int(fault.kind), {"error": {"message": message, "code": int(fault.kind)}}, headers)

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
