"""train-synthesizer end to end on CPU: a tiny model trained on the shipped sample learns the wire format on
held-out sources and ``synthesize`` uses its output directory as is; exact resume after SIGKILL; LoRA merged into a
plain model; rejects; refusals; two torchrun processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.errors import ConfigError, InputError, ResumeError
from instructpt.train.lora import LoraOptions
from instructpt.train_synthesizer.run import SynthTrainOptions, TrainSynthesizerConfig, train_synthesizer
from tests.faults import kill_after_checkpoint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "src" / "instructpt" / "resources" / "ft_sample"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A randomly initialised tiny Mistral with the tiny synthesizer's tokenizer: a base model that knows nothing."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    out = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tiny_tokenizer), hidden_size=96, intermediate_size=256, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=24, max_position_embeddings=1024,
                           bos_token_id=tiny_tokenizer.bos_token_id, eos_token_id=tiny_tokenizer.eos_token_id,
                           tie_word_embeddings=True, sliding_window=None)  # fmt: skip
    MistralForCausalLM(config).save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def _config(base: Path, out: Path, inputs: list[str] | None = None, **kw) -> TrainSynthesizerConfig:
    train = {"max_steps": 12, "batch_size": 8, "seq_len": 384, "lr": 3e-3, "warmup_steps": 5, "checkpoint_every": 5,
             "log_every": 5, **kw.pop("train", {})}  # fmt: skip
    return TrainSynthesizerConfig(inputs=inputs or [str(SAMPLE)], output=str(out), init=str(base), progress=False,
                                  eval_examples=kw.pop("eval_examples", 0), train=SynthTrainOptions(**train), **kw)  # fmt: skip


def _losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if not r.get("final")]


def test_a_tiny_model_learns_the_wire_format_and_synthesize_uses_it(
    base: Path, tmp_path: Path, tiny_tokenizer
) -> None:
    out = tmp_path / "run"
    summary = train_synthesizer(_config(base, out, eval_examples=40, heldout_sources=["timetable_exam", "town_notes"],
                                        train={"max_steps": 300, "warmup_steps": 10, "checkpoint_every": 300,
                                               "log_every": 50}))  # fmt: skip
    counts = summary.to_dict()["counts"]
    assert counts["examples"] == 680 and counts["heldout_examples"] == 240 and counts["rejected"] == 0
    assert (
        counts["train_examples"] == 440 and counts["sequences"] < counts["train_examples"]
    )  # few-shot packing
    # The base model writes no parseable pair (0.0 before training, checked below). Held out whole, the timetable
    # and town sources share no template with the training sources: a clear majority of their contexts getting at
    # least one well-formed pair shows the format was learned, not the texts (about 0.9 when this was written).
    assert counts["parse_rate"] >= 0.6
    losses = _losses(out)
    assert losses[-1] < 0.3 * losses[0]
    model = out / "model"
    assert (
        json.loads((model / "generation_config.json").read_text())["eos_token_id"]
        == tiny_tokenizer.eos_token_id
    )
    card = (model / "README.md").read_text()
    assert "timetable_exam" in card and "parse_rate" in card
    assert (out / "rejects" / "rejects.jsonl").read_text() == ""

    contexts = tmp_path / "texts.jsonl"
    held = [json.loads(line) for line in (out / "sequences" / "heldout.jsonl").read_text().splitlines()][:6]
    contexts.write_text("".join(json.dumps({"text": r["context"]}) + "\n" for r in held))
    proc = subprocess.run([sys.executable, "-m", "instructpt", "synthesize", str(contexts), "-o", str(tmp_path / "syn"),
                           "--engine", "transformers", "--model", str(model), "--max-model-len", "512",
                           "--max-new-tokens", "96", "--no-progress", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads((tmp_path / "syn" / "stats.json").read_text())["counts"]
    assert stats["docs_out"] == 6 and stats["pairs_out"] >= 3


def test_the_untrained_base_writes_no_pairs(base: Path, tiny_tokenizer) -> None:
    """The baseline the learning test compares against."""
    from transformers import AutoModelForCausalLM

    from instructpt.io.collection import CollectionFields, read_collection
    from instructpt.train_synthesizer.quality import heldout_quality

    examples = [e for e in read_collection([str(SAMPLE / "timetable_exam")], CollectionFields(), "t")][:10]
    model = AutoModelForCausalLM.from_pretrained(base)
    assert heldout_quality(model, tiny_tokenizer, examples, "cpu", 384, 48)["parse_rate"] == 0.0  # type: ignore[arg-type]


def test_a_run_killed_and_resumed_ends_with_the_weights_of_an_uninterrupted_one(
    base: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    full, part = tmp_path / "full", tmp_path / "part"
    train_synthesizer(_config(base, full))
    call = ("from tests.integration.test_train_synthesizer import _config, train_synthesizer\n"
            "train_synthesizer(_config(Path(sys.argv[1]), Path(sys.argv[2])))")  # fmt: skip
    kill_after_checkpoint(call, [str(base), str(part)], part / "checkpoints" / "step-000005", slow_from=6)
    assert not (part / "checkpoints" / "step-000010").exists() and not (part / "model").exists()
    summary = train_synthesizer(_config(base, part))
    assert summary.to_dict()["run"]["steps_this_run"] == 7  # steps 6-12
    assert _losses(part) == _losses(full)
    a, b = (
        load_file(str(full / "model" / "model.safetensors")),
        load_file(str(part / "model" / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_adapters_are_merged_into_a_plain_model(base: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    train_synthesizer(_config(base, out, lora=LoraOptions(r=4, alpha=8), train={"max_steps": 6, "lr": 1e-2}))
    merged = load_file(str(out / "model" / "model.safetensors"))
    original = load_file(str(base / "model.safetensors"))
    assert not any("lora" in k for k in merged) and merged.keys() == original.keys()
    changed = [k for k in merged if not torch.equal(merged[k], original[k])]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # only the adapted matrices moved
    assert _losses(out)[-1] < _losses(out)[0]


def test_bad_rows_are_rejected_counted_and_written(base: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    good = [
        json.loads(line)
        for line in (SAMPLE / "town_notes" / "shard" / "00000.jsonl").read_text().splitlines()
    ]
    bad = [
        {"context": "", "QA_list": [{"Q": "q", "A": "a"}]},
        {"context": "x", "QA_list": [{"Q": "<ANS>", "A": "a"}]},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in good[:30] + bad) + "not json\n")
    summary = train_synthesizer(_config(base, tmp_path / "run", [str(data)], train={"max_steps": 2}))
    d = summary.to_dict()
    assert d["counts"]["rejected"] == 3 and d["counts"]["examples"] == 30
    assert d["by"]["rejects"] == {"empty_context": 1, "marker_in_text": 1, "invalid_json": 1}
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "rejects" / "rejects.jsonl").read_text().splitlines()
    ]
    assert [r["reason"] for r in rows] == ["empty_context", "marker_in_text", "invalid_json"]
    assert rows[2]["record"] == "not json"
    documented = set(
        re.findall(r"`([a-z0-9_<>]+)`", (REPO / "docs" / "stats.md").read_text(encoding="utf-8"))
    )
    written = set(d["counts"]) | set(d["by"]) | set(d["by"]["rejects"])
    written |= {k.replace("steps_", "<unit>_") for k in d["run"]}
    assert written - documented == set()


def test_a_finished_run_is_left_alone_and_overwrite_starts_over(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = train_synthesizer(_config(base, out, train={"max_steps": 3}))
    written = {p: p.read_bytes() for p in [out / "stats.json", out / "model" / "model.safetensors"]}
    again = train_synthesizer(_config(base, out, train={"max_steps": 3}))
    assert again.counts == first.counts and again.run.done_this_run == 0
    assert all(p.read_bytes() == b for p, b in written.items())  # nothing rewritten
    redo = train_synthesizer(_config(base, out, heldout_sources=["town_notes"], overwrite=True,
                                     train={"max_steps": 3, "seq_len": 256}))  # fmt: skip
    info = json.loads((out / "sequences" / "prepared.json").read_text())
    assert redo.run.done_this_run == 3 and info["heldout_sources"] == ["town_notes"]
    assert len(_losses(out)) == 3


def test_refusals(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such source"):
        train_synthesizer(_config(base, tmp_path / "a", heldout_sources=["nope"]))
    with pytest.raises(ConfigError, match="--eval-max-new-tokens must be below"):
        _config(base, tmp_path / "e", eval_max_new_tokens=400)
    with pytest.raises(ConfigError, match="--init is required"):
        TrainSynthesizerConfig(inputs=[str(SAMPLE)], output=str(tmp_path / "b"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"context": "x"}) + "\n")
    with pytest.raises(InputError, match="no usable example"):
        train_synthesizer(_config(base, tmp_path / "c", [str(empty)]))
    train_synthesizer(_config(base, tmp_path / "d", train={"max_steps": 2}))
    with pytest.raises(ResumeError):
        train_synthesizer(_config(base, tmp_path / "d", train={"max_steps": 2, "lr": 1e-3}))


def test_torchrun_on_two_cpu_processes_follows_one_process(base: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    train_synthesizer(_config(base, one, train={"max_steps": 6}))
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "instructpt",
           "train-synthesizer", str(SAMPLE), "-o", str(two), "--init", str(base), "--max-steps", "6", "--batch-size",
           "8", "--max-seq-len", "384", "--lr", "0.003", "--train.warmup-steps", "5", "--checkpoint-every", "5",
           "--eval-examples", "4", "--eval-max-new-tokens", "16", "--train.eval-every", "3", "--no-progress",
           "-q"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same global batches, reduced across ranks in another order: equal up to float rounding
    assert _losses(two) == pytest.approx(_losses(one), rel=2e-4)
    assert (two / "model" / "model.safetensors").exists()
    final = json.loads((two / "stats.json").read_text())["counts"]
    assert "parse_rate" in final  # measured on the first rank while the other waited
