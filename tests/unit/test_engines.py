"""Engine registry and protocol: lazy imports, clear errors for missing backends, batch-form contract."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructpt.engines.base import Request, load_engine
from instructpt.engines.config import ENGINES, EngineConfig
from instructpt.errors import EngineError
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
    from instructpt.engines.hub import hub_commit

    assert hub_commit(str(tmp_path), None) is None
    assert hub_commit("instructpt-test/not-in-any-cache", None) is None


def test_pick_batch_groups_by_length_and_always_takes_the_oldest() -> None:
    from instructpt.engines.hf import pick_batch

    assert pick_batch([50, 10, 48, 12, 51, 9], 3) == [
        0,
        2,
        4,
    ]  # the oldest (50) with its neighbours in length
    assert pick_batch([10, 50, 11, 49], 2) == [0, 2]
    assert pick_batch([5, 6], 4) == [0, 1]  # fewer queued than a batch: all of them


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=9), st.integers(1, 5))
def test_pick_batch_pads_least_among_batches_with_the_oldest(lengths: list[int], n: int) -> None:
    """Property: the batch holds the oldest request, n of them (or all), in queue order, and no other batch
    of n that holds the oldest needs less left padding."""
    from itertools import combinations

    from instructpt.engines.hf import pick_batch

    got = pick_batch(lengths, n)
    assert got == sorted(set(got)) and got[0] == 0 and len(got) == min(n, len(lengths))

    def padding(batch) -> int:
        return len(batch) * max(lengths[i] for i in batch) - sum(lengths[i] for i in batch)

    if len(lengths) > n:
        best = min(padding((0, *rest)) for rest in combinations(range(1, len(lengths)), n - 1))
        assert padding(got) == best


def test_every_engines_description_survives_the_typed_parquet_schema() -> None:
    """synth_record_schema's ``synthesizer`` struct must hold every key an engine's describe() gives, or parquet
    shards would lose it silently."""
    from instructpt.engines.config import RulesOptions
    from instructpt.engines.openai import OpenAIEngine
    from instructpt.records import synth_record_schema

    fields = {f.name for f in synth_record_schema().field("synthesizer").type}
    rules = load_engine(EngineConfig(name="rules", rules=RulesOptions(workers=1)))
    openai = object.__new__(OpenAIEngine)  # no server needed to describe one
    openai.config = EngineConfig(name="openai", model="m")
    openai.api_base, openai.model_name, openai.mode = "http://127.0.0.1:8000/v1", "m", "ids"
    base = {
        "engine",
        "model",
        "revision",
        "commit",
    }  # transformers / vllm: Engine.describe (+ commit for hub ids)
    for keys in (set(rules.describe()), set(openai.describe()), base):
        assert keys <= fields, keys - fields
