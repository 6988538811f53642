"""The ``filter`` stage: synthesized pairs that should not become pre-training text, dropped by rule.

    instructpt filter out/pairs -o out/pairs-filtered [--min-grounding 0.5] [--english]

A map stage on the platform runner: each finished input shard (``synthesize`` output, or any shard of rows with a
``text`` and ``pairs``) becomes the output shard of the same number, every record kept with the pairs that pass
the rules of :mod:`instructpt.quality.filters` (lengths, answers repeating questions, options, chain-of-thought
answers, repetition, grounding, duplicate questions, optionally the language). Each dropped pair goes to
``rejects/`` with its rule as the reason and the pair as it was; counts by rule are in ``stats.json`` (``drops``)
and the report. Thresholds are options and part of the fingerprint, so a changed threshold refuses to resume into
the same output directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from instructpt.config import option
from instructpt.errors import ConfigError
from instructpt.io.documents import row_id, text_rows
from instructpt.io.shards import ShardFile, stage_shards
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.quality.filters import FILTER_RULES_VERSION, FilterRules, check_pairs
from instructpt.records import Reject
from instructpt.stages import ShardedOptions, ShardPlan, ShardResult, Summary, run_map_stage

RULES_DEFAULT = FilterRules()


@dataclass
class FilterConfig(ShardedOptions):
    """``instructpt filter``: synthesized pairs -> the same, less the pairs that fail the quality rules."""

    FIELD_HELP: ClassVar[dict[str, str]] = {"inputs": "synthesize output directories, or their shard files."}
    INPUTS: ClassVar[str] = "a synthesize output directory or shard file"

    min_question_chars: int = option(RULES_DEFAULT.min_question_chars, "Shorter questions are dropped.")
    max_question_chars: int = option(RULES_DEFAULT.max_question_chars, "Longer questions are dropped.")
    max_answer_chars: int = option(RULES_DEFAULT.max_answer_chars, "Longer answers are dropped.")
    max_ngram_repeats: int = option(
        RULES_DEFAULT.max_ngram_repeats,
        "A word 4-gram seen more often than this in a question or answer is repetition.",
    )
    min_grounding: float = option(
        RULES_DEFAULT.min_grounding,
        "Share of an extractive-looking answer's content words that must occur in its document (0 turns it off).",
    )
    max_question_similarity: float = option(
        RULES_DEFAULT.max_question_similarity,
        "Word-set Jaccard above which a question repeats an earlier one of its document (1 turns it off).",
    )
    english: bool = option(
        False, "Drop pairs that py3langid does not take for English (pip install 'instructpt[filter]')."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.min_grounding <= 1.0 or not 0.0 <= self.max_question_similarity <= 1.0:
            raise ConfigError("--min-grounding and --max-question-similarity must be in [0, 1]")
        if min(self.min_question_chars, self.max_question_chars, self.max_answer_chars) < 0:
            raise ConfigError("the length limits must not be negative")
        if self.min_question_chars > self.max_question_chars:
            raise ConfigError("--min-question-chars is above --max-question-chars")
        if self.max_ngram_repeats < 1:
            raise ConfigError(f"--max-ngram-repeats must be at least 1, got {self.max_ngram_repeats}")
        if self.english:
            try:
                import py3langid  # noqa: F401
            except ImportError as exc:
                raise ConfigError("--english needs py3langid: pip install 'instructpt[filter]'") from exc

    @property
    def rules(self) -> FilterRules:
        # every threshold that is an option here; the others (2-10 options) as the rules define them
        return FilterRules(**{k: getattr(self, k, v) for k, v in asdict(RULES_DEFAULT).items()})

    def fingerprint(self) -> dict[str, Any]:
        rules = asdict(self.rules)
        return {"inputs": self.inputs, "rules": rules, "version": FILTER_RULES_VERSION, "format": self.format}


class Filter:
    """The map stage: one shard in, the same records out with only the pairs that pass."""

    name, unit = "filter", "docs"
    headline: tuple[str, ...] = ("docs_in", "pairs_in", "pairs_out", "rejected")
    renamed: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, config: FilterConfig) -> None:
        self.rules = config.rules

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult:
        stats, rejects, out = Stats(), list[Reject](), list[dict[str, Any]]()
        for n, row in text_rows(shard, "filter"):
            if isinstance(row, Reject):
                rejects.append(row)
                continue
            pairs = row.get("pairs") or []
            reasons = check_pairs(row["text"], [(p["question"], p["answer"]) for p in pairs], self.rules)
            rid = row_id(row, shard, n)
            for i, (pair, reason) in enumerate(zip(pairs, reasons)):
                if reason is not None:
                    rejects.append(Reject(f"{rid}#pair{i}", shard.path.name, reason, "", "filter", pair))
                    stats.count("drops", reason)
            kept = [p for p, r in zip(pairs, reasons) if r is None]
            stats.add("docs_in")
            stats.add("pairs_in", len(pairs))
            stats.add("pairs_out", len(kept))
            out.append({**row, "pairs": kept} if row.get("pairs") is not None else row)
            progress.update(docs=1, pairs=len(kept))
        stats.add("docs_out", len(out))
        return ShardResult(out, rejects, stats)


def filter_pairs(config: FilterConfig, plan: ShardPlan | None = None) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``."""
    shards = stage_shards(config.inputs, reader="filter", producer="synthesize")
    return run_map_stage(Filter(config), config, config.fingerprint(), shards, plan)


main = filter_pairs
Config = FilterConfig
