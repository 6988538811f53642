"""The ``pretrain`` stage: train a causal LM on a mixture, from scratch or from an HF checkpoint.

    instructpt pretrain --data mixes/ipt -o runs/ipt --model-config 500m --max-tokens 10000000000
    instructpt pretrain --data mixes/domain -o runs/med --init meta-llama/Meta-Llama-3-8B --max-steps 2000
    torchrun --nproc_per_node 8 -m instructpt pretrain --data ... -o ... --train.parallel fsdp

The plain next-token loss on every token of the mixture (SPEC §7: nothing is masked in pre-training). The run
directory holds the model's config and tokenizer, ``checkpoints/``, ``metrics.jsonl`` (a line per step: loss, learning
rate, gradient norm, tokens/s, MFU on GPUs, validation loss), ``stats.json``, and the exported HF model in
``model/``. Re-running the same command resumes from the newest checkpoint at the exact data position. The loop:
:mod:`instructpt.train.loop`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructpt.config import option, to_dict
from instructpt.errors import ConfigError, InputError
from instructpt.io.rundir import RunDir, json_bytes
from instructpt.mix.reader import MixtureReader
from instructpt.pretrain.export import MODEL_CONFIG, RUN_INFO, TOKENIZER, gather_full_model, write_hf_model
from instructpt.stages import RunInfo, RunOptions, Summary, check_overwrite
from instructpt.train.checkpoint import TrainDir
from instructpt.train.model import model_spec
from instructpt.train.options import TrainOptions

HEADLINE = ("steps", "tokens_trained", "final_loss", "val_loss")


@dataclass
class PretrainConfig(RunOptions):
    """``instructpt pretrain``: a mixture -> a model (from scratch or continual)."""

    data: str = option("", "Mixture directory (instructpt mix).")
    model_config: str = option("tiny", "From scratch: a preset (tiny, 500m, 1.3b) or a config.json.")
    init: str | None = option(
        None, "Continual pre-training: an HF id or directory of the checkpoint to start from."
    )
    tokenizer: str | None = option(None, "Tokenizer (default: the mixture's; with --init, the checkpoint's).")
    revision: str | None = option(None, "Revision of --init / --tokenizer hub ids.")
    trust_remote_code: bool = option(False, "Allow model repos to run their own code (off by default).")
    resize_embeddings: bool = option(False, "--init: grow the embeddings to a larger tokenizer vocabulary.")
    export: bool = option(True, "Export the final model as an HF directory into OUTPUT/model.")
    progress: bool = option(True, "Show a progress bar (log lines when not on a terminal).")
    train: TrainOptions = field(default_factory=lambda: TrainOptions(max_steps=100))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data:
            raise ConfigError("--data is required (a mixture directory made by instructpt mix)")

    def fingerprint(self, mixture: dict[str, Any], tokenizer_hash: str) -> dict[str, Any]:
        train = self.train.fingerprint()
        if train.get("epochs") is None:
            train.pop("epochs", None)  # runs made before --epochs existed resume
        fp = {
            "data": str(Path(self.data).resolve()),
            "mixture_tokens": mixture["train"]["tokens"],
            "model": {
                "init": self.init,
                "config": None if self.init else self.model_config,
                "revision": self.revision,
            },
            "tokenizer_hash": tokenizer_hash,
            "train": train,
        }
        spec = None if self.init else model_spec(self.model_config)
        if isinstance(spec, dict):  # a config.json: what it says (edited in place, it is another model)
            fp["model_file"] = spec
        return fp


class PretrainDir(TrainDir):
    EXTRA_DIRS = (*TrainDir.EXTRA_DIRS, MODEL_CONFIG, TOKENIZER)
    OWN_FILES = (*TrainDir.OWN_FILES, RUN_INFO)
    ADDED_KEYS = ("model_file",)  # runs from before it was recorded resume


def _tokenizer(config: PretrainConfig, mixture: dict[str, Any]) -> Any:
    from instructpt.engines.tokenizer import load_hf_tokenizer, tokenizer_hash

    packed = mixture["tokenizer"]
    name = config.tokenizer or config.init or packed["name"]
    tok = load_hf_tokenizer(name, config.revision if config.tokenizer or config.init else packed.get("revision"),
                            config.trust_remote_code, error=ConfigError)  # fmt: skip
    if tokenizer_hash(tok) != str(packed["hash"]):
        raise InputError(
            f"the mixture {config.data} was packed with tokenizer {packed['name']!r} (hash {packed['hash']}), the "
            f"model uses {name!r} (hash {tokenizer_hash(tok)}): pack the sources with the model's tokenizer"
        )
    return tok


def _model(config: PretrainConfig, tokenizer: Any) -> Any:
    from instructpt.train.model import build_model, load_init, model_config

    if config.init:
        model = load_init(config.init, config.revision, config.trust_remote_code)
        rows = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > rows:
            if not config.resize_embeddings:
                raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens, the model's embedding {rows}: "
                                  "use the checkpoint's tokenizer, or --resize-embeddings")  # fmt: skip
            model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
        return model
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    # the context the model is declared for: at least what it trains on (RoPE models may be used beyond it)
    positions = max(config.train.seq_len, 2048)
    return build_model(
        model_config(config.model_config, len(tokenizer), positions, special), config.train.seed
    )


def _batches(reader: MixtureReader, o: TrainOptions, world: Any) -> Any:
    """This rank's micro-batches of step ``s``: the blocks ``s*B ... s*B+B-1`` of the mixture (wrapping around
    after the last), rank ``r`` taking its contiguous share."""
    import numpy as np
    import torch

    micro, n_micro = o.micro(world)
    per_rank = micro * n_micro

    def batches(step: int) -> list[Any]:
        first = step * o.batch_size + world.rank * per_rank
        ks = [(first + i) % reader.num_blocks for i in range(per_rank)]
        if not o.doc_masking:
            t = torch.from_numpy(np.stack([reader.block(k) for k in ks]))
            return [t[i * micro : (i + 1) * micro] for i in range(n_micro)]
        pairs = [reader.block(k, with_doc_starts=True) for k in ks]
        blocks = torch.from_numpy(np.stack([b for b, _ in pairs]))
        # token -> document: a block's tokens before its first document start continue the previous document
        index = np.arange(o.seq_len + 1)
        docs = torch.from_numpy(np.stack([np.searchsorted(s, index, side="right") for _, s in pairs]))
        return [
            (blocks[i * micro : (i + 1) * micro], docs[i * micro : (i + 1) * micro]) for i in range(n_micro)
        ]

    return batches


def _evaluator(config: PretrainConfig, model: Any, world: Any) -> Any:
    """Mean loss on the first ``eval_blocks`` validation blocks (split over ranks), or None without any."""
    import torch

    from instructpt.train.distributed import all_mean
    from instructpt.train.loop import next_token_loss

    val = MixtureReader(config.data, split="val", seq_len=config.train.seq_len)
    n = min(config.train.eval_blocks, val.num_blocks)
    if n == 0:
        return None
    mine = [k for k in range(n) if k % world.size == world.rank] or [0]

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [
                float(next_token_loss(model, torch.from_numpy(val.block(k)[None]).to(world.device)))
                for k in mine
            ]
        model.train()
        return all_mean(sum(losses) / len(losses), world)

    return evaluate


def pretrain(config: PretrainConfig) -> Summary:
    """Train (or resume); returns the summary also in ``OUT/stats.json``."""
    from instructpt.progress import Progress
    from instructpt.train import distributed
    from instructpt.train.loop import Trainer
    from instructpt.train.model import device_peak_flops, flops_per_token

    t0 = time.monotonic()
    world = distributed.init(config.train.device)
    try:
        reader = MixtureReader(config.data, split="train", seq_len=config.train.seq_len)
        if reader.num_blocks == 0:
            raise InputError(
                f"{config.data} holds fewer than {config.train.seq_len + 1} training tokens: no block"
            )
        tokenizer = _tokenizer(config, reader.manifest)
        from instructpt.engines.tokenizer import tokenizer_hash

        check_overwrite(config, world.size)
        out = PretrainDir(config.output, "pretrain", config.fingerprint(reader.manifest, tokenizer_hash(tokenizer)),
                          overwrite=config.overwrite)  # fmt: skip
        model = _model(config, tokenizer)
        if world.main:
            _write_run_files(out, config, model, tokenizer, reader.manifest)
        flops = flops_per_token(model, config.train.seq_len)
        model.to(world.device)
        if config.train.activation_checkpointing:
            model.gradient_checkpointing_enable()
        wrapped = distributed.wrap(model, world, config.train.parallel)
        if config.train.compile:
            import torch

            wrapped = torch.compile(wrapped)
        total = config.train.total_steps(reader.num_blocks)
        trainer = Trainer(wrapped, config.train, world, _batches(reader, config.train, world), out.root, flops,
                          device_peak_flops(world.device, config.train.peak_tflops), _evaluator(config, wrapped, world),
                          total=total)  # fmt: skip
        progress = Progress("pretrain", total=total, enabled=config.progress and world.main, unit="steps")
        t1 = time.monotonic()
        final = trainer.run(progress)
        progress.close()
        t2 = time.monotonic()
        if config.export:
            _export(model, wrapped, world, tokenizer, out, config)
        return _summary(out, config, final, world, total, (t1 - t0, t2 - t1, time.monotonic() - t2))
    finally:
        distributed.shutdown()


def _write_run_files(
    out: RunDir, config: PretrainConfig, model: Any, tokenizer: Any, mixture: dict[str, Any]
) -> None:
    out.write_config(config)
    model.config.save_pretrained(out.root / MODEL_CONFIG)
    tokenizer.save_pretrained(out.root / TOKENIZER)
    info = {
        "how": "continual" if config.init else "from scratch",
        "mixture": mixture,
        "training": to_dict(config.train),
    }
    out.write_file(RUN_INFO, json_bytes(info))


def _export(
    model: Any, wrapped: Any, world: Any, tokenizer: Any, out: RunDir, config: PretrainConfig
) -> None:
    """Every rank gathers the full weights (FSDP shards them); the first writes the HF directory."""
    plain = gather_full_model(model, wrapped, world)
    if world.main:
        info = json.loads((out.root / RUN_INFO).read_text(encoding="utf-8"))
        write_hf_model(plain, tokenizer, out.root / "model", {**info, "name": Path(config.output).name})


def _summary(
    out: RunDir,
    config: PretrainConfig,
    final: dict[str, Any],
    world: Any,
    total: int,
    times: tuple[float, ...],
) -> Summary:
    o = config.train
    counts = {"steps": total, "tokens_trained": total * o.batch_size * o.seq_len,
              "ranks": world.size}  # fmt: skip
    for key in ("loss", "val_loss", "tokens_per_second", "mfu"):
        if key in final:
            counts["final_loss" if key == "loss" else key] = round(float(final[key]), 6)
    run = RunInfo("steps", int(final.get("steps_this_run", 0)), times[1], times[0], times[2])
    summary = Summary("pretrain", counts, {}, run, HEADLINE, output=str(out.root))
    if world.main:
        out.write_summary(summary)
    return summary


main = pretrain
Config = PretrainConfig
