"""Which synthesizer runs where: the engine section of a config, and one sub-section per backend.

``EngineConfig`` holds what every engine shares (which engine, which model, context and decoding); each backend
owns its options (``engine.transformers``, ``engine.vllm``, ``engine.openai``, ``engine.rules``) and the part of
the resume fingerprint they decide. Flags: ``--engine.vllm.gpu-memory-utilization`` and so on, with the short
flags of earlier versions (``--engine``, ``--model``, ``--gpu-memory-utilization``, ``--rules-workers``) kept as
aliases; YAML keys of earlier versions written flat under ``engine:`` are read into their section with a warning.
The default engine, ``auto``, is resolved when the config is built (:func:`auto_engine`), so ``config.yaml``, the
fingerprint and every record name the engine that ran. Imports nothing heavy: ``instructpt --help`` builds its
parser from here (``auto`` asks torch for a GPU only when a model is named and vLLM is installed).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from instructpt.config import option
from instructpt.errors import ConfigError

ENGINES: dict[str, str] = {
    "transformers": "instructpt.engines.hf:HFEngine",
    "vllm": "instructpt.engines.vllm:VLLMEngine",
    "openai": "instructpt.engines.openai:OpenAIEngine",
    "rules": "instructpt.engines.rules:RulesEngine",
}

DEFAULT_SYNTHESIZER = "instruction-pretrain/instruction-synthesizer"
AUTO = "auto"  # the default engine: chosen from --model and what is installed (auto_engine)
log = logging.getLogger(__name__)


def auto_engine(model: str) -> tuple[str, str]:
    """The engine ``--engine auto`` runs, and why: rules while ``--model`` is the default (no 7B download for a
    first try); with a model, vllm when it is importable and a CUDA GPU is visible, else transformers."""
    if model == DEFAULT_SYNTHESIZER:
        return "rules", "no --model given"
    return model_engine()


def model_engine() -> tuple[str, str]:
    """The engine a synthesizer model runs on, and why: vllm when it is importable and a CUDA GPU is visible, else
    transformers."""
    if importlib.util.find_spec("vllm") is None:
        return "transformers", "vllm is not installed"
    if not _cuda_visible():
        return "transformers", "no CUDA GPU is visible"
    return "vllm", "vllm is installed and a CUDA GPU is visible"


def _cuda_visible() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings; the paper's are greedy with at most 400 new tokens."""

    max_new_tokens: int = 400
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackendOptions:
    """What each backend section provides besides its fields."""

    uses_tokenizer: ClassVar[bool] = True  # exact token budgets and prompt ids (every backend but rules)

    def fingerprint(self, engine: EngineConfig) -> dict[str, Any]:
        """The settings of this backend that change what a run writes (recorded when not default, so output
        directories written before they were recorded still resume)."""
        return {}

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the flag of a bad value."""


@dataclass
class TransformersOptions(BackendOptions):
    """``--engine transformers``: batched ``generate`` on CPU or one GPU."""

    batch_size: int = option(32, "Sequences per generate() call.", aliases=("--batch-size",))
    batch_lookahead: int = option(
        4,
        "Pick each batch from this many batches' worth of queued requests, by prompt length, to cut left padding "
        "(the oldest request always goes); 1 = oldest first.",
        aliases=("--batch-lookahead",),
    )
    device: str = option("auto", "auto | cpu | cuda | cuda:N.", aliases=("--device",))

    def check(self) -> None:
        if self.batch_size < 1 or self.batch_lookahead < 1:
            raise ConfigError("--batch-size and --batch-lookahead must be >= 1")

    def fingerprint(self, engine: EngineConfig) -> dict[str, Any]:
        return {"dtype": engine.dtype} if engine.dtype != "auto" else {}


@dataclass
class VLLMOptions(BackendOptions):
    """``--engine vllm``: vLLM's offline engine with continuous submission."""

    tensor_parallel_size: int = option(1, "GPUs per model replica.", aliases=("--tensor-parallel-size",))
    gpu_memory_utilization: float = option(
        0.9, "Share of GPU memory the engine may take.", aliases=("--gpu-memory-utilization",)
    )
    enable_prefix_caching: bool = option(
        True, "Reuse the KV cache of shared prompt prefixes.", aliases=("--enable-prefix-caching",)
    )
    scheduling_policy: str = option(
        "priority",
        "'priority' runs a chain's next step before waiting new chains, while its prefix is still cached; 'fcfs' "
        "is vLLM's first-come-first-served order.",
        choices=("priority", "fcfs"),
        aliases=("--scheduling-policy",),
    )

    def check(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ConfigError("--tensor-parallel-size must be >= 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("--gpu-memory-utilization must be in (0, 1]")

    def fingerprint(self, engine: EngineConfig) -> dict[str, Any]:
        return {"dtype": engine.dtype} if engine.dtype != "auto" else {}


@dataclass
class OpenAIOptions(BackendOptions):
    """``--engine openai``: ``/v1/completions`` of an OpenAI-compatible server."""

    api_base: str = option(
        "http://127.0.0.1:8000/v1", "Base URL of an OpenAI-compatible server.", aliases=("--api-base",)
    )
    api_key_env: str = option(
        "OPENAI_API_KEY", "Name of the environment variable holding the API key.", aliases=("--api-key-env",)
    )
    api_model: str | None = option(
        None, "Model name the server expects (default: --model).", aliases=("--api-model",)
    )
    prompt_mode: str = option(
        "ids",
        "Send token ids (exact) or text (server tokenizes).",
        choices=("ids", "text"),
        aliases=("--prompt-mode",),
    )
    return_token_ids: bool = option(
        False,
        "Ask the server for the generated token ids (vLLM's return_token_ids), so clean generations extend the "
        "next prompt token for token; servers that reject unknown fields need it off.",
        aliases=("--return-token-ids",),
    )
    server_priority: bool = option(
        False,
        "Send each request's priority (a chain's later steps first); for vLLM servers started with "
        "--scheduling-policy priority (others reject non-zero priorities).",
        aliases=("--server-priority",),
    )
    concurrency: int = option(16, "Requests in flight at once.", aliases=("--concurrency",))
    request_timeout: float = option(
        300.0, "Seconds before a request is abandoned and retried.", aliases=("--request-timeout",)
    )
    max_retries: int = option(
        4, "Retries per request on 429/5xx/connection errors.", aliases=("--max-retries",)
    )

    def check(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be >= 1")
        if self.max_retries < 0:
            raise ConfigError("--max-retries must be >= 0")

    def fingerprint(self, engine: EngineConfig) -> dict[str, Any]:
        fp: dict[str, Any] = {}
        if self.prompt_mode != "ids":
            fp["prompt_mode"] = self.prompt_mode
        if self.return_token_ids:
            fp["return_token_ids"] = True
        return fp


@dataclass
class RulesOptions(BackendOptions):
    """``--engine rules``: the model-free miner."""

    uses_tokenizer: ClassVar[bool] = False

    max_per_type: int = option(
        2, "Most items mined per task type per text.", aliases=("--rules-max-per-type",)
    )
    workers: int = option(
        1,
        "Processes that mine in parallel (0 = one per CPU core); 1 mines in the main process. The output is the "
        "same for any number.",
        aliases=("--rules-workers",),
    )

    def check(self) -> None:
        if self.max_per_type < 1:
            raise ConfigError("--rules-max-per-type must be >= 1")
        if self.workers < 0:
            raise ConfigError("--rules-workers must be >= 0 (0 = one per CPU core)")

    def fingerprint(self, engine: EngineConfig) -> dict[str, Any]:
        from instructpt.engines.rules.miner import RULES_VERSION

        # the worker count is left out: it changes nothing written, so a run may resume with another
        return {"rules_max_per_type": self.max_per_type, "rules_version": RULES_VERSION}


_MOVED_FROM_FLAT = {
    **{k: f"transformers.{k}" for k in ("batch_size", "batch_lookahead", "device")},
    **{k: f"vllm.{k}" for k in ("tensor_parallel_size", "gpu_memory_utilization", "enable_prefix_caching")},
    "scheduling_policy": "vllm.scheduling_policy",
    **{
        k: f"openai.{k}"
        for k in (
            "api_base",
            "api_key_env",
            "api_model",
            "prompt_mode",
            "return_token_ids",
            "server_priority",
            "concurrency",
            "request_timeout",
            "max_retries",
        )
    },
    "rules_max_per_type": "rules.max_per_type",
    "rules_workers": "rules.workers",
}


@dataclass
class EngineConfig:
    """Which synthesizer runs where. One section shared by every command that runs a synthesizer."""

    MOVED: ClassVar[dict[str, str]] = (
        _MOVED_FROM_FLAT  # YAML keys of 0.1 (flat under engine:) -> their section
    )

    name: str = option(
        "auto",
        "Engine: auto | transformers | vllm | openai | rules. auto: rules while --model is the default; with "
        "--model, vllm when it is installed and a CUDA GPU is visible, else transformers.",
        choices=(AUTO, *ENGINES),
        aliases=("--engine",),
    )
    model: str = option(
        DEFAULT_SYNTHESIZER, "Synthesizer: HF hub id or local directory.", aliases=("--model",)
    )
    revision: str | None = option(
        None, "Model revision (branch, tag or commit) for hub ids.", aliases=("--revision",)
    )
    tokenizer: str | None = option(
        None, "Tokenizer id/dir when it differs from --model.", aliases=("--tokenizer",)
    )
    max_model_len: int = option(
        4096, "Context length: prompt + new tokens must fit in it.", aliases=("--max-model-len",)
    )
    max_new_tokens: int = option(400, "Most tokens generated per example.", aliases=("--max-new-tokens",))
    temperature: float = option(0.0, "0 = greedy (the paper's setting).", aliases=("--temperature",))
    top_p: float = option(1.0, "Nucleus sampling mass (with --temperature > 0).", aliases=("--top-p",))
    seed: int = option(
        0, "Sampling seed (with --temperature > 0) and seed of the rules engine.", aliases=("--seed",)
    )
    dtype: str = option(
        "auto", "transformers/vllm: auto | float32 | bfloat16 | float16.", aliases=("--dtype",)
    )
    trust_remote_code: bool = option(
        False, "Allow model repos to run their own code (off by default).", aliases=("--trust-remote-code",)
    )
    transformers: TransformersOptions = field(default_factory=TransformersOptions)
    vllm: VLLMOptions = field(default_factory=VLLMOptions)
    openai: OpenAIOptions = field(default_factory=OpenAIOptions)
    rules: RulesOptions = field(default_factory=RulesOptions)

    def __post_init__(self) -> None:
        # auto is resolved here, so that config.yaml, the fingerprint and every record name the engine that ran
        if self.name == AUTO:
            self.name, why = auto_engine(self.model)
            log.info("--engine auto: %s (%s)", self.name, why)
        if self.name not in ENGINES:
            raise ConfigError(f"--engine must be one of {AUTO}, {', '.join(ENGINES)}, got {self.name!r}")
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")
        if self.max_model_len <= self.max_new_tokens:
            raise ConfigError("--max-model-len must be larger than --max-new-tokens")
        if self.temperature < 0:
            raise ConfigError("--temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ConfigError("--top-p must be in (0, 1]")
        for section in (self.transformers, self.vllm, self.openai, self.rules):
            section.check()

    @property
    def backend(self) -> BackendOptions:
        """The options section of the chosen engine."""
        return getattr(self, self.name)

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.max_new_tokens, self.temperature, self.top_p, self.seed)

    def fingerprint(self) -> dict[str, Any]:
        """What of the engine must match for a run to resume: the model, decoding, and the backend's part."""
        return {
            "engine": self.name,
            "model": self.model,
            "revision": self.revision,
            "tokenizer": self.tokenizer,
            "sampling": self.sampling.to_dict(),
            "max_model_len": self.max_model_len,
            **self.backend.fingerprint(self),
        }
