"""Models to train: presets of the Mistral architecture (what the paper pre-trains from scratch), any HF
``config.json``, or an HF checkpoint to continue from; and what a model costs per token (for MFU).

| preset | hidden | layers | heads (kv) | MLP   | parameters at vocab 32,000 (embeddings untied) |
|--------|-------:|-------:|-----------:|------:|------------------------------------------------:|
| tiny   |     64 |      2 |      2 (1) |   192 | 4.2M (tests and CPU runs)                        |
| 500m   |   1536 |     16 |    12 (4)  |  4096 | 501.0M                                           |
| 1.3b   |   2048 |     24 |    16 (8)  |  5632 | 1,263.6M                                         |

The paper's 500M and 1.3B models use the Mistral architecture; their exact shapes are not published beside the
weights' own config files, so these presets are sized to the names (``parameter_count`` checks the table). The
vocabulary of the tokenizer wins over a preset's, rounded up to a multiple of 64.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructpt.errors import ConfigError

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
             "intermediate_size": 192},  # head size 32: one vLLM's CPU kernels take
    "500m": {"hidden_size": 1536, "num_hidden_layers": 16, "num_attention_heads": 12, "num_key_value_heads": 4,
             "intermediate_size": 4096},
    "1.3b": {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 8,
             "intermediate_size": 5632},
}  # fmt: skip

# bf16 dense peak FLOP/s per device (vendor figures), for MFU; --peak-tflops overrides
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def round_vocab(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def model_spec(spec: str) -> Any:
    """What a ``--model-config`` setting means, for a key: a preset's name, or what its config.json says (an edited
    file is another model under the same path)."""
    if spec in PRESETS:
        return spec
    path = Path(spec)
    if not path.exists():
        raise ConfigError(_NOT_A_MODEL.format(spec=spec, presets=", ".join(PRESETS)))
    config_json = (path if path.is_dir() else path.parent) / "config.json"  # what model_config builds from
    try:
        return json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # missing, unreadable, not UTF-8, not JSON
        raise ConfigError(f"--model-config {spec}: cannot read {config_json} ({exc})") from exc


_NOT_A_MODEL = "--model-config {spec!r} is neither a preset ({presets}) nor a config.json"


def model_config(spec: str, vocab_size: int, max_positions: int, special: dict[str, Any]) -> Any:
    """An HF config from a preset name or a ``config.json`` path, with the tokenizer's vocabulary (rounded up to a
    multiple of 64 when it comes from a preset) and special token ids."""
    from transformers import AutoConfig, MistralConfig

    if spec in PRESETS:
        shape: dict[str, Any] = PRESETS[spec]
        return MistralConfig(
            vocab_size=round_vocab(vocab_size),
            head_dim=shape["hidden_size"] // shape["num_attention_heads"],
            max_position_embeddings=max_positions,
            sliding_window=None,
            tie_word_embeddings=False,
            **shape,
            **special,
        )
    path = Path(spec)
    if not path.exists():
        raise ConfigError(_NOT_A_MODEL.format(spec=spec, presets=", ".join(PRESETS)))
    config = AutoConfig.from_pretrained(path if path.is_dir() else path.parent)
    if config.vocab_size < vocab_size:
        raise ConfigError(f"{spec} has a vocabulary of {config.vocab_size}, the tokenizer {vocab_size}")
    return config


def build_model(config: Any, seed: int) -> Any:
    """A freshly initialised causal LM for ``config`` (the same weights for the same seed)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)


def load_init(name: str, revision: str | None, trust_remote_code: bool) -> Any:
    """An HF checkpoint to continue pre-training from (safetensors only), in fp32 for the master weights."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            name, revision=revision, trust_remote_code=trust_remote_code, use_safetensors=True,
            dtype=torch.float32, attn_implementation="sdpa",
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - every loader failure means the same to the user
        raise ConfigError(f"cannot load --init {name!r}: {exc}") from exc


def parameter_count(model: Any) -> tuple[int, int]:
    """(all parameters, those not in the input embedding)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return total, total - embedding


def flops_per_token(model: Any, seq_len: int) -> float:
    """Training FLOPs per token: 6 x the parameters that do matmuls (all but the input embedding) plus attention
    scores and values, 12 x layers x hidden x sequence length (the PaLM accounting, not halved for causality)."""
    _, compute = parameter_count(model)
    c = model.config
    return 6.0 * compute + 12.0 * c.num_hidden_layers * c.hidden_size * seq_len


def device_peak_flops(device: Any, override_tflops: float | None = None) -> float | None:
    """The bf16 peak of ``device`` from :data:`PEAK_FLOPS` (None on CPU or an unknown GPU)."""
    if override_tflops:
        return override_tflops * 1e12
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)
