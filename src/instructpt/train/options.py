"""The training options every trainer shares (the ``train`` section of pretrain and train-synthesizer), what of
them a run's fingerprint holds, and the learning-rate schedule they describe."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from instructpt.config import option
from instructpt.errors import ConfigError

if TYPE_CHECKING:
    from instructpt.train.distributed import World

PRECISIONS = ("auto", "bf16", "fp32")
# Options that change how a run executes, not what it learns: a run may resume with others.
NOT_FINGERPRINTED = ("checkpoint_every", "keep_checkpoints", "log_every", "eval_every", "eval_blocks", "device",
                     "parallel", "compile", "activation_checkpointing", "peak_tflops", "micro_batch_size")  # fmt: skip


@dataclass
class TrainOptions:
    """Optimization, schedule, checkpoints and logging (one section shared by every trainer)."""

    batch_size: int = option(32, "Sequences per optimizer step, over all ranks.", aliases=("--batch-size",))
    micro_batch_size: int = option(0, "Sequences per forward pass (0: batch size / ranks, no accumulation).")
    seq_len: int = option(2048, "Tokens per sequence.", aliases=("--seq-len",))
    max_steps: int | None = option(
        None, "Optimizer steps to train (or --max-tokens).", aliases=("--max-steps",)
    )
    max_tokens: int | None = option(
        None, "Tokens to train on (steps = tokens / (batch x seq_len)).", aliases=("--max-tokens",)
    )
    epochs: float | None = option(
        None, "Passes over the training data (steps = epochs x sequences / batch).", aliases=("--epochs",)
    )
    lr: float = option(3e-4, "Peak learning rate.", aliases=("--lr",))
    min_lr_ratio: float = option(0.1, "Final learning rate as a share of the peak.")
    warmup_steps: int = option(100, "Linear warmup steps.")
    schedule: str = option(
        "cosine", "cosine | wsd (warmup-stable-decay) | constant.", choices=("cosine", "wsd", "constant")
    )
    decay_fraction: float = option(0.2, "wsd: share of the steps spent decaying.")
    weight_decay: float = option(0.1, "AdamW weight decay (not on norms and biases).")
    beta1: float = option(0.9, "AdamW beta1.")
    beta2: float = option(0.95, "AdamW beta2.")
    grad_clip: float = option(1.0, "Clip the gradient norm to this (0: no clipping).")
    checkpoint_every: int = option(500, "Steps between checkpoints.", aliases=("--checkpoint-every",))
    keep_checkpoints: int = option(2, "Checkpoints kept (the newest).")
    eval_every: int = option(0, "Steps between held-out evaluations (0: at the end only).")
    eval_blocks: int = option(16, "Validation blocks per evaluation.")
    log_every: int = option(10, "Steps between log lines.")
    seed: int = option(0, "Seed of initialisation.", aliases=("--seed",))
    device: str = option("auto", "auto | cpu | cuda.")
    parallel: str = option("ddp", "With several ranks (torchrun): ddp | fsdp.", choices=("ddp", "fsdp"))
    compile: bool = option(False, "torch.compile the model.")
    activation_checkpointing: bool = option(
        False, "Recompute activations in the backward pass (less memory)."
    )
    peak_tflops: float | None = option(
        None, "Peak TFLOP/s of one device for MFU (default: built in for H100/H200/A100)."
    )
    report_to: list[str] = option(
        [], "Also log metrics to: tensorboard (OUTPUT/tensorboard) and/or wandb (when installed)."
    )
    doc_masking: bool = option(
        False, "Attend only within each document of a block; positions restart per document."
    )
    precision: str = option(
        "auto",
        "auto (bf16 autocast on GPUs, fp32 on CPU) | bf16 (bf16 autocast on any device: faster on CPUs with bf16 "
        "instructions, such as AVX512-BF16 or AMX, slower on others) | fp32. Master weights stay fp32.",
        choices=PRECISIONS,
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.seq_len < 2 or self.micro_batch_size < 0:
            raise ConfigError("--batch-size must be >= 1, --seq-len >= 2, --train.micro-batch-size >= 0")
        if self.max_steps is None and self.max_tokens is None and self.epochs is None:
            raise ConfigError("give --max-steps, --max-tokens or --epochs")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError("--epochs must be > 0")
        unknown = set(self.report_to) - {"tensorboard", "wandb"}
        if unknown:
            raise ConfigError(
                f"--train.report-to takes tensorboard and wandb, not {', '.join(sorted(unknown))}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--train.precision takes {' | '.join(PRECISIONS)}, not {self.precision!r}")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1 or self.lr <= 0:
            raise ConfigError("--checkpoint-every and --train.keep-checkpoints must be >= 1, --lr > 0")

    def fingerprint(self, leave_out: tuple[str, ...] = NOT_FINGERPRINTED) -> dict[str, Any]:
        """The options that decide what a run learns, for its fingerprint: all but ``leave_out``, and
        ``precision`` only when set (runs made before the option existed keep their fingerprints)."""
        out = {k: v for k, v in asdict(self).items() if k not in leave_out}
        if out.get("precision") == "auto":
            del out["precision"]
        return out

    def total_steps(self, sequences: int | None = None) -> int:
        """Optimizer steps of the run; ``sequences``: how many training sequences one epoch holds (for --epochs)."""
        if self.max_steps is not None:
            return self.max_steps
        if self.max_tokens is not None:
            return max(1, math.ceil(self.max_tokens / (self.batch_size * self.seq_len)))
        if sequences is None:
            raise ConfigError("--epochs needs the number of training sequences")
        return max(1, math.ceil((self.epochs or 0) * sequences / self.batch_size))

    def micro(self, world: World) -> tuple[int, int]:
        """(sequences per micro-batch, micro-batches per step) on each rank."""
        if self.batch_size % world.size:
            raise ConfigError(f"--batch-size {self.batch_size} must be a multiple of the {world.size} ranks")
        per_rank = self.batch_size // world.size
        micro = self.micro_batch_size or per_rank
        if per_rank % micro:
            raise ConfigError(
                f"--train.micro-batch-size {micro} must divide the {per_rank} sequences per rank"
            )
        return micro, per_rank // micro


def lr_at(step: int, total: int, o: TrainOptions) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``."""
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    floor = o.lr * o.min_lr_ratio
    if o.schedule == "constant":
        return o.lr
    if o.schedule == "wsd":
        decay_start = total - max(1, int(total * o.decay_fraction))
        if step < decay_start:
            return o.lr
        return o.lr - (o.lr - floor) * (step - decay_start + 1) / max(1, total - decay_start)
    progress = (step - o.warmup_steps) / max(1, total - o.warmup_steps)
    return floor + (o.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
