"""Budgets when the engine tokenizes prompt text itself (openai --prompt-mode text), with the tiny synthesizer's
byte-level tokenizer: there, a context block's ids are not a prefix of its example's whole-text ids (a trailing
"\\n\\n" is one token, "\\n\\n<" is "\\n", "\\n", "<"), so only whole-text counting is exact."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from instructpt.engines.config import EngineConfig  # noqa: E402
from instructpt.engines.tokenizer import HFCodec  # noqa: E402
from instructpt.synthesizer.run import SynthesizeConfig, synthesize  # noqa: E402
from instructpt.wire import context_block, encode_example, serialize_pairs  # noqa: E402
from tests.doubles.scripted_engine import ScriptedEngine, canned_pairs  # noqa: E402
from tests.tinymodel import make_example  # noqa: E402


@pytest.mark.parametrize("text_prompts", [True, False], ids=["text-prompts", "id-prompts"])
def test_budgets_count_what_the_engine_sees(tiny_tokenizer, tmp_path: Path, text_prompts: bool) -> None:
    codec = HFCodec(tiny_tokenizer)
    ctx, _ = encode_example(codec.encode, "A b.", serialize_pairs(make_example(random.Random(0))[1]))
    assert codec.encode(context_block("A b.") + "<QUE>")[: len(ctx)] != ctx  # the layout this test is about
    rng = random.Random(2)
    rows = [{"text": make_example(rng)[0]} for _ in range(60)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine_cfg = EngineConfig(name="rules", max_model_len=500, max_new_tokens=40)
    cfg = SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "out"), engine=engine_cfg, rounds=8,
                           progress=False)  # fmt: skip
    engine = ScriptedEngine(canned_pairs, codec=codec, config=engine_cfg, text_prompts=text_prompts)
    synthesize(cfg, engine=engine)
    assert sum(r.prompt.count("<s>") > 2 for r in engine.seen) > 10  # long chains: many junctions per prompt
    budget = 500 - 40
    assert all(len(r.prompt_ids) <= budget for r in engine.seen)
    if text_prompts:  # what the engine will tokenize is what was counted
        assert all(r.prompt_ids == codec.encode(r.prompt) for r in engine.seen)
