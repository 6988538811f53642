"""Read raw corpora as a stream of :class:`RawDoc` — or :class:`Reject` for every record that cannot be used.

Formats, by file name: ``.jsonl`` / ``.ndjson`` (JSON lines); ``.json`` (a JSON array of records if its first byte
after whitespace is ``[``, else JSON lines); ``.csv`` / ``.tsv`` with a header row (a record per row, column ->
string; quoted fields may hold delimiters and line breaks); ``.parquet``. All but parquet may be compressed: ``.gz``
or ``.zst`` (zstd, by pyarrow). A JSON array is read into memory whole (arrays are usually small exports; large
corpora belong in JSON lines); everything else streams.

Which files the inputs name, and their stable names, come from :mod:`.inputs`. Records without an id field get a
stable id ``{source}:{n}``: ``source`` is the file's path relative to the input it was found under (ids do not
depend on where the corpus is mounted), ``n`` the line or CSV data row (from 1, blank lines are not rows) or the
array element or parquet row (from 0). Fields named in ``keep_fields`` (``--keep-fields``) go into ``RawDoc.fields``
where a record has them (absent or null: left out). HF datasets: :mod:`.hf`.

Nothing is dropped silently: invalid JSON, invalid UTF-8, NUL bytes, non-object rows, missing / null / non-string /
empty text, absurdly long lines (or CSV fields), CSV rows of the wrong length (``malformed_row``) and unreadable
files each come out as a ``Reject`` with a reason, keeping the record as it was read (the line, array element or
CSV row; the row's lines if it could not be parsed). A whole file that fails (unreadable, or a JSON array that is
not valid JSON) is one reject ``{source}:file``. A parquet, CSV or TSV file or saved dataset without the text
column is refused before it is read, naming the columns it has.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from instructpt.errors import InputError
from instructpt.io.hf import DatasetSpec, open_dataset
from instructpt.io.inputs import JSON_ARRAY_WINDOW, ReadMeter, _abs, _resolve, json_array_start, source_names
from instructpt.records import RawDoc, Reject, utf8_encodable

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
    keep_fields: tuple[str, ...] = ()  # input fields carried into RawDoc.fields where a record has them
    dataset: DatasetSpec | None = None  # hub ids and dataset repositories: config, revision, data files
    meter: ReadMeter | None = field(default=None, compare=False)  # counts the bytes read (progress estimates)


def read_docs(inputs: list[str], options: ReadOptions) -> Iterator[RawDoc | Reject]:
    """Stream every input record, in a deterministic order, as a RawDoc or a Reject."""
    resolved = _resolve(inputs, warn=True, exclude=options.exclude)
    names = source_names([(loc, root) for kind, loc, root in resolved if kind == "file" and root is not None])
    # local dataset directories are named like files whose root is their parent: "wiki", or "a/wiki" and "b/wiki"
    dirs = [(loc, _abs(loc).parent) for kind, loc, _ in resolved if kind in ("hf_disk", "hf_repo")]
    names.update(source_names(dirs))
    for kind, location, _ in resolved:
        if kind == "file":
            yield from _read_file(location, names[location], options)
        else:
            yield from _read_hf(kind, location, options, names.get(location, location))


def to_doc(obj: Any, source: str, n: int, options: ReadOptions, original: Any = None) -> RawDoc | Reject:
    """Validate one parsed record; ``n`` is its 1-based line (or CSV row) or 0-based row (or element) in ``source``;
    ``original`` is the record as read (the line's text, or the row), kept in its reject entry (default: ``obj``)."""
    original = obj if original is None else original
    rid = f"{source}:{n}"
    if not isinstance(obj, dict):
        return Reject(rid, source, "not_an_object", type(obj).__name__, "read", original)
    value = obj.get(options.id_field) if options.id_field else None
    usable = isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""
    usable = usable and utf8_encodable(str(value))
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
    if not utf8_encodable(text):  # JSON may escape a lone surrogate ("\ud83d"); no UTF-8 output could hold it
        return Reject(rid, source, "invalid_unicode", "lone surrogate in the text", "read", original)
    kept = {k: obj[k] for k in options.keep_fields if obj.get(k) is not None and k != field}
    return RawDoc(rid, text, source, id_derived=bool(options.id_field) and not usable, fields=kept or None)


def original_line(line: bytes) -> str:
    """A line as read, for its reject entry: without its line break; bytes that are not UTF-8 written as ``\\xNN``."""
    return line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")


_READ_ERRORS = (OSError, EOFError)  # gzip.BadGzipFile and pyarrow's zstd errors are OSErrors


def _format(path: str) -> str:
    """A data file's format by its name: ``parquet``, ``csv``, ``tsv``, ``json`` (an array or JSON lines) or
    ``jsonl`` (``.ndjson`` too); a ``.gz`` / ``.zst`` ending names the compression."""
    fmt = path.removesuffix(".gz").removesuffix(".zst").rpartition(".")[2]
    return "jsonl" if fmt == "ndjson" else fmt


def _read_file(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    fmt = _format(path)
    if fmt == "parquet":
        return _read_parquet(path, source, options)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, source, options, "\t" if fmt == "tsv" else ",")
    return _read_jsonl(path, source, options, arrays=fmt == "json")


@contextlib.contextmanager
def _open_binary(path: str, meter: ReadMeter | None = None) -> Iterator[io.BufferedReader | gzip.GzipFile]:
    """The bytes of a file, decompressed as its name says (``.gz``: gzip, ``.zst``: zstd); ``meter`` counts the
    bytes of the file itself (compressed) read."""
    # opened here, not by pyarrow: Python passes a name that is not UTF-8 through to the OS; pyarrow cannot
    with open(path, "rb") as raw, ReadMeter.reading(meter, raw):
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as f:
                yield f
        elif path.endswith(".zst"):
            import pyarrow as pa

            with io.BufferedReader(pa.CompressedInputStream(raw, "zstd"), 1 << 20) as z:
                yield z
        else:
            yield raw


def _unreadable(source: str, exc: BaseException) -> Reject:
    return Reject(f"{source}:file", source, "unreadable_file", f"{type(exc).__name__}: {exc}", "read", None)


def _read_jsonl(path: str, source: str, options: ReadOptions, arrays: bool) -> Iterator[RawDoc | Reject]:
    """JSON lines; with ``arrays`` (a ``.json`` file), one JSON array where the file starts with ``[``."""
    try:
        if arrays:
            with _open_binary(path) as f:  # opened again to read: a zstd stream cannot go back
                arrays = json_array_start(f.read(JSON_ARRAY_WINDOW))
        yield from (_array_records if arrays else _json_lines)(path, source, options)
    except _READ_ERRORS as exc:
        yield _unreadable(source, exc)


def _array_records(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    """The elements of a JSON array, numbered from 0; an array that is not valid JSON as a whole is one reject."""
    with _open_binary(path, options.meter) as f:
        data = f.read()
    try:
        values = json.loads(data.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield Reject(f"{source}:file", source, "invalid_utf8", str(exc), "read", None)
        return
    except (json.JSONDecodeError, RecursionError) as exc:
        yield Reject(f"{source}:file", source, "invalid_json", f"not one JSON array: {exc}", "read", None)
        return
    del data
    for i, obj in enumerate(values):
        doc = to_doc(obj, source, i, options)
        # a lone surrogate ("\ud83d") is kept escaped, as it was read: UTF-8 output cannot hold it
        if isinstance(doc, Reject) and not utf8_encodable(json.dumps(obj, ensure_ascii=False)):
            doc.record = json.dumps(obj)
        yield doc


def _json_lines(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    with _open_binary(path, options.meter) as f:
        n = 0
        while True:
            n += 1
            line = f.readline(options.max_line_bytes + 1)
            if not line:
                return
            if len(line) > options.max_line_bytes and not line.endswith(b"\n"):
                _skip_rest_of_line(f)
                detail = f"more than {options.max_line_bytes} bytes"
                yield Reject(f"{source}:{n}", source, "line_too_long", detail, "read", None)
                continue
            if n == 1 and line.startswith(codecs.BOM_UTF8):  # files saved "with BOM" by editors and exporters
                line = line[len(codecs.BOM_UTF8) :]
            if line.strip():
                yield _parse_line(line, source, n, options)


def _skip_rest_of_line(f: io.BufferedIOBase) -> None:
    while True:
        chunk = f.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


class _LineTooLong(Exception):
    pass


class _Lines:
    """The lines of a CSV / TSV stream for :mod:`csv`, split as with ``newline=""`` (at ``\\n``, ``\\r\\n`` or
    ``\\r``), bytes that are not UTF-8 kept as surrogates, a UTF-8 BOM at the start dropped. The current row's lines
    are kept (``take``) for its reject entry. A line over the limit (in characters) is skipped and raises
    :class:`_LineTooLong` (an iterator class, not a generator, so that reading goes on after it)."""

    def __init__(self, f: io.BufferedReader | gzip.GzipFile, limit: int) -> None:
        self.f = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
        self.limit = limit
        self.raw: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.f.readline(self.limit + 1)
        if len(line) > self.limit and not line.endswith(("\n", "\r")):
            while (rest := self.f.readline(1 << 20)) and not rest.endswith(("\n", "\r")):
                pass
            raise _LineTooLong(f"a line of more than {self.limit} characters")
        if not line:
            raise StopIteration
        self.raw.append(line)
        return line

    def take(self) -> str:
        """The lines of the current row, as read, without the last line break; forgotten here."""
        raw, self.raw = "".join(self.raw), []
        return raw.rstrip("\r\n")


def _as_read(text: str) -> str:
    """Text decoded with ``surrogateescape``, for a reject entry: bytes that are not UTF-8 written as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_header(rows: Iterator[list[str]]) -> list[str] | None:
    """The column names (the first row that is not blank), bytes that are not UTF-8 written as ``\\xNN``."""
    for row in rows:
        if row:
            return [_as_read(h) for h in row]
    return None


def _read_csv(path: str, source: str, options: ReadOptions, delimiter: str) -> Iterator[RawDoc | Reject]:
    previous = csv.field_size_limit(options.max_line_bytes)  # a field over it is a csv.Error (line_too_long)
    try:
        with _open_binary(path, options.meter) as f:
            lines = _Lines(f, options.max_line_bytes)
            rows = csv.reader(lines, delimiter=delimiter)
            try:
                header = _csv_header(rows)
            except (csv.Error, _LineTooLong) as exc:
                yield _unreadable(source, csv.Error(f"header row: {exc}"))
                return
            if header is None:
                return  # an empty file: no records
            _check_column(options.text_field, header, source)
            yield from _csv_records(rows, lines, header, source, options)
    except _READ_ERRORS as exc:
        yield _unreadable(source, exc)
    finally:
        csv.field_size_limit(previous)


def _csv_records(
    rows: Iterator[list[str]], lines: _Lines, header: list[str], source: str, options: ReadOptions
) -> Iterator[RawDoc | Reject]:
    n = 0
    while True:
        lines.raw.clear()
        try:
            row = next(rows)
        except StopIteration:
            return
        except (_LineTooLong, csv.Error) as exc:  # csv.Error: mostly a quoted field over the limit
            n += 1
            too_long = isinstance(exc, _LineTooLong) or "field limit" in str(exc)
            raw = None if too_long else _as_read(lines.take())  # too long: not kept, as in JSON lines
            reason = "line_too_long" if too_long else "malformed_row"
            yield Reject(f"{source}:{n}", source, reason, str(exc), "read", raw)
            continue
        if row:
            n += 1
            yield _csv_record(row, header, lines, source, n, options)


def _csv_record(
    row: list[str], header: list[str], lines: _Lines, source: str, n: int, options: ReadOptions
) -> RawDoc | Reject:
    rid = f"{source}:{n}"
    if len(row) != len(header):
        detail = f"{len(row)} fields where the header has {len(header)}"
        return Reject(rid, source, "malformed_row", detail, "read", _as_read(lines.take()))
    if not all(map(utf8_encodable, row)):
        return Reject(rid, source, "invalid_utf8", "bytes that are not UTF-8", "read", _as_read(lines.take()))
    return to_doc(dict(zip(header, row, strict=True)), source, n, options)


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
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
        return Reject(f"{source}:{n}", source, "invalid_json", str(exc), stage, original_line(line))


def _read_parquet(path: str, source: str, options: ReadOptions) -> Iterator[RawDoc | Reject]:
    import pyarrow.parquet as pq

    try:
        # opened here, not by pyarrow: Python passes a name that is not UTF-8 through to the OS; pyarrow cannot
        with open(path, "rb") as f, ReadMeter.reading(options.meter, f):
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            _check_column(options.text_field, pf.schema_arrow.names, source)
            wanted = (options.text_field, options.id_field, *options.keep_fields)
            columns = list(dict.fromkeys(c for c in wanted if c and c in names))
            row = 0
            for batch in pf.iter_batches(columns=columns or None, batch_size=4096):
                for obj in batch.to_pylist():
                    yield to_doc(obj, source, row, options)
                    row += 1
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        yield _unreadable(source, exc)


def _check_column(field: str, columns: list[str], source: str) -> None:
    """A table without the text column holds no usable record: say so before reading it, naming its columns."""
    if field not in columns:
        shown = ", ".join(columns[:MAX_FIELDS_SHOWN]) or "none"
        raise InputError(
            f"{source} has no column {field!r} (its columns: {shown}); name the text column with --text-field"
        )


def check_columns(inputs: list[str], options: ReadOptions) -> None:
    """Check the text column of every parquet, CSV and TSV input against its schema or header row (nothing more
    is read), before a run starts."""
    for kind, location, _ in _resolve(inputs, exclude=options.exclude):
        fmt = _format(location) if kind == "file" else ""
        if fmt not in ("parquet", "csv", "tsv"):
            continue
        try:
            names = _columns(location, fmt, options.max_line_bytes)
        except Exception:  # noqa: BLE001 - an unreadable file is rejected as such when it is read
            continue
        if names is not None:
            _check_column(options.text_field, names, location)


def _columns(path: str, fmt: str, limit: int) -> list[str] | None:
    """The column names of a parquet file (its schema) or a CSV / TSV file (its header row; None: empty file)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with open(path, "rb") as f:
            return list(pq.ParquetFile(f).schema_arrow.names)
    with _open_binary(path) as f:
        return _csv_header(csv.reader(_Lines(f, limit), delimiter="\t" if fmt == "tsv" else ","))


def _read_hf(kind: str, location: str, options: ReadOptions, name: str) -> Iterator[RawDoc | Reject]:
    spec = options.dataset or DatasetSpec(options.split)
    rows, columns = open_dataset(kind, location, spec)
    source = spec.source(name)
    if columns:  # streamed hub datasets may not know theirs before the first row
        _check_column(options.text_field, columns, source)
    for row, obj in enumerate(rows):
        yield to_doc(obj, source, row, options)
