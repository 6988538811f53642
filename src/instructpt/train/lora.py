"""Optional LoRA adapters through ``peft`` (``pip install 'instructpt[train]'``): train low-rank adapters on a frozen
base model, then merge them into plain weights so the result is an ordinary HF model directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraOptions:
    """LoRA instead of full fine-tuning (rank 0: off)."""

    r: int = option(0, "Adapter rank (0: full fine-tuning).")
    alpha: int = option(16, "Scaling numerator (the update is alpha / r times the low-rank product).")
    dropout: float = option(0.05, "Dropout on the adapters' input.")
    target_modules: list[str] = option(DEFAULT_TARGETS, "Module names that get adapters.")

    def __post_init__(self) -> None:
        if self.r < 0 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("--lora.r must be >= 0, --lora.alpha > 0, --lora.dropout in [0, 1)")

    @property
    def enabled(self) -> bool:
        return self.r > 0


def add_adapters(model: Any, o: LoraOptions, train_embeddings: bool = False) -> Any:
    """``model`` with trainable adapters (everything else frozen; with ``train_embeddings`` the input embeddings and
    the output head train in full too: rows added to the vocabulary must learn)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError("--lora.r needs the peft package: pip install 'instructpt[train]'") from exc
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in o.target_modules if m not in present]
    if missing == o.target_modules:
        raise ConfigError(f"--lora.target-modules: the model has none of {', '.join(missing)}")
    save = [m for m in ("embed_tokens", "lm_head") if m in present] if train_embeddings else None
    config = LoraConfig(r=o.r, lora_alpha=o.alpha, lora_dropout=o.dropout, modules_to_save=save,
                        target_modules=[m for m in o.target_modules if m in present], task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(model, config)


def merged(model: Any) -> Any:
    """A plain model with the adapters folded into its weights (``model`` itself when it has none)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
