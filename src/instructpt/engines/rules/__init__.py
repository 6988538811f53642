"""The model-free ``rules`` synthesizer (SPEC §9): mines reading-comprehension tasks from raw text.

``mine(text, record_id)`` returns question-answer pairs (title -> summary and article, connective-based NLI and
connective choice, cause/effect in both directions, paraphrases, definitions, topics, rare-keyword sentences,
text completion); :class:`RulesEngine` serves it through the engine protocol (``--engine rules``).
"""

from __future__ import annotations

from instructpt.engines.rules.engine import RulesEngine, last_context
from instructpt.engines.rules.facts import text_rng
from instructpt.engines.rules.miner import RULES_VERSION, TASK_TYPES, MineResult, mine, with_options

__all__ = [
    "RULES_VERSION",
    "TASK_TYPES",
    "MineResult",
    "RulesEngine",
    "last_context",
    "mine",
    "text_rng",
    "with_options",
]
