"""The ``decontaminate`` stage: find evaluation-set text in synthesized or rendered data, and drop or flag it.

    instructpt decontaminate out/pairs -o out/clean --against finance my-tasks/ [--action drop|flag]

A map stage on the platform runner: each finished input shard (``synthesize`` or ``templify`` output, or any
shard of rows with a ``text`` and optional ``pairs``) becomes the output shard of the same number. Every record's
text and every pair's question and answer are checked against an index of hashed n-grams (13 words by default) of
the evaluation sets: the domain suites of ``instructpt evaluate`` (from ``--data-dir`` or the hub), task files as
``evaluate`` reads them, or a ``.txt`` file of one item per line. ``--action drop`` removes contaminated pairs and
records whose text is contaminated; each goes to ``rejects/`` with the benchmark, task, row and matched words, so
nothing disappears. ``--action flag`` keeps everything and adds a ``contamination`` list to the record. The index
is cached under ``--cache-dir`` by a digest of what it was built from; resuming under other evaluation sets is
refused like any changed setting.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from instructpt.config import option
from instructpt.decontaminate.index import (
    EvalItem,
    NgramIndex,
    cached_index,
)
from instructpt.decontaminate.neardup import Duplicate, cluster_sizes, near_duplicates
from instructpt.errors import ConfigError, InputError
from instructpt.io.documents import row_id, text_rows
from instructpt.io.shards import ShardFile, stage_shards
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import Reject
from instructpt.stages import ShardedOptions, ShardPlan, ShardResult, Summary, run_map_stage

log = logging.getLogger(__name__)

ACTIONS = ("drop", "flag")
MATCH_CHARS = 300  # how much of the benchmark item a match report quotes


@dataclass
class DecontaminateConfig(ShardedOptions):
    """``instructpt decontaminate``: evaluation-set text found in synthesized or rendered data, dropped or flagged."""

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "inputs": "synthesize or templify output directories, or their shard files."
    }
    INPUTS: ClassVar[str] = "a synthesize or templify output directory or shard file"

    against: list[str] = option(
        [],
        "Evaluation sets to check against, one or more (after the inputs, or in the config file): a domain suite "
        "of `evaluate` (biomedicine, finance), a directory or file of task rows as `evaluate` reads them, or a "
        ".txt file with one item per line.",
    )
    data_dir: str | None = option(
        None, "Local copy of the domain suites (<Task>/test.json per task); default: download from the hub."
    )
    ngram: int = option(13, "Words per n-gram; an item shorter than this is found when copied whole.")
    action: str = option(
        "drop",
        "drop: remove contaminated pairs, and records whose text is contaminated (to rejects/, with the match); "
        "flag: keep everything and add a 'contamination' list to each record concerned.",
    )
    cache_dir: str | None = option(
        None, "Where built indexes are kept (default: ~/.cache/instructpt/ngrams); '' to build every time."
    )
    near_dup: bool = option(
        False,
        "Also treat near-duplicate records (MinHash LSH over word 5-grams of their text; needs datasketch) as "
        "--action says: the first record of each cluster is kept.",
    )
    near_dup_threshold: float = option(
        0.8, "--near-dup: estimated Jaccard similarity that makes a duplicate."
    )
    near_dup_perm: int = option(
        128, "--near-dup: MinHash permutations (more: a finer estimate, more memory)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.against:
            raise ConfigError("--against is required: an evaluation suite or file to check against")
        if self.ngram < 1:
            raise ConfigError(f"--ngram must be at least 1, got {self.ngram}")
        if self.action not in ACTIONS:
            raise ConfigError(f"--action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise ConfigError(f"--near-dup-threshold must be in (0, 1], got {self.near_dup_threshold}")
        if self.near_dup_perm < 16:
            raise ConfigError(f"--near-dup-perm must be at least 16, got {self.near_dup_perm}")

    def cache_path(self) -> Path | None:
        if self.cache_dir == "":
            return None
        return Path(self.cache_dir) if self.cache_dir else Path.home() / ".cache" / "instructpt" / "ngrams"

    def fingerprint(self, items_key: str) -> dict[str, Any]:
        fp: dict[str, Any] = {
            "inputs": self.inputs,
            "against": self.against,
            "evaluation_items": items_key,
            "ngram": self.ngram,
            "action": self.action,
            "format": self.format,
        }
        if self.near_dup:
            fp["near_dup"] = {"threshold": self.near_dup_threshold, "num_perm": self.near_dup_perm}
        return fp


def evaluation_items(against: list[str], data_dir: str | None) -> list[EvalItem]:
    """The items of every evaluation set named: each row's prompt with its answer (gold option or label)."""
    from instructpt.evaluate.tasks import SUITES, path_tasks, suite_tasks

    items: list[EvalItem] = []
    for spec in against:
        if spec in SUITES:
            tasks = suite_tasks(spec, data_dir, None)
            benchmark = spec
        else:
            path = Path(spec)
            if not path.exists():
                raise InputError(
                    f"--against {spec!r}: neither a domain suite ({', '.join(SUITES)}) nor an existing path"
                )
            if path.suffix == ".txt":
                lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
                items += [EvalItem(path.name, path.stem, i, ln) for i, ln in enumerate(lines) if ln]
                continue
            tasks = path_tasks(path, None)
            benchmark = path.name
        for task in tasks:
            for row in task.rows:
                answer = row.label if row.options is None else row.options[row.gold_index or 0]
                items.append(EvalItem(benchmark, task.name, row.index, f"{row.input}\n{answer}"))
    if not items:
        raise InputError(f"--against {' '.join(against)}: no evaluation item found")
    return items


class Decontaminate:
    """The map stage: one shard in, the same records out less (or flagged with) what matches the index."""

    name, unit = "decontaminate", "docs"
    headline: tuple[str, ...] = ("docs_in", "docs_out", "contaminated_docs", "contaminated_pairs", "rejected")
    renamed: dict[str, str] = {}  # noqa: RUF012

    def __init__(
        self,
        config: DecontaminateConfig,
        index: NgramIndex,
        duplicates: dict[object, Duplicate] | None = None,
    ) -> None:
        self.config, self.index, self.duplicates = config, index, duplicates or {}

    def _matches(self, fields: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The matches in ``(field name, text)`` pairs, looked up in one call: one per field and evaluation item."""
        runs = [self.index.runs(text) for _, text in fields]
        starts = np.cumsum([0] + [len(r.hashes) for r in runs])
        found = self.index.find_all(np.concatenate([r.hashes for r in runs]))
        best: dict[tuple[int, int], int] = {}  # (field, item) -> its longest (then first) shared run
        for k, w in found:
            f = int(np.searchsorted(starts, w, side="right")) - 1  # the field the run belongs to
            at = w - int(starts[f])
            if (f, k) not in best or runs[f].lengths[at] > runs[f].lengths[best[(f, k)]]:
                best[(f, k)] = at
        out = []
        for (f, k), at in sorted(best.items()):
            item = self.index.items[k]
            out.append({
                "field": fields[f][0],
                "benchmark": item.benchmark,
                "task": item.task,
                "row": item.row,
                "match": runs[f].text(at),
                "item": item.text[:MATCH_CHARS],
            })  # fmt: skip
        return out

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult:
        stats, rejects, out = Stats(), list[Reject](), list[dict[str, Any]]()
        drop = self.config.action == "drop"
        for n, row in text_rows(shard, self.name):
            if isinstance(row, Reject):
                rejects.append(row)
                continue
            stats.add("docs_in")
            rid = row_id(row, shard, n)
            dup = self.duplicates.get((shard.index, n))
            if dup is not None:
                stats.add("near_duplicates")
                progress.update(docs=1)
                detail = {"kept": dup.kept, "similarity": dup.similarity}
                if drop:
                    rejects.append(
                        Reject(rid, shard.path.name, "near_duplicate", json.dumps(detail), self.name, row)
                    )
                    continue
                row = {**row, "near_duplicate": detail}
            pairs = row.get("pairs") or []
            fields = [("text", row["text"])]
            for i, p in enumerate(pairs):
                fields += [(f"pairs[{i}].question", p["question"]), (f"pairs[{i}].answer", p["answer"])]
            found = self._matches(fields)
            in_text = [m for m in found if m["field"] == "text"]
            in_pairs: dict[int, list[dict[str, Any]]] = {}
            for m in found:
                if m["field"] != "text":
                    in_pairs.setdefault(int(m["field"][6 : m["field"].index("]")]), []).append(m)
            progress.update(docs=1)
            if not found:
                out.append(row)
                continue
            stats.add("contaminated_docs")
            stats.add("contaminated_pairs", len(in_pairs))
            for m in found:
                stats.count("contamination", f"{m['benchmark']}/{m['task']}")
            if not drop:
                out.append({**row, "contamination": found})
                continue
            if in_text:
                rejects.append(
                    Reject(rid, shard.path.name, "contaminated_text", json.dumps(in_text), self.name, row)
                )
                continue
            for i, ms in in_pairs.items():
                rejects.append(
                    Reject(
                        f"{rid}#pair{i}",
                        shard.path.name,
                        "contaminated_pair",
                        json.dumps(ms),
                        self.name,
                        pairs[i],
                    )
                )
            out.append({**row, "pairs": [p for i, p in enumerate(pairs) if i not in in_pairs]})
        stats.add("docs_out", len(out))
        return ShardResult(out, rejects, stats)


def decontaminate(config: DecontaminateConfig, plan: ShardPlan | None = None) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``."""
    shards = stage_shards(config.inputs, reader="decontaminate", producer="synthesize or templify")
    items = evaluation_items(config.against, config.data_dir)
    start = time.perf_counter()
    index, cached = cached_index(items, config.ngram, config.cache_path())
    log.info(
        "n-gram index: %d %d-grams of %d evaluation items, %.1f MB, %s in %.2f s",
        len(index), config.ngram, len(items), index.nbytes / 1e6, "loaded" if cached else "built",
        time.perf_counter() - start,
    )  # fmt: skip
    duplicates = _near_duplicates(config, shards) if config.near_dup else {}
    stage = Decontaminate(config, index, duplicates)
    return run_map_stage(stage, config, config.fingerprint(index.key), shards, plan)


def _near_duplicates(config: DecontaminateConfig, shards: list[ShardFile]) -> dict[object, Duplicate]:
    """Near-duplicates over all input shards, in order (every rank computes the same), keyed (shard, row)."""

    def records() -> Iterator[tuple[object, str, str]]:
        for shard in shards:
            for n, row in text_rows(shard, "decontaminate"):
                if not isinstance(row, Reject):
                    yield (shard.index, n), row_id(row, shard, n), row["text"]

    start = time.perf_counter()
    found = near_duplicates(records(), config.near_dup_threshold, config.near_dup_perm)
    sizes = cluster_sizes(found)
    log.info(
        "near-duplicates: %d records in %d clusters (largest %d) at Jaccard >= %.2f, in %.1f s",
        len(found), len(sizes), int(sizes.max()) if len(sizes) else 0, config.near_dup_threshold,
        time.perf_counter() - start,
    )  # fmt: skip
    return found


main = decontaminate
Config = DecontaminateConfig
