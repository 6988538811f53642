"""vLLM with a randomly initialised model and fixed output lengths, for bench_chains.py (not a benchmark itself).

- :func:`write_dummy_model`: a model directory holding only ``config.json`` (a Mistral of the chosen shape; see
  ``SHAPES``) and a 32,000-token byte-level BPE tokenizer trained here (``<pad>``, ``<s>``, ``</s>`` = ids 0-2,
  as Mistral's BOS/EOS ids 1/2). vLLM runs it with ``load_format="dummy"``: random weights, no checkpoint.
- :class:`FixedOutputVLLMEngine`: a test double, NOT a synthesizer. It is the real ``VLLMEngine`` asking vLLM for
  exactly N new tokens per request (``ignore_eos``), so the GPU does the work of an N-token generation, and it
  hands back each finished generation with its text replaced by canned well-formed pairs (about N tokens of
  text) and ``finish_reason`` "stop". A random model's text never parses into pairs, which would end every chain
  after one step; with the canned text every chain goes on as with a working synthesizer.

  The token ids are NOT replaced: they stay the N ids vLLM generated, whose KV blocks are what vLLM's prefix
  cache holds. The chain scheduler builds the next prompt from them (previous prompt + generated ids + EOS + next
  context), exactly as it does with a real synthesizer, so the cache can serve the previous prompt AND the
  generation, as it would in production. Canned ids in their place would have made every next prompt miss the
  cache from the end of the previous prompt on, understating what chain scheduling buys.
- :func:`fixed_output_params`: the same sampling settings for vLLM's raw ``LLM.generate`` measurement.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Any

from common import sentence, train_bpe_tokenizer
from instructpt.engines.base import Generation, Request
from instructpt.engines.config import EngineConfig
from instructpt.engines.vllm import VLLMEngine

VOCAB_SIZE = 32_000
_MISTRAL = {  # Mistral-7B-v0.2's config.json, as released (full attention, rope_theta 1e6)
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": VOCAB_SIZE,
}
SHAPES: dict[str, dict[str, int]] = {
    "mistral-7b": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
    },
    # small enough for a CPU smoke run; head_dim 64 is one of the head sizes vLLM's CPU kernels take
    "tiny": {
        "hidden_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "intermediate_size": 768,
        "max_position_embeddings": 4096,
    },
}


def write_dummy_model(shape: str, out_dir: Path, seed: int = 0) -> Path:
    """``config.json`` of ``shape`` and a trained 32k BPE tokenizer in ``out_dir``; checked, then returned."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(out_dir, random.Random(seed), VOCAB_SIZE)
    if len(tokenizer) != VOCAB_SIZE or tokenizer.convert_ids_to_tokens([1, 2]) != ["<s>", "</s>"]:
        raise SystemExit(
            f"the trained tokenizer has {len(tokenizer)} tokens, not {VOCAB_SIZE} with <s>=1, </s>=2"
        )
    (out_dir / "config.json").write_text(json.dumps({**_MISTRAL, **SHAPES[shape]}, indent=2) + "\n")
    return out_dir


def describe_model(model_dir: Path) -> str:
    """The shape read back with transformers' ``MistralConfig``, and its parameter count."""
    from transformers import MistralConfig

    c = MistralConfig.from_pretrained(model_dir)
    head_dim = c.head_dim or c.hidden_size // c.num_attention_heads
    attn = c.hidden_size * head_dim * 2 * (c.num_attention_heads + c.num_key_value_heads)  # q, o + k, v
    layer = attn + 3 * c.hidden_size * c.intermediate_size + 2 * c.hidden_size  # + SwiGLU MLP, 2 RMSNorms
    embeddings = c.vocab_size * c.hidden_size * (1 if c.tie_word_embeddings else 2)
    params = c.num_hidden_layers * layer + embeddings + c.hidden_size
    kv_bytes = 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * 2  # K and V per token in 16 bits
    return (
        f"MistralConfig hidden {c.hidden_size}, layers {c.num_hidden_layers}, heads {c.num_attention_heads} "
        f"(kv {c.num_key_value_heads}, dim {head_dim}), mlp {c.intermediate_size}, vocab {c.vocab_size}, "
        f"sliding_window {c.sliding_window}: {params / 1e9:.3f} B parameters "
        f"({2 * params / 2**30:.2f} GiB in bf16), KV {kv_bytes // 1024} KiB/token in bf16"
    )


def canned_pool(codec: Any, n_tokens: int, seed: int, size: int = 64) -> list[str]:
    """``size`` well-formed generations of about ``n_tokens`` tokens each (whole pairs, at least one)."""
    rng = random.Random(seed)
    pool = []
    for _ in range(size):
        pairs: list[str] = []
        while not pairs or len(codec.encode("\n\n".join(pairs))) < 0.9 * n_tokens:
            question = sentence(rng)[:-1] + "?"
            answer = " ".join(sentence(rng).split()[: rng.randint(3, 12)]).rstrip(".,") + "."
            pairs.append(f"<QUE> {question} <ANS> {answer} </END>")
        while len(pairs) > 1 and len(codec.encode("\n\n".join(pairs))) > 1.1 * n_tokens:
            pairs.pop()
        pool.append("\n\n".join(pairs))
    return pool


def fixed_output_params(n_tokens: int) -> Any:
    """Greedy, exactly ``n_tokens`` new tokens (EOS ignored, no stop ids), ids only: as VLLMEngine otherwise."""
    from vllm import SamplingParams

    return SamplingParams(
        n=1,
        max_tokens=n_tokens,
        temperature=0.0,
        ignore_eos=True,
        skip_special_tokens=False,
        detokenize=False,
    )


class FixedOutputVLLMEngine(VLLMEngine):
    """Test double, not a synthesizer: vLLM generates exactly ``fixed`` tokens per request (random model);
    each generation comes back with canned well-formed pair text and the ids vLLM generated (module docstring).

    ``off_length`` counts generations that did not have exactly ``fixed`` tokens (should stay 0).
    """

    name = "vllm-fixed-output-test-double"

    def __init__(self, config: EngineConfig, fixed: int, seed: int = 0, **llm_kwargs: Any) -> None:
        if not 0 < fixed <= config.max_new_tokens:
            raise SystemExit("--fixed-output must be in [1, --max-new-tokens]")
        super().__init__(config, **llm_kwargs)
        self.fixed = fixed
        self.pool = canned_pool(self.codec, fixed, seed)
        self.off_length = 0

    def _params(self, request: Request) -> Any:
        params = fixed_output_params(self.fixed)
        try:
            from vllm.sampling_params import RequestOutputKind

            params.output_kind = RequestOutputKind.FINAL_ONLY  # as VLLMEngine sets it
        except ImportError:  # pragma: no cover - old vLLM
            pass
        return params

    def _generation(self, output: Any) -> Generation:
        gen = super()._generation(output)  # decodes the generated ids, as with a real model
        if gen.ok:
            self.off_length += gen.generated_tokens != self.fixed
            gen.text = self.pool[zlib.crc32(repr(gen.key).encode()) % len(self.pool)]
            gen.finish_reason = "stop"  # a well-formed generation that ended at EOS
        return gen
