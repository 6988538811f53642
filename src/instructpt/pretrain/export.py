"""``instructpt export``: a training checkpoint (sharded or not) -> an HF model directory.

    instructpt export runs/ipt -o models/ipt                      # the newest checkpoint of a pretrain run
    instructpt export runs/ipt/checkpoints/step-001000 -o models/ipt-1000

The directory has safetensors weights, ``config.json``, the tokenizer, a generation config with the BOS/EOS ids,
``instructpt_special_tokens.json`` (the BOS/EOS policy of the project's one table, which pack used for the
training data and evaluate uses for prompts) and a model card with the mixture and training settings.
``transformers`` loads it with ``from_pretrained``; vLLM serves it; lm-evaluation-harness evaluates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError, InputError
from instructpt.stages import RunInfo, Summary

MODEL_CONFIG, TOKENIZER, RUN_INFO = "model_config", "tokenizer", "run_info.json"


@dataclass
class ExportConfig:
    """``instructpt export``: a checkpoint -> an HF model directory (not a run directory: nothing to resume)."""

    checkpoint: str = option(
        "", "A pretrain output directory (its newest checkpoint) or one checkpoint.", positional=True
    )
    output: str = option(
        "", "HF model directory to write (files already there are replaced).", aliases=("-o",)
    )

    def __post_init__(self) -> None:
        if not self.output:
            raise ConfigError("--output/-o is required")
        if not self.checkpoint:
            raise ConfigError(
                "give the CHECKPOINT to export (a pretrain output directory or a step directory)"
            )


def _locate(path: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint directory) for a run directory or a checkpoint inside one."""
    from instructpt.train.checkpoint import STATE, complete

    if (path / STATE).exists():
        return path.parent.parent, path
    found = complete(path / "checkpoints")
    if not found:
        raise InputError(
            f"{path} holds no complete checkpoint (a pretrain output directory or its checkpoints/step-N)"
        )
    return path, found[-1]


def write_hf_model(
    model: Any, tokenizer: Any, out: Path, card: dict[str, Any], card_text: str | None = None
) -> None:
    """Save an (unwrapped, full) model as an HF directory with the project's BOS/EOS policy and a model card
    (``card_text``, or the pretrain card made from ``card``)."""
    from transformers import GenerationConfig

    from instructpt.special_tokens import policy_for

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    ).save_pretrained(out)  # fmt: skip
    policy = policy_for(tokenizer, getattr(model.config, "model_type", None))
    (out / "instructpt_special_tokens.json").write_text(json.dumps(policy.to_dict(), indent=2) + "\n")
    (out / "README.md").write_text(card_text or _card(card, policy.to_dict()), encoding="utf-8")


def gather_full_model(model: Any, wrapped: Any, world: Any) -> Any:
    """A plain model with the trained full weights on the first rank (every rank must call this: FSDP gathers its
    shards); None on the other ranks. In one process, the trained model itself (no second copy)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if world.size == 1:
        return model

    full = get_model_state_dict(wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not world.main:
        return None
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_config(model.config)
    plain.load_state_dict(full)
    return plain


def _card(card: dict[str, Any], policy: dict[str, Any]) -> str:
    mixture = card.get("mixture", {})
    sources = "\n".join(
        f"| {s['name']} | {s.get('train_tokens', 0):,} | {s.get('sampling', '')} |"
        for s in mixture.get("sources", [])
    )
    return (
        "---\nlibrary_name: transformers\ntags:\n- instructpt\n- instruction-pretraining\n---\n\n"
        f"# {card.get('name', 'instructpt model')}\n\nPre-trained with instructpt ({card.get('how', 'pretrain')}) on a "
        f"mixture of {mixture.get('train', {}).get('tokens', 0):,} tokens (preset `{mixture.get('preset', '?')}`).\n\n"
        f"| source | training tokens | sampling |\n|---|---:|---|\n{sources}\n\n"
        f"Training: {json.dumps(card.get('training', {}), sort_keys=True)}\n\n"
        f"Special tokens around each document: {json.dumps(policy, sort_keys=True)}\n"
    )


def export(config: ExportConfig) -> Summary:
    """Write the HF model of a checkpoint; returns a summary (no stats.json: the output is a model directory)."""
    import time

    from transformers import AutoConfig, AutoModelForCausalLM

    from instructpt.engines.tokenizer import load_hf_tokenizer
    from instructpt.train import checkpoint

    start = time.monotonic()
    run_dir, ckpt = _locate(Path(config.checkpoint))
    if not (run_dir / MODEL_CONFIG).is_dir():
        raise InputError(f"{run_dir} is not a pretrain output directory (no {MODEL_CONFIG}/)")
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(run_dir / MODEL_CONFIG))
    state = checkpoint.load(ckpt, model, None)
    tokenizer = load_hf_tokenizer(str(run_dir / TOKENIZER), error=InputError)
    info = (
        json.loads((run_dir / RUN_INFO).read_text(encoding="utf-8")) if (run_dir / RUN_INFO).exists() else {}
    )
    write_hf_model(model, tokenizer, Path(config.output), {**info, "name": Path(config.output).name})
    run = RunInfo("steps", int(state["step"]), time.monotonic() - start)
    return Summary("export", {"step": int(state["step"])}, {}, run, ("step",))


main = export
Config = ExportConfig
