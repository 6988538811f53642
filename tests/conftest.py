"""Shared fixtures: offline Hugging Face settings and the tiny synthesizer (trained once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _hf_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny trained Mistral synthesizer + tokenizer (see tests/tinymodel.py)."""
    pytest.importorskip("torch")
    from tests.tinymodel import build_tiny_synthesizer

    return build_tiny_synthesizer(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_synth: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_synth)
