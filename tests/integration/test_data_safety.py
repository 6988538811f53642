"""Data safety: resume checks the input files, runs that produced nothing fail, rejects keep records as read,
parquet columns are typed, and a finished run directory is left as it is."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from instructpt import cli
from instructpt.engines.config import EngineConfig
from instructpt.errors import InputError, ResumeError
from instructpt.io.shards import read_shard, write_parquet
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

TEXT = "Rivers carry water to the sea. However, deserts have little rain. Therefore, few plants grow there."


def _lines(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"id": f"d{i}", "text": f"Document {i}. {TEXT}"}) + "\n" for i in range(start, start + n)
    )


def _cfg(inputs: list[Path], out: Path, **kw) -> SynthesizeConfig:
    kw.setdefault("engine", EngineConfig(name="rules"))
    return SynthesizeConfig(
        inputs=[str(p) for p in inputs], output=str(out), progress=False, shard_size=4, **kw
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "b.jsonl").write_text(_lines(6))
    (d / "c.jsonl").write_text(_lines(6, 10))
    return d


def _finished(corpus: Path, out: Path) -> None:
    synthesize(_cfg([corpus], out))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: (d / "a.jsonl").write_text(_lines(3, 50)),
            "added",
        ),  # sorts first: every record would shift
        (lambda d: (d / "c.jsonl").unlink(), "removed"),
        (lambda d: (d / "b.jsonl").write_text(_lines(7)), "grew"),
        (lambda d: (d / "b.jsonl").write_text(_lines(5)), "shrank"),
        (lambda d: (d / "b.jsonl").write_text(_lines(6).replace("Document 3.", "Document X.")), "replaced"),
    ],
    ids=["added", "removed", "grown", "shrunk", "replaced"],
)
def test_resume_is_refused_when_the_input_files_changed(corpus: Path, tmp_path: Path, change, says) -> None:
    out = tmp_path / "out"
    _finished(corpus, out)
    before = sorted(p.name for p in (out / "data").iterdir())
    change(corpus)
    with pytest.raises(ResumeError, match=f"input files changed.*{says}"):
        synthesize(_cfg([corpus], out))
    assert sorted(p.name for p in (out / "data").iterdir()) == before  # nothing was touched
    summary = synthesize(_cfg([corpus], out, overwrite=True))  # --overwrite starts over
    assert summary.run.shards_resumed == 0 and summary.counts["docs_in"] == sum(
        len(p.read_text().splitlines()) for p in corpus.iterdir()
    )


def test_a_file_that_was_only_touched_resumes(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _finished(corpus, out)
    later = time.time() + 100
    os.utime(corpus / "b.jsonl", (later, later))
    summary = synthesize(_cfg([corpus], out))
    assert summary.run.shards_resumed == summary.run.shards_total == 3 and summary.run.done_this_run == 0


def test_overwrite_refuses_what_is_not_a_run_of_the_same_command(corpus: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ResumeError, match="not an instructpt run directory"):
        synthesize(_cfg([corpus], mine, overwrite=True))
    assert (mine / "notes.txt").read_text() == "keep me"
    pairs = tmp_path / "pairs"
    _finished(corpus, pairs)
    with pytest.raises(ResumeError, match="holds output of 'synthesize'"):
        templify(TemplifyConfig(inputs=[str(pairs)], output=str(pairs), progress=False, overwrite=True))


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in root.rglob("*")}


def test_a_rerun_with_nothing_to_do_writes_nothing(corpus: Path, tmp_path: Path) -> None:
    out, aug = tmp_path / "out", tmp_path / "aug"
    _finished(corpus, out)
    templify(TemplifyConfig(inputs=[str(out)], output=str(aug), progress=False))
    before = {"out": _tree(out), "aug": _tree(aug)}
    time.sleep(0.01)
    again = synthesize(_cfg([corpus], out, max_inflight=7))  # another setting that changes nothing written
    templify(TemplifyConfig(inputs=[str(out)], output=str(aug), progress=False))
    assert {"out": _tree(out), "aug": _tree(aug)} == before  # so a finished run directory may be read-only
    assert again.counts["docs_out"] == 12


def test_an_unwritable_output_directory_is_one_clear_error(
    corpus: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """As root a read-only directory is still writable, so the failing write is injected (fault injection)."""
    import instructpt.io.shards as shards

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shards, "atomic_write", refuse)
    rc = cli.main(["synthesize", str(corpus), "-o", str(tmp_path / "out"), "--engine", "rules", "-q"])
    err = capsys.readouterr().err
    assert rc == 4 and "cannot write shard 0" in err and "Permission denied" in err and "Traceback" not in err


def test_a_run_where_every_record_is_rejected_fails_and_says_why(tmp_path: Path, capsys) -> None:
    data = tmp_path / "wrong-field.jsonl"
    data.write_text("".join(json.dumps({"id": i, "content": TEXT}) + "\n" for i in range(5)))
    with pytest.raises(
        InputError, match=r"every record was rejected \(missing_text 5\).*available fields: content, id"
    ):
        synthesize(_cfg([data], tmp_path / "o1"))
    assert (
        json.loads((tmp_path / "o1" / "stats.json").read_text())["counts"]["rejected"] == 5
    )  # still written
    rc = cli.main(["synthesize", str(data), "-o", str(tmp_path / "o2"), "--engine", "rules", "-q"])
    assert rc == 3 and "every record was rejected (missing_text 5)" in capsys.readouterr().err
    as_array = tmp_path / "array.json"
    as_array.write_text(json.dumps([{"content": TEXT}, {"content": TEXT}], indent=1))
    with pytest.raises(InputError, match="every record was rejected"):
        synthesize(_cfg([as_array], tmp_path / "o3"))


def test_some_rejects_are_summarized_with_their_top_reasons(tmp_path: Path, capsys) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        _lines(3) + "not json\n" + json.dumps({"text": None}) + "\n" + json.dumps({"body": 1}) + "\n"
    )
    rc = cli.main(["synthesize", str(data), "-o", str(tmp_path / "o"), "--engine", "rules", "-q"])
    err = capsys.readouterr().err
    assert rc == 0 and "3 rejected (missing_text 2, invalid_json 1), each with its reason" in err


@pytest.mark.parametrize("name", ["notes.txt", "table.xlsx"])
def test_unsupported_files_are_refused_up_front(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("text\nsomething\n")
    with pytest.raises(InputError, match=r"not a supported file: supported are \.jsonl, \.jsonl\.gz"):
        synthesize(_cfg([path], tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_parquet_input_without_the_text_column_is_refused_before_reading(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "content": [TEXT]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"has no column 'text' \(its columns: id, content\).*--text-field"):
        synthesize(_cfg([tmp_path / "t.parquet"], tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # refused before the run directory was made


def test_rejects_keep_the_record_as_read(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    lines = [
        '["a", "list"]',
        '{"text": null, "id": "n"}',
        '{"id": "m", "body": "x"}',
        '{"text": "ok. Fine."}',
    ]
    data.write_text("\n".join(lines) + "\n")
    synthesize(_cfg([data], tmp_path / "out", id_field="id"))
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "shard-00000.jsonl").read_text().splitlines()
    ]
    assert [(r["reason"], r["detail"], r["record"]) for r in rejects] == [
        ("not_an_object", "list", lines[0]),
        ("missing_text", "'text' is null", lines[1]),
        ("missing_text", "no field 'text' (available fields: body, id)", lines[2]),
    ]


def test_parquet_shards_have_typed_columns_and_templify_reads_both_forms(
    corpus: Path, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    synthesize(_cfg([corpus], out, format="parquet"))
    schemas = {str(pq.read_schema(p)) for p in sorted((out / "data").iterdir())}
    assert len(schemas) == 1  # shards with different drop reasons share one schema
    schema = pq.read_schema(next((out / "data").iterdir()))
    # drops: a list of {reason, count} (datasets has no map type), read back as a mapping
    assert pa.types.is_list(schema.field("drops").type)
    assert pa.types.is_struct(schema.field("sampling").type) and pa.types.is_struct(
        schema.field("synthesizer").type
    )
    rows = [r for p in sorted((out / "data").iterdir()) for r in read_shard(p)]
    assert rows[0]["sampling"]["max_new_tokens"] == 400 and isinstance(rows[0]["drops"], dict)
    # the form earlier versions wrote: mappings as JSON text
    old = tmp_path / "old.parquet"
    write_parquet(old, [{**r, "drops": {"x": 1}} for r in rows[:4]])
    assert pa.types.is_string(pq.read_schema(old).field("drops").type)
    new = tmp_path / "new.parquet"
    shutil.copy(next((out / "data").iterdir()), new)
    docs = templify(TemplifyConfig(inputs=[str(old), str(new)], output=str(tmp_path / "aug"), progress=False))
    assert docs.counts["docs_out"] > 0 and docs.counts["rejected"] == 0


def test_overwrite_keeps_the_users_own_files_and_starts_over(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _finished(corpus, out)
    (out / "slurm-123.log").write_text("mine")
    summary = synthesize(_cfg([corpus], out, overwrite=True))
    assert summary.run.shards_resumed == 0 and (out / "slurm-123.log").read_text() == "mine"


def test_overwrite_and_the_all_rejected_rule_with_several_ranks(tmp_path: Path) -> None:
    from instructpt.errors import ConfigError
    from instructpt.stages import ShardPlan

    shard = tmp_path / "in" / "a.jsonl"
    shard.parent.mkdir()
    shard.write_text('{"id": "x", "text": "t"}\n')  # no chain_id: every row of this input is rejected
    cfg = TemplifyConfig(inputs=[str(shard)], output=str(tmp_path / "t"), progress=False, overwrite=True)
    with pytest.raises(ConfigError, match="--overwrite with several processes"):
        templify(cfg, plan=ShardPlan(0, 2))
    cfg.overwrite = False
    summary = templify(cfg, plan=ShardPlan(0, 2))  # a rank cannot tell that all of the run was rejected
    assert summary.counts["rejected"] == 1
    with pytest.raises(InputError, match="every record was rejected"):
        templify(cfg)  # one process owns every shard: it can


def test_a_parquet_run_of_0_1_keeps_its_untyped_form_on_resume(corpus: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from instructpt.io.shards import ShardedOutput

    out = tmp_path / "pq"
    synthesize(_cfg([corpus], out, format="parquet"))
    for path in sorted((out / "data").iterdir()):
        write_parquet(path, list(read_shard(path)))  # as 0.1 wrote them: mappings as JSON text
    (out / "done" / "shard-00002").unlink()
    (out / "data" / "shard-00002.parquet").unlink()
    synthesize(_cfg([corpus], out, format="parquet"))
    schemas = {str(pq.read_schema(p).field("drops").type) for p in (out / "data").iterdir()}
    assert schemas == {"string"}  # one schema across the directory
    assert ShardedOutput(
        out, "synthesize", json.loads((out / "manifest.json").read_text())["fingerprint"], "parquet"
    )


def test_rows_without_an_id_are_rejected_under_their_line(tmp_path: Path) -> None:
    shard = tmp_path / "s.jsonl"
    shard.write_text('{"id": null, "text": "t", "chain_id": "c", "pairs": []}\n')
    with pytest.raises(InputError):
        templify(TemplifyConfig(inputs=[str(shard)], output=str(tmp_path / "t"), progress=False))
    (reject,) = [
        json.loads(line)
        for line in (tmp_path / "t" / "rejects" / "shard-00000.jsonl").read_text().splitlines()
    ]
    assert (reject["id"], reject["reason"]) == ("s.jsonl:1", "missing_id")


def test_a_0_1_directory_is_not_resumed_from_inputs_0_1_read_otherwise(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _finished(corpus, out)
    (out / "inputs.json").unlink()  # as 0.1 left it: no record of the input files
    synthesize(_cfg([corpus], out))  # the same kinds of files: resumes, and records them now
    assert (out / "inputs.json").exists()
    (out / "inputs.json").unlink()
    (corpus / "0-extra.csv").write_text("text\nA row 0.1 never read.\n")
    with pytest.raises(ResumeError, match=r"written by instructpt 0.1.*0-extra.csv \(not read by 0.1\)"):
        synthesize(_cfg([corpus], out))


def test_an_unreadable_input_file_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub.jsonl").mkdir(parents=True)  # a directory with a data file's name, matched by a glob
    (d / "ok.jsonl").write_text(_lines(2))
    summary = synthesize(_cfg([str(d / "*.jsonl")], tmp_path / "out"))
    assert summary.by["rejects"] == {"unreadable_file": 1} and summary.counts["docs_out"] == 2


def test_templify_rejects_a_row_that_no_utf8_output_can_hold(tmp_path: Path) -> None:
    shard = tmp_path / "s.jsonl"
    shard.write_text('{"id": "a", "text": "hello \\ud800 world", "chain_id": "a", "pairs": []}\n'
                     '{"id": "b", "text": "fine", "chain_id": "b", "pairs": []}\n')  # fmt: skip
    summary = templify(TemplifyConfig(inputs=[str(shard)], output=str(tmp_path / "t"), progress=False))
    assert summary.by["rejects"] == {"invalid_unicode": 1} and summary.counts["docs_out"] == 1
