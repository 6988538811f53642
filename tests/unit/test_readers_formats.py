"""Readers of the other formats a datatrove or HF user has: JSON arrays, zstd / gzip JSON lines, CSV and TSV, with
compression inferred from the file name; each keeps every reject's record as read, and ids stable."""

from __future__ import annotations

import gzip
import json

import pytest

from instructpt.errors import InputError
from instructpt.io.inputs import count_records, resolve_inputs
from instructpt.io.readers import ReadOptions, check_columns, read_docs
from instructpt.records import RawDoc, Reject

BAD_LINES = [
    b'\xef\xbb\xbf{"text": "first"}',  # a BOM on the first line only
    b"{not json",
    b"",
    b'{"text": "' + b"x" * 300 + b'"}',  # over max_line_bytes=200
    b'{"text": "bad \xff utf8"}',
    b'"a string"',
    b'{"text": "last"}',
]


def _split(items):
    items = list(items)
    return [i for i in items if isinstance(i, RawDoc)], [i for i in items if isinstance(i, Reject)]


def _zst(path, data: bytes) -> None:
    import pyarrow as pa

    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(data)


def _writable(rejects) -> None:
    for r in rejects:  # as the rejects shard writes them: UTF-8 JSON
        json.dumps(r.to_dict(), ensure_ascii=False).encode("utf-8")


def _seen(items) -> list[tuple]:
    """What a reader gave, without the file's name: (kind, number, text or reason, record)."""
    out = []
    for i in items:
        n = i.id.rpartition(":")[2]
        out.append(("doc", n, i.text, None) if isinstance(i, RawDoc) else ("reject", n, i.reason, i.record))
    return out


def test_a_json_file_is_an_array_when_it_starts_with_a_bracket_else_json_lines(tmp_path) -> None:
    elements = [{"text": "alpha"}, "a string", {"body": "no text"}, {"text": "beta", "id": "b"}, {"text": ""}]
    (tmp_path / "arr.json").write_bytes(b"\xef\xbb\xbf \n " + json.dumps(elements, indent=2).encode())
    (tmp_path / "lines.json").write_bytes(b'{"text": "one"}\n\n{"text": "two"}\n[1, 2]\n')
    docs, rejects = _split(read_docs([str(tmp_path)], ReadOptions(id_field="id")))
    assert [(d.id, d.text) for d in docs] == [
        ("arr.json:0", "alpha"), ("b", "beta"), ("lines.json:1", "one"), ("lines.json:3", "two"),
    ]  # fmt: skip
    assert [(r.id, r.reason, r.record) for r in rejects] == [
        ("arr.json:1", "not_an_object", "a string"),
        ("arr.json:2", "missing_text", {"body": "no text"}),
        ("arr.json:4", "empty_text", {"text": ""}),
        ("lines.json:4", "not_an_object", "[1, 2]"),
    ]  # an element is kept as it was read: a JSON value; a line of JSON lines as its text
    _writable(rejects)
    assert count_records([str(tmp_path / "lines.json")]) == 4  # JSON lines: still counted
    assert count_records([str(tmp_path / "arr.json")]) is None  # its newlines are not records


def test_a_json_array_that_is_not_valid_json_is_one_reject_not_a_crash(tmp_path) -> None:
    (tmp_path / "a.json").write_text('[{"text": "fine"},\n {"text": "cut off"')
    (tmp_path / "b.json").write_bytes(b'[{"text": "\xff"}]')
    (tmp_path / "c.json").write_text("[" * 100_000)  # nested too deep for the parser
    items = list(read_docs([str(tmp_path)], ReadOptions()))
    assert [(r.id, r.reason) for r in items] == [
        ("a.json:file", "invalid_json"), ("b.json:file", "invalid_utf8"), ("c.json:file", "invalid_json"),
    ]  # fmt: skip
    assert all(isinstance(r, Reject) and r.record is None for r in items)


def test_an_array_element_with_a_lone_surrogate_is_kept_escaped(tmp_path) -> None:
    (tmp_path / "s.json").write_text('[{"text": "bad \\ud83d here", "n": 1}, {"text": "fine"}]')
    docs, rejects = _split(read_docs([str(tmp_path / "s.json")], ReadOptions()))
    assert [d.id for d in docs] == ["s.json:1"]
    assert [(r.reason, r.record) for r in rejects] == [
        ("invalid_unicode", '{"text": "bad \\ud83d here", "n": 1}')
    ]
    _writable(rejects)


def test_a_deeply_nested_json_line_is_invalid_json_not_a_crash(tmp_path) -> None:
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "\n" + '{"text": "after"}\n')
    docs, rejects = _split(read_docs([str(tmp_path / "deep.jsonl")], ReadOptions()))
    assert [d.id for d in docs] == ["deep.jsonl:2"] and [r.reason for r in rejects] == ["invalid_json"]


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".json.zst", ".ndjson.zst", ".json.gz", ".ndjson.gz"])
def test_compressed_json_lines_read_as_plain_ones(tmp_path, suffix: str) -> None:
    data = b"".join(line + b"\n" for line in BAD_LINES)
    (tmp_path / "plain.jsonl").write_bytes(data)
    packed = tmp_path / f"packed{suffix}"
    if suffix.endswith(".zst"):
        _zst(packed, data)
    else:
        packed.write_bytes(gzip.compress(data))
    opts = ReadOptions(max_line_bytes=200)
    plain = _seen(read_docs([str(tmp_path / "plain.jsonl")], opts))
    assert _seen(read_docs([str(packed)], opts)) == plain
    assert plain == [
        ("doc", "1", "first", None),
        ("reject", "2", "invalid_json", "{not json"),
        ("reject", "4", "line_too_long", None),
        ("reject", "5", "invalid_utf8", '{"text": "bad \\xff utf8"}'),
        ("reject", "6", "not_an_object", '"a string"'),
        ("doc", "7", "last", None),
    ]
    assert count_records([str(packed)]) is None


def test_a_corrupt_zst_file_is_an_unreadable_file_reject(tmp_path) -> None:
    _zst(tmp_path / "a.jsonl.zst", b'{"text": "one"}\n' * 1000)
    (tmp_path / "b.jsonl.zst").write_bytes((tmp_path / "a.jsonl.zst").read_bytes()[:-8])  # truncated
    (tmp_path / "c.jsonl.zst").write_bytes(b"not zstd at all")
    items = list(read_docs([str(tmp_path / "b.jsonl.zst"), str(tmp_path / "c.jsonl.zst")], ReadOptions()))
    assert [(r.id, r.reason) for r in items if isinstance(r, Reject)] == [
        ("b.jsonl.zst:file", "unreadable_file"), ("c.jsonl.zst:file", "unreadable_file"),
    ]  # fmt: skip


CSV = (
    'id,text,lang\r\n'
    'a,"Hello, world.",en\r\n'
    'b,"Two lines:\nsecond ""quoted"" line",en\r\n'
    '\r\n'
    'c,short\r\n'
    'd,,en\r\n'
    'e,"last, one",fr\r\n'
)  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz"])
def test_csv_and_tsv_rows_are_records(tmp_path, suffix: str) -> None:
    data = CSV if ".csv" in suffix else CSV.replace(",", "\t")
    raw = data.encode()
    path = tmp_path / f"t{suffix}"
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(raw))
    elif suffix.endswith(".zst"):
        _zst(path, raw)
    else:
        path.write_bytes(raw)
    docs, rejects = _split(read_docs([str(path)], ReadOptions()))
    name, sep = path.name, "," if ".csv" in suffix else "\t"
    text = "Hello, world." if ".csv" in suffix else "Hello\t world."
    assert [(d.id, d.text) for d in docs] == [
        (f"{name}:1", text), (f"{name}:2", 'Two lines:\nsecond "quoted" line'), (f"{name}:5", data.split('"')[-2]),
    ]  # fmt: skip
    assert [(r.id, r.reason, r.record) for r in rejects] == [
        (f"{name}:3", "malformed_row", f"c{sep}short"),  # the line as read: it is no row of the header's
        (f"{name}:4", "empty_text", {"id": "d", "text": "", "lang": "en"}),
    ]
    assert rejects[0].detail == "2 fields where the header has 3"
    ided, _ = _split(read_docs([str(path)], ReadOptions(id_field="id")))
    assert [d.id for d in ided] == ["a", "b", "e"]
    assert count_records([str(path)]) is None


def test_csv_lines_may_end_in_cr_lf_lf_or_cr_alone(tmp_path) -> None:
    (tmp_path / "mac.csv").write_bytes(b'text,n\r"one\rstill one",1\rtwo,2\r')  # old Mac Excel: CR only
    docs = list(read_docs([str(tmp_path / "mac.csv")], ReadOptions()))
    assert [(d.id, d.text) for d in docs] == [("mac.csv:1", "one\rstill one"), ("mac.csv:2", "two")]


def test_a_csv_without_the_text_column_is_refused_up_front_naming_its_columns(tmp_path) -> None:
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbfid,content\nx,Some text.\n")
    (tmp_path / "t.tsv.gz").write_bytes(gzip.compress(b"id\tbody\nx\tSome text.\n"))
    for name, columns in (("t.csv", "id, content"), ("t.tsv.gz", "id, body")):
        path = str(tmp_path / name)
        with pytest.raises(
            InputError, match=rf"has no column 'text' \(its columns: {columns}\).*--text-field"
        ):
            check_columns([path], ReadOptions())
        with pytest.raises(InputError, match=rf"has no column 'text' \(its columns: {columns}\)"):
            list(read_docs([path], ReadOptions()))
        check_columns([path], ReadOptions(text_field=columns.split(", ")[1]))  # the right column: no error
    docs = list(read_docs([str(tmp_path / "t.csv")], ReadOptions(text_field="content", id_field="id")))
    assert [(d.id, d.text) for d in docs] == [("x", "Some text.")]  # the BOM is not part of the first column


def test_csv_rows_that_are_not_utf8_or_too_long_are_rejected_and_reading_goes_on(tmp_path) -> None:
    rows = [
        b"text,n",
        b"good,1",
        b"bad \xff byte,2",
        b"x" * 300 + b",3",
        b"fine,4",
        b'"' + b"long\n" * 50 + b"end",
    ]
    (tmp_path / "r.csv").write_bytes(b"\n".join(rows) + b"\n")  # the last field's quote is never closed
    docs, rejects = _split(read_docs([str(tmp_path / "r.csv")], ReadOptions(max_line_bytes=200)))
    assert [(d.id, d.text) for d in docs] == [("r.csv:1", "good"), ("r.csv:4", "fine")]
    assert [(r.id, r.reason, r.record) for r in rejects[:3]] == [
        ("r.csv:2", "invalid_utf8", "bad \\xff byte,2"),
        ("r.csv:3", "line_too_long", None),
        (
            "r.csv:5",
            "line_too_long",
            None,
        ),  # a quoted field over the limit, though each of its lines is short
    ]
    # what follows the field's first 200 characters cannot be told from rows: each line is a reject, as read
    assert {(r.reason, r.record) for r in rejects[3:]} == {
        ("malformed_row", "long"),
        ("malformed_row", "end"),
    }
    _writable(rejects)


def test_a_directory_of_mixed_formats_is_read_file_by_file_in_sorted_order(tmp_path) -> None:
    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    (d / "a.json").write_text(json.dumps([{"text": "from a.json"}]))
    (d / "b.csv").write_text("text\nfrom b.csv\n")
    _zst(d / "c.jsonl.zst", b'{"text": "from c.jsonl.zst"}\n')
    (d / "sub" / "d.tsv.gz").write_bytes(gzip.compress(b"n\ttext\n1\tfrom d.tsv.gz\n"))
    (d / "e.ndjson").write_text('{"text": "from e.ndjson"}\n')
    (d / "notes.txt").write_text("not data")
    docs, rejects = _split(read_docs([str(d)], ReadOptions()))
    assert not rejects
    assert [(doc.id, doc.text) for doc in docs] == [
        ("a.json:0", "from a.json"), ("b.csv:1", "from b.csv"), ("c.jsonl.zst:1", "from c.jsonl.zst"),
        ("e.ndjson:1", "from e.ndjson"), ("sub/d.tsv.gz:1", "from d.tsv.gz"),
    ]  # fmt: skip
    assert [doc.id for doc in read_docs([str(d)], ReadOptions())] == [doc.id for doc in docs]  # stable ids
    assert count_records([str(d)]) is None
    assert count_records([str(d / "e.ndjson")]) == 1


def test_count_records_never_guesses_for_arrays_compressed_files_or_tables(tmp_path) -> None:
    (tmp_path / "arr.json").write_text('[\n{"text": "a"},\n{"text": "b"},\n{"text": "c"}\n]\n')
    (tmp_path / "t.tsv").write_text('text\n"one\ntwo"\n')
    (tmp_path / "t.csv").write_text("text\na\nb\n")
    (tmp_path / "z.json.gz").write_bytes(gzip.compress(b'{"text": "a"}\n'))
    for name in ("arr.json", "t.tsv", "t.csv", "z.json.gz"):
        assert count_records([str(tmp_path / name)]) is None, name


def test_unsupported_files_are_refused_with_the_new_kinds_listed(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("text\n")
    with pytest.raises(InputError, match=r"supported are .*\.jsonl\.zst.*\.csv.*\.tsv\.gz.*\.parquet"):
        resolve_inputs([str(tmp_path / "notes.txt")])
    (tmp_path / "t.csv").write_text("text\nx\n")
    assert resolve_inputs([str(tmp_path / "t.csv")]) == [("file", str(tmp_path / "t.csv"))]
