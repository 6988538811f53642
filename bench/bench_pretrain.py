"""Benchmark: the pretrain loop's throughput against a minimal reference loop, the mixture reader's rate, and on a
GPU the MFU of the 500m and 1.3b presets.

- ``--cpu`` (default): the tiny preset on random token blocks; the project's ``Trainer`` (schedule, clipping,
  logging, metrics) against a bare loop (forward, cross-entropy, backward, AdamW step) on the same model, batches
  and step count; prints tokens/s of both and the ratio (target >= 0.95). Then ``MixtureReader`` blocks per second
  on one core, in tokens/s (target >= 1.2M: 20x what 45 % MFU of the 1.3b preset on one H100 consumes).
- ``--gpu``: the 500m and 1.3b presets at sequence length 2048, bf16 autocast, SDPA attention, random blocks, eager
  and ``torch.compile``d, and a bare loop on the same model for the ratio,
  through the same ``Trainer``; prints tokens/s and MFU against the device's bf16 peak (target >= 45 %). Run by
  ``scripts/gpu-check.sh``.

Run:  python bench/bench_pretrain.py [--cpu] [--gpu] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _trainer(
    model, steps: int, batch: int, seq_len: int, vocab: int, out: Path, device
) -> tuple[float, dict]:
    import torch

    from instructpt.train.distributed import World
    from instructpt.train.loop import Trainer
    from instructpt.train.model import device_peak_flops, flops_per_token
    from instructpt.train.options import TrainOptions

    gen = torch.Generator().manual_seed(0)
    data = [torch.randint(0, vocab, (batch, seq_len + 1), generator=gen) for _ in range(4)]
    opts = TrainOptions(max_steps=steps, batch_size=batch, seq_len=seq_len, warmup_steps=2, checkpoint_every=10**9,
                        log_every=10**9)  # fmt: skip
    world = World(0, 1, 0, device)
    trainer = Trainer(model.to(device), opts, world, lambda s: [data[s % 4]], out, flops_per_token(model, seq_len),
                      device_peak_flops(device))  # fmt: skip
    trainer._save = lambda step: None  # the benchmark measures training, not checkpoint writing
    start = time.perf_counter()
    final = trainer.run(None)
    return time.perf_counter() - start, final


def _reference(model, steps: int, batch: int, seq_len: int, vocab: int, device=None) -> float:
    """Seconds of a bare loop: forward, cross-entropy, backward, AdamW (fused on CUDA), no syncs but the last."""
    import contextlib

    import torch
    import torch.nn.functional as F

    device = device or torch.device("cpu")
    cuda = device.type == "cuda"
    gen = torch.Generator().manual_seed(0)
    data = [torch.randint(0, vocab, (batch, seq_len + 1), generator=gen).to(device) for _ in range(4)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=cuda)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    start = time.perf_counter()
    for s in range(steps):
        blocks = data[s % 4]
        with autocast:
            logits = model(input_ids=blocks[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), blocks[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _hf_trainer(model, steps: int, batch: int, seq_len: int, vocab: int, out: Path) -> float:
    """Seconds of ``transformers.Trainer.train()`` on the same model and random blocks (its own runtime figure)."""
    import torch
    from transformers import Trainer, TrainingArguments

    gen = torch.Generator().manual_seed(0)
    data = [torch.randint(0, vocab, (seq_len,), generator=gen) for _ in range(4 * batch)]
    rows = [{"input_ids": x, "labels": x} for x in data]
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps, learning_rate=3e-4,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)  # fmt: skip
    result = Trainer(model=model, args=args, train_dataset=rows).train()
    return float(result.metrics["train_runtime"])


def cpu(steps: int) -> None:
    import torch

    from instructpt.train.model import build_model, model_config

    torch.set_num_threads(1)
    vocab, batch, seq_len = 2048, 8, 128
    cfg = model_config("tiny", vocab, seq_len, {"bos_token_id": 1, "eos_token_id": 2})
    tokens = steps * batch * seq_len
    with tempfile.TemporaryDirectory() as tmp:
        t_loop, _ = _trainer(
            build_model(cfg, 0), steps, batch, seq_len, vocab, Path(tmp), torch.device("cpu")
        )
    t_ref = _reference(build_model(cfg, 0), steps, batch, seq_len, vocab)
    with tempfile.TemporaryDirectory() as tmp:
        t_hf = _hf_trainer(build_model(cfg, 0), steps, batch, seq_len, vocab, Path(tmp))
    print(f"tiny preset on one CPU thread, batch {batch} x {seq_len}, {steps} steps:")
    print(f"  reference loop {tokens / t_ref:,.0f} tok/s, pretrain Trainer {tokens / t_loop:,.0f} tok/s, "
          f"ratio {t_ref / t_loop:.3f} (target >= 0.95)")  # fmt: skip
    print(f"  transformers.Trainer {tokens / t_hf:,.0f} tok/s (its train_runtime; the HF loss shifts inside, so "
          f"it trains on {seq_len - 1} targets per sequence), ratio {t_hf / t_loop:.3f} (target >= 0.95)")  # fmt: skip
    reader_rate()


def reader_rate() -> None:
    from instructpt.io.shards import ShardedOutput
    from instructpt.io.stats import Stats
    from instructpt.io.tokens import encode_documents
    from instructpt.mix.reader import MixtureReader
    from instructpt.mix.run import MixConfig, mix

    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 32000, rng.integers(100, 2000)).tolist() for _ in range(3000)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pack"
        out = ShardedOutput(root, "pack", {})
        tokens, offsets = encode_documents(docs, "<u2")
        rows = [{"id": f"d{i}", "lineage": [f"d{i}"]} for i in range(len(docs))]
        import hashlib

        out.write_shard(0, rows, [], Stats(), marker=f"tokens-sha256 {hashlib.sha256(tokens).hexdigest()}",
                        files={".tokens": tokens, ".offsets.npy": offsets})  # fmt: skip
        (root / "pack.json").write_text(
            json.dumps({"dtype": "<u2", "tokenizer": {"name": "random", "hash": "x"}})
        )
        mix(MixConfig(output=str(Path(tmp) / "mix"), sources=[f"r={root}"], seq_len=2048, val_fraction=0.0))
        reader = MixtureReader(Path(tmp) / "mix", seq_len=2048)
        n = min(400, reader.num_blocks)
        start = time.perf_counter()
        for k in range(n):
            reader.block(k)
        rate = n * 2048 / (time.perf_counter() - start)
    print(f"  MixtureReader: {rate:,.0f} tokens/s on one core, ratio {rate / 1.2e6:.2f} to the 1.2M target")


def gpu(
    steps: int,
    device_name: str = "cuda",
    presets: tuple[tuple[str, int], ...] = (("500m", 16), ("1.3b", 8)),
    seq_len: int = 2048,
) -> None:
    """MFU of each preset, eager and then ``torch.compile``d (``--train.compile``), through the project's Trainer."""
    import torch

    from instructpt.train.model import build_model, model_config, parameter_count

    device = torch.device(device_name)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    for preset, batch in presets:
        cfg = model_config(preset, 32000, seq_len, {"bos_token_id": 1, "eos_token_id": 2})
        model = build_model(cfg, 0)
        total, _ = parameter_count(model)
        for compiled in (False, True):
            label = "torch.compile" if compiled else "eager"
            try:
                run = torch.compile(model) if compiled else model
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    _trainer(run, 3, batch, seq_len, 32000, Path(tmp), device)  # warm up (kernels, allocator)
                    warm = time.perf_counter() - start
                    seconds, final = _trainer(run, steps, batch, seq_len, 32000, Path(tmp), device)
            except Exception as exc:  # noqa: BLE001 - report and go on to the next measurement
                print(f"  {preset} {label}: failed: {type(exc).__name__}: {exc}")
                continue
            tokens = steps * batch * seq_len
            if not compiled:
                _reference(run, 3, batch, seq_len, 32000, device)
                bare = _reference(run, steps, batch, seq_len, 32000, device)
                print(
                    f"  {preset} eager, bare loop (no per-step sync): {tokens / bare:,.0f} tok/s, "
                    f"Trainer / bare {bare / seconds:.3f}"
                )
            peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
            print(f"  {preset} ({total / 1e6:,.0f}M parameters), {label}, batch {batch} x {seq_len}, bf16 autocast: "
                  f"{tokens / seconds:,.0f} tok/s, MFU {final.get('mfu', float('nan')):.1%} (target >= 45%), "
                  f"peak memory {peak:.1f} GiB, warm-up (3 steps) {warm:.1f} s")  # fmt: skip
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    if args.gpu:
        gpu(args.steps)
    if args.cpu or not args.gpu:
        cpu(args.steps)


if __name__ == "__main__":
    main()
