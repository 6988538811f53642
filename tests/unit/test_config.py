"""Config resolution: defaults < YAML < flags, unknown keys and bad values named, nested sections."""

from __future__ import annotations

import argparse

import pytest

from instructpt.config import add_arguments, build, parse_mapping, resolve
from instructpt.errors import ConfigError
from instructpt.synthesizer.config import PROMPT_IDS_VERSION
from instructpt.synthesizer.run import SynthesizeConfig


def _flags(argv: list[str]) -> dict:
    p = argparse.ArgumentParser()
    add_arguments(p, SynthesizeConfig)
    return vars(p.parse_args(argv))


def test_defaults_then_yaml_then_flags(tmp_path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("inputs: [a.jsonl]\noutput: out\nrounds: 3\nengine:\n  name: rules\n  seed: 7\n")
    cfg = resolve(SynthesizeConfig, str(cfg_file), _flags(["--rounds", "4", "--model", "m"]))
    assert cfg.rounds == 4  # flag beats YAML
    assert cfg.engine.name == "rules" and cfg.engine.seed == 7  # YAML beats default
    assert cfg.engine.model == "m"
    assert cfg.engine.max_new_tokens == 400  # default
    assert cfg.inputs == ["a.jsonl"] and cfg.output == "out"


def test_flags_only_and_positional_inputs() -> None:
    cfg = resolve(SynthesizeConfig, None, _flags(["x.jsonl", "y/", "-o", "o", "--engine", "rules"]))
    assert cfg.inputs == ["x.jsonl", "y/"] and cfg.engine.name == "rules"


def test_unknown_keys_are_named(tmp_path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("inputs: [a]\noutput: o\nroundz: 2\n")
    with pytest.raises(ConfigError, match="roundz"):
        resolve(SynthesizeConfig, str(f), {})
    f.write_text("inputs: [a]\noutput: o\nengine:\n  modle: x\n")
    with pytest.raises(ConfigError, match="engine.modle"):
        resolve(SynthesizeConfig, str(f), {})


def test_bad_values_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--rounds"):
        build(SynthesizeConfig, {"inputs": ["a"], "output": "o", "rounds": 0})
    with pytest.raises(ConfigError, match="--max-model-len"):
        build(SynthesizeConfig, {"inputs": ["a"], "output": "o", "engine": {"max_model_len": 100}})
    with pytest.raises(ConfigError, match="must be int"):
        build(SynthesizeConfig, {"inputs": ["a"], "output": "o", "rounds": "two"})
    with pytest.raises(ConfigError, match="INPUT"):
        build(SynthesizeConfig, {"output": "o"})


def test_yaml_errors(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve(SynthesizeConfig, str(f), {})
    with pytest.raises(ConfigError, match="cannot read"):
        resolve(SynthesizeConfig, str(tmp_path / "missing.yaml"), {})


def test_parse_mapping() -> None:
    assert parse_mapping("classic=0.8, dialog=0.2") == {"classic": 0.8, "dialog": 0.2}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mapping("classic")


def test_secure_default_no_remote_code() -> None:
    cfg = build(SynthesizeConfig, {"inputs": ["a"], "output": "o"})
    assert cfg.engine.trust_remote_code is False


def test_max_inflight_tokens_accepts_auto_none_or_a_count(tmp_path) -> None:
    base = {"inputs": ["x.jsonl"], "output": "o"}
    path = tmp_path / "c.yaml"
    path.write_text("inputs: [x.jsonl]\noutput: o\nmax_inflight_tokens: 20000\n")
    assert (
        resolve(SynthesizeConfig, str(path), {}).max_inflight_tokens == "20000"
    )  # a YAML int is read as text
    assert (
        resolve(SynthesizeConfig, None, {**base, "max_inflight_tokens": "AUTO"}).max_inflight_tokens == "auto"
    )
    assert (
        resolve(SynthesizeConfig, None, {**base, "max_inflight_tokens": "none"}).max_inflight_tokens == "none"
    )
    for bad in ("0", "-5", "lots"):
        with pytest.raises(ConfigError, match="--max-inflight-tokens"):
            resolve(SynthesizeConfig, None, {**base, "max_inflight_tokens": bad})


def test_the_fingerprint_records_non_default_reading_and_prompt_settings_only() -> None:
    from instructpt.engines.config import EngineConfig, OpenAIOptions, RulesOptions

    base = SynthesizeConfig(inputs=["x.jsonl"], output="o", engine=EngineConfig(name="rules")).fingerprint()
    # the number of rules workers changes nothing written: a run may resume with another
    assert (
        base
        == SynthesizeConfig(
            inputs=["x.jsonl"], output="o", engine=EngineConfig(name="rules", rules=RulesOptions(workers=4))
        ).fingerprint()
    )
    assert not {"limit", "max_line_bytes", "prompt_mode", "return_token_ids", "dtype", "prompt_ids"} & set(
        base
    )
    server = EngineConfig(
        name="openai", dtype="bfloat16", openai=OpenAIOptions(prompt_mode="text", return_token_ids=True)
    )
    fp = SynthesizeConfig(
        inputs=["x.jsonl"], output="o", engine=server, limit=5, max_line_bytes=10
    ).fingerprint()
    assert (fp["limit"], fp["max_line_bytes"], fp["prompt_mode"], fp["return_token_ids"]) == (
        5,
        10,
        "text",
        True,
    )
    assert (
        "dtype" not in fp and fp["prompt_ids"] == PROMPT_IDS_VERSION
    )  # the server's dtype is not ours to set
    fp = SynthesizeConfig(
        inputs=["x"], output="o", engine=EngineConfig(name="vllm", dtype="bfloat16")
    ).fingerprint()
    assert fp["dtype"] == "bfloat16" and "prompt_mode" not in fp


def test_a_mapping_flag_updates_the_keys_it_names_and_keeps_the_others(tmp_path) -> None:
    """--layout-weights dialog=0.1 changes dialog's weight, not the whole mapping (which gave 100% dialog)."""
    from instructpt.templates import DEFAULT_LAYOUT_WEIGHTS
    from instructpt.templates.run import TemplifyConfig

    f = tmp_path / "t.yaml"
    f.write_text("inputs: [a]\noutput: o\nlayout_weights: {classic: 0, dialog: 1}\n")
    p = argparse.ArgumentParser()
    add_arguments(p, TemplifyConfig)
    flags = vars(p.parse_args(["--layout-weights", "classic=1"]))
    # on top of the YAML file's mapping, which itself replaces the default
    assert resolve(TemplifyConfig, str(f), flags).layout_weights == {"classic": 1.0, "dialog": 1.0}
    assert resolve(TemplifyConfig, str(f), {}).layout_weights == {"classic": 0.0, "dialog": 1.0}
    # on top of the default mapping when the file has none
    flags = vars(p.parse_args(["a", "-o", "o", "--layout-weights", "dialog=0.1,numbered=0"]))
    weights = resolve(TemplifyConfig, None, flags).layout_weights
    assert weights == {**DEFAULT_LAYOUT_WEIGHTS, "dialog": 0.1, "numbered": 0.0}
    assert DEFAULT_LAYOUT_WEIGHTS["dialog"] != 0.1  # the default itself is left alone


@pytest.mark.parametrize(("line", "message"), [("rounds: true", "rounds"), ("rounds: null", "got null"),
                                               ("engine: {seed: false}", "engine.seed")])  # fmt: skip
def test_booleans_and_nulls_are_not_numbers(tmp_path, line: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"inputs: [a]\noutput: o\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        resolve(SynthesizeConfig, str(f), {})
    f.write_text("inputs: [a]\noutput: o\nid_field: null\nlimit: null\n")  # optional keys take null
    assert resolve(SynthesizeConfig, str(f), {}).limit is None


def test_max_inflight_tokens_null_means_no_bound(tmp_path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("inputs: [a]\noutput: o\nmax_inflight_tokens: null\n")
    assert resolve(SynthesizeConfig, str(f), {}).max_inflight_tokens == "none"


def test_engine_auto_is_the_default_and_is_resolved_before_anything_records_it(monkeypatch) -> None:
    """No --model: the rules engine (no 7B download for a first try). With --model: vllm where it is importable
    and a CUDA GPU is visible, else transformers. config.yaml and the fingerprint get the engine that runs."""
    import importlib.util

    from instructpt.config import to_yaml
    from instructpt.engines import config as engine_config

    cfg = resolve(SynthesizeConfig, None, _flags(["x.jsonl", "-o", "o"]))
    assert cfg.engine.name == "rules" and cfg.fingerprint()["engine"] == "rules"
    assert "name: rules" in to_yaml(cfg) and "name: auto" not in to_yaml(cfg)
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args):
        return object() if name == "vllm" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    for gpu, want in ((False, "transformers"), (True, "vllm")):
        monkeypatch.setattr(engine_config, "_cuda_visible", lambda gpu=gpu: gpu)
        cfg = resolve(SynthesizeConfig, None, _flags(["x.jsonl", "-o", "o", "--model", "org/m"]))
        assert cfg.engine.name == want and cfg.fingerprint()["engine"] == want
        assert f"name: {want}" in to_yaml(cfg)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else object())
    assert engine_config.auto_engine("org/m") == ("transformers", "vllm is not installed")
    # a named engine is left as it is
    cfg = resolve(SynthesizeConfig, None, _flags(["x.jsonl", "-o", "o", "--engine", "openai"]))
    assert cfg.engine.name == "openai"


def test_engine_auto_is_logged_and_recorded_by_the_cli(tmp_path) -> None:
    import json
    import subprocess
    import sys

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Rivers carry water to the sea. However, deserts have little rain."}\n')
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "instructpt", "synthesize", str(corpus), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "--engine auto: rules (no --model given)" in proc.stderr, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["fingerprint"]["engine"] == "rules"
    assert "name: rules" in (out / "config.yaml").read_text()


def test_rules_max_per_type_must_be_at_least_one() -> None:
    with pytest.raises(ConfigError, match="--rules-max-per-type must be >= 1"):
        build(SynthesizeConfig, {"inputs": ["a"], "output": "o", "engine": {"rules": {"max_per_type": 0}}})
