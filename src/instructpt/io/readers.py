"""Read raw corpora as a stream of :class:`RawDoc` — or :class:`Reject` for every record that cannot be used.

Inputs: jsonl / jsonl.gz / parquet files, directories of them (searched recursively, sorted), glob patterns, local
``datasets`` directories (``save_to_disk``) and HF dataset ids (streamed). Records without an id field get a stable
id ``{source}:{line or row}`` where ``source`` is the file's path relative to the input it was found under, so ids do
not depend on where the corpus is mounted (relative to the inputs' common parent when two inputs hold files of the
same name, so derived ids are always unique). A file named by several inputs is read once.

Nothing is dropped silently: invalid JSON, invalid UTF-8, NUL bytes, non-object rows, missing / non-string / empty
text, absurdly long lines and unreadable files each come out as a ``Reject`` with a reason.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.errors import InputError
from instructpt.records import RawDoc, Reject

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson", ".parquet")
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
PREVIEW = 200  # characters of a bad record kept in its reject entry


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    id_field: str | None = None
    split: str = "train"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    exclude: tuple[str, ...] = ()  # directories never read from (the run's own output directory)


def resolve_inputs(inputs: list[str], exclude: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Expand inputs into ``(kind, location)`` pairs: kind is ``file``, ``hf_disk`` or ``hf_hub``.

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
            if not wanted(path) and _is_data_file(path):
                target = path.resolve()
                link = f" (a link to {str(target)!r})" if target != _abs(spec) else ""
                raise InputError(f"input {spec!r}{link} is inside the output directory")
            add_file(spec, _abs(spec).parent)
        elif path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                add("hf_disk", spec, None, path.resolve())
                continue
            found = [p for p in path.rglob("*") if p.is_file() and _is_data_file(p)]
            files = sorted(str(p) for p in found if wanted(p))
            if not files:
                where = " outside the output directory" if found else ""
                raise InputError(f"input directory {spec!r} holds no {'/'.join(DATA_SUFFIXES)} file{where}")
            for f in files:
                add_file(f, _abs(spec))
        elif path.suffix or spec.startswith((".", "/")):
            raise InputError(f"input {spec!r} does not exist")
        else:
            add("hf_hub", spec, None, ("hub", spec))
    return out


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


def read_docs(inputs: list[str], options: ReadOptions) -> Iterator[RawDoc | Reject]:
    """Stream every input record, in a deterministic order, as a RawDoc or a Reject."""
    resolved = _resolve(inputs, warn=True, exclude=options.exclude)
    names = source_names([(loc, root) for kind, loc, root in resolved if kind == "file" and root is not None])
    # local dataset directories are named like files whose root is their parent: "wiki", or "a/wiki" and "b/wiki"
    names.update(source_names([(loc, _abs(loc).parent) for kind, loc, _ in resolved if kind == "hf_disk"]))
    for kind, location, _ in resolved:
        if kind == "file":
            reader = _read_parquet if location.endswith(".parquet") else _read_jsonl
            yield from reader(location, names[location], options)
        else:
            yield from _read_hf(kind, location, options, names.get(location, location))


def to_doc(obj: Any, source: str, n: int, options: ReadOptions) -> RawDoc | Reject:
    """Validate one parsed record; ``n`` is its 1-based line or 0-based row number in ``source``."""
    rid = f"{source}:{n}"
    if not isinstance(obj, dict):
        return Reject(rid, source, "not_an_object", type(obj).__name__, "read", _preview(obj))
    value = obj.get(options.id_field) if options.id_field else None
    usable = isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""
    usable = usable and _encodable(str(value))
    if usable:
        rid = str(value)
    if options.text_field not in obj or obj[options.text_field] is None:
        return Reject(rid, source, "missing_text", f"no field {options.text_field!r}", "read", _preview(obj))
    text = obj[options.text_field]
    if not isinstance(text, str):
        return Reject(rid, source, "text_not_string", type(text).__name__, "read", _preview(obj))
    if "\x00" in text:
        return Reject(rid, source, "nul_bytes", "text contains NUL bytes", "read", _preview(text))
    if not text.strip():
        return Reject(rid, source, "empty_text", "", "read", _preview(obj))
    if not _encodable(text):  # JSON may escape a lone surrogate ("\ud83d"); no UTF-8 output could hold it
        return Reject(rid, source, "invalid_unicode", "lone surrogate in the text", "read", _preview(text))
    return RawDoc(rid, text, source, id_derived=bool(options.id_field) and not usable)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _preview(obj: Any) -> Any:
    s = obj if isinstance(obj, str) else repr(obj)
    s = s if len(s) <= PREVIEW else s[:PREVIEW] + "..."
    return s if _encodable(s) else s.encode("utf-8", "backslashreplace").decode("utf-8")


def _open_binary(path: str) -> io.BufferedIOBase:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    return gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw


def _read_jsonl(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    try:
        with _open_binary(path) as f:
            n = 0
            while True:
                n += 1
                line = f.readline(options.max_line_bytes + 1)
                if not line:
                    return
                if len(line) > options.max_line_bytes and not line.endswith(b"\n"):
                    _skip_rest_of_line(f)
                    yield Reject(
                        f"{source}:{n}",
                        source,
                        "line_too_long",
                        f"more than {options.max_line_bytes} bytes",
                        "read",
                        None,
                    )
                    continue
                if n == 1 and line.startswith(codecs.BOM_UTF8):
                    line = line[
                        len(codecs.BOM_UTF8) :
                    ]  # files saved "with BOM" by some editors and exporters
                if line.strip():
                    yield _parse_line(line, source, n, options)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield Reject(
            f"{source}:file", source, "unreadable_file", f"{type(exc).__name__}: {exc}", "read", None
        )


def _skip_rest_of_line(f: io.BufferedIOBase) -> None:
    while True:
        chunk = f.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


def _parse_line(line: bytes, source: str, n: int, options: ReadOptions) -> RawDoc | Reject:
    obj = parse_json_line(line, source, n, "read")
    return obj if isinstance(obj, Reject) else to_doc(obj, source, n, options)


def parse_json_line(line: bytes, source: str, n: int, stage: str) -> Any:
    """The JSON value of line ``n`` of ``source``, or a Reject (``invalid_utf8`` / ``invalid_json``) for ``stage``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(
            f"{source}:{n}", source, "invalid_utf8", str(exc), stage, _preview(line[:PREVIEW].hex())
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return Reject(f"{source}:{n}", source, "invalid_json", str(exc), stage, _preview(text))


def _read_parquet(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    import pyarrow.parquet as pq

    try:
        # opened here, not by pyarrow: Python passes a name that is not UTF-8 through to the OS; pyarrow cannot
        with open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            columns = [c for c in (options.text_field, options.id_field) if c and c in names]
            row = 0
            for batch in pf.iter_batches(columns=columns or None, batch_size=4096):
                for obj in batch.to_pylist():
                    yield to_doc(obj, source, row, options)
                    row += 1
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        yield Reject(
            f"{source}:file", source, "unreadable_file", f"{type(exc).__name__}: {exc}", "read", None
        )


def _read_hf(kind: str, location: str, options: ReadOptions, name: str) -> Iterator[RawDoc | Reject]:
    try:
        import datasets
    except ImportError as exc:
        raise InputError(
            f"reading {location!r} needs the datasets package: pip install 'instructpt[hf]'"
        ) from exc
    try:
        if kind == "hf_disk":
            ds = datasets.load_from_disk(location)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[options.split]
        else:
            ds = datasets.load_dataset(location, split=options.split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - hub/network/format errors all mean "cannot read this input"
        raise InputError(f"cannot load dataset {location!r} (split {options.split!r}): {exc}") from exc
    source = f"{name}/{options.split}"
    for row, obj in enumerate(ds):
        yield to_doc(obj, source, row, options)


def count_records(inputs: list[str], max_bytes: int = 4 << 30, exclude: tuple[str, ...] = ()) -> int | None:
    """A quick record count for progress ETAs: newlines of plain jsonl, parquet row counts; None if unknown."""
    total = 0
    try:
        resolved = resolve_inputs(inputs, exclude)
        if sum(Path(loc).stat().st_size for kind, loc in resolved if kind == "file") > max_bytes:
            return None
        for kind, location in resolved:
            if kind != "file" or location.endswith(".gz"):
                return None
            if location.endswith(".parquet"):
                import pyarrow.parquet as pq

                with open(location, "rb") as f:
                    total += pq.ParquetFile(f).metadata.num_rows
                continue
            with open(location, "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except Exception:  # noqa: BLE001 - an estimate only; reading errors are reported by read_docs
        return None
    return total
