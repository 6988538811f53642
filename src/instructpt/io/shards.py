"""A run directory written shard by shard, atomically, with completion markers; and reading such shards back.

Layout of ``OUT/`` (besides the run directory's own ``manifest.json``, ``config.yaml``, ``stats.json``)::

    data/shard-00000.jsonl     records (or .parquet)
    rejects/shard-00000.jsonl  every record the stage could not use, with its reason
    stats/shard-00000.json     the shard's counters
    ids/shard-00000.u64        (synthesize --id-field) hashes of the ids the shard kept
    done/shard-00000           completion marker, written last (its text: what the shard was made from)

A shard's files are written to temporary names and renamed; the marker is written after them, so a crash leaves
either a complete shard or one that the next run redoes. This module alone knows these names: later stages find
a run's finished shards with :func:`finished_shards` and read them with :func:`read_rows` / :func:`read_records`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from instructpt.errors import ConfigError, InputError, ResumeError
from instructpt.io.readers import original_line, parse_json_line
from instructpt.io.rundir import RunDir, atomic_write
from instructpt.io.stats import Stats
from instructpt.records import KEY_VALUE_COLUMNS, Reject

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")
_JSON_COLUMNS_KEY = b"instructpt.json_columns"
R = TypeVar("R")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_index(path: Path) -> int:
    """The number in a shard file's name (``shard-00012.jsonl`` -> 12)."""
    return int(path.name.split(".")[0].split("-")[1])


# ---- writing ----
def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    def write(f: IO[bytes]) -> None:
        for (
            row
        ) in rows:  # default=str: a rejected row as read may hold values JSON has no type for (bytes, dates)
            f.write(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8") + b"\n")

    atomic_write(path, write)


def write_parquet(path: Path, rows: Sequence[Mapping[str, Any]], schema: Any = None) -> None:
    """Rows as a parquet table with ``schema`` when given (typed columns); without one, the schema is inferred and
    mapping-valued columns (free-form keys) are stored as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is not None:
        pairs = json.loads((schema.metadata or {}).get(KEY_VALUE_COLUMNS, b"{}"))
        if pairs:  # mappings stored as lists of {key, value} structs
            rows = [{**row, **{c: [{k: a, v: b} for a, b in (row.get(c) or {}).items()]
                               for c, (k, v) in pairs.items() if c in row}} for row in rows]  # fmt: skip
        typed = pa.Table.from_pylist(list(rows), schema=schema)
        atomic_write(path, lambda f: pq.write_table(typed, f, compression="zstd"))
        return
    json_cols = sorted({k for row in rows for k, v in row.items() if isinstance(v, dict)})
    if json_cols:
        rows = [{k: json.dumps(v) if k in json_cols else v for k, v in row.items()} for row in rows]
    # from_pylist takes the columns of the first row only: a key that only later rows have would be lost
    table = pa.Table.from_struct_array(pa.array(list(rows))) if rows else pa.Table.from_pylist([])
    table = table.replace_schema_metadata({_JSON_COLUMNS_KEY: json.dumps(json_cols).encode()})
    atomic_write(path, lambda f: pq.write_table(table, f, compression="zstd"))


class ShardedOutput(RunDir):
    """The output directory of a sharded stage run.

    ``renamed`` maps counter names that earlier versions wrote in shard stats to today's, so a directory they
    wrote resumes with one vocabulary; a shard stats file without ``rejected`` gets it from its rejects by reason.
    """

    SUBDIRS = ("data", "rejects", "stats", "done")
    EXTRA_DIRS = ("ids",)
    OWN_FILES: tuple[str, ...] = (*RunDir.OWN_FILES, "README.md")  # the dataset card (io/card.py)

    def __init__(
        self,
        root: str | Path,
        stage: str,
        fingerprint: dict[str, Any],
        fmt: str = "jsonl",
        renamed: Mapping[str, str] | None = None,
        schema: Callable[[], Any] | None = None,
        **kw: Any,
    ) -> None:
        """``schema``: the pyarrow schema of the records in parquet shards (default: inferred, with mapping-valued
        columns as JSON text); other keywords go to :class:`RunDir` (``inputs``, ``overwrite``)."""
        if fmt not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
        self.fmt, self.schema = fmt, schema
        self.renamed = dict(renamed or {})
        self.config: Any = None  # written as config.yaml with the first shard this run writes
        self.written = 0  # shards written by this run
        super().__init__(root, stage, fingerprint, **kw)
        if fmt == "parquet" and schema is not None and self._untyped_shards():
            log.info(
                "%s holds parquet shards of an earlier version (mappings as JSON text): writing the same",
                root,
            )
            self.schema = None  # one schema across the directory, so it reads as one dataset

    def has_results(self) -> bool:
        return any((self.root / "done").glob("shard-*"))

    def _untyped_shards(self) -> bool:
        """Whether finished parquet shards here store mapping columns as JSON text (written before typed schemas)."""
        import pyarrow.parquet as pq

        for shard in finished_shards(self.root)[:1]:
            if shard.path.suffix == ".parquet":
                return _JSON_COLUMNS_KEY in (pq.read_schema(shard.path).metadata or {})
        return False

    name = staticmethod(shard_name)

    def _done(self, index: int) -> Path:
        return self.root / "done" / shard_name(index)

    def is_done(self, index: int) -> bool:
        return self._done(index).exists()

    def marker(self, index: int) -> str | None:
        """The completion marker's text of a finished shard; None when it is not finished."""
        path = self._done(index)
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def reopen(self, index: int) -> None:
        """Mark a finished shard unfinished, so that it is written again (first, so a crash while rewriting it
        leaves it unfinished rather than half old, half new)."""
        self._done(index).unlink(missing_ok=True)

    def completed_shards(self) -> list[int]:
        return sorted(int(p.name.split("-")[1]) for p in (self.root / "done").glob("shard-*"))

    def shard_stats(self, index: int) -> Stats:
        path = self.root / "stats" / f"{shard_name(index)}.json"
        stats = Stats.from_dict(json.loads(path.read_text(encoding="utf-8")))
        for old, new in self.renamed.items():
            if old in stats.counts:
                value = stats.counts.pop(old)
                if new:
                    stats.counts[new] += value
        if "rejected" not in stats.counts:
            stats.counts["rejected"] = sum(stats.by.get("rejects", {}).values())
        return stats

    def first_reject_detail(self) -> str:
        """``reason: detail`` of the first reject of the most frequent reason (a hint for the user)."""
        reasons: dict[str, int] = dict(self.merged_stats().by.get("rejects", {}))
        top = max(reasons, key=lambda r: (reasons[r], r)) if reasons else None
        for path in sorted((self.root / "rejects").glob("shard-*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    entry = json.loads(line)
                    if entry.get("reason") == top:
                        return f"{entry.get('id')}: {top}" + (
                            f" ({entry['detail']})" if entry.get("detail") else ""
                        )
        return str(top)

    def merged_stats(self) -> Stats:
        total = Stats()
        for i in self.completed_shards():
            total.merge(self.shard_stats(i))
        return total

    def ids_path(self, index: int) -> Path:
        return self.root / "ids" / f"{shard_name(index)}.u64"

    def read_ids(self, index: int) -> bytes | None:
        """The packed id hashes a finished shard kept; None when it stored none."""
        path = self.ids_path(index)
        return path.read_bytes() if path.exists() else None

    def data_path(self, index: int) -> Path:
        return self.root / "data" / f"{shard_name(index)}.{self.fmt}"

    def write_shard(
        self,
        index: int,
        records: Sequence[Mapping[str, Any]],
        rejects: Sequence[Reject],
        stats: Stats,
        ids: bytes | None = None,
        marker: str = "ok",
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a shard's data, rejects, stats and (optionally) the packed hashes of the ids it kept, then its
        completion marker (``marker``: what the shard was made from, where a stage checks that on resume).
        ``files``: more data files of the shard, ``data/shard-NNNNN{suffix}`` per ``suffix -> bytes`` (pack's
        token array).

        The platform counts what every stage reports alike: ``shards``, ``rejected`` and rejects by reason."""
        try:
            self._write_shard(index, records, rejects, stats, ids, marker, files or {})
        except OSError as exc:  # a read-only directory, a full disk: one clear line; finished shards are kept
            raise ResumeError(f"cannot write shard {index} in {self.root}: {exc}") from exc
        self.written += 1

    def _write_shard(
        self,
        index: int,
        records: Sequence[Mapping[str, Any]],
        rejects: Sequence[Reject],
        stats: Stats,
        ids: bytes | None,
        marker: str,
        files: Mapping[str, bytes],
    ) -> None:
        if self.written == 0 and self.config is not None:
            self.write_config(self.config)
        name = shard_name(index)
        stats.add("shards")
        stats.add("rejected", len(rejects))
        for r in rejects:
            stats.count("rejects", r.reason)
        if ids is not None:
            self.ids_path(index).parent.mkdir(exist_ok=True)
            atomic_write(self.ids_path(index), ids)
        for suffix, data in files.items():
            atomic_write(self.root / "data" / f"{name}{suffix}", data)
        if self.fmt == "parquet":  # no records: a valid table with no rows
            write_parquet(self.data_path(index), records, self.schema() if self.schema else None)
        else:
            write_jsonl(self.data_path(index), records)
        write_jsonl(self.root / "rejects" / f"{name}.jsonl", [r.to_dict() for r in rejects])
        atomic_write(self.root / "stats" / f"{name}.json", json.dumps(stats.to_dict(), indent=1).encode())
        atomic_write(self._done(index), marker.encode() + b"\n")


# ---- reading back ----
@dataclass(frozen=True)
class ShardFile:
    """One finished shard of a run directory (or a shard file named directly): its number and data file."""

    index: int
    path: Path


def finished_shards(root: str | Path) -> list[ShardFile]:
    """The data files of the finished shards of a sharded run directory, by shard number; ``[]`` when it holds
    none. Shards without a completion marker (still being written, or cut short) are left out."""
    root = Path(root)
    done = {p.name for p in (root / "done").glob("shard-*")}
    files = sorted(
        p
        for p in (root / "data").glob("shard-*")
        if p.name.split(".")[0] in done and p.suffix in (".jsonl", ".parquet")
    )
    return [ShardFile(shard_index(p), p) for p in files]


STRIDE = 1_000_000  # the shard number of input k's shard i, for a stage that reads several: k * STRIDE + i


def stage_shards(inputs: list[str], reader: str, producer: str) -> list[ShardFile]:
    """The shard files an earlier stage (``producer``) wrote, numbered for ``reader``'s output, in input order: a
    run directory gives its finished shards, a shard file itself. The number comes from the input's position and
    the shard's own number, never from how many shards were finished when the reader ran, so a resumed run maps
    every input shard to the same output shard."""
    files: list[ShardFile] = []
    for k, spec in enumerate(inputs):
        path = Path(spec)
        if path.is_file():
            if not path.name.endswith((".jsonl", ".parquet")):
                raise InputError(
                    f"input {spec!r}: {reader} reads the .jsonl or .parquet shards {producer} writes"
                )
            files.append(ShardFile(k * STRIDE, path))
        elif is_run_dir(path):
            shards = finished_shards(path)
            if not shards:
                raise InputError(f"{spec} holds no completed shard (has {producer} finished a shard yet?)")
            files += [ShardFile(k * STRIDE + sh.index, sh.path) for sh in shards]
        else:
            raise InputError(f"input {spec!r} is neither a shard file nor a {producer} output directory")
    return files


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like a sharded stage's output directory."""
    return (Path(path) / "data").is_dir()


def read_shard(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a jsonl or parquet shard written by a stage (strict: a bad line raises)."""
    path = str(path)
    if path.endswith(".parquet"):
        yield from _parquet_rows(path)
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _parquet_rows(path: str) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.schema_arrow.metadata or {}
    json_cols = json.loads(meta.get(_JSON_COLUMNS_KEY, b"[]"))  # the untyped form: mappings as JSON text
    map_cols = [f.name for f in pf.schema_arrow if pa.types.is_map(f.type)]  # read back as (key, value) lists
    pairs = json.loads(meta.get(KEY_VALUE_COLUMNS, b"{}"))  # lists of {key, value} structs
    for batch in pf.iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            for k in json_cols:
                if isinstance(row.get(k), str):
                    row[k] = json.loads(row[k])
            for k in map_cols:
                if row.get(k) is not None:
                    row[k] = dict(row[k])
            for c, (key, value) in pairs.items():
                if row.get(c) is not None:
                    row[c] = {item[key]: item[value] for item in row[c]}
            yield row


def read_rows(path: Path, stage: str) -> Iterator[tuple[int, Any, Any]]:
    """``(n, row, original)`` of a shard file, numbered as the readers number input records (jsonl lines from 1,
    parquet rows from 0); ``original`` is the line's text as read (jsonl) or the row (parquet), for reject entries.
    A line that is not UTF-8 JSON, or a parquet file that cannot be read, comes out as a ``Reject`` of ``stage``
    with its reason instead of a crash."""
    if path.suffix == ".parquet":
        try:
            for n, row in enumerate(_parquet_rows(str(path))):
                yield n, row, row
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            yield (
                -1,
                Reject(f"{path.name}:file", path.name, "unreadable_file", str(exc)[:200], stage, None),
                None,
            )
        return
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, parse_json_line(line, path.name, n, stage), original_line(line)


def read_records(path: Path, parse: Callable[[Any], R | str], stage: str) -> Iterator[R | Reject]:
    """Typed records of a shard file: what ``parse(row)`` gives, or a ``Reject`` (with the row) where it gives a
    reason string instead, or where the row could not be read at all."""
    source = path.name
    for n, row, original in read_rows(path, stage):
        if isinstance(row, Reject):
            yield row
            continue
        parsed = parse(row)
        if isinstance(parsed, str):
            rid = (
                row["id"]
                if isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"]
                else f"{source}:{n}"
            )
            yield Reject(rid, source, parsed, "", stage, original)
        else:
            yield parsed
