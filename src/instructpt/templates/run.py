"""The ``templify`` stage: synthesize output in, instruction-augmented pre-training documents out.

    instructpt templify out/pairs -o out/augmented [--seed 0] [--layout-weights classic=0.8,dialog=0.05,...]

Each input shard (from ``synthesize``, any engine) becomes one output shard: its records are grouped by chain
(consecutive records sharing ``chain_id``) and every chain is rendered into one document with the seeded template
inventory. Same input + seed + inventory -> the same bytes, whatever the order or number of workers. Resumable
and fingerprinted like every stage; malformed records go to ``rejects/`` with their reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.config import ConfigError, option
from instructpt.io.readers import InputError, parse_json_line
from instructpt.io.shards import FORMATS, ShardedOutput, read_shard
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import AugmentedDoc, QAPair, Reject
from instructpt.templates import DEFAULT_LAYOUT_WEIGHTS, TemplifyOptions, inventory_fingerprint, render_chain

log = logging.getLogger(__name__)


@dataclass
class TemplifyConfig:
    """``instructpt templify``: synthesized pairs -> instruction-augmented pre-training documents."""

    inputs: list[str] = option([], "synthesize output directories or their shard files.", positional=True)
    output: str = option("", "Output directory (created; re-running resumes into it).", short="-o")
    seed: int = option(0, "Global seed; every chain's draws come from (seed, chain id).")
    layout_weights: dict[str, float] = option(
        dict(DEFAULT_LAYOUT_WEIGHTS), "Relative weight of each chain layout."
    )
    intro_prob: float = option(0.5, "classic layout: chance of an intro line around the context.")
    instruction_prob: float = option(0.5, "classic layout: chance of an 'answer these questions' line.")
    fewshot_rationale_prob: float = option(
        0.5, "inline_fewshot layout: chance the test item keeps its rationale."
    )
    format: str = option("jsonl", "Output shard format.", choices=FORMATS)
    progress: bool = option(True, "Show a progress bar (log lines when not on a terminal).")

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("give at least one INPUT (a synthesize output directory or shard file)")
        if not self.output:
            raise ConfigError("--output/-o is required")
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
        self.options  # noqa: B018 - validates the weights now, naming the flag on error

    @property
    def options(self) -> TemplifyOptions:
        try:
            return TemplifyOptions(
                layout_weights=dict(self.layout_weights),
                intro_prob=self.intro_prob,
                instruction_prob=self.instruction_prob,
                fewshot_rationale_prob=self.fewshot_rationale_prob,
            )
        except ConfigError as exc:
            raise ConfigError(f"--layout-weights / --*-prob: {exc}") from exc

    def fingerprint(self) -> dict[str, Any]:
        fp = {
            "inputs": self.inputs,
            "seed": self.seed,
            "layout_weights": self.layout_weights,
            "inventory": inventory_fingerprint(),
            "format": self.format,
        }
        # Recorded when not default, so output directories written before they were recorded still resume.
        for key, default in (("intro_prob", 0.5), ("instruction_prob", 0.5), ("fewshot_rationale_prob", 0.5)):
            if getattr(self, key) != default:
                fp[key] = getattr(self, key)
        if len(self.inputs) > 1:
            fp["shard_numbers"] = f"input * {STRIDE} + synthesize shard"
        return fp


STRIDE = 1_000_000  # output shard number of input k's synthesize shard i: k * STRIDE + i


def input_shards(inputs: list[str]) -> list[tuple[int, Path]]:
    """(output shard number, data shard file) of the inputs, in order; directories contribute their completed
    shards. The number comes from the input's position and the synthesize shard's own number, never from how many
    shards were finished when templify ran, so a resumed run maps every input shard to the same output shard."""
    files: list[tuple[int, Path]] = []
    for k, spec in enumerate(inputs):
        path = Path(spec)
        if path.is_file():
            if not path.name.endswith((".jsonl", ".parquet")):
                raise InputError(
                    f"input {spec!r}: templify reads the .jsonl or .parquet shards synthesize writes"
                )
            files.append((k * STRIDE, path))
        elif (path / "data").is_dir():
            done = {p.name for p in (path / "done").glob("shard-*")}
            shards = sorted(p for p in (path / "data").glob("shard-*") if p.name.split(".")[0] in done)
            if not shards:
                raise InputError(f"{spec} holds no completed shard (has synthesize finished a shard yet?)")
            files += [(k * STRIDE + int(p.name.split(".")[0].split("-")[1]), p) for p in shards]
        else:
            raise InputError(f"input {spec!r} is neither a shard file nor a synthesize output directory")
    return files


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rows(path: Path, stats: Stats, rejects: list[Reject]) -> Iterator[tuple[int, Any]]:
    """(line or row number, row) of a shard file, numbered as the readers do (jsonl lines from 1, parquet rows
    from 0); a line that is not UTF-8 JSON is rejected with its reason, not a crash."""
    if path.suffix == ".parquet":
        try:
            yield from enumerate(read_shard(path))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            rejects.append(
                Reject(f"{path.name}:file", path.name, "unreadable_file", str(exc)[:200], "templify", None)
            )
            stats.count("rejects", "unreadable_file")
        return
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = parse_json_line(line, path.name, n, "templify")
            if isinstance(row, Reject):
                rejects.append(row)
                stats.count("rejects", row.reason)
            else:
                yield n, row


def _chains(rows: Iterator[tuple[int, Any]], stats: Stats, rejects: list[Reject], source: str):
    """Group consecutive records of one chain; malformed records are rejected (and skipped)."""
    chain_id, chain = None, []
    for n, row in rows:
        example, reason = _example(row)
        if example is None:
            rejects.append(
                Reject(
                    str(row.get("id", f"{source}:{n}")) if isinstance(row, dict) else f"{source}:{n}",
                    source,
                    reason,
                    "",
                    "templify",
                    str(row)[:200],
                )
            )
            stats.count("rejects", reason)
            continue
        if chain and row["chain_id"] != chain_id:
            yield chain_id, chain
            chain = []
        chain_id = row["chain_id"]
        chain.append((row, example))
    if chain:
        yield chain_id, chain


def _example(row: Any) -> tuple[tuple[str, list[QAPair]] | None, str]:
    if not isinstance(row, dict):
        return None, "not_an_object"
    if not isinstance(row.get("id"), str) or not row["id"]:
        return None, "missing_id"
    text, pairs = row.get("text"), row.get("pairs")
    if not isinstance(text, str) or not text.strip():
        return None, "missing_text"
    if not isinstance(row.get("chain_id"), str):
        return None, "missing_chain_id"
    if not isinstance(pairs, list):
        return None, "missing_pairs"
    try:
        qa = [QAPair.from_dict(p) for p in pairs]
    except (KeyError, TypeError, AttributeError):
        return None, "malformed_pairs"
    if any(not isinstance(p.question, str) or not isinstance(p.answer, str) for p in qa):
        return None, "malformed_pairs"
    return (text, qa), ""


def _render_shard(path: Path, config: TemplifyConfig, options: TemplifyOptions, progress: Progress):
    stats, rejects, docs = Stats(), [], []
    for chain_id, members in _chains(_rows(path, stats, rejects), stats, rejects, path.name):
        rows = [r for r, _ in members]
        rendered = render_chain(
            [e for _, e in members], record_id=chain_id, seed=config.seed, options=options
        )
        docs.append(
            AugmentedDoc(
                id=chain_id,
                text=rendered.text,
                chain_id=chain_id,
                record_ids=[r["id"] for r in rows],
                source_ids=list(dict.fromkeys(r.get("doc_id") or r["id"] for r in rows)),
                layout="+".join(rendered.layouts),
                template_ids=rendered.template_ids,
                seed=config.seed,
                n_pairs=rendered.n_pairs,
                piece_ids=rendered.piece_ids,
            ).to_dict()
        )
        stats.add("chains_in")
        stats.add("records_in", len(rows))
        stats.add("pairs_in", sum(len(e[1]) for _, e in members))
        stats.add("pairs_rendered", rendered.n_pairs)
        stats.add("raw_only", int(rendered.raw_only))
        stats.update("drops", rendered.drops)
        stats.update("omitted", rendered.omitted)
        for layout in rendered.layouts:
            stats.count("layouts", layout)
        for tid in rendered.template_ids:
            stats.count("template_families", tid.split("/")[0])
        progress.update(docs=1, pairs=rendered.n_pairs)
    stats.add("documents_out", len(docs))
    return docs, rejects, stats


def templify(config: TemplifyConfig) -> dict[str, Any]:
    """Run the stage; returns the summary also written to ``OUT/stats.json``."""
    from instructpt.config import dump_yaml

    shards = input_shards(config.inputs)
    out = ShardedOutput(config.output, "templify", config.fingerprint(), config.format)
    dump_yaml(config, out.root / "config.yaml")
    options, already = config.options, len(out.completed())
    progress = Progress("templify", enabled=config.progress)
    start = time.monotonic()
    for index, path in shards:
        made_from = f"input-sha256 {_digest(path)}"
        if out.marker(index) == made_from:
            continue
        if out.is_done(index):  # its input shard changed since (synthesize --retry-errors rewrote it, say)
            log.info("%s changed since it was rendered; rendering it again", path)
            out.reopen(index)
            already -= 1
        docs, rejects, stats = _render_shard(path, config, options, progress)
        stats.add("shards")
        out.write_shard(index, docs, [r.to_dict() for r in rejects], stats, marker=made_from)
    progress.close()
    wall = time.monotonic() - start
    merged = out.merged_stats()
    summary = {
        "stage": "templify",
        **merged.to_dict(),
        "run": {
            "wall_seconds": round(wall, 3),
            "chains_this_run": progress.docs,
            "chains_per_second": round(progress.docs / wall, 1) if wall > 0 else None,
            "shards_total": len(out.completed()),
            "shards_resumed": already,
        },
    }
    out.write_summary(summary)
    return summary
