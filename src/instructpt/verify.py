"""``instructpt verify``: every input record of a synthesize run is in its output exactly once.

    instructpt verify out/pairs [--input corpus/]

Reads the inputs the way the run read them (its ``config.yaml``: text and id fields, ``--limit``, ...; ``--input``
replaces the input paths, e.g. when they moved) and counts, for every record id, where the output directory holds
it: in the data shards (a split text's pieces ``ID#k`` and further samples ``ID@sI`` count as their document, once
per shard) and in ``rejects/`` (each entry once; a rejected piece counts with its document's pieces), in finished
shards only (a shard without its done marker counts as not there). A record is *missing* when found fewer times
than the input has it (a shard not finished yet, or lost), *duplicated* when found more often or kept in the data
more than once (two processes that wrote the same record; or, with ``--id-field`` and several ranks, an id repeated
across ranks, which each rank checks only among its own shards), and *unknown* when the output holds an id the
input does not. Prints what it found; exits with code 3 when anything is missing, duplicated or unknown.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from instructpt.config import build, load_yaml, option
from instructpt.errors import ConfigError, InputError
from instructpt.io.readers import read_docs
from instructpt.io.shards import read_shard, shard_index
from instructpt.stages import RunInfo, Summary

SHOWN = 10  # ids listed per problem


@dataclass
class VerifyConfig:
    """``instructpt verify``: a synthesize output directory against its input."""

    run_dir: str = option("", "A synthesize output directory.", positional=True)
    input: list[str] = option(
        [], "The input files or directories (default: the inputs the run's config.yaml names)."
    )
    output: str = option(
        "", "Also write the counts and every id found missing, duplicated or unknown to this JSON file.",
        aliases=("-o",),
    )  # fmt: skip

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ConfigError("give the RUN_DIR to verify")


@dataclass
class Found:
    """Where the output directory holds each record id."""

    count: Counter[str] = field(default_factory=Counter)  # data shards (once per shard) and rejects
    in_data: Counter[str] = field(
        default_factory=Counter
    )  # data shards only: more than one is always a repeat
    repeated_in_shard: list[str] = field(default_factory=list)  # record ids written twice into one shard


def verify(config: VerifyConfig) -> Summary:
    start = time.monotonic()
    root = Path(config.run_dir)
    run = _run_config(root, config.input)
    expected = _input_ids(run)
    found = _output_ids(root, set(expected))
    missing = {i: n - found.count[i] for i, n in expected.items() if found.count[i] < n}
    # more often than the input has it; or kept in the data more than once: an id repeated in the input is kept
    # once and rejected as duplicate_id after that, unless ranks kept it each (they check only their own shards)
    duplicated = {
        i: extra for i, n in expected.items() if (extra := max(found.count[i] - n, found.in_data[i] - 1)) > 0
    }
    unknown = sorted(i for i in found.count if i not in expected)
    counts = {
        "records_in": sum(expected.values()),
        "records_found": sum(min(found.count[i], n) for i, n in expected.items()),
        "missing": sum(missing.values()),
        "duplicated": sum(duplicated.values()) + len(found.repeated_in_shard),
        "unknown": len(unknown),
    }
    problems = [
        _listed("missing", missing),
        _listed("duplicated", duplicated),
        _listed("written twice into one shard", Counter(found.repeated_in_shard)),
        _listed("not in the input", Counter(unknown)),
    ]
    for line in filter(None, problems):
        print(f"instructpt verify: {line}", file=sys.stderr)
    if config.output:
        found_ids = {"missing": missing, "duplicated": duplicated, "unknown": unknown,
                     "written_twice_into_one_shard": sorted(found.repeated_in_shard)}  # fmt: skip
        Path(config.output).write_text(json.dumps({"counts": counts, **found_ids}, indent=1) + "\n")
    summary = Summary(
        "verify", counts, {}, RunInfo("records", counts["records_in"], time.monotonic() - start)
    )
    summary.headline = ("records_in", "records_found", "missing", "duplicated", "unknown")
    if any(counts[k] for k in ("missing", "duplicated", "unknown")):
        raise InputError(f"{root}: {summary.line()} (listed above)")
    return summary


def _listed(what: str, ids: dict[str, int] | Counter[str]) -> str:
    if not ids:
        return ""
    shown = ", ".join(f"{i!r}" + (f" x{n}" if n > 1 else "") for i, n in islice(sorted(ids.items()), SHOWN))
    more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return f"{len(ids)} record id(s) {what}: {shown}{more}"


def _run_config(root: Path, inputs: list[str]) -> Any:
    """The synthesize config the run was made with (its config.yaml), with ``inputs`` instead of its inputs."""
    from instructpt.synthesizer.config import SynthesizeConfig

    manifest, saved = root / "manifest.json", root / "config.yaml"
    if not manifest.exists():
        raise InputError(f"{root} is not an instructpt run directory (no manifest.json)")
    stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
    if stage != "synthesize":
        raise InputError(f"verify checks synthesize output directories; {root} was written by {stage!r}")
    if not saved.exists():
        raise InputError(f"{root} has no config.yaml (no shard finished yet): nothing to verify")
    values = load_yaml(saved)
    for key in ("world_size", "rank", "overwrite"):  # which process wrote it does not matter here
        values.pop(key, None)
    values.update(output=str(root), progress=False)
    if inputs:
        values["inputs"] = list(inputs)
    return build(SynthesizeConfig, values)


def _input_ids(config: Any) -> Counter[str]:
    """How often each record id occurs among the records the run read (rejected ones included)."""
    stream = read_docs(config.inputs, config.read_options)
    if config.limit is not None:
        stream = islice(stream, config.limit)
    return Counter(d.id for d in stream)


def _output_ids(root: Path, known: set[str]) -> Found:
    found = Found()
    # finished shards only: a shard without its done marker may be half written, and counts as not there
    done = {shard_index(p) for p in (root / "done").glob("shard-*")}
    data = {shard_index(p): p for p in (root / "data").glob("shard-*") if not p.name.endswith(".tmp")}
    rejects = {shard_index(p): p for p in (root / "rejects").glob("shard-*.jsonl")}
    for index in sorted((data.keys() | rejects.keys()) & done):
        docs: set[str] = set()
        seen: set[str] = set()
        for row in read_shard(data[index]) if index in data else ():
            rid = str(row.get("id"))
            if rid in seen:
                found.repeated_in_shard.append(rid)
            seen.add(rid)
            docs.add(str(row.get("doc_id") or _document(rid, known)))
        for doc in docs:
            found.count[doc] += 1
            found.in_data[doc] += 1
        if index in rejects:
            _rejects(rejects[index], docs, known, found)
    return found


def _rejects(path: Path, docs: set[str], known: set[str], found: Found) -> None:
    """A shard's rejects: each entry once, but a rejected piece with its document's other pieces."""
    pieces: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rid = str(json.loads(line).get("id"))
        doc = _document(rid, known)
        if doc == rid:
            found.count[doc] += 1
        elif doc not in docs and doc not in pieces:  # a piece whose document has no piece in the data
            pieces.add(doc)
            found.count[doc] += 1


def _document(record_id: str, known: set[str]) -> str:
    """The input id a record id belongs to: itself, or the document of a piece (``ID#k``) or sample (``ID@sI``)."""
    if record_id in known:
        return record_id
    for sep in ("@s", "#"):
        head, mark, tail = record_id.rpartition(sep)
        if mark and tail.isdigit() and head:
            return _document(head, known)
    return record_id


main = verify
Config = VerifyConfig
