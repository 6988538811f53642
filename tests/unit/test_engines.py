"""Engine registry and protocol: lazy imports, clear errors for missing backends, batch-form contract."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from instructpt.engines.base import ENGINES, EngineConfig, EngineError, Request, load_engine
from tests.doubles.scripted_engine import ScriptedEngine


def test_importing_engines_imports_no_backend() -> None:
    code = (
        "import sys, instructpt.engines, instructpt.engines.vllm, instructpt.engines.openai, "
        "instructpt.engines.rules; print([m for m in ('vllm', 'torch', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_is_a_clear_engine_error() -> None:
    with pytest.raises(EngineError, match="setup-vllm-cpu.sh"):
        load_engine(EngineConfig(name="vllm", model="some/model"))


def test_every_registered_engine_resolves_to_a_class() -> None:
    for target in ENGINES.values():
        module, cls = target.split(":")
        assert importlib.util.find_spec(module) is not None, module
        assert cls


def test_generate_keeps_order_and_rejects_duplicate_keys() -> None:
    engine = ScriptedEngine(lambda r: f"<QUE> {r.key}? <ANS> yes </END>", batch=1)
    reqs = [Request(k, "<s> <CON> t </CON>\n\n") for k in ("b", "a", "c")]
    assert [g.key for g in engine.generate(reqs)] == ["b", "a", "c"]
    with pytest.raises(ValueError, match="distinct key"):
        engine.generate([Request(1, "p"), Request(1, "q")])


def test_hub_commit_is_none_for_local_directories_and_unknown_ids(tmp_path) -> None:
    from instructpt.engines.tokenizer import hub_commit

    assert hub_commit(str(tmp_path), None) is None
    assert hub_commit("instructpt-test/not-in-any-cache", None) is None
