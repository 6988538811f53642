"""The ``transformers`` engine: batched greedy (or sampled) ``generate`` with left padding, on CPU or GPU.

Prompts arrive as exact token ids (the project's codec, ``add_special_tokens=False``), so nothing is added in
front of the literal ``<s>``. Generation stops at EOS or ``max_new_tokens``. A batch that raises (e.g. out of
memory) is retried in halves down to single requests; a request that fails alone comes back as an error
generation, so one bad request never fails its batch.

Batches are picked by prompt length from the oldest ``--batch-lookahead`` batches' worth of queued requests, the
oldest always included: on the tiny synthesizer's corpus this raised real prompt tokens from about half of the
padded batch to over 80 %, and docs/s by 1.14-1.47x (bench/RESULTS.md).
"""

from __future__ import annotations

import logging
from typing import Any

from instructpt.engines.base import Generation, QueuedEngine, Request, request_seed
from instructpt.engines.config import EngineConfig
from instructpt.engines.tokenizer import HFCodec, load_tokenizer
from instructpt.errors import EngineError

log = logging.getLogger(__name__)


def resolve_device_dtype(device: str, dtype: str) -> tuple[Any, Any]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        if str(device).startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    try:
        return torch.device(device), getattr(torch, dtype)
    except (RuntimeError, AttributeError) as exc:
        raise EngineError(f"bad --device {device!r} or --dtype {dtype!r}: {exc}") from exc


def pick_batch(lengths: list[int], n: int) -> list[int]:
    """Indices of a batch of ``n`` among queued prompts of these lengths (oldest first): the oldest, and the
    ``n - 1`` others that need the least left padding beside it. The oldest always goes, so nothing waits for
    ever, and the choice depends only on the queue, so runs stay deterministic."""
    if len(lengths) <= n:
        return list(range(len(lengths)))
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    best: tuple[int, list[int]] | None = None
    # For each longest member at or above the oldest's length, the padding is least with the n - 1 longest
    # prompts not above it: the batch pays for n x its longest, so the rest should fill as much of it as they can.
    for top in range(by_length.index(0), len(lengths)):
        others = [i for i in reversed(by_length[: top + 1]) if i != 0][: n - 1]
        if len(others) < n - 1:
            continue
        padding = n * lengths[by_length[top]] - lengths[0] - sum(lengths[i] for i in others)
        if best is None or padding < best[0]:
            best = (padding, others)
    assert best is not None  # the last `top` always has n - 1 others below it
    return sorted([0, *best[1]])


class HFEngine(QueuedEngine):
    name = "transformers"
    codec: HFCodec
    max_model_len: int
    loads_weights = True

    def __init__(self, config: EngineConfig, model: Any = None, tokenizer: Any = None) -> None:
        super().__init__(config)
        import torch
        from transformers import AutoModelForCausalLM

        self._torch = torch
        tokenizer = tokenizer or load_tokenizer(config)
        self.codec = HFCodec(tokenizer)
        self.codec.check_wire_tokens()
        self.max_model_len = config.max_model_len
        self.device, dtype = resolve_device_dtype(config.transformers.device, config.dtype)
        if model is None:
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    config.model,
                    revision=config.revision,
                    dtype=dtype,
                    trust_remote_code=config.trust_remote_code,
                    use_safetensors=True,
                )
            except Exception as exc:  # noqa: BLE001 - surface any loader failure as one clear error
                raise EngineError(f"cannot load model {config.model!r}: {exc}") from exc
        self.model = model.to(self.device).eval()
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.codec.eos_token_id

    def poll(self) -> list[Generation]:
        batch = self._take_batch()
        if not batch:
            return []
        too_long = [r for r in batch if len(self._ids(r)) > self.max_model_len - self.sampling.max_new_tokens]
        out = [
            Generation(r.key, "", "error", error="prompt longer than max_model_len - max_new_tokens")
            for r in too_long
        ]
        if self.sampling.greedy:  # greedy decoding draws one answer; n of them would all be the same
            out += [
                Generation(r.key, "", "error", error="several samples need sampling (--temperature > 0)")
                for r in batch
                if r.n > 1 and r not in too_long
            ]
        ok = [r for r in batch if r not in too_long and not (self.sampling.greedy and r.n > 1)]
        return out + (self._generate_robust(ok) if ok else [])

    def _take_batch(self) -> list[Request]:
        """The next batch: with ``--batch-lookahead`` > 1, chosen by prompt length (see :func:`pick_batch`)."""
        n, queue = self.config.transformers.batch_size, self._queue
        if len(queue) <= n or self.config.transformers.batch_lookahead <= 1:
            return self.take(n)
        window = [
            queue.popleft() for _ in range(min(len(queue), self.config.transformers.batch_lookahead * n))
        ]
        chosen = set(pick_batch([len(self._ids(r)) for r in window], n))
        queue.extendleft(reversed([r for i, r in enumerate(window) if i not in chosen]))
        return [r for i, r in enumerate(window) if i in chosen]

    def _ids(self, r: Request) -> list[int]:
        if r.prompt_ids is None:
            r.prompt_ids = self.codec.encode(r.prompt)
        return r.prompt_ids

    def _generate_robust(self, batch: list[Request]) -> list[Generation]:
        try:
            return self._generate(batch)
        except Exception as exc:  # noqa: BLE001 - OOM and friends: retry smaller, then fail per request
            if len(batch) == 1:
                log.warning("generation failed for %s: %s", batch[0].record_id or batch[0].key, exc)
                return [Generation(batch[0].key, "", "error", error=f"{type(exc).__name__}: {exc}"[:500])]
            if self.device.type == "cuda":
                self._torch.cuda.empty_cache()
            half = len(batch) // 2
            return self._generate_robust(batch[:half]) + self._generate_robust(batch[half:])

    def _generate(self, batch: list[Request]) -> list[Generation]:
        s = self.sampling
        if not s.greedy and len(batch) > 1:
            # generate() draws from one generator for the whole batch; one request at a time, each seeded by
            # (seed, record id), keeps a record's draws independent of what it is batched with
            return [g for r in batch for g in self._generate([r])]
        torch = self._torch
        rows = [self._ids(r) for r in batch]
        width = max(map(len, rows))
        input_ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        kwargs: dict[str, Any] = {"do_sample": not s.greedy}
        n = 1
        if not s.greedy:
            torch.manual_seed(request_seed(s.seed, batch[0].record_id or str(batch[0].key)))
            # top_k=0: no top-k cut (transformers would add 50), as vLLM and OpenAI-compatible servers sample
            kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=0)
            # several samples: drawn in one call from the request's seed, sample i as the i-th row
            n = kwargs["num_return_sequences"] = batch[0].n
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=s.max_new_tokens,
                eos_token_id=self.codec.eos_token_id,
                pad_token_id=self.pad_id,
                **kwargs,
            )
        if n > 1:  # one request (sampling runs one at a time), its n samples as rows
            samples = [self._to_generation(batch[0], rows[0], out[j, width:].tolist()) for j in range(n)]
            return [Generation.of_samples(samples)]
        return [
            self._to_generation(r, row, out[i, width:].tolist())
            for i, (r, row) in enumerate(zip(batch, rows))
        ]

    def _to_generation(self, req: Request, prompt: list[int], new: list[int]) -> Generation:
        eos = self.codec.eos_token_id
        finish = "length"
        if eos in new:
            new = new[: new.index(eos) + 1]  # what follows EOS is padding
            finish = "stop"
        text_ids = new[:-1] if finish == "stop" else new
        return Generation(
            req.key,
            self.codec.decode(text_ids),
            finish,
            token_ids=new,
            prompt_tokens=len(prompt),
            generated_tokens=len(new),
        )

    def close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
