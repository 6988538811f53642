"""The ``mix`` stage: a mixture of packed sources by tokens, as a seeded sample index (no copy of any token).

    instructpt mix -o mixes/ipt --preset from-scratch --sources raw=packed/raw augmented=packed/aug \\
        collection=packed/collection
    instructpt mix -o mixes/vanilla --preset vanilla --sources raw=packed/raw --pair-with mixes/ipt
    instructpt mix -o mixes/custom --sources web=packed/web:0.7 code=packed/code:0.3 --tokens 2000000000

Writes ``OUT/train.npy`` and ``OUT/val.npy`` (document references ``(source, shard, doc)`` in training order, the
validation documents disjoint from training), and ``OUT/mixture.json``: the sources, the tokenizer they were packed
with, exact token counts per source and split, how each was sampled, the seed. :class:`~instructpt.mix.reader.
MixtureReader` reads fixed-length blocks from it. Presets and sampling: :mod:`instructpt.mix.presets`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.config import option
from instructpt.errors import ConfigError, InputError
from instructpt.io.rundir import RunDir, json_bytes
from instructpt.io.tokens import PackedSource, npy_bytes
from instructpt.mix.presets import PRESETS
from instructpt.mix.select import REF, Pick, Source, SourceSpec, rng_for
from instructpt.stages import RunInfo, RunOptions, Summary

MANIFEST, TRAIN, VAL = "mixture.json", "train.npy", "val.npy"
HEADLINE = ("docs_out", "tokens_out", "val_docs", "val_tokens")


@dataclass
class MixConfig(RunOptions):
    """``instructpt mix``: packed sources -> a mixture by tokens (a seeded sample index)."""

    sources: list[str] = option(
        [], "Sources: NAME=PACK_DIR[:SHARE|:xREPEATS] ... (SHARE: of the mixture's tokens; xN: N passes).",
        aliases=("--source",),
    )  # fmt: skip
    preset: str = option(
        "none", "none | from-scratch | domain | vanilla (docs: the paper's recipes).", choices=tuple(PRESETS)
    )
    tokens: int | None = option(None, "Token budget of the training split (default: from the sources).")
    replace_fraction: float = option(
        0.2, "from-scratch: share of raw documents replaced by their augmented text."
    )
    keep_raw: bool = option(False, "from-scratch: keep a replaced raw document beside its augmented version.")
    instruction_ratio: float = option(1.0, "domain: general instruction tokens per domain token.")
    pair_with: str | None = option(None, "vanilla: a mixture whose training token budget to match.")
    max_unmatched: float = option(
        0.01, "from-scratch: most augmented documents whose lineage matches no raw document (share)."
    )
    val_fraction: float = option(0.005, "Share of documents held out for validation (at least one block).")
    seq_len: int = option(
        2048, "Block length the mixture is read with (the validation split holds >= one block)."
    )
    seed: int = option(0, "Seed of every draw (validation split, sampling, order).")
    verify: bool = option(True, "Hash every token file against what pack wrote before mixing.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sources:
            raise ConfigError("give at least one --sources NAME=PACK_DIR")
        self.specs  # noqa: B018 - parse now: errors name the flag
        if not 0 <= self.val_fraction < 1 or not 0 <= self.replace_fraction <= 1:
            raise ConfigError("--val-fraction must be in [0, 1) and --replace-fraction in [0, 1]")
        if self.tokens is not None and self.tokens < 1 or self.seq_len < 1 or self.instruction_ratio < 0:
            raise ConfigError("--tokens and --seq-len must be >= 1 and --instruction-ratio >= 0")

    @property
    def specs(self) -> list[SourceSpec]:
        specs = [SourceSpec.parse(s) for s in self.sources]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"--sources: each source needs its own name, got {', '.join(names)}")
        return specs

    def fingerprint(self, tokenizer_hash: str) -> dict[str, Any]:
        fp = {k: getattr(self, k) for k in ("preset", "tokens", "val_fraction", "seq_len", "seed")}
        fp["sources"] = [s.to_dict() for s in self.specs]
        fp["tokenizer_hash"] = tokenizer_hash
        if self.preset == "from-scratch":
            fp.update(
                replace_fraction=self.replace_fraction,
                keep_raw=self.keep_raw,
                max_unmatched=self.max_unmatched,
            )
        elif self.preset == "domain":
            fp["instruction_ratio"] = self.instruction_ratio
        elif self.preset == "vanilla":
            fp["pair_with"] = self.pair_with
        return fp


class MixDir(RunDir):
    def has_results(self) -> bool:
        return (self.root / MANIFEST).exists()


def open_sources(specs: list[SourceSpec], verify: bool) -> list[Source]:
    """The packed sources, all packed with one tokenizer (checked), their token files checked when asked."""
    sources = [Source(i, spec, PackedSource.open(spec.path)) for i, spec in enumerate(specs)]
    first = sources[0]
    for s in sources[1:]:
        if s.pack.tokenizer_hash != first.pack.tokenizer_hash:
            raise InputError(
                f"{s.spec.name} ({s.spec.path}) was packed with tokenizer {s.pack.header['tokenizer']['name']!r} "
                f"(hash {s.pack.tokenizer_hash}), {first.spec.name} ({first.spec.path}) with "
                f"{first.pack.header['tokenizer']['name']!r} (hash {first.pack.tokenizer_hash}): pack them with one"
            )
    for s in sources:
        s.pack.check(full=verify)
    return sources


def _refs(picks: list[Pick]) -> np.ndarray:
    return np.concatenate([p.source.refs[p.docs] for p in picks]) if picks else np.zeros(0, dtype=REF)


def mix(config: MixConfig) -> Summary:
    """Build the mixture; returns its summary (also in ``OUT/stats.json``)."""
    start = time.monotonic()
    sources = open_sources(config.specs, config.verify)
    tokenizer = sources[0].pack.header["tokenizer"]
    out = MixDir(config.output, "mix", config.fingerprint(str(tokenizer["hash"])), overwrite=config.overwrite)
    picks, val_pools, info = PRESETS[config.preset](sources, config)
    train = _refs(picks)
    train = train[rng_for(config.seed, "order").permutation(len(train))]
    val = _refs(
        [Pick(s, val_pools.get(s.position, np.zeros(0, dtype=np.int64)), "validation") for s in sources]
    )
    manifest = _manifest(config, sources, picks, val_pools, info, tokenizer)
    out.write_config(config)
    out.write_file(TRAIN, npy_bytes(train))
    out.write_file(VAL, npy_bytes(val))
    out.write_file(MANIFEST, json_bytes(manifest))
    counts = {"docs_out": len(train), "tokens_out": manifest["train"]["tokens"]}
    counts.update(val_docs=len(val), val_tokens=manifest["val"]["tokens"], sources=len(sources))
    counts.update({k: v for k, v in info.items() if isinstance(v, int) and not isinstance(v, bool)})
    run = RunInfo("docs", len(train), time.monotonic() - start)
    summary = Summary(
        "mix", counts, {"tokens_by_source": manifest["tokens_by_source"]}, run, HEADLINE, output=None
    )
    out.write_summary(summary)
    return summary


def _manifest(
    config: MixConfig,
    sources: list[Source],
    picks: list[Pick],
    val: dict[int, np.ndarray],
    info: dict,
    tokenizer: Any,
) -> dict[str, Any]:
    per_source = []
    for s in sources:
        mine = [p for p in picks if p.source is s]
        val_docs = val.get(s.position, np.zeros(0, dtype=np.int64))
        per_source.append({
            **s.spec.to_dict(),
            "path": str(Path(s.spec.path).resolve()),
            "natural_docs": len(s.refs), "natural_tokens": s.tokens,
            "train_docs": sum(len(p.docs) for p in mine), "train_tokens": sum(p.tokens for p in mine),
            "val_docs": len(val_docs), "val_tokens": int(s.lengths[val_docs].sum()),
            "sampling": "; ".join(p.how for p in mine) or "not used",
        })  # fmt: skip
    train_tokens = sum(p["train_tokens"] for p in per_source)
    return {
        "format": "instructpt-mixture-v1",
        "preset": config.preset,
        "seed": config.seed,
        "seq_len": config.seq_len,
        "tokenizer": tokenizer,
        "sources": per_source,
        "tokens_by_source": {p["name"]: p["train_tokens"] for p in per_source},
        "train": {"docs": sum(p["train_docs"] for p in per_source), "tokens": train_tokens, "file": TRAIN},
        "val": {"docs": sum(p["val_docs"] for p in per_source), "tokens": sum(p["val_tokens"] for p in per_source),
                "file": VAL, "fraction": config.val_fraction},
        "preset_info": info,
    }  # fmt: skip


main = mix
Config = MixConfig
