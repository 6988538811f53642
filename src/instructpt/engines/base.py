"""The engine protocol: requests in, generations out, submitted and collected asynchronously.

An engine takes :class:`Request` objects with :meth:`Engine.submit` and hands back finished
:class:`Generation` objects from :meth:`Engine.poll` in whatever order they finish. This is what lets the chain
scheduler submit a chain's next step as soon as its previous step returns, with no global barrier.
:meth:`Engine.generate` is the plain batch form (same order and length out as in).

A request that fails after the engine's own bounded retries comes back as a generation with
``finish_reason == "error"`` and the error text — never as placeholder output; the caller rejects that record.
A failure of the whole engine (cannot load the model, out of memory) raises :class:`EngineError`.

Backends are named here and imported lazily (``name -> "module:Class"``) so choosing ``rules`` never imports
torch.
"""

from __future__ import annotations

import hashlib
import importlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from instructpt.engines.config import ENGINES, EngineConfig
from instructpt.engines.hub import hub_commit
from instructpt.errors import ConfigError, EngineError
from instructpt.records import QAPair


class TextCodec(Protocol):
    """What the scheduler needs of a tokenizer: exact ids with no special tokens added, and back."""

    eos_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def request_seed(seed: int, record_id: str) -> int:
    """A sampling seed from (global seed, stable record id), so a record draws the same wherever it is batched."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Request:
    """One prompt. ``prompt_ids`` are exact token ids (no special tokens added) when the engine has a codec."""

    key: Hashable
    prompt: str
    prompt_ids: list[int] | None = None
    record_id: str = ""  # stable id of the text being synthesized (seeds engines that draw at random)
    context: str | None = None  # the text being synthesized, verbatim (engines that read it need no parsing)
    # Lower runs sooner on engines that schedule by priority (vLLM with --scheduling-policy priority); the chain
    # scheduler gives a chain's later steps lower values, so they run while their cached prefix is still there.
    priority: int = 0
    # Samples wanted (synthesize --num-samples): the engine answers with one Generation holding all n of them.
    n: int = 1


@dataclass
class Generation:
    """One finished request. ``finish_reason``: ``stop`` (EOS), ``length`` (max_new_tokens) or ``error``."""

    key: Hashable
    text: str
    finish_reason: str
    token_ids: list[int] | None = None
    prompt_tokens: int = 0
    generated_tokens: int = 0
    error: str | None = None
    # Engines that produce structured pairs directly (rules) set these; the scheduler then skips parsing.
    pairs: list[QAPair] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Samples 1..n-1 of a request with n > 1 (sample 0 is this generation's own fields); an error fails them all.
    more_samples: list[Generation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"

    @property
    def samples(self) -> list[Generation]:
        """Every sample of the request, in the order the engine drew them: sample 0 (this one) first."""
        return [self, *self.more_samples]

    @classmethod
    def of_samples(cls, samples: list[Generation]) -> Generation:
        """One generation for a request with several samples: the first, holding the others."""
        first = samples[0]
        first.more_samples = list(samples[1:])
        return first


class Engine(ABC):
    """Base class of every backend. Subclasses implement ``submit`` and ``poll``."""

    name: str = "engine"
    codec: TextCodec | None = None  # None: the engine has no token budget (rules)
    max_model_len: int | None = None
    # Tokens the engine's KV cache holds, where it knows (vllm); the scheduler keeps at most this many prompt +
    # new tokens in flight, so finished steps' cached prefixes are still there when their chains go on.
    kv_capacity_tokens: int | None = None
    loads_weights = False  # True: --model names the weights this process runs (their hub commit is recorded)
    # True: prompts go out as text and the engine's side tokenizes them (openai --prompt-mode text), so a chain's
    # ids must be the encoding of its whole prompt text for the budget to count what the model sees.
    tokenizes_prompt_text = False

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.sampling = config.sampling

    @abstractmethod
    def submit(self, requests: Sequence[Request]) -> None:
        """Queue requests; returns at once or after handing them to the backend."""

    @abstractmethod
    def poll(self) -> list[Generation]:
        """Finished generations: blocks until at least one is ready; ``[]`` only when nothing is pending."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Requests submitted and not yet returned by :meth:`poll`."""

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """Batch form: the generations of ``requests`` in the same order."""
        if self.pending:
            raise EngineError("generate() needs an idle engine")
        if len({r.key for r in requests}) != len(requests):
            raise ValueError("generate() needs a distinct key per request")
        self.submit(requests)
        done: dict[Hashable, Generation] = {}
        while self.pending:
            for g in self.poll():
                done[g.key] = g
        return [done[r.key] for r in requests]

    def describe(self) -> dict[str, Any]:
        """Synthesizer identity recorded with every output record."""
        info = {"engine": self.name, "model": self.config.model, "revision": self.config.revision}
        if self.loads_weights:
            commit = hub_commit(self.config.model, self.config.revision)
            if commit:
                info["commit"] = commit
        return info

    def close(self) -> None:  # noqa: B027 - optional hook; most engines hold nothing to release
        """Release the backend (GPU memory, server connections, worker threads)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QueuedEngine(Engine):
    """An engine that works synchronously: ``submit`` queues, ``poll`` takes the next batch via :meth:`take`."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self._queue: deque[Request] = deque()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, requests: Sequence[Request]) -> None:
        self._queue.extend(requests)

    def take(self, limit: int | None = None) -> list[Request]:
        """Up to ``limit`` queued requests (all when None), oldest first."""
        n = len(self._queue) if limit is None else min(limit, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]


def load_engine(config: EngineConfig) -> Engine:
    """Import and build the engine named by ``config.name``."""
    target = ENGINES.get(config.name)
    if target is None:
        raise ConfigError(f"unknown engine {config.name!r}; choose one of {', '.join(ENGINES)}")
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"vllm": "vllm", "openai": "openai", "transformers": "hf"}.get(config.name, "hf")
        raise EngineError(
            f"engine {config.name!r} needs packages that are not installed ({exc}); "
            f"install them with: pip install 'instructpt[{extra}]'"
        ) from exc
    return getattr(module, cls_name)(config)
