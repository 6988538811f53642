"""The stage platform changed no byte: synthesize (rules) and templify write the same data/ and rejects/ as the
version before it, in both formats, and resume into run directories that version wrote.

The digests and counters in tests/golden/platform/ were taken with instructpt 0.1.0 on the same pipeline (see
its README); stats.json may differ only in timings and the counter renames listed here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from instructpt.demo import default_corpus
from instructpt.engines.config import EngineConfig
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

GOLDEN = Path(__file__).parents[1] / "golden" / "platform"

# counter -> its name before the platform ("" for a counter that is new); see docs/stats.md
RENAMED = {
    "synthesize": {"rejected": "docs_rejected", "pairs_out": "pairs"},
    "templify": {"docs_out": "documents_out", "pairs_out": "pairs_rendered", "rejected": ""},
}

BAD_RECORDS = [
    b'{"id": "bad-1", "text": ""}\n',
    b'{"id": "bad-2"}\n',
    b"not json at all\n",
    b'{"id": "bad-3", "text": 17}\n',
    b"\xff\xfe broken utf8\n",
    b'{"id": "bad-4", "text": "nul \\u0000 byte"}\n',
    b"[1, 2, 3]\n",
]
BAD_SHARD = (
    b'{"id": "t1", "doc_id": "t1", "text": "A short text.", "chain_id": "t1", "pairs": [{"question": "Q?", '
    b'"answer": "A."}]}\n'
    b'{"id": "t2", "text": "No chain id here.", "pairs": []}\n'
    b"{broken json\n"
    b'{"id": "t3", "text": "Bad pairs.", "chain_id": "t3", "pairs": [{"q": 1}]}\n'
    b'"a string row"\n'
    b'{"id": "t4", "text": "", "chain_id": "t4", "pairs": []}\n'
    b'{"id": "t5", "doc_id": "t5", "text": "Second chain.", "chain_id": "t5", "pairs": []}\n'
)


def _corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for p in sorted(Path(default_corpus()).glob("*.jsonl")):
        shutil.copy(p, corpus / p.name)
    first = (corpus / "corpus-a.jsonl").read_bytes().splitlines(keepends=True)[0]
    (corpus / "zz-bad.jsonl").write_bytes(b"".join(BAD_RECORDS) + first)  # the last line repeats an id
    return corpus


def _digests(root: Path) -> dict[str, str]:
    return {
        f"{sub}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("data", "rejects")
        for p in sorted((root / sub).glob("*"))
    }


def _as_before(stage: str, counts: dict) -> dict:
    renamed = RENAMED[stage]
    return {renamed.get(k, k): v for k, v in counts.items() if renamed.get(k, k)}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_same_bytes_as_before_the_platform(tmp_path: Path, fmt: str) -> None:
    want = json.loads((GOLDEN / "digests.json").read_text())[fmt]
    corpus = _corpus(tmp_path)
    engine = EngineConfig(name="rules", model="rules", seed=0)
    pairs, aug, bad = tmp_path / "pairs", tmp_path / "aug", tmp_path / "bad-shard.jsonl"
    s = synthesize(
        SynthesizeConfig(inputs=[str(corpus)], output=str(pairs), id_field="id", rounds=2, shard_size=64,
                         format=fmt, progress=False, engine=engine)
    )  # fmt: skip
    bad.write_bytes(BAD_SHARD)
    t = templify(
        TemplifyConfig(inputs=[str(pairs), str(bad)], output=str(aug), seed=0, format=fmt, progress=False)
    )
    for stage, summary, root in (("synthesize", s, pairs), ("templify", t, aug)):
        assert _digests(root) == want[stage]["files"], stage
        assert _as_before(stage, summary.counts) == want[stage]["stats"]["counts"], stage
        assert summary.by == want[stage]["stats"]["by"], stage
        assert json.loads((root / "stats.json").read_text())["counts"] == summary.counts
    assert s.counts["rejected"] == sum(s.by["rejects"].values()) == 8
    assert t.counts["rejected"] == sum(t.by["rejects"].values()) == 5


def test_resumes_into_run_directories_written_before_the_platform(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(GOLDEN / "v0.1.0", tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")  # the old runs were given relative paths
    before = {d: _digests(Path(d)) for d in ("synthesize", "templify")}
    old = {d: json.loads(Path(d, "stats.json").read_text())["counts"] for d in before}
    engine = EngineConfig(name="rules", model="rules", seed=0)
    s = synthesize(SynthesizeConfig(inputs=["small-corpus"], output="synthesize", id_field="id", shard_size=5,
                                    progress=False, engine=engine))  # fmt: skip
    t = templify(TemplifyConfig(inputs=["synthesize"], output="templify", progress=False))
    assert s.run.shards_resumed == s.run.shards_total == 3 and s.run.done_this_run == 0
    assert t.run.shards_resumed == t.run.shards_total == 3 and t.run.done_this_run == 0
    assert {d: _digests(Path(d)) for d in before} == before
    # the old counters, in today's names (rejected recounted from the rejects by reason)
    assert _as_before("synthesize", s.counts) == old["synthesize"]
    assert s.counts["rejected"] == 1 and s.counts["pairs_out"] == old["synthesize"]["pairs"]
    assert _as_before("templify", t.counts) == old["templify"] and t.counts["rejected"] == 0
