"""Which files the inputs name, what to call them, and what they held when a run started.

Inputs: jsonl / ndjson / json (JSON lines, or one JSON array) / csv / tsv files, each plain or compressed (``.gz``,
``.zst``: the name says which), parquet files, directories of them (searched recursively, sorted), glob patterns,
local ``datasets`` directories (``save_to_disk``), local dataset repositories (a ``README.md`` header declaring
``configs:``) and HF dataset ids. A file named by several inputs is read once.
A file of another kind named on its own is refused with the list of supported kinds; in a directory such files are
left out (and counted in a warning).

:func:`input_files` records each file's size and hashes of its first and last MiB, so a resumed run can tell that
a file was added, removed, grown, shrunk or replaced (a file that was only touched resumes).
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from instructpt.errors import InputError
from instructpt.io.hf import is_dataset_repo

log = logging.getLogger(__name__)

DATA_SUFFIXES = (
    ".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson", ".ndjson.gz", ".ndjson.zst",
    ".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz", ".tsv.zst", ".parquet",
)  # fmt: skip
COMPRESSED = (".gz", ".zst")


def resolve_inputs(inputs: list[str], exclude: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Expand inputs into ``(kind, location)`` pairs: kind is ``file``, ``hf_disk``, ``hf_repo`` or ``hf_hub``.

    A file named by two inputs (a directory and a glob inside it, or the same path twice) is read once, where it
    first appears. Raises :class:`InputError` for names that match nothing (the message says what was tried).
    Files under an ``exclude`` directory are left out: an output directory inside an input directory is not read
    back as input.
    """
    return [(kind, location) for kind, location, _ in _resolve(inputs, exclude=exclude)]


def _resolve(
    inputs: list[str], warn: bool = False, exclude: tuple[str, ...] = ()
) -> list[tuple[str, str, Path | None]]:
    """``(kind, location, root)`` per input; ``root`` is the directory a file's name is taken from (None else)."""
    out: list[tuple[str, str, Path | None]] = []
    seen: set[object] = set()
    excluded = [Path(d).resolve() for d in exclude]

    def wanted(p: Path) -> bool:
        return _is_data_file(p) and not any(p.resolve().is_relative_to(d) for d in excluded)

    def add(kind: str, location: str, root: Path | None, key: object) -> None:
        if key in seen:
            if warn:
                log.warning("input %s is named by more than one input; it is read once", location)
            return
        seen.add(key)
        out.append((kind, location, root))

    def add_file(location: str, root: Path) -> None:
        add("file", location, root, Path(location).resolve())

    for spec in inputs:
        path = Path(spec)
        if any(ch in spec for ch in "*?[") and not path.exists():  # a file may have "[" in its name
            matches = sorted(p for p in glob.glob(spec, recursive=True) if wanted(Path(p)))
            if not matches:
                raise InputError(f"input pattern {spec!r} matches no {'/'.join(DATA_SUFFIXES)} file")
            root = _abs(re.split(r"[*?\[]", spec, maxsplit=1)[0] or ".")
            root = root if root.is_dir() else root.parent
            for m in matches:
                add_file(m, root)
        elif path.is_file():
            if not _is_data_file(path):
                raise InputError(
                    f"input {spec!r} is not a supported file: supported are {', '.join(DATA_SUFFIXES)} files, "
                    "directories of them, local datasets directories and HF dataset ids"
                )
            if not wanted(path):
                target = path.resolve()
                link = f" (a link to {str(target)!r})" if target != _abs(spec) else ""
                raise InputError(f"input {spec!r}{link} is inside the output directory")
            add_file(spec, _abs(spec).parent)
        elif path.is_dir():
            kind = _dir_kind(spec, excluded)
            if kind != "file":
                add(kind, spec, None, path.resolve())
                continue
            for f in _dir_files(spec, wanted, warn):
                add_file(f, _abs(spec))
        elif path.suffix or spec.startswith((".", "/")):
            raise InputError(f"input {spec!r} does not exist")
        else:
            add("hf_hub", spec, None, ("hub", spec))
    return out


def _dir_kind(spec: str, excluded: list[Path]) -> str:
    """What an input directory is: ``hf_disk`` (``save_to_disk``), ``hf_repo`` (a dataset repository) or ``file``
    (a directory of data files). The output directory, or one inside it, is refused as an input."""
    path = Path(spec)
    inside = [d for d in excluded if path.resolve().is_relative_to(d)]
    if inside:
        where = "the output directory" if path.resolve() in inside else "inside the output directory"
        raise InputError(f"input {spec!r} is {where}; write the output somewhere else")
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        return "hf_disk"
    return "hf_repo" if is_dataset_repo(path) else "file"


def _dir_files(spec: str, wanted: Any, warn: bool) -> list[str]:
    """The data files under directory ``spec`` (sorted); files of other kinds are left out, and said."""
    found: list[Path] = []
    others: list[Path] = []
    for p in Path(spec).rglob("*"):
        if p.is_file():
            (found if _is_data_file(p) else others).append(p)
    files = sorted(str(p) for p in found if wanted(p))
    if not files:
        where = " outside the output directory" if found else ""
        raise InputError(f"input directory {spec!r} holds no {'/'.join(DATA_SUFFIXES)} file{where}")
    shown = [p.name for p in others if not p.name.startswith(".") and not _is_doc(p)]
    if warn and shown:
        log.warning(
            "%s: %d file(s) of other kinds are not read (%s); supported: %s",
            spec, len(shown), ", ".join(sorted(shown)[:5]), ", ".join(DATA_SUFFIXES),
        )  # fmt: skip
    return files


def _is_doc(p: Path) -> bool:
    """A corpus's own documentation (not worth a warning when left out)."""
    return p.suffix.lower() == ".md" or p.stem.upper() in ("README", "LICENSE", "NOTICE")


def _abs(path: str) -> Path:
    """An absolute, normalized path with symlinks left as they are (names must not depend on link targets)."""
    return Path(os.path.abspath(path))


def _is_data_file(p: Path) -> bool:
    return p.name.endswith(DATA_SUFFIXES)


def source_names(files: list[tuple[str, Path]]) -> dict[str, str]:
    """The stable name of each ``(location, root)`` file: its path relative to the input it was found under.

    When two files would share a name (``a/x.jsonl`` and ``b/x.jsonl`` given as inputs ``a`` and ``b``), every file
    is named relative to the common parent of all the roots instead, so names (and the ids derived from them)
    stay unique.
    """
    names = {loc: _printable(_abs(loc).relative_to(root).as_posix()) for loc, root in files}
    if len(set(names.values())) == len(names):
        return names
    common = Path(os.path.commonpath([str(root) for _, root in files]))
    names = {loc: _printable(_abs(loc).relative_to(common).as_posix()) for loc, _ in files}
    return _unique(names)


def _unique(names: dict[str, str]) -> dict[str, str]:
    """Names made unique by a ``~2``, ``~3``... suffix on later repeats (in location order). Only escaped names
    can repeat here: a name with the byte E9 and one with the characters ``\\xe9`` are both ``\\xe9``."""
    seen: dict[str, int] = {}
    taken = set(names.values())
    out = {}
    for loc in sorted(names, key=os.fsencode):
        name = names[loc]
        if name in seen:
            k = seen[name] + 1
            while f"{name}~{k}" in taken:
                k += 1
            seen[name] = k
            name = f"{name}~{k}"
            taken.add(name)
        else:
            seen[name] = 1
        out[loc] = name
    return out


def _printable(name: str) -> str:
    """A file name that is not valid UTF-8 (its bytes arrive as lone surrogates) with those bytes written as
    ``\\xNN``: the name goes into ids and UTF-8 output, which cannot hold surrogates."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def count_records(inputs: list[str], max_bytes: int = 4 << 30, exclude: tuple[str, ...] = ()) -> int | None:
    """A quick record count for progress ETAs: newlines of plain JSON lines, parquet row counts; None if unknown
    (HF datasets, compressed files, CSV / TSV and JSON arrays: counting them means reading them)."""
    total = 0
    try:
        resolved = resolve_inputs(inputs, exclude)
        if sum(Path(loc).stat().st_size for kind, loc in resolved if kind == "file") > max_bytes:
            return None
        for kind, location in resolved:
            if kind != "file" or location.endswith((*COMPRESSED, ".csv", ".tsv")):
                return None
            if location.endswith(".parquet"):
                import pyarrow.parquet as pq

                with open(location, "rb") as f:
                    total += pq.ParquetFile(f).metadata.num_rows
                continue
            with open(location, "rb") as f:
                head = f.read(JSON_ARRAY_WINDOW)
                if location.endswith(".json") and json_array_start(head):
                    return None
                total += head.count(b"\n")
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except Exception:  # noqa: BLE001 - an estimate only; reading errors are reported by read_docs
        return None
    return total


def input_bytes(inputs: list[str], exclude: tuple[str, ...] = ()) -> int | None:
    """The size of the input files together, for a progress estimate (:class:`ReadMeter`); None when an input is
    a dataset (no files to measure) or they cannot be listed."""
    try:
        resolved = resolve_inputs(inputs, exclude)
        if any(kind != "file" for kind, _ in resolved):
            return None
        return sum(Path(loc).stat().st_size for _, loc in resolved)
    except Exception:  # noqa: BLE001 - an estimate only; reading errors are reported by read_docs
        return None


class ReadMeter:
    """The bytes of the input files read so far, as stored (compressed bytes for ``.gz`` / ``.zst``): with their
    total size it estimates how many records the inputs hold where counting them would mean reading them."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes, self.done = total_bytes, 0
        self._current: IO[bytes] | None = None

    @staticmethod
    @contextlib.contextmanager
    def reading(meter: ReadMeter | None, f: IO[bytes]) -> Iterator[None]:
        """Count the bytes read from ``f`` (a file as stored) while the block runs; nothing when ``meter`` is None."""
        if meter is None:
            yield
            return
        meter._current = f
        try:
            yield
        finally:
            meter.done += meter._tell()
            meter._current = None

    def _tell(self) -> int:
        try:
            return self._current.tell() if self._current is not None and not self._current.closed else 0
        except (OSError, ValueError):
            return 0

    def fraction(self) -> float:
        """The share of the input bytes read, 0 to 1."""
        return min(1.0, (self.done + self._tell()) / self.total_bytes) if self.total_bytes > 0 else 0.0


JSON_ARRAY_WINDOW = 1 << 20  # a .json file whose first MiB is all whitespace is read as JSON lines


def json_array_start(head: bytes) -> bool:
    """Whether a ``.json`` file that starts with ``head`` (its first :data:`JSON_ARRAY_WINDOW` bytes) holds one
    JSON array rather than JSON lines: its first byte after a UTF-8 BOM and whitespace is ``[``."""
    return head.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"["


# ---- what the input files held when a run started ----
HASHED_BYTES = 1 << 20  # hashed at each end of a file


def _file_state(path: Path) -> dict[str, Any]:
    """Size and hashes of the first and last MiB: enough to tell a file grown, shrunk or replaced from one that was
    only touched, without reading all of it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(HASHED_BYTES)).hexdigest()[:16]
            f.seek(max(0, size - HASHED_BYTES))
            tail = hashlib.sha256(f.read(HASHED_BYTES)).hexdigest()[:16]
    except (
        OSError
    ) as exc:  # the reader rejects it as unreadable_file; the state says so, for the resume check
        return {"unreadable": type(exc).__name__}
    return {"size": size, "head": head, "tail": tail}


def local_files(locations: list[str | None], exclude: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``path -> {size, head, tail}`` of every file of the local files and directories named (any kind of file: a
    model directory, task files), leaving out what lies under ``exclude``; names that are not local paths (hub ids)
    are left out."""
    skip = [Path(d).resolve() for d in exclude]
    out: dict[str, dict[str, Any]] = {}
    for location in locations:
        root = Path(location) if location else None
        if root is None or not root.exists():
            continue
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            if not any(p.resolve().is_relative_to(d) for d in skip):
                out[str(p)] = _file_state(p)
    return out


def input_files(inputs: list[str], exclude: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``path -> {size, head, tail}`` of every file the inputs name (the files of a local dataset directory
    included). HF hub ids are not files: they are recorded by name only (``{}``)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, location, _ in _resolve(inputs, exclude=exclude):
        if kind == "file":
            out[location] = _file_state(Path(location))
        elif kind in ("hf_disk", "hf_repo"):
            for p in sorted(Path(location).rglob("*")):
                if p.is_file():
                    out[str(p)] = {**_file_state(p), "dataset": kind}
        else:
            out[location] = {}
    return out


LEGACY_SUFFIXES = (
    ".jsonl",
    ".jsonl.gz",
    ".json",
    ".ndjson",
    ".parquet",
)  # what 0.1 read (.json as JSON lines)


def legacy_differences(files: dict[str, dict[str, Any]]) -> list[str]:
    """Input files that instructpt 0.1 did not read, or read otherwise (a ``.json`` array): a run directory 0.1
    wrote from these inputs does not hold what today's readers give, so it must not be resumed."""
    out = []
    for path in sorted(files):
        if files[path].get("dataset") or not files[path]:  # a dataset's own files; hub ids
            continue
        if not path.endswith(LEGACY_SUFFIXES):
            out.append(f"{path} (not read by 0.1)")
        elif path.endswith(".json") and json_array_start(_head(Path(path))):
            out.append(f"{path} (a JSON array; 0.1 read it as JSON lines)")
    return out


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HASHED_BYTES)
    except OSError:
        return b""


def input_changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """What changed between two :func:`input_files` records, one line per file (empty: nothing)."""
    changes = [f"added {p}" for p in sorted(set(new) - set(old))]
    changes += [f"removed {p}" for p in sorted(set(old) - set(new))]
    for p in sorted(set(old) & set(new)):
        a, b = old[p], new[p]
        if a == b:
            continue
        if a.get("size") != b.get("size"):
            how = "grew" if (b.get("size") or 0) > (a.get("size") or 0) else "shrank"
            changes.append(f"{p} {how} ({a.get('size')} -> {b.get('size')} bytes)")
        else:
            changes.append(f"{p} was replaced (same size, other content)")
    return changes
