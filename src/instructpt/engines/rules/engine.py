"""The ``rules`` engine: the model-free miner behind the :class:`~instructpt.engines.base.Engine` protocol.

Each request's prompt ends with the context block of the text to synthesize (earlier few-shot examples may
precede it and are ignored); the engine mines that text with :func:`~instructpt.engines.rules.miner.mine` and
answers at once with the pairs, both structured (``Generation.pairs``) and in wire format (``Generation.text``).
No model, no tokenizer, no token budget: ``codec`` and ``max_model_len`` are ``None``.
"""

from __future__ import annotations

from typing import Any

from instructpt.engines.base import EngineConfig, Generation, QueuedEngine, Request
from instructpt.engines.rules.miner import mine
from instructpt.synthesizer.format import BOS, CON_CLOSE, CON_OPEN, PAIR_SEP, serialize_pairs

RULES_VERSION = "rules-v2"  # bump when mining output changes for the same input
_OPEN = f"{BOS} {CON_OPEN} "
_CLOSE = f" {CON_CLOSE}{PAIR_SEP}"


def last_context(prompt: str) -> str | None:
    """The text of the prompt's final context block, or ``None`` when the prompt does not end with one."""
    start = prompt.rfind(_OPEN)
    if start < 0 or not prompt.endswith(_CLOSE) or start + len(_OPEN) > len(prompt) - len(_CLOSE):
        return None
    return prompt[start + len(_OPEN) : len(prompt) - len(_CLOSE)]


class RulesEngine(QueuedEngine):
    """Mines pairs with regular expressions; deterministic per (seed, record id), instant, offline."""

    name = "rules"
    codec = None
    max_model_len = None

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.max_per_type = config.rules_max_per_type

    def poll(self) -> list[Generation]:
        return [self._run(req) for req in self.take()]

    def _run(self, req: Request) -> Generation:
        # the verbatim context when the scheduler passes it; parsing the prompt cannot tell a marker-like
        # string inside the text from the real opening of the block
        text = req.context if req.context is not None else last_context(req.prompt)
        if text is None:
            error = "prompt does not end with a context block '<s> <CON> ... </CON>\\n\\n'"
            return Generation(req.key, "", "error", error=error)
        try:
            result = mine(text, req.record_id, self.config.seed, self.max_per_type)
        except Exception as exc:  # a miner bug must cost one record (rejected with the reason), not the run
            return Generation(req.key, "", "error", error=f"rules miner failed: {type(exc).__name__}: {exc}")
        extra = {"skip_reason": result.skip_reason} if not result.pairs and result.skip_reason else {}
        return Generation(req.key, serialize_pairs(result.pairs), "stop", pairs=result.pairs, extra=extra)

    def describe(self) -> dict[str, Any]:
        # The generic description names the default LLM synthesizer, which the rules engine never uses.
        return {
            "engine": self.name,
            "model": RULES_VERSION,
            "revision": None,
            "seed": self.config.seed,
            "max_per_type": self.max_per_type,
        }
