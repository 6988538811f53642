"""Readers: every input form, stable ids, and every kind of bad record rejected with its reason."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from instructpt.errors import InputError
from instructpt.io.inputs import count_records, resolve_inputs
from instructpt.io.readers import ReadOptions, read_docs
from instructpt.records import RawDoc, Reject


def _write(path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _split(items):
    items = list(items)
    return [i for i in items if isinstance(i, RawDoc)], [i for i in items if isinstance(i, Reject)]


def test_bad_records_are_rejected_with_reasons(tmp_path) -> None:
    _write(
        tmp_path / "c.jsonl",
        [
            json.dumps({"text": "good one"}).encode(),
            b"{not json",
            b'"a string"',
            json.dumps({"body": "no text field"}).encode(),
            json.dumps({"text": 42}).encode(),
            json.dumps({"text": "   "}).encode(),
            json.dumps({"text": "nul\u0000byte"}).encode(),
            b'{"text": "bad \xff utf8"}',
            b"",
            json.dumps({"text": "x" * 300}).encode(),
            json.dumps({"text": "good two"}).encode(),
        ],
    )
    docs, rejects = _split(read_docs([str(tmp_path / "c.jsonl")], ReadOptions(max_line_bytes=200)))
    assert [d.text for d in docs] == ["good one", "good two"]
    assert [d.id for d in docs] == ["c.jsonl:1", "c.jsonl:11"]
    assert [r.reason for r in rejects] == [
        "invalid_json",
        "not_an_object",
        "missing_text",
        "text_not_string",
        "empty_text",
        "nul_bytes",
        "invalid_utf8",
        "line_too_long",
    ]
    assert all(r.source == "c.jsonl" and r.stage == "read" for r in rejects)


def test_id_field_gz_parquet_dir_and_glob(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with (
        gzip.open(tmp_path / "d" / "sub" / "a.jsonl.gz", "wb")
        if (tmp_path / "d" / "sub").mkdir(parents=True) is None
        else None as f
    ):
        f.write(
            (json.dumps({"doc": "x1", "text": "alpha"}) + "\n" + json.dumps({"text": "beta"}) + "\n").encode()
        )
    pq.write_table(pa.table({"text": ["gamma", None], "doc": ["p1", "p2"]}), tmp_path / "d" / "b.parquet")
    opts = ReadOptions(id_field="doc")
    docs, rejects = _split(read_docs([str(tmp_path / "d")], opts))
    assert [(d.id, d.text) for d in docs] == [("p1", "gamma"), ("x1", "alpha"), ("sub/a.jsonl.gz:2", "beta")]
    assert [(r.id, r.reason) for r in rejects] == [("p2", "missing_text")]
    globbed = list(read_docs([str(tmp_path / "d" / "**" / "*.jsonl.gz")], opts))
    assert [d.id for d in globbed] == ["x1", "sub/a.jsonl.gz:2"]


def test_ids_do_not_depend_on_mount_point(tmp_path) -> None:
    for root in ("m1", "m2"):
        _write(tmp_path / root / "corpus" / "f.jsonl", [json.dumps({"text": "t"}).encode()])
    a = next(read_docs([str(tmp_path / "m1" / "corpus")], ReadOptions()))
    b = next(read_docs([str(tmp_path / "m2" / "corpus")], ReadOptions()))
    assert a.id == b.id == "f.jsonl:1"


def test_unreadable_file_is_a_reject_not_a_crash(tmp_path) -> None:
    (tmp_path / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    items = list(read_docs([str(tmp_path)], ReadOptions()))
    assert [r.reason for r in items] == ["unreadable_file", "unreadable_file"]


def test_hf_dataset_on_disk(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["one", ""], "id": ["a", "b"]}).save_to_disk(str(tmp_path / "ds"))
    docs, rejects = _split(read_docs([str(tmp_path / "ds")], ReadOptions(id_field="id")))
    assert [d.id for d in docs] == ["a"] and [r.reason for r in rejects] == ["empty_text"]


def test_missing_inputs_raise_clear_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_inputs([str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError, match="matches no"):
        resolve_inputs([str(tmp_path / "*.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        resolve_inputs([str(tmp_path / "empty")])
    assert resolve_inputs(["org/dataset"]) == [("hf_hub", "org/dataset")]


def test_count_records(tmp_path) -> None:
    _write(tmp_path / "a.jsonl", [b"{}", b"{}", b"{}"])
    assert count_records([str(tmp_path / "a.jsonl")]) == 3
    assert count_records(["org/dataset"]) is None


def test_derived_ids_stay_unique_across_inputs_with_the_same_file_names(tmp_path) -> None:
    for part in ("a", "b"):
        _write(tmp_path / "corpus" / part / "x.jsonl", [json.dumps({"text": f"from {part}"}).encode()])
    alone, _ = _split(read_docs([str(tmp_path / "corpus" / "a")], ReadOptions()))
    assert [d.id for d in alone] == ["x.jsonl:1"]  # one input: names relative to it, as before
    both, _ = _split(
        read_docs([str(tmp_path / "corpus" / "a"), str(tmp_path / "corpus" / "b")], ReadOptions())
    )
    assert [(d.id, d.source, d.text) for d in both] == [
        ("a/x.jsonl:1", "a/x.jsonl", "from a"),
        ("b/x.jsonl:1", "b/x.jsonl", "from b"),
    ]


def test_a_file_named_by_two_inputs_is_read_once(tmp_path, caplog) -> None:
    _write(tmp_path / "d" / "x.jsonl", [json.dumps({"text": "once"}).encode()])
    specs = [str(tmp_path / "d"), str(tmp_path / "d" / "*.jsonl"), str(tmp_path / "d" / "x.jsonl")]
    assert resolve_inputs(specs) == [("file", str(tmp_path / "d" / "x.jsonl"))]
    with caplog.at_level("WARNING", logger="instructpt.io.readers"):
        docs, _ = _split(read_docs(specs, ReadOptions()))
    assert [d.id for d in docs] == ["x.jsonl:1"]
    assert caplog.text.count("read once") == 2
    assert count_records(specs) == 1


def test_symlinked_files_are_named_by_the_link(tmp_path) -> None:
    _write(tmp_path / "elsewhere" / "real.jsonl", [json.dumps({"text": "linked"}).encode()])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link.jsonl").symlink_to(tmp_path / "elsewhere" / "real.jsonl")
    docs, _ = _split(read_docs([str(tmp_path / "d")], ReadOptions()))
    assert [d.id for d in docs] == ["link.jsonl:1"]


def test_seen_ids_membership_through_merges_and_packing() -> None:
    from instructpt.io.ids import SeenIds, id_hash, pack, unpack

    seen = SeenIds()
    seen.MIN_MERGE = 8  # merge often, so lookups go through the sorted part too
    hashes = [id_hash(f"doc-{i}") for i in range(200)]
    for start in range(0, 150, 10):
        seen.add_many(hashes[start : start + 10] + hashes[:3])  # repeats are stored once
    assert len(seen) == 150
    assert all(h in seen for h in hashes[:150]) and not any(h in seen for h in hashes[150:])
    assert list(unpack(pack(hashes))) == hashes and len(pack(hashes)) == 8 * len(hashes)
    assert id_hash("doc-1") == id_hash("doc-1") != id_hash("doc-2")


def test_dataset_dirs_with_the_same_name_get_distinct_ids(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    for part in ("a", "b"):
        datasets.Dataset.from_dict({"text": [f"from {part}"]}).save_to_disk(str(tmp_path / part / "wiki"))
    alone, _ = _split(read_docs([str(tmp_path / "a" / "wiki")], ReadOptions()))
    assert [d.id for d in alone] == ["wiki/train:0"]
    specs = [str(tmp_path / "a" / "wiki"), str(tmp_path / "b" / "wiki"), str(tmp_path / "a" / "wiki")]
    both, _ = _split(read_docs(specs, ReadOptions()))  # the repeated directory is read once
    assert [(d.id, d.text) for d in both] == [("a/wiki/train:0", "from a"), ("b/wiki/train:0", "from b")]


def test_a_utf8_bom_at_the_start_of_a_file_is_not_part_of_the_first_record(tmp_path) -> None:
    _write(
        tmp_path / "bom.jsonl", [b'\xef\xbb\xbf{"text": "first"}', b'{"text": "second \xef\xbb\xbf kept"}']
    )
    docs, rejects = _split(read_docs([str(tmp_path / "bom.jsonl")], ReadOptions()))
    assert [d.text for d in docs] == ["first", "second \ufeff kept"] and not rejects


def test_records_without_a_usable_id_field_value_get_a_derived_id_and_are_marked(tmp_path) -> None:
    rows = [b'{"id": "a", "text": "x"}', b'{"id": true, "text": "x"}', b'{"id": 1.5, "text": "x"}',
            b'{"text": "x"}', b'{"id": 7, "text": "x"}', b'{"id": "", "text": "x"}']  # fmt: skip
    _write(tmp_path / "i.jsonl", rows)
    docs, _ = _split(read_docs([str(tmp_path / "i.jsonl")], ReadOptions(id_field="id")))
    assert [(d.id, d.id_derived) for d in docs] == [
        ("a", False), ("i.jsonl:2", True), ("i.jsonl:3", True), ("i.jsonl:4", True), ("7", False),
        ("i.jsonl:6", True),
    ]  # fmt: skip
    docs, _ = _split(read_docs([str(tmp_path / "i.jsonl")], ReadOptions()))
    assert not any(d.id_derived for d in docs)  # no --id-field: derived ids are the rule, not a fallback


def test_lone_surrogates_are_rejected_not_written(tmp_path) -> None:
    """JSON can escape a lone surrogate, which no UTF-8 output can hold: the record is rejected with its line as
    read (the escape, writable), and an id holding one falls back to the derived id."""
    _write(tmp_path / "s.jsonl", [b'{"text": "bad \\ud83d here"}', b'{"id": "x\\udc00", "text": "fine"}'])
    docs, rejects = _split(read_docs([str(tmp_path / "s.jsonl")], ReadOptions(id_field="id")))
    assert [(r.reason, r.record) for r in rejects] == [("invalid_unicode", '{"text": "bad \\ud83d here"}')]
    assert [(d.id, d.id_derived) for d in docs] == [("s.jsonl:2", True)]
    json.dumps([r.to_dict() for r in rejects], ensure_ascii=False).encode("utf-8")  # writable


def test_an_existing_file_with_glob_characters_in_its_name_is_read(tmp_path) -> None:
    _write(tmp_path / "corpus[2023].jsonl", [b'{"text": "x"}'])
    docs, _ = _split(read_docs([str(tmp_path / "corpus[2023].jsonl")], ReadOptions()))
    assert [d.id for d in docs] == ["corpus[2023].jsonl:1"]


def test_a_file_name_that_is_not_utf8_is_named_with_its_bytes_escaped(tmp_path) -> None:
    import os

    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.jsonl"
    with open(raw, "wb") as f:
        f.write(json.dumps({"text": "Hello."}).encode() + b"\n")
    docs, rejects = _split(read_docs([str(tmp_path)], ReadOptions()))
    assert not rejects and docs[0].source == "caf\\xe9.jsonl" and docs[0].id == "caf\\xe9.jsonl:1"
    docs[0].id.encode("utf-8")  # writable as UTF-8 (the surrogate name made every shard write fail)


def test_files_under_an_excluded_directory_are_not_inputs(tmp_path) -> None:
    _write(tmp_path / "a.jsonl", [json.dumps({"text": "input"}).encode()])
    _write(tmp_path / "out" / "data" / "shard-00000.jsonl", [json.dumps({"text": "output"}).encode()])
    opts = ReadOptions(exclude=(str(tmp_path / "out"),))
    assert [d.text for d in read_docs([str(tmp_path)], opts)] == ["input"]
    assert [d.text for d in read_docs([str(tmp_path / "**" / "*.jsonl")], opts)] == ["input"]
    assert count_records([str(tmp_path)], exclude=opts.exclude) == 1
    with pytest.raises(InputError, match="inside the output directory"):
        resolve_inputs([str(tmp_path / "out" / "data" / "shard-00000.jsonl")], opts.exclude)
    with pytest.raises(InputError, match=r"'.*out' is the output directory"):
        resolve_inputs([str(tmp_path / "out")], opts.exclude)
    with pytest.raises(InputError, match=r"'.*data' is inside the output directory"):
        resolve_inputs([str(tmp_path / "out" / "data")], opts.exclude)
    # a link outside the output directory that points into it: the message names where it points
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "out" / "data" / "shard-00000.jsonl")
    with pytest.raises(
        InputError, match=r"'.*link\.jsonl' \(a link to '.*shard-00000\.jsonl'\) is inside the out"
    ):
        resolve_inputs([str(tmp_path / "link.jsonl")], opts.exclude)


def test_escaped_names_that_repeat_a_real_name_stay_unique(tmp_path) -> None:
    import os

    base = os.fsencode(str(tmp_path))
    for name in (b"/caf\xe9.jsonl", b"/caf\\xe9.jsonl"):  # the byte E9, and the four characters \xe9
        with open(base + name, "wb") as f:
            f.write(json.dumps({"text": "Hello."}).encode() + b"\n")
    docs, rejects = _split(read_docs([str(tmp_path)], ReadOptions()))
    assert not rejects and len({d.id for d in docs}) == 2
    assert sorted(d.source for d in docs) == ["caf\\xe9.jsonl", "caf\\xe9.jsonl~2"]


def test_parquet_files_with_names_that_are_not_utf8_are_read(tmp_path) -> None:
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/d\xe9j\xe0.parquet")
    with open(path, "wb") as f:
        pq.write_table(pa.table({"text": ["one", "two"]}), f)
    docs, rejects = _split(read_docs([str(tmp_path)], ReadOptions()))
    assert (
        not rejects and [d.text for d in docs] == ["one", "two"] and docs[0].source == "d\\xe9j\\xe0.parquet"
    )
    assert count_records([str(tmp_path)]) == 2


def test_a_directory_holding_only_output_files_says_so(tmp_path) -> None:
    _write(tmp_path / "out" / "data" / "shard-00000.jsonl", [json.dumps({"text": "output"}).encode()])
    with pytest.raises(InputError, match="holds no .* file outside the output directory"):
        resolve_inputs([str(tmp_path)], (str(tmp_path / "out"),))


def test_an_input_directory_that_is_the_output_directory_says_so(tmp_path) -> None:
    """Not "holds no ... file outside the output directory", which sent users looking for missing files."""
    _write(tmp_path / "data" / "shard-00000.jsonl", [json.dumps({"text": "output"}).encode()])
    with pytest.raises(InputError, match=r"input '.*' is the output directory") as exc:
        resolve_inputs([str(tmp_path)], (str(tmp_path),))
    assert "holds no" not in str(exc.value)
    proc = subprocess.run(
        [sys.executable, "-m", "instructpt", "synthesize", str(tmp_path), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3 and f"input {str(tmp_path)!r} is the output directory" in proc.stderr
