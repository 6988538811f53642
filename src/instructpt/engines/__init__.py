"""Synthesis engines behind one small protocol (base.py); each heavy backend is imported only when chosen."""

from instructpt.engines.base import (
    ENGINES,
    Engine,
    EngineConfig,
    EngineError,
    Generation,
    Request,
    SamplingParams,
    load_engine,
)

__all__ = [
    "ENGINES",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Generation",
    "Request",
    "SamplingParams",
    "load_engine",
]
