"""The ``filter`` stage: synthesized pairs that should not become pre-training text, dropped by rule.

    instructpt filter out/pairs -o out/pairs-filtered [--min-grounding 0.5] [--english]

A map stage on the platform runner: each finished input shard (``synthesize`` output, or any shard of rows with a
``text`` and ``pairs``) becomes the output shard of the same number, every record kept with the pairs that pass
the rules of :mod:`instructpt.quality.filters` (lengths, answers repeating questions, options, chain-of-thought
answers, repetition, grounding, duplicate questions, optionally the language) and, with ``--quality-model``, score
at least ``--min-quality`` by a sequence classifier (:mod:`instructpt.quality.model`). Each dropped pair goes to
``rejects/`` with its rule as the reason and the pair as it was; counts by rule are in ``stats.json`` (``drops``)
and the report. Thresholds are options and part of the fingerprint, so a changed threshold refuses to resume into
the same output directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from instructpt.filter.options import PairChecker, RuleOptions
from instructpt.io.documents import row_id, text_rows
from instructpt.io.shards import ShardFile, stage_shards
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import Reject
from instructpt.stages import ShardedOptions, ShardPlan, ShardResult, Summary, run_map_stage


@dataclass
class FilterConfig(ShardedOptions, RuleOptions):
    """``instructpt filter``: synthesized pairs -> the same, less the pairs that fail the quality rules."""

    FIELD_HELP: ClassVar[dict[str, str]] = {"inputs": "synthesize output directories, or their shard files."}
    INPUTS: ClassVar[str] = "a synthesize output directory or shard file"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()

    def fingerprint(self) -> dict[str, Any]:
        return {"inputs": self.inputs, **self.rules_fingerprint(), "format": self.format}


class Filter:
    """The map stage: one shard in, the same records out with only the pairs that pass."""

    name, unit = "filter", "docs"
    headline: tuple[str, ...] = ("docs_in", "pairs_in", "pairs_out", "rejected")
    renamed: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, config: FilterConfig) -> None:
        self.checker = PairChecker(config)

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult:
        stats, rejects, out = Stats(), list[Reject](), list[dict[str, Any]]()
        rows: list[tuple[dict[str, Any], str]] = []
        for n, row in text_rows(shard, "filter"):
            if isinstance(row, Reject):
                rejects.append(row)
            else:
                rows.append((row, row_id(row, shard, n)))
        failures = self.checker.failures(
            [(r["text"], [_qa(p) for p in r.get("pairs") or []]) for r, _ in rows]
        )
        for (row, rid), bad in zip(rows, failures):
            pairs = row.get("pairs") or []
            for i, (reason, detail) in sorted(bad.items()):
                rejects.append(Reject(f"{rid}#pair{i}", shard.path.name, reason, detail, "filter", pairs[i]))
                stats.count("drops", reason)
            kept = [p for i, p in enumerate(pairs) if i not in bad]
            stats.add("docs_in")
            stats.add("pairs_in", len(pairs))
            stats.add("pairs_out", len(kept))
            out.append({**row, "pairs": kept} if row.get("pairs") is not None else row)
            progress.update(docs=1, pairs=len(kept))
        stats.add("docs_out", len(out))
        return ShardResult(out, rejects, stats)


def _qa(pair: dict[str, Any]) -> tuple[str, str]:
    return pair["question"], pair["answer"]


def filter_pairs(config: FilterConfig, plan: ShardPlan | None = None) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``."""
    shards = stage_shards(config.inputs, reader="filter", producer="synthesize")
    return run_map_stage(Filter(config), config, config.fingerprint(), shards, plan)


main = filter_pairs
Config = FilterConfig
