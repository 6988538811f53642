"""The model side of train-synthesizer: the wire tokens in the base tokenizer, and the exported synthesizer
directory with its model card."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from instructpt.wire import BOS, EOS

log = logging.getLogger(__name__)


def add_wire_tokens(tokenizer: Any) -> list[str]:
    """Make ``<s>`` / ``</s>`` single tokens that are the tokenizer's BOS / EOS (SPEC §3), adding them for base
    tokenizers that name those otherwise (Llama-3, Qwen, GPT-2 styles); returns what was added."""
    added = [t for t in (BOS, EOS) if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    if added:
        tokenizer.add_special_tokens({"additional_special_tokens": added})
        log.warning("the tokenizer had no single token for %s: added as special tokens", " and ".join(added))
    tokenizer.bos_token, tokenizer.eos_token = BOS, EOS
    if tokenizer.pad_token is None:
        tokenizer.pad_token = EOS
    return added


def fit_model(model: Any, tokenizer: Any) -> None:
    """Grow the embeddings to the tokenizer (after :func:`add_wire_tokens`) and declare its BOS/EOS ids."""
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
        log.warning("the embeddings grew to %d rows", model.get_input_embeddings().weight.shape[0])
    model.config.bos_token_id, model.config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id


def write_synthesizer(plain: Any, tokenizer: Any, out: Path, card: dict[str, Any]) -> None:
    """The HF directory ``synthesize --model`` takes: weights, tokenizer, generation config, model card."""
    from instructpt.pretrain.export import write_hf_model

    write_hf_model(plain, tokenizer, out, card, _card(card))


def _card(card: dict[str, Any]) -> str:
    data, final = card["data"], card["final"]
    quality = ", ".join(
        f"{k} {final[k]:.3f}" for k in ("parse_rate", "answer_exact_match", "answer_f1") if k in final
    )
    trained = [s for s in data["sources"] if s not in data["heldout_sources"]]
    return (
        "---\nlibrary_name: transformers\ntags:\n- instructpt\n- instruction-synthesizer\n---\n\n"
        f"# {card['name']}\n\nAn instruction synthesizer fine-tuned with instructpt from `{card['base']}`: given a "
        "raw text in the wire format `<s> <CON> {text} </CON>\\n\\n` it writes `<QUE> ... <ANS> ... </END>` pairs "
        "and stops at `</s>`. Use it with `instructpt synthesize --engine transformers --model DIR` (or vllm).\n\n"
        f"Data: {data['train_examples']:,} training examples from {len(trained)} source datasets "
        f"({', '.join(trained)}), packed few-shot into {data['sequences']:,} sequences ({data['tokens']:,} tokens, "
        f"{data['label_tokens']:,} with loss); {data['rejected']:,} rows rejected, {data['truncated']:,} contexts "
        f"cut to fit, skipped {json.dumps(data['skipped'])}. Held out: {', '.join(data['heldout_sources']) or 'none'} "
        f"({data['heldout_examples']:,} examples).\n\n"
        f"Held-out quality at the end: {quality or 'not measured'}.\n\n"
        f"Training: {json.dumps(card['training'], sort_keys=True)}\n"
    )
