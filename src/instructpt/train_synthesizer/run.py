"""``instructpt train-synthesizer``: fine-tune a causal LM into an instruction synthesizer (SPEC §6).

    instructpt train-synthesizer ft-collection/ -o runs/synth --init mistralai/Mistral-7B-v0.1 --epochs 2
    instructpt train-synthesizer instruction-pretrain/ft-instruction-synthesizer-collection -o runs/synth \\
        --init Qwen/Qwen2.5-0.5B --max-steps 2000 --lora.r 16
    torchrun --nproc_per_node 8 -m instructpt train-synthesizer DATA -o OUT --init BASE --train.parallel fsdp \\
        --train.activation-checkpointing

Data: the fine-tuning collection (HF id, a local copy, or any jsonl/parquet with a context and a list of pairs;
:mod:`instructpt.io.collection`). Some source datasets are held out whole (``--heldout-sources`` or
``--heldout-fraction``). The rest becomes few-shot sequences of one source each with the loss on the pairs only
(:mod:`.sequences`), trained with the shared loop (:mod:`instructpt.train.loop`: schedule, accumulation, clipping,
exact resume, SIGTERM -> checkpoint + exit 143, torchrun DDP/FSDP2), optionally as LoRA adapters merged at the end.
Held-out quality (:mod:`.quality`) is measured every ``--train.eval-every`` steps and at the end.

The run directory: ``sequences/`` (the packed training data, built once), ``rejects/rejects.jsonl`` (every row that
could not be an example, with its reason and the row as read), ``checkpoints/``, ``metrics.jsonl``, ``stats.json``
and ``model/``: an HF model directory that ``instructpt synthesize --engine transformers|vllm --model OUT/model``
uses with no other flag.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from instructpt.config import option, to_dict
from instructpt.errors import ConfigError
from instructpt.io.collection import COLLECTION_PARSER, CollectionExample, CollectionFields
from instructpt.stages import RunInfo, RunOptions, Summary, check_overwrite
from instructpt.train.checkpoint import TrainDir
from instructpt.train.lora import LoraOptions
from instructpt.train.options import NOT_FINGERPRINTED, TrainOptions
from instructpt.train_synthesizer import data
from instructpt.train_synthesizer import sequences as seqs
from instructpt.train_synthesizer.model import add_wire_tokens, fit_model, write_synthesizer

log = logging.getLogger(__name__)

HEADLINE = ("examples", "sequences", "steps", "final_loss", "parse_rate", "rejected")


@dataclass
class SynthTrainOptions(TrainOptions):
    """Optimization for fine-tuning (the shared loop's options, with fine-tuning defaults)."""

    batch_size: int = option(16, "Sequences per optimizer step, over all ranks.", aliases=("--batch-size",))
    seq_len: int = option(
        2048, "Tokens per packed sequence (examples are never split).", aliases=("--max-seq-len", "--seq-len")
    )
    epochs: float | None = option(
        1.0, "Passes over the training data (unless --max-steps or --max-tokens).", aliases=("--epochs",)
    )
    lr: float = option(1e-5, "Peak learning rate.", aliases=("--lr",))
    warmup_steps: int = option(20, "Linear warmup steps.")
    weight_decay: float = option(0.0, "AdamW weight decay (not on norms and biases).")
    seed: int = option(0, "Seed of the data order, packing and held-out choice.", aliases=("--seed",))
    eval_blocks: int = option(16, "pretrain only (here the held-out check uses --eval-examples).")
    doc_masking: bool = option(
        False, "pretrain only; refused here (a synthesizer attends across its examples)."
    )


@dataclass
class TrainSynthesizerConfig(RunOptions):
    """``instructpt train-synthesizer``: fine-tuning data -> a synthesizer model."""

    inputs: list[str] = option(
        [], "Fine-tuning data: files, directories or an HF dataset id.", positional=True
    )
    init: str = option(
        "", "Base model to fine-tune: an HF id or directory of a causal LM.", aliases=("--init",)
    )
    tokenizer: str | None = option(None, "Tokenizer (default: the base model's).")
    revision: str | None = option(None, "Revision of --init / --tokenizer hub ids.")
    trust_remote_code: bool = option(False, "Allow model repos to run their own code (off by default).")
    data: CollectionFields = field(default_factory=CollectionFields)
    overlong: str = option(
        "truncate", "An example longer than --max-seq-len: cut its context (never its pairs), or skip it.",
        choices=("truncate", "skip"),
    )  # fmt: skip
    heldout_sources: list[str] = option(
        [], "Source datasets held out for evaluation (default: --heldout-fraction)."
    )
    heldout_fraction: float = option(
        0.1, "Share of the source datasets held out (at least one of two or more)."
    )
    eval_examples: int = option(64, "Held-out examples each quality measurement generates for.")
    eval_max_new_tokens: int = option(128, "New tokens per held-out generation.")
    lora: LoraOptions = field(default_factory=LoraOptions)
    export: bool = option(True, "Write the final model as an HF directory into OUTPUT/model.")
    progress: bool = option(True, "Show a progress bar (log lines when not on a terminal).")
    train: SynthTrainOptions = field(default_factory=SynthTrainOptions)

    FIELD_HELP: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("give the fine-tuning DATA (files, directories or an HF dataset id)")
        super().__post_init__()
        if not self.init:
            raise ConfigError("--init is required: the base model to fine-tune (an HF id or a directory)")
        if self.train.doc_masking:
            raise ConfigError(
                "--train.doc-masking is for pretrain: a synthesizer attends across its few-shot examples"
            )
        if self.eval_max_new_tokens >= self.train.seq_len:
            raise ConfigError("--eval-max-new-tokens must be below --max-seq-len (the prompt needs room)")
        if not 0 <= self.heldout_fraction < 1 or self.eval_examples < 0 or self.eval_max_new_tokens < 1:
            raise ConfigError(
                "--heldout-fraction must be in [0, 1), --eval-examples >= 0, --eval-max-new-tokens >= 1"
            )

    def fingerprint(self, tokenizer_hash: str) -> dict[str, Any]:
        train = self.train.fingerprint((*NOT_FINGERPRINTED, "report_to"))
        return {"inputs": self.inputs, "init": self.init, "revision": self.revision, "tokenizer_hash": tokenizer_hash,
                "data": to_dict(self.data), "overlong": self.overlong, "heldout_sources": self.heldout_sources,
                "heldout_fraction": self.heldout_fraction, "lora": to_dict(self.lora), "train": train,
                "format": seqs.FORMAT_VERSION, "parser": COLLECTION_PARSER}  # fmt: skip


class SynthTrainDir(TrainDir):
    EXTRA_DIRS = (*TrainDir.EXTRA_DIRS, "sequences", "rejects")

    def has_results(self) -> bool:
        return (self.root / data.PREPARED).exists() or super().has_results()


def train_synthesizer(config: TrainSynthesizerConfig) -> Summary:
    """Prepare the data (once), train (or resume), measure held-out quality, export; returns the summary."""
    from instructpt.engines.tokenizer import load_hf_tokenizer, tokenizer_hash
    from instructpt.train import distributed

    t0 = time.monotonic()
    world = distributed.init(config.train.device)
    try:
        tokenizer = load_hf_tokenizer(config.tokenizer or config.init, config.revision, config.trust_remote_code,
                                      error=ConfigError)  # fmt: skip
        check_overwrite(config, world.size)
        out = SynthTrainDir(config.output, "train-synthesizer", config.fingerprint(tokenizer_hash(tokenizer)),
                            overwrite=config.overwrite)  # fmt: skip
        finished = _finished(out.root, config)
        if finished is not None:
            return finished  # nothing left to do: the stored summary, nothing rewritten
        added = add_wire_tokens(tokenizer)
        if world.main:
            out.write_config(config)
            data.prepare(config, lambda text: tokenizer.encode(text, add_special_tokens=False), out.root)
        distributed.barrier(world)  # the other ranks wait for the prepared data
        return _train(config, out, world, tokenizer, added, t0)
    finally:
        distributed.shutdown()


def _finished(root: Path, config: TrainSynthesizerConfig) -> Summary | None:
    """The stored summary of a run that trained every step and exported its model, else None."""
    from instructpt.train.checkpoint import complete

    stats = root / "stats.json"
    if not (
        stats.exists()
        and (root / data.PREPARED).exists()
        and (not config.export or (root / "model").is_dir())
    ):
        return None
    stored = json.loads(stats.read_text(encoding="utf-8"))
    ckpts = complete(root / "checkpoints")
    if not ckpts or ckpts[-1].name != f"step-{stored['counts'].get('steps', -1):06d}":
        return None
    log.info("%s: finished already (%s steps); nothing to do", root, stored["counts"]["steps"])
    return Summary(
        "train-synthesizer", stored["counts"], stored["by"], RunInfo("steps"), HEADLINE, output=str(root)
    )


def _train(config: TrainSynthesizerConfig, out: TrainDir, world: Any, tokenizer: Any, added: list[str],
           t0: float) -> Summary:  # fmt: skip
    import torch

    from instructpt.progress import Progress
    from instructpt.train import distributed
    from instructpt.train.loop import Trainer, label_count, masked_loss_sum
    from instructpt.train.model import device_peak_flops, flops_per_token, load_init

    o = config.train
    info = json.loads((out.root / data.PREPARED).read_text(encoding="utf-8"))
    sequences = seqs.Sequences.load(out.root / data.TRAIN)
    total = o.total_steps(len(sequences))
    model = load_init(config.init, config.revision, config.trust_remote_code)
    fit_model(model, tokenizer)
    flops = flops_per_token(model, o.seq_len)
    if config.lora.enabled:
        from instructpt.train.lora import add_adapters

        if o.parallel == "fsdp" and world.size > 1:
            raise ConfigError("--lora.r runs on one process or with --train.parallel ddp, not fsdp")
        torch.manual_seed(o.seed)  # the adapters' initial weights
        model = add_adapters(model, config.lora, train_embeddings=bool(added))
    model.to(world.device)
    if o.activation_checkpointing:
        model.gradient_checkpointing_enable()
    wrapped = distributed.wrap(model, world, o.parallel)
    if o.compile:
        wrapped = torch.compile(wrapped)
    micro, n_micro = o.micro(world)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = seqs.batches(sequences, o.batch_size, micro, n_micro, world.rank, pad, o.seed)
    heldout = data.heldout_sample(out.root, config.eval_examples, o.seed)
    trainer = Trainer(wrapped, o, world, batches, out.root, flops, device_peak_flops(world.device, o.peak_tflops),
                      evaluate=_quality(config, model, tokenizer, heldout, world), loss=masked_loss_sum,
                      loss_tokens=label_count, total=total)  # fmt: skip
    progress = Progress(
        "train-synthesizer", total=total, enabled=config.progress and world.main, unit="steps"
    )
    t1 = time.monotonic()
    final = trainer.run(progress)
    progress.close()
    t2 = time.monotonic()
    if config.export:
        _export(config, model, wrapped, world, tokenizer, out.root, info, final, heldout)
    counts = _counts(info, total, final, added)
    run = RunInfo("steps", int(final.get("steps_this_run", 0)), t2 - t1, t1 - t0, time.monotonic() - t2)
    summary = Summary("train-synthesizer", counts, {"rejects": info["rejects"], "skipped": info["skipped"]}, run,
                      HEADLINE, output=str(out.root))  # fmt: skip
    if world.main:
        out.write_summary(summary)
    return summary


def _quality(config: TrainSynthesizerConfig, model: Any, tokenizer: Any, heldout: list[CollectionExample],
             world: Any) -> Any:  # fmt: skip
    """The held-out measurement the loop calls, on the first rank (the others go on to the next step's collective
    and wait there). FSDP shards the weights: there it runs once, at the end, on the exported model."""
    from instructpt.train_synthesizer.quality import heldout_quality

    if not heldout or (config.train.parallel == "fsdp" and world.size > 1):
        return None

    def measure() -> dict[str, float]:
        if not world.main:
            return {}
        return heldout_quality(model, tokenizer, heldout, str(world.device), config.train.seq_len,
                               config.eval_max_new_tokens)  # fmt: skip

    return measure


def _export(config: TrainSynthesizerConfig, model: Any, wrapped: Any, world: Any, tokenizer: Any, out: Path,
            info: dict[str, Any], final: dict[str, Any], heldout: list[CollectionExample]) -> None:  # fmt: skip
    from instructpt.pretrain.export import gather_full_model
    from instructpt.train.lora import merged

    plain = merged(model) if config.lora.enabled else gather_full_model(model, wrapped, world)
    if not world.main:
        return
    if "parse_rate" not in final and heldout:  # not measured in the loop (FSDP)
        from instructpt.train_synthesizer.quality import heldout_quality

        plain.to(world.device)
        final.update(heldout_quality(plain, tokenizer, heldout, str(world.device), config.train.seq_len,
                                     config.eval_max_new_tokens))  # fmt: skip
    card = {"name": Path(config.output).name, "base": config.init, "data": info,
            "training": {**to_dict(config.train), "lora": to_dict(config.lora)}, "final": final}  # fmt: skip
    write_synthesizer(plain, tokenizer, out / "model", card)


def _counts(info: dict[str, Any], total: int, final: dict[str, Any], added: list[str]) -> dict[str, Any]:
    counts: dict[str, Any] = {k: info[k] for k in ("examples", "rejected", "train_examples", "heldout_examples",
                                                   "truncated", "sequences", "tokens", "label_tokens")}  # fmt: skip
    counts.update(steps=total, skipped=sum(info["skipped"].values()), wire_tokens_added=len(added))
    for key in ("loss", "parse_rate", "pairs_per_context", "answer_exact_match", "answer_f1"):
        if key in final:
            counts["final_loss" if key == "loss" else key] = round(float(final[key]), 6)
    return counts


main = train_synthesizer
Config = TrainSynthesizerConfig
