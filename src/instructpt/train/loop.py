"""The training loop every trainer of the project shares (pretrain; train-synthesizer), top to bottom.

One optimizer step = ``batch_size`` sequences over all ranks (each rank its share, in micro-batches of
``micro_batch_size`` with gradient accumulation); the data for step ``s`` is fixed by ``s`` alone, so a resumed run
and a run on another number of ranks see the same batches. Mixed precision (``precision``): by default bf16
autocast on GPUs and fp32 on CPU; ``bf16`` also autocasts on CPU, ``fp32`` never autocasts (master weights always
fp32). AdamW (fused on GPUs), a warmup then cosine, WSD or constant schedule computed from
the step (no scheduler state), gradient clipping. Checkpoints every ``checkpoint_every`` steps, at the end, and
when SIGTERM or Ctrl-C asks to stop (the step in progress finishes first; exit codes 143 / 130). The options it
runs with, and the schedule: :mod:`instructpt.train.options`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.errors import ConfigError
from instructpt.train import checkpoint
from instructpt.train.distributed import World, all_mean, unwrap
from instructpt.train.options import TrainOptions, lr_at

log = logging.getLogger(__name__)


def make_optimizer(model: Any, o: TrainOptions, device: Any) -> Any:
    import torch

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=1e-8, fused=fused)


def next_token_loss(model: Any, blocks: Any, doc_index: Any = None) -> Any:
    """Mean next-token cross-entropy over every token of ``blocks`` (sequences of ``seq_len + 1`` tokens).

    With ``doc_index`` (the document each token belongs to, same shape), attention stays within a document and
    positions restart at each document's first token (intra-document masking)."""
    import torch.nn.functional as F

    kwargs = doc_attention(doc_index[:, :-1]) if doc_index is not None else {}
    logits = model(input_ids=blocks[:, :-1], **kwargs).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), blocks[:, 1:].reshape(-1))


def masked_loss_sum(model: Any, ids: Any, labels: Any) -> Any:
    """Summed next-token cross-entropy over the positions whose label is not -100 (``labels`` has the shape of
    ``ids``; the label of token ``t`` is the target of the prediction made at ``t - 1``). Use with
    :func:`label_count` as the Trainer's ``loss`` / ``loss_tokens``."""
    import torch.nn.functional as F

    logits = model(input_ids=ids[:, :-1]).logits
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )


def label_count(ids: Any, labels: Any) -> int:
    """The positions :func:`masked_loss_sum` sums over."""
    return int((labels[:, 1:] != -100).sum())


def doc_attention(doc: Any) -> dict[str, Any]:
    """A causal attention mask that stays within each document, and positions counted from each document's start,
    for token-to-document indices ``doc`` (batch x length)."""
    import torch

    length = doc.shape[1]
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=doc.device))
    mask = causal[None] & (doc[:, :, None] == doc[:, None, :])
    steps = torch.arange(length, device=doc.device).expand_as(doc)
    starts = torch.ones_like(doc, dtype=torch.bool)
    starts[:, 1:] = doc[:, 1:] != doc[:, :-1]
    first = torch.cummax(torch.where(starts, steps, torch.zeros_like(steps)), dim=1).values
    return {"attention_mask": mask[:, None], "position_ids": steps - first}


@dataclass
class Trainer:
    """Runs the loop on an already wrapped model; ``batches(step)`` gives this rank's micro-batches of a step."""

    model: Any
    options: TrainOptions
    world: World
    batches: Callable[[int], list[Any]]
    out: Path
    flops_per_token: float = 0.0
    peak_flops: float | None = None
    evaluate: Callable[[], float | dict[str, float]] | None = None  # a validation loss, or named figures
    # (model, *micro-batch tensors) -> mean loss; default next_token_loss
    loss: Callable[..., Any] | None = None
    # With it, ``loss`` returns a SUM over tokens and this counts a micro-batch's tokens: a step's loss is then the
    # mean over all its tokens, whatever the micro-batches and ranks (masked losses count unequal tokens per row).
    loss_tokens: Callable[..., int] | None = None
    total: int | None = None  # steps of the run (default: options.total_steps())

    def __post_init__(self) -> None:
        self.optimizer = make_optimizer(self.model, self.options, self.world.device)
        self.ckpt_dir = self.out / "checkpoints"
        self.metrics_path = self.out / "metrics.jsonl"
        self._step_tokens = 0
        self._pending: list[str] = []  # metric lines not yet written (written at log lines and checkpoints)
        self._sinks = open_sinks(self.options, self.out) if self.world.main else []

    @property
    def total_steps(self) -> int:
        return self.total if self.total is not None else self.options.total_steps()

    def resume(self) -> int:
        """Restore the newest checkpoint; returns the step to start from. Metrics logged after that checkpoint (by
        the run that stopped) are dropped: the resumed run logs those steps again. A finished run keeps them all."""
        state = checkpoint.load_latest(self.ckpt_dir, self.model, self.optimizer)
        step = int(state["step"]) if state else 0
        finished = step >= self.total_steps and self._final() is not None
        if self.world.main and self.metrics_path.exists() and not finished:
            kept = [line for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= step and not json.loads(line).get("final")]  # fmt: skip
            self.metrics_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        if state:
            log.info("resuming from step %d (%s)", step, self.ckpt_dir)
        return step

    def run(self, progress: Any) -> dict[str, Any]:
        """Train from the newest checkpoint to the last step; returns the final figures."""
        from instructpt.runtime import deferred_signals

        o, total = self.options, self.total_steps
        step = start = self.resume()
        final = self._final() if start >= total else None
        # a finished run, re-run: its final figures; nothing trained, evaluated or rewritten
        if final is not None:
            return {**final, "steps_this_run": 0, "work_seconds": 0.0}
        # (a finished run without validation, re-run: no step trains, and this is what it reports)
        last: dict[str, Any] = {"step": step}
        started, tokens_done, evaluated = time.monotonic(), 0, -1
        with deferred_signals() as stop:
            while step < total:
                last = self._step(step, total)
                step += 1
                self._step_tokens = last.pop("tokens")
                tokens_done += self._step_tokens
                elapsed = time.monotonic() - started
                last.update(self._rates(tokens_done, elapsed))
                if self.evaluate and o.eval_every and step % o.eval_every == 0:
                    last.update(self._evaluate())
                    evaluated = step
                self._log(last, progress)
                if step % o.checkpoint_every == 0 or step == total or stop:
                    self._save(step)
                stop.raise_if_set()
        if self.evaluate is not None:
            if evaluated != step:  # the last step's evaluation, when it ran, is the final one
                last.update(self._evaluate())
            self._log({**last, "final": True}, None)
        return {**last, "steps_this_run": step - start, "work_seconds": time.monotonic() - started}

    def _final(self) -> dict[str, Any] | None:
        """The final figures of a finished run (its metrics' last line, written once the last step was saved)."""
        if not self.metrics_path.exists():
            return None
        lines = [line for line in self.metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
        return last if last.get("final") and last.get("step") == self.total_steps else None

    def _evaluate(self) -> dict[str, Any]:
        figures = self.evaluate() if self.evaluate is not None else {}
        return figures if isinstance(figures, dict) else {"val_loss": figures}

    def _step(self, step: int, total: int) -> dict[str, Any]:
        import torch

        o, model = self.options, self.model
        lr = lr_at(step, total, o)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        micro = self.batches(step)
        loss_fn = self.loss or next_token_loss
        loss_sum, tokens = 0.0, 0
        scale = 1 / len(micro)
        if self.loss_tokens is not None:
            local = sum(self.loss_tokens(*(m if isinstance(m, tuple) else (m,))) for m in micro)
            # gradients are averaged over ranks: scaling by ranks / all tokens makes them the mean over all tokens
            scale = self.world.size / max(1.0, all_mean(float(local), self.world) * self.world.size)
        for i, blocks in enumerate(micro):
            sync = i == len(micro) - 1
            context = model.no_sync() if hasattr(model, "no_sync") and not sync else _nullcontext()
            # (blocks, doc_index) with document masks; (ids, labels) for a masked loss
            parts = blocks if isinstance(blocks, tuple) else (blocks,)
            tokens += parts[0].shape[0] * (parts[0].shape[1] - 1)  # the positions fed (padding included)
            with context, _autocast(self.world.device, o.precision):
                loss = loss_fn(model, *(t.to(self.world.device) for t in parts)) * scale
            loss.backward()
            loss_sum += float(loss.detach())
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip or float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"step": step + 1, "loss": all_mean(loss_sum, self.world), "lr": lr, "grad_norm": float(norm),
                "tokens": tokens * self.world.size}  # fmt: skip

    def _rates(self, tokens: int, elapsed: float) -> dict[str, Any]:
        rate = tokens / max(elapsed, 1e-9)
        out: dict[str, Any] = {"tokens_per_second": rate}
        if self.peak_flops:
            out["mfu"] = rate * self.flops_per_token / (self.peak_flops * self.world.size)
        return out

    def _log(self, metrics: dict[str, Any], progress: Any) -> None:
        if not self.world.main:
            return
        self._pending.append(json.dumps(metrics))
        for sink in self._sinks:
            sink(metrics)
        if progress is not None:
            progress.update(docs=1, tokens=self._step_tokens)
        if metrics.get("final") or metrics["step"] % self.options.log_every == 0:
            self._flush()
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            log.info("step %d: %s", metrics["step"], shown)

    def _flush(self) -> None:
        if self._pending:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in self._pending))
            self._pending.clear()

    def _save(self, step: int) -> None:
        self._flush()
        checkpoint.save(
            self.ckpt_dir,
            step,
            self.model,
            self.optimizer,
            {"data_step": step},
            self.options.keep_checkpoints,
        )


def open_sinks(o: TrainOptions, out: Path) -> list[Callable[[dict[str, Any]], None]]:
    """Metric writers for ``--train.report-to``: TensorBoard event files in OUTPUT/tensorboard, a W&B run."""
    sinks: list[Callable[[dict[str, Any]], None]] = []
    if "tensorboard" in o.report_to:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "--train.report-to tensorboard needs the tensorboard package: pip install tensorboard"
            ) from exc
        writer = SummaryWriter(str(out / "tensorboard"))

        def tensorboard(m: dict[str, Any]) -> None:
            for k, v in m.items():
                if isinstance(v, float):
                    writer.add_scalar(f"train/{k}", v, m["step"])
            writer.flush()

        sinks.append(tensorboard)
    if "wandb" in o.report_to:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError("--train.report-to wandb needs the wandb package: pip install wandb") from exc
        run = wandb.init(
            project="instructpt", dir=str(out), config={k: getattr(o, k) for k in o.__dataclass_fields__}
        )
        sinks.append(lambda m: run.log({k: v for k, v in m.items() if isinstance(v, float)}, step=m["step"]))
    return sinks


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _autocast(device: Any, precision: str = "auto") -> Any:
    import torch

    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return _nullcontext()


def base_model(model: Any) -> Any:
    return unwrap(model)
