"""instructpt: Instruction Pre-Training toolkit.

Turns raw pre-training documents into grounded instruction-response pairs with an instruction synthesizer
(an LLM, or the model-free rules miner), renders them into instruction-augmented pre-training text, and
(later stages) trains and evaluates models on it. Run ``instructpt --help``.

Every stage is callable from Python with its config object (docs/python-api.md)::

    from instructpt import SynthesizeConfig, TemplifyConfig, synthesize, templify
    from instructpt.engines.config import EngineConfig

    pairs = synthesize(SynthesizeConfig(inputs=["corpus/"], output="out/pairs", engine=EngineConfig(name="rules")))
    docs = templify(TemplifyConfig(inputs=["out/pairs"], output="out/augmented"))
    print(pairs.counts["pairs_out"], docs.counts["docs_out"])

Stages are imported when first used, so ``import instructpt`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from instructpt._version import __version__

# public name -> (module, attribute)
_STAGES = {
    "synthesize": ("instructpt.synthesizer.run", "synthesize"),
    "SynthesizeConfig": ("instructpt.synthesizer.config", "SynthesizeConfig"),
    "templify": ("instructpt.templates.run", "templify"),
    "TemplifyConfig": ("instructpt.templates.run", "TemplifyConfig"),
    "demo": ("instructpt.demo", "demo"),
    "DemoConfig": ("instructpt.demo", "DemoConfig"),
    "Summary": ("instructpt.stages", "Summary"),
    "ShardPlan": ("instructpt.stages", "ShardPlan"),
}

__all__ = [
    "DemoConfig",
    "ShardPlan",
    "Summary",
    "SynthesizeConfig",
    "TemplifyConfig",
    "__version__",
    "demo",
    "synthesize",
    "templify",
]

if TYPE_CHECKING:
    from instructpt.demo import DemoConfig, demo
    from instructpt.stages import ShardPlan, Summary
    from instructpt.synthesizer.config import SynthesizeConfig
    from instructpt.synthesizer.run import synthesize
    from instructpt.templates.run import TemplifyConfig, templify


def __getattr__(name: str) -> Any:
    if name not in _STAGES:
        raise AttributeError(f"module 'instructpt' has no attribute {name!r}")
    module, attr = _STAGES[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
