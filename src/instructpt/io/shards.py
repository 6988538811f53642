"""An output directory written shard by shard, atomically, with completion markers and a config fingerprint.

Layout of ``OUT/``::

    manifest.json            stage name, fingerprint (what must match to resume), package version
    config.yaml              the resolved config of the latest run
    data/shard-00000.jsonl   records (or .parquet)
    rejects/shard-00000.jsonl  every record the stage could not use, with its reason
    stats/shard-00000.json   the shard's counters
    done/shard-00000         completion marker, written last
    stats.json               counters merged over all completed shards (+ run info)

A shard's files are written to temporary names and renamed; the marker is written after them, so a crash leaves
either a complete shard or one that the next run redoes. Re-running skips shards with markers and refuses to
resume into a directory whose fingerprint differs (the message lists what differs).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from instructpt.io.stats import Stats

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")


class ResumeError(RuntimeError):
    """The output directory cannot be used: written with another configuration, not a directory, unreadable."""


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    def write(f) -> None:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")

    _atomic_write(path, write)


_JSON_COLUMNS_KEY = b"instructpt.json_columns"


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as a parquet table; mapping-valued columns (free-form keys) are stored as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    json_cols = sorted({k for row in rows for k, v in row.items() if isinstance(v, dict)})
    if json_cols:
        rows = [{k: json.dumps(v) if k in json_cols else v for k, v in row.items()} for row in rows]
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({_JSON_COLUMNS_KEY: json.dumps(json_cols).encode()})
    _atomic_write(path, lambda f: pq.write_table(table, f, compression="zstd"))


def read_shard(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a jsonl or parquet shard written by a stage."""
    path = str(path)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        meta = pf.schema_arrow.metadata or {}
        json_cols = json.loads(meta.get(_JSON_COLUMNS_KEY, b"[]"))
        for batch in pf.iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                for k in json_cols:
                    if isinstance(row.get(k), str):
                        row[k] = json.loads(row[k])
                yield row
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class ShardedOutput:
    """The output directory of one stage run."""

    def __init__(self, root: str | Path, stage: str, fingerprint: dict[str, Any], fmt: str = "jsonl") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"--format must be one of {FORMATS}")
        self.root, self.stage, self.fingerprint, self.fmt = Path(root), stage, fingerprint, fmt
        self._check_or_create()

    def _check_or_create(self) -> None:
        try:
            self._check_or_create_dirs()
        except OSError as exc:  # a file in the way, no permission, a full disk: say so, no traceback
            raise ResumeError(f"cannot use {self.root} as the output directory: {exc}") from exc

    def _check_or_create_dirs(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ResumeError(f"{self.root} exists and is not a directory")
        manifest = self.root / "manifest.json"
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ResumeError(f"{manifest} is not a readable instructpt manifest ({exc})") from exc
            if not isinstance(old, dict):
                raise ResumeError(f"{manifest} is not an instructpt manifest")
            if old.get("stage") != self.stage:
                raise ResumeError(f"{self.root} holds output of {old.get('stage')!r}, not {self.stage!r}")
            diff = _diff(old.get("fingerprint", {}), _jsonable(self.fingerprint))
            if diff and any((self.root / "done").glob("shard-*")):
                raise ResumeError(
                    f"{self.root} was written with a different configuration ({'; '.join(diff)}); "
                    "use a new output directory, or delete this one to start over"
                )
            if diff:  # nothing finished there (a run that stopped early, say on a bad setting): start over
                log.warning("%s holds no finished shard; starting it over with this configuration", self.root)
                manifest.unlink()
        elif self.root.exists() and any(self.root.iterdir()):
            raise ResumeError(
                f"{self.root} exists, is not empty and is not an instructpt {self.stage} output"
            )
        for sub in ("data", "rejects", "stats", "done"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if not manifest.exists():
            from instructpt import __version__

            body = {"stage": self.stage, "version": __version__, "fingerprint": self.fingerprint}
            _atomic_write(manifest, lambda f: f.write(json.dumps(body, indent=2).encode()))

    @staticmethod
    def name(index: int) -> str:
        return f"shard-{index:05d}"

    def is_done(self, index: int) -> bool:
        return (self.root / "done" / self.name(index)).exists()

    def marker(self, index: int) -> str | None:
        """The completion marker's text of a finished shard; None when it is not finished."""
        path = self.root / "done" / self.name(index)
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def reopen(self, index: int) -> None:
        """Mark a finished shard unfinished, so that it is written again (first, so a crash while rewriting it
        leaves it unfinished rather than half old, half new)."""
        (self.root / "done" / self.name(index)).unlink(missing_ok=True)

    def shard_stats(self, index: int) -> Stats:
        path = self.root / "stats" / f"{self.name(index)}.json"
        return Stats.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def completed(self) -> list[int]:
        return sorted(int(p.name.split("-")[1]) for p in (self.root / "done").glob("shard-*"))

    def ids_path(self, index: int) -> Path:
        return self.root / "ids" / f"{self.name(index)}.u64"

    def read_ids(self, index: int) -> bytes | None:
        """The packed id hashes a finished shard kept; None when it stored none."""
        path = self.ids_path(index)
        return path.read_bytes() if path.exists() else None

    def data_path(self, index: int) -> Path:
        return self.root / "data" / f"{self.name(index)}.{self.fmt}"

    def write_shard(
        self,
        index: int,
        records: list[dict[str, Any]],
        rejects: list[dict[str, Any]],
        stats: Stats,
        ids: bytes | None = None,
        marker: str = "ok",
    ) -> None:
        """Write a shard's data, rejects, stats and (optionally) the packed hashes of the ids it kept, then its
        completion marker (``marker``: what the shard was made from, where a stage checks that on resume)."""
        name = self.name(index)
        if ids is not None:
            self.ids_path(index).parent.mkdir(exist_ok=True)
            _atomic_write(self.ids_path(index), lambda f: f.write(ids))
        if self.fmt == "parquet":
            write_parquet(self.data_path(index), records)  # no records: a valid table with no rows
        else:
            write_jsonl(self.data_path(index), records)
        write_jsonl(self.root / "rejects" / f"{name}.jsonl", rejects)
        stats_bytes = json.dumps(stats.to_dict(), indent=1).encode()
        _atomic_write(self.root / "stats" / f"{name}.json", lambda f: f.write(stats_bytes))
        _atomic_write(self.root / "done" / name, lambda f: f.write(marker.encode() + b"\n"))

    def merged_stats(self) -> Stats:
        total = Stats()
        for i in self.completed():
            total.merge(self.shard_stats(i))
        return total

    def write_summary(self, summary: dict[str, Any]) -> None:
        body = json.dumps(summary, indent=2, ensure_ascii=False).encode()
        _atomic_write(self.root / "stats.json", lambda f: f.write(body))


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
