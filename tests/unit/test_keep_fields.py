"""--keep-fields: input fields (datatrove's ``metadata`` by default, and any the user names) carried from the input
record through synthesize (``fields`` of each record, in jsonl and parquet) and templify (``source_fields``, with
each source document's ``source``), absent where a record has none."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig
from instructpt.io.readers import ReadOptions, read_docs
from instructpt.io.shards import read_shard
from instructpt.records import RawDoc, SynthRecord
from instructpt.synthesizer.chains import make_items
from instructpt.synthesizer.config import SynthesizeConfig
from instructpt.synthesizer.run import synthesize
from instructpt.templates.run import TemplifyConfig, templify
from tests.doubles.scripted_engine import WordCodec

TEXT = "Rivers carry water to the sea. However, deserts have little rain, so few rivers cross them."
ROWS = [
    {"id": "a", "text": TEXT, "metadata": {"url": "https://x.org/a", "dump": "CC-2024"}, "url": "https://x.org/a"},
    {"id": "b", "text": TEXT + " Therefore, oases matter.", "lang": "en"},
    {"id": "c", "text": TEXT + " Camels store fat.", "metadata": None, "url": "https://x.org/c", "title": "C"},
]  # fmt: skip


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus" / "c.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_readers_keep_the_named_fields_where_a_record_has_them(tmp_path: Path) -> None:
    path = _corpus(tmp_path)
    options = ReadOptions(id_field="id", keep_fields=("metadata", "url", "text"))
    docs = [d for d in read_docs([str(path)], options) if isinstance(d, RawDoc)]
    assert [d.fields for d in docs] == [
        {"metadata": ROWS[0]["metadata"], "url": "https://x.org/a"},
        None,  # no such field: nothing, not an empty mapping
        {"url": "https://x.org/c"},  # null is absent; the text field is the text, not a kept field
    ]
    assert all(d.fields is None for d in read_docs([str(path)], ReadOptions()) if isinstance(d, RawDoc))
    with open(tmp_path / "c.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "url", "lang"], [TEXT, "https://x.org/z", "en"]])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [TEXT], "url": ["u"], "n": [3]}), tmp_path / "c.parquet")
    options = ReadOptions(keep_fields=("url", "lang"))
    (csv_doc,) = read_docs([str(tmp_path / "c.csv")], options)
    (parquet_doc,) = read_docs([str(tmp_path / "c.parquet")], options)
    assert csv_doc.fields == {"url": "https://x.org/z", "lang": "en"} and parquet_doc.fields == {"url": "u"}


def test_pieces_of_a_split_text_keep_their_documents_fields() -> None:
    doc = RawDoc("d", "\n\n".join(["word " * 30] * 4), "src", fields={"metadata": {"k": 1}})
    items = make_items([doc], WordCodec(), 60)
    assert len(items) > 1 and all(it.fields == {"metadata": {"k": 1}} for it in items)


def _run(tmp_path: Path, fmt: str, keep: list[str]) -> tuple[list[dict], list[dict]]:
    corpus = _corpus(tmp_path)
    pairs, aug = tmp_path / f"pairs-{fmt}", tmp_path / f"aug-{fmt}"
    engine = EngineConfig(name="rules")
    synthesize(SynthesizeConfig(inputs=[str(corpus.parent)], output=str(pairs), id_field="id", rounds=2,
                                keep_fields=keep, format=fmt, progress=False, engine=engine))  # fmt: skip
    templify(TemplifyConfig(inputs=[str(pairs)], output=str(aug), format=fmt, progress=False))
    rows = [r for p in sorted((pairs / "data").glob("shard-*")) for r in read_shard(p)]
    docs = [r for p in sorted((aug / "data").glob("shard-*")) for r in read_shard(p)]
    return rows, docs


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_kept_fields_reach_the_final_corpus(tmp_path: Path, fmt: str) -> None:
    rows, docs = _run(tmp_path, fmt, ["url", "title"])
    kept = {r["id"]: SynthRecord.from_row(r).fields for r in rows}  # parquet: JSON text, read back the same
    assert kept == {
        "a": {"metadata": ROWS[0]["metadata"], "url": "https://x.org/a"},
        "b": None,
        "c": {"url": "https://x.org/c", "title": "C"},
    }
    if fmt == "jsonl":
        assert "fields" not in rows[1] and list(rows[0]["fields"]) == ["metadata", "url"]
    else:
        assert rows[1]["fields"] is None and json.loads(rows[0]["fields"])["url"] == "https://x.org/a"
    lineage = {}
    for doc in docs:
        lineage.update(doc.get("source_fields") or {})
    assert lineage["a"] == {"source": "c.jsonl", "metadata": ROWS[0]["metadata"], "url": "https://x.org/a"}
    assert lineage["c"] == {"source": "c.jsonl", "url": "https://x.org/c", "title": "C"}


def test_without_kept_fields_no_key_is_added_and_templify_keeps_the_source(tmp_path: Path) -> None:
    path = tmp_path / "corpus" / "c.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"text": TEXT}) + "\n")
    synthesize(SynthesizeConfig(inputs=[str(path)], output=str(tmp_path / "p"), progress=False,
                                engine=EngineConfig(name="rules")))  # fmt: skip
    templify(TemplifyConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "a"), progress=False))
    (row,) = read_shard(tmp_path / "p" / "data" / "shard-00000.jsonl")
    (doc,) = read_shard(tmp_path / "a" / "data" / "shard-00000.jsonl")
    assert "fields" not in row and doc["source_fields"] == {row["doc_id"]: {"source": "c.jsonl"}}


def test_keep_fields_is_in_the_fingerprint_only_when_not_default() -> None:
    def config(**kw) -> SynthesizeConfig:
        return SynthesizeConfig(inputs=["x.jsonl"], output="o", engine=EngineConfig(name="rules"), **kw)

    assert "keep_fields" not in config().fingerprint()
    assert config(keep_fields=["metadata"]).fingerprint() == config().fingerprint()
    custom = config(keep_fields=["url", "metadata", "url"])
    assert custom.keep_fields == ["metadata", "url"] and custom.fingerprint()["keep_fields"] == [
        "metadata",
        "url",
    ]
