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
    "decontaminate": ("instructpt.decontaminate.run", "decontaminate"),
    "filter_pairs": ("instructpt.filter.run", "filter_pairs"),
    "FilterConfig": ("instructpt.filter.run", "FilterConfig"),
    "DecontaminateConfig": ("instructpt.decontaminate.run", "DecontaminateConfig"),
    "pack": ("instructpt.pack.run", "pack"),
    "PackConfig": ("instructpt.pack.run", "PackConfig"),
    "mix": ("instructpt.mix.run", "mix"),
    "MixConfig": ("instructpt.mix.run", "MixConfig"),
    "pretrain": ("instructpt.pretrain.run", "pretrain"),
    "PretrainConfig": ("instructpt.pretrain.run", "PretrainConfig"),
    "train_synthesizer": ("instructpt.train_synthesizer.run", "train_synthesizer"),
    "TrainSynthesizerConfig": ("instructpt.train_synthesizer.run", "TrainSynthesizerConfig"),
    "evaluate": ("instructpt.evaluate.run", "evaluate"),
    "EvaluateConfig": ("instructpt.evaluate.run", "EvaluateConfig"),
    "evaluate_synthesizer": ("instructpt.evaluate.synthesizer", "evaluate_synthesizer"),
    "EvaluateSynthesizerConfig": ("instructpt.evaluate.synthesizer", "EvaluateSynthesizerConfig"),
    "report": ("instructpt.report.run", "report"),
    "ReportConfig": ("instructpt.report.run", "ReportConfig"),
    "experiment": ("instructpt.experiment.run", "experiment"),
    "ExperimentConfig": ("instructpt.experiment.run", "ExperimentConfig"),
    "verify": ("instructpt.verify", "verify"),
    "VerifyConfig": ("instructpt.verify", "VerifyConfig"),
    "Summary": ("instructpt.stages", "Summary"),
    "ShardPlan": ("instructpt.stages", "ShardPlan"),
}

__all__ = [
    "DecontaminateConfig",
    "DemoConfig",
    "EvaluateConfig",
    "EvaluateSynthesizerConfig",
    "ExperimentConfig",
    "FilterConfig",
    "MixConfig",
    "PackConfig",
    "PretrainConfig",
    "ReportConfig",
    "ShardPlan",
    "Summary",
    "SynthesizeConfig",
    "TemplifyConfig",
    "TrainSynthesizerConfig",
    "VerifyConfig",
    "__version__",
    "decontaminate",
    "demo",
    "evaluate",
    "evaluate_synthesizer",
    "experiment",
    "filter_pairs",
    "mix",
    "pack",
    "pretrain",
    "report",
    "synthesize",
    "templify",
    "train_synthesizer",
    "verify",
]

if TYPE_CHECKING:
    from instructpt.decontaminate.run import DecontaminateConfig, decontaminate
    from instructpt.demo import DemoConfig, demo
    from instructpt.evaluate.run import EvaluateConfig, evaluate
    from instructpt.evaluate.synthesizer import EvaluateSynthesizerConfig, evaluate_synthesizer
    from instructpt.experiment.run import ExperimentConfig, experiment
    from instructpt.filter.run import FilterConfig, filter_pairs
    from instructpt.mix.run import MixConfig, mix
    from instructpt.pack.run import PackConfig, pack
    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.report.run import ReportConfig, report
    from instructpt.stages import ShardPlan, Summary
    from instructpt.synthesizer.config import SynthesizeConfig
    from instructpt.synthesizer.run import synthesize
    from instructpt.templates.run import TemplifyConfig, templify
    from instructpt.train_synthesizer.run import TrainSynthesizerConfig, train_synthesizer
    from instructpt.verify import VerifyConfig, verify


def __getattr__(name: str) -> Any:
    if name not in _STAGES:
        raise AttributeError(f"module 'instructpt' has no attribute {name!r}")
    module, attr = _STAGES[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
