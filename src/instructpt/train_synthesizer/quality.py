"""Held-out quality of a synthesizer being trained: a minimal measure, run at intervals and at the end.

On held-out examples (whole source datasets the model never trains on), with greedy decoding through the project's
transformers engine:

- ``parse_rate``: the share of contexts whose generation (the zero-shot prompt ``synthesize`` sends) parses into at
  least one pair (SPEC §3 parsing);
- ``pairs_per_context``: the mean number of pairs parsed;
- ``answer_exact_match`` / ``answer_f1``: given the context and a gold question, the response the model writes
  (up to its ``</END>``) against the gold answer: SQuAD-style normalized exact match and token F1
  (:mod:`instructpt.quality.answers`, as ``evaluate-synthesizer`` measures them, with ROUGE-L and seen/unseen
  splits, on any engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from instructpt.io.collection import CollectionExample
from instructpt.quality.answers import normalize, token_f1
from instructpt.train_synthesizer.sequences import cut_context
from instructpt.wire import EOS, answer_of, parse_generation, prompt_ids, question_body


def heldout_quality(
    model: Any,
    tokenizer: Any,
    examples: Sequence[CollectionExample],
    device: str,
    max_model_len: int,
    max_new_tokens: int = 128,
) -> dict[str, float]:
    """The figures above on ``examples`` (the model is left in training mode)."""
    from instructpt.engines.base import Request
    from instructpt.engines.config import EngineConfig, TransformersOptions
    from instructpt.engines.hf import HFEngine

    if not examples:
        return {}
    was_training = model.training
    cfg = EngineConfig(name="transformers", model="(in training)", max_model_len=max_model_len,
                       max_new_tokens=max_new_tokens, transformers=TransformersOptions(device=device, batch_size=8))  # fmt: skip
    engine = HFEngine(cfg, model=model, tokenizer=tokenizer)
    encode = engine.codec.encode
    eos_len = len(encode(EOS))
    budget = max_model_len - max_new_tokens + eos_len  # a prompt plus the EOS its encoding ends with

    def prompt(context: str, body: str) -> list[int] | None:
        """The ids of the context block + ``body``; a context too long for the budget is cut (its text, so the
        block stays well formed); None when ``body`` alone does not fit."""
        ids = prompt_ids(encode, context, body)
        if len(ids) + eos_len <= budget:
            return ids
        fitted = cut_context(context, body, encode, budget)
        return None if fitted is None else fitted[0] + fitted[1][:-eos_len]

    try:
        prompts = [Request(i, "", prompt(ex.context, "")) for i, ex in enumerate(examples)]
        answers = []
        for i, ex in enumerate(examples):
            ids = prompt(ex.context, question_body(ex.pairs[0].question))
            if ids is not None:  # a question too long for the budget is not asked
                answers.append((Request(i, "", ids), ex.pairs[0].answer))
        parsed = [parse_generation(g.text).pairs for g in engine.generate(prompts)]
        written = engine.generate([r for r, _ in answers])
    finally:
        model.train(was_training)
    replies = [answer_of(g.text) for g in written]
    golds = [gold for _, gold in answers]
    n, asked = len(examples), max(1, len(answers))
    return {
        "parse_rate": sum(1 for p in parsed if p) / n,
        "pairs_per_context": sum(len(p) for p in parsed) / n,
        "answer_exact_match": sum(normalize(r) == normalize(g) for r, g in zip(replies, golds)) / asked,
        "answer_f1": sum(token_f1(r, g) for r, g in zip(replies, golds)) / asked,
    }
