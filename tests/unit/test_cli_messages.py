"""What the command line says: one line per error naming the flag or the YAML key, no abbreviated flags, every
default in --help, help and exit code 2 without a command, hub warnings once, offline hub ids refused at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from instructpt.cli import main


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "instructpt", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=cwd,
    )  # fmt: skip


def _error_line(capsys, argv: list[str]) -> str:
    """The stderr of a command that fails with exit code 2, checked to be one line without the usage block."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "usage:" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_a_bad_flag_value_is_one_line_naming_the_flag(capsys) -> None:
    line = _error_line(capsys, ["synthesize", "x.jsonl", "-o", "o", "--rounds", "0"])
    assert line == "instructpt synthesize: error: --rounds must be >= 1"
    line = _error_line(capsys, ["synthesize", "x.jsonl", "-o", "o", "--rules-max-per-type", "0"])
    assert line == "instructpt synthesize: error: --rules-max-per-type must be >= 1"
    # argparse's own errors too: one line and a pointer to --help
    line = _error_line(capsys, ["synthesize", "x.jsonl", "-o", "o", "--rounds", "two"])
    assert "--rounds: invalid int value: 'two'" in line and "--help" in line


def test_a_bad_yaml_value_is_named_by_its_key_in_the_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("inputs: [x.jsonl]\noutput: o\nrounds: 0\n")
    line = _error_line(capsys, ["synthesize", "--config", str(cfg)])
    assert line == "instructpt synthesize: error: rounds in c.yaml must be >= 1"
    cfg.write_text(
        "inputs: [x.jsonl]\noutput: o\nengine:\n  max_model_len: 300\n  rules: {max_per_type: 0}\n"
    )
    line = _error_line(capsys, ["synthesize", "--config", str(cfg)])
    assert line.endswith("engine.max_model_len in c.yaml must be larger than --max-new-tokens")
    line = _error_line(capsys, ["synthesize", "--config", str(cfg), "--max-model-len", "4096"])
    assert line.endswith("engine.rules.max_per_type in c.yaml must be >= 1")
    # a flag given on top of the file is named as the flag
    line = _error_line(capsys, ["synthesize", "--config", str(cfg), "--max-model-len", "100"])
    assert line.endswith("--max-model-len must be larger than --max-new-tokens")


def test_a_yaml_key_given_twice_is_refused_with_its_lines(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("inputs: [x.jsonl]\noutput: o\nrounds: 2\nrounds: 3\n")
    line = _error_line(capsys, ["synthesize", "--config", str(cfg)])
    assert "config key 'rounds' appears twice (lines 3 and 4)" in line and str(cfg) in line
    cfg.write_text("inputs: [x.jsonl]\noutput: o\nengine:\n  name: rules\n  seed: 1\n  seed: 2\n")
    assert "config key 'seed' appears twice (lines 5 and 6)" in _error_line(
        capsys, ["synthesize", "--config", str(cfg)]
    )


def test_abbreviated_flags_are_not_accepted(capsys) -> None:
    line = _error_line(capsys, ["synthesize", "x.jsonl", "-o", "o", "--round", "3"])
    assert "unrecognized arguments: --round" in line
    assert "--vers" in _error_line(capsys, ["--vers"])


def test_help_shows_every_default_booleans_included(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synthesize", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps help lines
    for shown in ("--trust-remote-code", "--retry-errors", "--return-token-ids", "--overwrite"):
        assert shown in out and f"{shown}" in out
    assert out.count("[default: False]") >= 5 and out.count("[default: True]") >= 2
    assert "[default: auto]" in out and "[default: metadata]" in out and "[default: none]" in out
    with pytest.raises(SystemExit):
        main(["templify", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "[default: classic=0.8, dialog=0.04," in out and "the others keep their values" in out


def test_no_command_prints_the_help_and_exits_2(capsys) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "synthesize" in out and "templify" in out and "usage: instructpt" in out
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert _run().returncode == 2 and _run("--help").returncode == 0


def test_library_warnings_are_logged_once() -> None:
    """huggingface_hub prints its records with its own handler and also passes them to the root logger: without
    care, each retry warning appeared twice."""
    code = (
        "import logging\n"
        "from instructpt.cli import configure_logging\n"
        "configure_logging(logging.INFO)\n"
        "import huggingface_hub\n"
        "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')\n"
        "logging.getLogger('instructpt.x').warning('ours')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr.count("Retrying in 1s") == 1, proc.stderr
    assert proc.stderr.count("ours") == 1


def test_an_offline_hub_model_not_in_the_cache_fails_at_once_with_the_hint(tmp_path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "Cats sleep. However, dogs do not."}\n')
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    start = time.monotonic()
    proc = _run("synthesize", str(corpus), "-o", str(tmp_path / "o"), "--model", "org/not-cached", env=env)
    assert time.monotonic() - start < 60
    lines = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert proc.returncode == 5 and len(lines) == 1, proc.stderr
    assert "'org/not-cached' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set" in lines[0]
    assert "hf download org/not-cached" in lines[0]
