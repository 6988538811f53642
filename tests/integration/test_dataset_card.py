"""synthesize and templify outputs carry a dataset card that `datasets.load_dataset(DIR)` follows: the records of
data/, never stats.json, manifest.json or rejects/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

datasets = pytest.importorskip("datasets")
DEMO = Path(__file__).resolve().parents[2] / "src" / "instructpt" / "resources" / "demo" / "corpus-a.jsonl"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_load_dataset_reads_the_records_of_a_run_directory(tmp_path: Path, fmt: str) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(DEMO.read_text().splitlines(keepends=True)[:10]) + "not json\n")
    pairs, docs = tmp_path / "pairs", tmp_path / "docs"
    s = synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(pairs), format=fmt, progress=False,
                                    engine=EngineConfig(name="rules")))  # fmt: skip
    t = templify(TemplifyConfig(inputs=[str(pairs)], output=str(docs), format=fmt, progress=False))
    for root, summary in ((pairs, s), (docs, t)):
        card = (root / "README.md").read_text()
        assert card.startswith("---\nconfigs:") and f"path: data/*.{fmt}" in card and "license: other" in card
        assert json.loads((root / "manifest.json").read_text())["stage"] in card
        ds = datasets.load_dataset(str(root), split="train", cache_dir=str(tmp_path / "cache"))
        assert len(ds) == summary.counts["docs_out"] and "text" in ds.column_names
    assert s.counts["rejected"] == 1  # the bad line went to rejects/, which the dataset does not read
    ds = datasets.load_dataset(str(pairs), split="train", cache_dir=str(tmp_path / "c2"))
    assert "pairs" in ds.column_names and "drops" in ds.column_names
