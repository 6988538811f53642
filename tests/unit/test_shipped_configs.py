"""Every YAML file in configs/ loads into its command's config (file name prefix = command)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from instructpt.cli import COMMANDS
from instructpt.config import resolve

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_exist_for_every_command() -> None:
    assert {p.name.split("-")[0].removesuffix(".yaml") for p in CONFIGS} == set(COMMANDS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    command = path.name.split("-")[0].removesuffix(".yaml")
    module_name, cls_name, _, _ = COMMANDS[command]
    cls = getattr(importlib.import_module(module_name), cls_name)
    config = resolve(cls, str(path), {})
    assert isinstance(config, cls)
