"""The transformers engine on the tiny trained synthesizer: real generation, batching, failures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from instructpt.engines.base import Request, load_engine
from instructpt.engines.config import EngineConfig, TransformersOptions
from instructpt.wire import build_prompt, parse_generation

pytestmark = pytest.mark.slow

TEXTS = [
    "The small river feeds the garden. The old doctor opens the bank.",
    "The bright engine heats the bridge.",
    "The careful farmer builds the library. The warm cell moves the forest. The quiet queen holds the sensor.",
]


@pytest.fixture(scope="module")
def engine(tiny_synth):
    cfg = EngineConfig(
        name="transformers",
        model=str(tiny_synth),
        max_model_len=512,
        max_new_tokens=48,
        transformers=TransformersOptions(batch_size=2),
    )
    eng = load_engine(cfg)
    yield eng
    eng.close()


def _requests(engine, texts):
    return [
        Request(i, p, engine.codec.encode(p), f"r{i}")
        for i, p in enumerate(build_prompt([], t) for t in texts)
    ]


def test_generates_parseable_pairs_in_order(engine) -> None:
    gens = engine.generate(_requests(engine, TEXTS))
    assert [g.key for g in gens] == [0, 1, 2]
    for g in gens:
        assert g.finish_reason in ("stop", "length") and g.ok
        assert g.token_ids and g.generated_tokens == len(g.token_ids)
        assert g.prompt_tokens > 0
    stopped = [g for g in gens if g.finish_reason == "stop"]
    assert stopped, "the trained tiny synthesizer should stop at EOS"
    for g in stopped:
        assert g.token_ids[-1] == engine.codec.eos_token_id
        assert parse_generation(g.text).pairs


def test_prompt_has_a_single_bos(engine) -> None:
    ids = engine.codec.encode(build_prompt([], TEXTS[0]))
    assert ids[0] == engine.codec.bos_token_id and ids.count(engine.codec.bos_token_id) == 1


def test_batched_equals_one_at_a_time(engine) -> None:
    batched = engine.generate(_requests(engine, TEXTS))
    single = [engine.generate([r])[0] for r in _requests(engine, TEXTS)]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]


def test_over_long_prompt_fails_alone(engine) -> None:
    reqs = _requests(engine, [TEXTS[0], "word " * 600, TEXTS[1]])
    gens = engine.generate(reqs)
    assert [g.ok for g in gens] == [True, False, True]
    assert "max_model_len" in gens[1].error


def test_a_failing_request_does_not_fail_its_batch(engine, monkeypatch) -> None:
    """Fault injection: generate() raises whenever the poisoned prompt is in the batch."""
    poison = engine.codec.encode(build_prompt([], TEXTS[1]))
    real = engine.model.generate

    def flaky(input_ids, **kw):
        for row in input_ids.tolist():
            if row[len(row) - len(poison) :] == poison:
                raise RuntimeError("injected fault")
        return real(input_ids=input_ids, **kw)

    monkeypatch.setattr(engine.model, "generate", flaky)
    gens = engine.generate(_requests(engine, TEXTS))
    assert [g.ok for g in gens] == [True, False, True]
    assert "injected fault" in gens[1].error


def test_batches_are_picked_by_length_and_outputs_do_not_change(engine, monkeypatch) -> None:
    texts = [TEXTS[2], TEXTS[1], TEXTS[2] + " The old bank holds the river.", TEXTS[1] + " It moves."]
    reqs = _requests(engine, texts)
    batches: list[list[int]] = []
    real = engine._generate

    def record(batch):
        batches.append([r.key for r in batch])
        return real(batch)

    monkeypatch.setattr(engine, "_generate", record)
    gens = engine.generate(reqs)
    assert batches == [[0, 2], [1, 3]]  # the oldest (long) with the other long one; then the two short ones
    monkeypatch.setattr(engine.config.transformers, "batch_lookahead", 1)
    batches.clear()
    fifo = engine.generate(_requests(engine, texts))
    assert batches == [[0, 1], [2, 3]]
    assert [g.token_ids for g in gens] == [g.token_ids for g in fifo]


def test_sampling_is_seeded_per_record_with_no_hidden_top_k(tiny_synth, monkeypatch) -> None:
    """A record's draws depend on (seed, record id) only, not on its batch; no top-k cut is added."""
    cfg = EngineConfig(name="transformers", model=str(tiny_synth), max_model_len=512, max_new_tokens=24, temperature=1.5, top_p=0.95, seed=3, transformers=TransformersOptions(batch_size=3))  # fmt: skip
    with load_engine(cfg) as engine:
        seen: list[dict] = []
        real = engine.model.generate

        def spy(**kw):
            seen.append({k: kw.get(k) for k in ("do_sample", "top_k", "top_p", "temperature")})
            return real(**kw)

        monkeypatch.setattr(engine.model, "generate", spy)
        together = engine.generate(_requests(engine, TEXTS))
        alone = [engine.generate([r])[0] for r in _requests(engine, TEXTS)[::-1]][::-1]
        again = engine.generate(_requests(engine, TEXTS))
    assert [g.token_ids for g in together] == [g.token_ids for g in alone] == [g.token_ids for g in again]
    assert len({tuple(g.token_ids) for g in together}) > 1
    assert seen[0] == {"do_sample": True, "top_k": 0, "top_p": 0.95, "temperature": 1.5}


def test_several_samples_come_from_one_seeded_call(tiny_synth, engine) -> None:
    """n > 1: num_return_sequences in one call seeded by (seed, record id); the same samples on every run; a
    greedy engine refuses (its samples would all be the same)."""
    cfg = EngineConfig(name="transformers", model=str(tiny_synth), max_model_len=512, max_new_tokens=24, temperature=1.5, seed=3, transformers=TransformersOptions(batch_size=2))  # fmt: skip
    requests = [replace(r, n=3) for r in _requests(engine, TEXTS[:2])]
    with load_engine(cfg) as sampler:
        first = sampler.generate(requests)
        again = sampler.generate(requests)
    for gen, other in zip(first, again):
        assert len(gen.samples) == 3 and all(s.ok and s.token_ids for s in gen.samples)
        assert [s.token_ids for s in gen.samples] == [s.token_ids for s in other.samples]
        assert len({tuple(s.token_ids) for s in gen.samples}) > 1
        assert all(s.generated_tokens == len(s.token_ids) and s.prompt_tokens > 0 for s in gen.samples)
    (refused,) = engine.generate([replace(requests[0], key="greedy")])
    assert not refused.ok and "--temperature" in (refused.error or "")


def test_batch_encoding_equals_one_by_one(tiny_tokenizer) -> None:
    from instructpt.engines.tokenizer import HFCodec

    codec = HFCodec(tiny_tokenizer)
    texts = [build_prompt([], t) for t in TEXTS] + ["ünïcode — text", "", "</s><s> <CON>"]
    assert codec.encode_batch(texts) == [codec.encode(t) for t in texts]


def pickled_copy(tiny_synth, dst):
    """The tiny synthesizer saved with pickled weights only (pytorch_model.bin, no safetensors)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(tiny_synth, dst)
    torch.save(load_file(dst / "model.safetensors"), dst / "pytorch_model.bin")
    (dst / "model.safetensors").unlink()
    assert (dst / "pytorch_model.bin").exists() and not list(dst.glob("*.safetensors"))
    return dst


def test_pickled_weights_are_refused(tiny_synth, tmp_path) -> None:
    from instructpt.errors import EngineError

    model = pickled_copy(tiny_synth, tmp_path / "pickled")
    with pytest.raises(EngineError, match="cannot load model"):
        load_engine(EngineConfig(name="transformers", model=str(model)))
