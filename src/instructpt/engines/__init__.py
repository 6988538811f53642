"""Synthesis engines behind one small protocol (base.py); each heavy backend is imported only when chosen."""

from instructpt.engines.base import Engine, Generation, Request, load_engine
from instructpt.engines.config import ENGINES, EngineConfig, SamplingParams

__all__ = [
    "ENGINES",
    "Engine",
    "EngineConfig",
    "Generation",
    "Request",
    "SamplingParams",
    "load_engine",
]
