"""Read raw corpora as a stream of :class:`RawDoc` — or :class:`Reject` for every record that cannot be used.

Which files the inputs name, and their stable names, come from :mod:`.inputs`. Records without an id field get a
stable id ``{source}:{line or row}`` where ``source`` is the file's path relative to the input it was found under,
so ids do not depend on where the corpus is mounted.

Nothing is dropped silently: invalid JSON, invalid UTF-8, NUL bytes, non-object rows, missing / null / non-string /
empty text, absurdly long lines and unreadable files each come out as a ``Reject`` with a reason, keeping the line
(or row) as it was read. A parquet file or saved dataset without the text column is refused before it is read,
naming the columns it has.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from instructpt.errors import InputError
from instructpt.io.inputs import _abs, _resolve, source_names
from instructpt.records import RawDoc, Reject

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_FIELDS_SHOWN = 20  # field names listed in a missing-field reject


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    id_field: str | None = None
    split: str = "train"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    exclude: tuple[str, ...] = ()  # directories never read from (the run's own output directory)


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


def to_doc(obj: Any, source: str, n: int, options: ReadOptions, original: Any = None) -> RawDoc | Reject:
    """Validate one parsed record; ``n`` is its 1-based line or 0-based row number in ``source``; ``original`` is
    the record as read (the line's text, or the row), kept in its reject entry (default: ``obj``)."""
    original = obj if original is None else original
    rid = f"{source}:{n}"
    if not isinstance(obj, dict):
        return Reject(rid, source, "not_an_object", type(obj).__name__, "read", original)
    value = obj.get(options.id_field) if options.id_field else None
    usable = isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""
    usable = usable and _encodable(str(value))
    if usable:
        rid = str(value)
    field = options.text_field
    if field not in obj:
        fields = ", ".join(sorted(map(str, obj))[:MAX_FIELDS_SHOWN]) or "none"
        return Reject(
            rid, source, "missing_text", f"no field {field!r} (available fields: {fields})", "read", original
        )
    text = obj[field]
    if text is None:
        return Reject(rid, source, "missing_text", f"{field!r} is null", "read", original)
    if not isinstance(text, str):
        return Reject(rid, source, "text_not_string", type(text).__name__, "read", original)
    if "\x00" in text:
        return Reject(rid, source, "nul_bytes", "text contains NUL bytes", "read", original)
    if not text.strip():
        return Reject(rid, source, "empty_text", "", "read", original)
    if not _encodable(text):  # JSON may escape a lone surrogate ("\ud83d"); no UTF-8 output could hold it
        return Reject(rid, source, "invalid_unicode", "lone surrogate in the text", "read", original)
    return RawDoc(rid, text, source, id_derived=bool(options.id_field) and not usable)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def original_line(line: bytes) -> str:
    """A line as read, for its reject entry: without its line break; bytes that are not UTF-8 written as ``\\xNN``."""
    return line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")


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
    return obj if isinstance(obj, Reject) else to_doc(obj, source, n, options, original_line(line))


def parse_json_line(line: bytes, source: str, n: int, stage: str) -> Any:
    """The JSON value of line ``n`` of ``source``, or a Reject (``invalid_utf8`` / ``invalid_json``) for ``stage``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(f"{source}:{n}", source, "invalid_utf8", str(exc), stage, original_line(line))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return Reject(f"{source}:{n}", source, "invalid_json", str(exc), stage, original_line(line))


def _read_parquet(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    import pyarrow.parquet as pq

    try:
        # opened here, not by pyarrow: Python passes a name that is not UTF-8 through to the OS; pyarrow cannot
        with open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            _check_column(options.text_field, pf.schema_arrow.names, source)
            columns = [c for c in (options.text_field, options.id_field) if c and c in names]
            row = 0
            for batch in pf.iter_batches(columns=columns or None, batch_size=4096):
                for obj in batch.to_pylist():
                    yield to_doc(obj, source, row, options)
                    row += 1
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        yield Reject(
            f"{source}:file", source, "unreadable_file", f"{type(exc).__name__}: {exc}", "read", None
        )


def _check_column(field: str, columns: list[str], source: str) -> None:
    """A table without the text column holds no usable record: say so before reading it, naming its columns."""
    if field not in columns:
        shown = ", ".join(columns[:MAX_FIELDS_SHOWN]) or "none"
        raise InputError(
            f"{source} has no column {field!r} (its columns: {shown}); name the text column with --text-field"
        )


def check_columns(inputs: list[str], options: ReadOptions) -> None:
    """Check the text column of every parquet input against its schema (metadata only), before a run starts."""
    import pyarrow.parquet as pq

    for kind, location, _ in _resolve(inputs, exclude=options.exclude):
        if kind == "file" and location.endswith(".parquet"):
            try:
                with open(location, "rb") as f:
                    names = pq.ParquetFile(f).schema_arrow.names
            except Exception:  # noqa: BLE001 - an unreadable file is rejected as such when it is read
                continue
            _check_column(options.text_field, names, location)


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
    columns = getattr(ds, "column_names", None)
    if columns:  # streamed hub datasets may not know theirs before the first row
        _check_column(options.text_field, list(columns), source)
    for row, obj in enumerate(ds):
        yield to_doc(obj, source, row, options)
