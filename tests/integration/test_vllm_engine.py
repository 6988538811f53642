"""The vllm engine on the tiny trained synthesizer: real vLLM, on CPU (``.venv-vllm``) or on a GPU.

Run with ``.venv-vllm/bin/python -m pytest -m vllm tests/integration`` after ``scripts/setup-vllm-cpu.sh``;
skipped where vLLM is not installed.

vLLM's CPU attention kernels take head sizes of 32, 64, 80, ... only, and the tiny synthesizer has head_dim 24,
so the tests run vLLM on an exactly equivalent copy whose heads are zero-padded to 32 (see
:func:`pad_head_dim`); the transformers engine keeps running the original, and the two must agree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip(
    "vllm",
    reason="vLLM not installed: run scripts/setup-vllm-cpu.sh and use .venv-vllm (CPU) "
    "or install vllm on a GPU machine",
)

from instructpt.engines.base import Request, load_engine  # noqa: E402
from instructpt.engines.config import EngineConfig, SamplingParams, TransformersOptions, VLLMOptions
from instructpt.engines.vllm import VLLMEngine  # noqa: E402
from instructpt.records import QAPair  # noqa: E402
from instructpt.wire import build_prompt, context_block, parse_generation  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

MAX_MODEL_LEN = 512
MAX_NEW_TOKENS = 48
TEXTS = [
    "The small river feeds the garden. The old doctor opens the bank.",
    "The bright engine heats the bridge.",
    "The careful farmer builds the library. The warm cell moves the forest. The quiet queen holds the sensor.",
    "The distant harbor protects the village.",
]
HISTORY = [
    (
        "The green market carries the signal. The heavy crystal follows the patient.",
        [QAPair("What carries the signal?", "The market.")],
    ),
    (
        "The rapid planet measures the teacher.",
        [QAPair("Which thing does the planet measure?", "The teacher.")],
    ),
    (
        "The old forest holds the queen. The warm bank feeds the doctor.",
        [QAPair("What holds the queen?", "The forest."), QAPair("What feeds the doctor?", "The bank.")],
    ),
    ("The quiet sensor opens the harbor.", [QAPair("What opens the harbor?", "The sensor.")]),
    (
        "The careful cell builds the bridge. The small library heats the garden.",
        [QAPair("What builds the bridge?", "The cell.")],
    ),
]


def pad_head_dim(src: Path, dst: Path, multiple: int = 32) -> Path:
    """Copy a Mistral/Llama checkpoint to ``dst`` with attention heads zero-padded to a multiple of ``multiple``.

    The padded model computes the same function: each head's dims ``[0, d/2)`` and ``[d/2, d)`` (the two halves
    RoPE rotates together) go to ``[0, d/2)`` and ``[D/2, D/2 + d/2)``; RoPE's base becomes ``theta ** (D / d)``
    so those pairs keep their frequencies; queries are scaled by ``sqrt(D / d)`` so the ``1 / sqrt(head_dim)``
    softmax scale is unchanged; the padded dims stay zero in q, k and v, so they add nothing.
    """
    import torch
    from safetensors.torch import load_file, save_file

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    cfg = json.loads((src / "config.json").read_text())
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    new = -(-d // multiple) * multiple
    if new == d:
        return dst
    index = torch.tensor([j if j < d // 2 else j - d // 2 + new // 2 for j in range(d)])

    def pad_rows(w: torch.Tensor, heads: int, scale: float = 1.0) -> torch.Tensor:
        out = w.new_zeros(heads, new, w.shape[1])
        out[:, index] = w.view(heads, d, -1) * scale
        return out.reshape(heads * new, -1)

    def pad_cols(w: torch.Tensor, heads: int) -> torch.Tensor:
        out = w.new_zeros(w.shape[0], heads, new)
        out[:, :, index] = w.view(w.shape[0], heads, d)
        return out.reshape(w.shape[0], heads * new)

    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    tensors = load_file(src / "model.safetensors")
    for name, w in tensors.items():
        if name.endswith("q_proj.weight"):
            tensors[name] = pad_rows(w, heads, math.sqrt(new / d))
        elif name.endswith(("k_proj.weight", "v_proj.weight")):
            tensors[name] = pad_rows(w, kv_heads)
        elif name.endswith("o_proj.weight"):
            tensors[name] = pad_cols(w, heads)
    save_file({k: v.contiguous() for k, v in tensors.items()}, dst / "model.safetensors", {"format": "pt"})
    rope = dict(
        cfg.get("rope_parameters") or {"rope_type": "default", "rope_theta": cfg.pop("rope_theta", 1e4)}
    )
    rope["rope_theta"] = rope["rope_theta"] ** (new / d)
    cfg.update(head_dim=new, rope_parameters=rope)
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


@pytest.fixture(scope="session")
def vllm_synth(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthesizer with vLLM-CPU-compatible heads (and its tokenizer)."""
    return pad_head_dim(tiny_synth, tmp_path_factory.mktemp("tiny-vllm") / "model")


def vllm_config(model: Path) -> EngineConfig:
    return EngineConfig(
        name="vllm",
        model=str(model),
        max_model_len=MAX_MODEL_LEN,
        max_new_tokens=MAX_NEW_TOKENS,
        dtype="float32",
        vllm=VLLMOptions(gpu_memory_utilization=0.3),
    )


def start_engine(model: Path) -> VLLMEngine:
    """A vLLM engine over ``model``: eager mode (no torch.compile on CPU) and 1 GiB of KV cache on CPU."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return VLLMEngine(vllm_config(model), enforce_eager=True)


def make_requests(engine, texts, history=(), tag="r"):
    """Requests keyed ``{tag}{i}``: keys must be unique within one generate() call."""
    prompts = [build_prompt(list(history), t) for t in texts]
    return [Request(f"{tag}{i}", p, engine.codec.encode(p), f"{tag}{i}") for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def engine(vllm_synth: Path):
    eng = start_engine(vllm_synth)
    yield eng
    eng.close()


def test_generate_keeps_order_and_reports_lengths(engine) -> None:
    reqs = make_requests(engine, TEXTS)
    gens = engine.generate(reqs)
    assert [g.key for g in gens] == [r.key for r in reqs]
    eos = engine.codec.eos_token_id
    for r, g in zip(reqs, gens):
        assert g.ok and g.finish_reason in ("stop", "length"), g.error
        assert g.prompt_tokens == len(r.prompt_ids)
        assert g.token_ids and g.generated_tokens == len(g.token_ids) <= MAX_NEW_TOKENS
        assert isinstance(g.extra.get("num_cached_tokens"), int)
        if g.finish_reason == "stop":
            # vLLM returns the EOS id in token_ids; the text stops before it.
            assert g.token_ids[-1] == eos and eos not in g.token_ids[:-1]
            assert g.text == engine.codec.decode(g.token_ids[:-1])
            assert parse_generation(g.text).pairs
    assert any(g.finish_reason == "stop" for g in gens), "the trained tiny synthesizer should stop at EOS"
    assert engine.pending == 0 and engine.poll() == []


def test_greedy_equals_transformers(engine, tiny_synth: Path) -> None:
    """vLLM (padded heads) and transformers (original model), both float32 greedy, one prompt at a time in HF.

    Float tolerance: the kernels differ, so logits differ in the last bits; that can flip a near-tie late in a
    long greedy run. The tiny synthesizer's margins are wide, so the first COMPARED tokens must match exactly.
    """
    compared = 24
    reqs = make_requests(engine, TEXTS) + make_requests(engine, TEXTS[:2], HISTORY[:3], tag="h")
    ours = engine.generate(reqs)
    hf = load_engine(
        EngineConfig(
            name="transformers",
            model=str(tiny_synth),
            max_model_len=MAX_MODEL_LEN,
            max_new_tokens=MAX_NEW_TOKENS,
            dtype="float32",
            transformers=TransformersOptions(batch_size=1, device="cpu"),
        )
    )
    try:
        theirs = hf.generate(reqs)
    finally:
        hf.close()
    for r, a, b in zip(reqs, ours, theirs):
        assert a.token_ids[:compared] == b.token_ids[:compared], (r.record_id, a.text, b.text)
        if a.token_ids == b.token_ids:
            assert (a.text, a.finish_reason) == (b.text, b.finish_reason)


def test_submit_and_poll_without_a_barrier(engine) -> None:
    """Requests submitted while others run join the running batch and come back like generate()'s."""
    reqs = make_requests(engine, TEXTS, tag="s")
    expected = {g.key: g.token_ids for g in engine.generate(reqs)}
    engine.submit(reqs[:2])
    assert engine.pending == 2
    got = {}
    first = engine.poll()
    assert first and all(g.ok for g in first)
    got.update({g.key: g for g in first})
    engine.submit(reqs[2:3])  # while the rest of the first submission may still be running
    for g in engine.poll():
        got[g.key] = g
    engine.submit(reqs[3:])
    while engine.pending:
        for g in engine.poll():
            got[g.key] = g
    assert sorted(got) == sorted(expected)
    assert {k: g.token_ids for k, g in got.items()} == expected
    assert engine.poll() == []


def test_rejected_requests_fail_alone(engine) -> None:
    ok = make_requests(engine, TEXTS[:2])
    too_long = Request("long", "", engine.codec.encode("word " * 600), "long")
    assert len(too_long.prompt_ids) > MAX_MODEL_LEN
    bad_ids = Request("vocab", "", [len(engine.codec.tokenizer) + 7] * 5, "vocab")  # vLLM's own validation
    gens = engine.generate([ok[0], too_long, bad_ids, ok[1]])
    assert [g.ok for g in gens] == [True, False, False, True]
    assert "max_model_len" in gens[1].error
    assert "vocab" in gens[2].error.lower()
    assert gens[1].prompt_tokens == len(too_long.prompt_ids)


def test_prefix_cache_reuses_the_previous_step(engine) -> None:
    """A chain's next prompt (previous prompt + its output + a new context) hits the prefix cache.

    The history is in an order no other test uses, so the only cached blocks it can hit are the previous step's.
    """
    first = make_requests(engine, [TEXTS[0]], HISTORY[::-1], tag="p")[0]
    gen = engine.generate([first])[0]
    assert gen.ok and gen.extra["num_cached_tokens"] == 0
    assert len(first.prompt_ids) > 128  # longer than one KV block on CPU (128 tokens; 16 on GPU)
    ids = first.prompt_ids + gen.token_ids + engine.codec.encode(context_block(TEXTS[1]))
    nxt = engine.generate([Request("next", "", ids, "p-next")])[0]
    assert nxt.ok, nxt.error
    cached = nxt.extra["num_cached_tokens"]
    assert len(first.prompt_ids) // 128 * 128 <= cached <= len(ids)


def test_sampling_is_seeded_per_record(engine, monkeypatch) -> None:
    """With temperature > 0 a record draws the same tokens whatever it is batched with, and records differ."""
    monkeypatch.setattr(
        engine, "sampling", SamplingParams(MAX_NEW_TOKENS, temperature=1.0, top_p=0.95, seed=3)
    )
    reqs = make_requests(engine, [TEXTS[0]] * 4, tag="t")  # one prompt, four records
    together = engine.generate(reqs)
    alone = engine.generate([reqs[2]])[0]
    again = engine.generate(reqs[::-1])[::-1]
    assert alone.token_ids == together[2].token_ids
    assert [g.token_ids for g in again] == [g.token_ids for g in together]
    assert len({tuple(g.token_ids) for g in together}) > 1


def test_several_samples_come_back_together_seeded_per_sample(engine, monkeypatch) -> None:
    """n > 1: vLLM's n, sample i seeded by the request's seed + i: sample i is what a one-sample request with
    that seed draws, and the same samples come back on every run."""
    monkeypatch.setattr(
        engine, "sampling", SamplingParams(MAX_NEW_TOKENS, temperature=1.0, top_p=0.95, seed=3)
    )
    (req,) = make_requests(engine, [TEXTS[0]], tag="n")
    (gen,) = engine.generate([dataclasses.replace(req, n=3)])
    (again,) = engine.generate([dataclasses.replace(req, n=3)])
    assert len(gen.samples) == 3 and all(s.ok and s.token_ids for s in gen.samples)
    assert [s.token_ids for s in gen.samples] == [s.token_ids for s in again.samples]
    assert len({tuple(s.token_ids) for s in gen.samples}) > 1
    (alone,) = engine.generate([req])
    assert alone.token_ids == gen.samples[0].token_ids


def test_reports_its_kv_cache_capacity(engine) -> None:
    """The capacity the scheduler's 'auto' token bound uses: the engine core's blocks times the block size."""
    cache = engine.llm.llm_engine.vllm_config.cache_config
    assert engine.kv_capacity_tokens == cache.num_gpu_blocks * cache.block_size
    assert engine.kv_capacity_tokens >= MAX_MODEL_LEN


def test_pickled_weights_are_refused(vllm_synth: Path, tmp_path: Path, monkeypatch) -> None:
    """vLLM loads safetensors only (load_format), as the transformers engine does."""
    from instructpt.errors import EngineError
    from tests.integration.test_hf_engine import pickled_copy

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # the engine core in this process, so its loader error is the one raised here
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    model = pickled_copy(vllm_synth, tmp_path / "pickled")
    with pytest.raises(EngineError, match="cannot start vLLM.*Cannot find any model weights"):
        VLLMEngine(
            vllm_config(model), enforce_eager=True
        )  # the .bin is there; only safetensors are looked for


def test_a_killed_engine_core_stops_the_run_instead_of_hanging(vllm_synth: Path) -> None:
    """Fault injection: SIGKILL the engine-core process mid-generation; poll() raises EngineError promptly."""
    import signal
    import time

    import psutil

    from instructpt.errors import EngineError

    before = {
        p.pid for p in psutil.Process().children(recursive=True)
    }  # other engines of this session live on
    engine = start_engine(vllm_synth)
    try:
        engine.submit(make_requests(engine, TEXTS, tag="k"))
        cores = [
            p
            for p in psutil.Process().children(recursive=True)
            if "EngineCore" in p.name() and p.pid not in before
        ]
        assert cores, "expected vLLM's engine core in a child process"
        for proc in cores:
            os.kill(proc.pid, signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(EngineError):
            while engine.pending:
                engine.poll()
        assert time.monotonic() - start < 60
    finally:
        engine.close()


def test_priorities_are_sent_only_under_priority_scheduling(engine, monkeypatch) -> None:
    seen: list[int] = []
    real = engine.llm.llm_engine.add_request

    def spy(*args, priority=0, **kw):
        seen.append(priority)
        return real(*args, priority=priority, **kw)

    monkeypatch.setattr(engine.llm.llm_engine, "add_request", spy)
    reqs = make_requests(engine, TEXTS[:1], tag="p")
    reqs[0].priority = -2
    engine.generate(reqs)
    # older vLLM rejects priorities under fcfs
    monkeypatch.setattr(engine.config.vllm, "scheduling_policy", "fcfs")
    reqs = make_requests(engine, TEXTS[:1], tag="q")
    reqs[0].priority = -2
    engine.generate(reqs)
    assert seen == [-2, 0]


def test_sigterm_while_the_engine_starts_ends_the_run(vllm_synth: Path, tmp_path: Path) -> None:
    """SIGTERM to the job's process group while vLLM starts its engine core: vLLM swallows KeyboardInterrupt
    there, so a handler raising one let the run wait up to 600 s for the core the same signal had killed, then
    exit 1. It must stop with 143 and leave no process of the job running (resume after SIGTERM is tested in
    tests/e2e/test_cli.py)."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    cmd = [
        sys.executable, "-m", "instructpt", "synthesize", str(corpus), "-o", str(tmp_path / "out"),
        "--engine", "vllm", "--model", str(vllm_synth), "--dtype", "float32", "--max-model-len", "512",
        "--max-new-tokens", "16", "--gpu-memory-utilization", "0.3", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # the engine core is being started
            if any("EngineCore" in p.name() for p in psutil.Process(proc.pid).children(recursive=True)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before its engine core started"
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 143 and "terminated" in err, err[-2000:]
        deadline = time.monotonic() + 30  # and nothing of the job is left running
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait()


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of process group ``pgid`` remains."""
    import psutil

    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
