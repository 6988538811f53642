"""The ``synthesize`` command's options (defaults < ``--config`` YAML < flags), their checks, and the fingerprint
that decides whether a run may resume into an existing output directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from instructpt.config import option
from instructpt.engines.config import EngineConfig
from instructpt.errors import ConfigError
from instructpt.io.hf import DatasetSpec
from instructpt.io.readers import DEFAULT_MAX_LINE_BYTES, ReadOptions
from instructpt.quality.filters import FILTER_RULES_VERSION
from instructpt.stages import ShardedOptions
from instructpt.synthesizer.samples import KEEP_MODES
from instructpt.wire import FORMAT_VERSION

if TYPE_CHECKING:
    from instructpt.engines.base import Engine

# Bump when the token ids sent for the same text and settings change. 2: pairs encoded after their context;
# 3: the model's tokenizer.json as written, not transformers 5's rebuild of Llama-class tokenizers.
PROMPT_IDS_VERSION = 3
DEFAULT_KEEP_FIELDS = ["metadata"]  # datatrove's lineage field, always kept where a record has it


@dataclass
class SynthesizeConfig(ShardedOptions):
    """``instructpt synthesize``: raw corpus -> instruction-response pairs."""

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "inputs": "jsonl / json / csv / tsv files (plain, .gz or .zst), parquet files, directories, globs, local "
        "dataset repositories or HF dataset ids."
    }
    INPUTS: ClassVar[str] = "file, directory, glob or HF dataset id"

    engine: EngineConfig = field(default_factory=EngineConfig)
    rounds: int = option(2, "Examples per chain (M-shot synthesis); 1 = every text on its own.")
    text_field: str = option("text", "Field holding the document text.")
    id_field: str | None = option(
        None, "Field holding a document id (default: a stable id from file + line)."
    )
    keep_fields: list[str] = option(
        list(DEFAULT_KEEP_FIELDS),
        "Input fields carried into every output record (under 'fields') and on through templify; 'metadata' is "
        "always kept, names given here are added. A record without a field simply has none.",
    )
    split: str = option("train", "Split of an HF dataset input.")
    hf_config: str | None = option(None, "Config (subset) name of an HF dataset id or dataset repository.")
    hf_revision: str | None = option(None, "Revision (branch, tag or commit) of an HF dataset id.")
    hf_data_files: list[str] = option(
        [], "Data files (paths or globs in the dataset repository) to read instead of the config's."
    )
    shard_size: int = option(1000, "Input records per output shard (the unit of resume).")
    max_inflight: int = option(512, "Requests kept in flight across chains (engine saturation).")
    max_inflight_tokens: str | None = option(
        "auto",
        "Prompt + max-new tokens kept in flight: 'auto' = the KV-cache capacity where the engine knows it (vllm, "
        "or a vLLM server's /metrics), so cached chain prefixes are not evicted before their next step; 'none' = "
        "no bound; or a number.",
    )
    max_consecutive_errors: int = option(
        64,
        "Stop (resumably) after this many failed requests in a row: an engine or server that is down would "
        "otherwise turn every record into an engine_error reject. 0 = never stop.",
    )
    retry_errors: bool = option(
        False,
        "On resume, run again every finished shard that holds engine_error rejects (whole shards, so their "
        "output is what an uninterrupted run would write), e.g. after timeouts or a server restart.",
    )
    limit: int | None = option(None, "Read at most this many input records.")
    fraction: float = option(
        1.0,
        "Synthesize only this share of the documents (picked by a hash of the record id and --fraction-seed: the "
        "same ones on every run); the others pass through as raw records without pairs (counted).",
    )
    fraction_seed: int = option(0, "Seed of the --fraction pick.")
    num_samples: int = option(
        1,
        "Generations per text, drawn from the record's seed (vLLM/OpenAI n: sample i with seed + i; transformers: "
        "num_return_sequences in one seeded call; rules: one seed per sample); more than 1 needs --temperature "
        "> 0, except with --engine rules.",
    )
    keep: str = option(
        "best",
        "With --num-samples > 1: 'best' keeps the sample with the most pairs that pass the filter rules, 'union' "
        "the pairs of all (a repeated question once), 'all' writes every sample as a record (ID@sI).",
        choices=KEEP_MODES,
    )
    max_line_bytes: int = option(DEFAULT_MAX_LINE_BYTES, "Longer input lines are rejected as line_too_long.")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keep_fields = list(dict.fromkeys([*DEFAULT_KEEP_FIELDS, *self.keep_fields]))
        if self.rounds < 1:
            raise ConfigError("--rounds must be >= 1")
        if self.limit is not None and self.limit < 0:
            raise ConfigError("--limit must be >= 0")
        if not 0 < self.fraction <= 1:
            raise ConfigError("--fraction must be in (0, 1]")
        if self.max_line_bytes < 1:
            raise ConfigError("--max-line-bytes must be >= 1")
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.keep not in KEEP_MODES:
            raise ConfigError(f"--keep must be one of {', '.join(KEEP_MODES)}, got {self.keep!r}")
        if self.num_samples > 1 and self.engine.sampling.greedy and self.engine.name != "rules":
            raise ConfigError(
                f"--num-samples {self.num_samples} with greedy decoding (--temperature 0) would give "
                f"{self.num_samples} identical samples; set --temperature (e.g. 0.7)"
            )
        if self.max_consecutive_errors < 0:
            raise ConfigError("--max-consecutive-errors must be >= 0")
        if self.shard_size < 1 or self.max_inflight < 1:
            raise ConfigError("--shard-size and --max-inflight must be >= 1")
        self.max_inflight_tokens = str(self.max_inflight_tokens).strip().lower()
        if self.max_inflight_tokens not in ("auto", "none") and not (
            self.max_inflight_tokens.isdigit() and int(self.max_inflight_tokens) > 0
        ):
            raise ConfigError(
                f"--max-inflight-tokens must be auto, none or a positive number, got {self.max_inflight_tokens!r}"
            )

    @property
    def read_options(self) -> ReadOptions:
        """How the inputs are read (the output directory is never read back as input)."""
        dataset = DatasetSpec(self.split, self.hf_config, self.hf_revision, tuple(self.hf_data_files))
        return ReadOptions(
            self.text_field, self.id_field, self.split, self.max_line_bytes, exclude=(self.output,),
            keep_fields=tuple(self.keep_fields), dataset=dataset,
        )  # fmt: skip

    def inflight_token_cap(self, engine: Engine) -> int | None:
        """The token bound on requests in flight for ``engine`` (None: none); see --max-inflight-tokens."""
        cap = self.max_inflight_tokens
        if engine.codec is None or cap is None or cap == "none":
            return None
        return engine.kv_capacity_tokens if cap == "auto" else int(cap)

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a run to resume into an existing output directory: the engine's part (model,
        decoding, its backend's settings) and what decides which records are read and how they are cut."""
        fp = {
            **self.engine.fingerprint(),
            "prompt_format": FORMAT_VERSION,
            "rounds": self.rounds,
            "inputs": self.inputs,
            "text_field": self.text_field,
            "id_field": self.id_field,
            "split": self.split,
            "shard_size": self.shard_size,
            "format": self.format,
        }
        # Settings that change which records are read, recorded when not default.
        if self.limit is not None:
            fp["limit"] = self.limit
        if self.max_line_bytes != DEFAULT_MAX_LINE_BYTES:
            fp["max_line_bytes"] = self.max_line_bytes
        if self.fraction < 1:
            fp.update(fraction=self.fraction, fraction_seed=self.fraction_seed)
        if self.keep_fields != DEFAULT_KEEP_FIELDS:
            fp["keep_fields"] = self.keep_fields
        if self.num_samples > 1:  # what each record keeps of its samples (and, for best, how they are scored)
            fp.update(num_samples=self.num_samples, keep=self.keep)
            if self.keep == "best":
                fp["filter_rules"] = FILTER_RULES_VERSION
        for key in ("hf_config", "hf_revision", "hf_data_files"):
            if getattr(self, key):
                fp[key] = getattr(self, key)
        if self.engine.backend.uses_tokenizer:
            # How prompt ids are built (wire.encode_example) and sampling seeded (per record): outputs written
            # before these were settled are not resumed into.
            fp["prompt_ids"] = PROMPT_IDS_VERSION
        return fp
