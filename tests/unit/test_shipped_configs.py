"""Every command's parser builds with no flag collision, and every YAML file in configs/ loads into its command's
config (file name prefix = command), in today's layout, and writes back as YAML that loads to the same config."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from instructpt.cli import COMMANDS, command_parser
from instructpt.config import add_arguments, load_yaml, option, resolve, to_yaml
from instructpt.engines.config import EngineConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _command(path: Path) -> str:
    """The command a config file is for: the longest command name its name is, or starts with before a '-'."""
    stem = path.name.removesuffix(".yaml")
    return max((c for c in COMMANDS if stem == c or stem.startswith(c + "-")), key=len, default=stem)


def test_configs_exist_for_every_command() -> None:
    assert {_command(p) for p in CONFIGS} == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_parser_builds_without_a_flag_collision(name: str) -> None:
    parser, module = command_parser(name)  # argparse raises on two options with one flag
    flags = [s for a in parser._actions for s in a.option_strings]
    assert len(flags) == len(set(flags))
    assert "--output" in flags and "-o" in flags and callable(module.main)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_and_round_trips(path: Path, tmp_path: Path, caplog) -> None:
    command = _command(path)
    parser, module = command_parser(command)
    caplog.set_level(logging.WARNING, logger="instructpt.config")
    args = {
        k: v
        for k, v in vars(parser.parse_args([])).items()
        if k not in ("config", "verbose", "quiet", "report")
    }
    config = resolve(module.Config, str(path), args)
    assert isinstance(config, module.Config)
    assert not caplog.records, "a shipped config uses a key that moved: " + caplog.records[0].getMessage()
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(config))
    assert resolve(module.Config, str(again), {}) == config
    assert set(load_yaml(path)) <= {f for f in config.__dataclass_fields__}


@dataclass
class _WithItsOwnSeed:
    """A command whose config has its own seed and model beside an engine section (what made argparse fail)."""

    seed: int = option(1, "The command's own seed.")
    model: str = option("m", "The command's own model.")
    engine: EngineConfig = field(default_factory=EngineConfig)


def test_sections_take_prefixed_flags_and_ambiguous_aliases_are_left_out() -> None:
    parser = argparse.ArgumentParser()
    dropped = add_arguments(parser, _WithItsOwnSeed)
    assert {"--seed", "--model"} <= set(dropped)  # the engine's aliases, taken by the command's own flags
    args = vars(
        parser.parse_args(["--seed", "5", "--engine.seed", "7", "--model", "a", "--engine.model", "b"])
    )
    assert args == {"seed": 5, "engine.seed": 7, "model": "a", "engine.model": "b"}
    args = vars(parser.parse_args(["--engine", "vllm", "--gpu-memory-utilization", "0.5"]))
    assert args == {
        "engine.name": "vllm",
        "engine.vllm.gpu_memory_utilization": 0.5,
    }  # unambiguous aliases stay
    cfg = resolve(_WithItsOwnSeed, None, args)
    assert cfg.engine.vllm.gpu_memory_utilization == 0.5 and cfg.seed == 1


def test_yaml_keys_of_the_flat_engine_layout_are_read_into_their_section(tmp_path: Path, caplog) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("engine:\n  name: rules\n  rules_workers: 3\n  tensor_parallel_size: 2\n")
    caplog.set_level(logging.WARNING, logger="instructpt.config")
    cfg = resolve(_WithItsOwnSeed, str(old), {"engine.vllm.tensor_parallel_size": 4})
    assert cfg.engine.rules.workers == 3 and cfg.engine.vllm.tensor_parallel_size == 4  # the flag still wins
    assert any("engine.rules_workers is now engine.rules.workers" in r.getMessage() for r in caplog.records)


def test_a_section_written_as_a_scalar_is_an_error_even_with_its_flags(tmp_path: Path) -> None:
    from instructpt.errors import ConfigError

    bad = tmp_path / "c.yaml"
    bad.write_text("engine: vllm\n")  # engine is a section: `engine: {name: vllm}`
    with pytest.raises(ConfigError, match="'engine' must be a mapping"):
        resolve(_WithItsOwnSeed, str(bad), {"engine.model": "m"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve(_WithItsOwnSeed, str(bad), {})
