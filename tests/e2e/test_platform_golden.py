"""The pipeline's output changes only on purpose: synthesize (rules) and templify write the bytes recorded in
tests/golden/platform/digests.json, and resume into run directories that instructpt 0.1.0 wrote.

The digests were first taken with instructpt 0.1.0 (see the README there), and the stage platform changed no byte
(commit 4b79e4e checked every data/ and rejects/ digest, both formats). Changed on purpose since: reject entries
keep the line or row as read (`record`) and name the fields a record has when its text field is missing
(`detail`); parquet shards have typed columns; the rules engine (rules-v3) and the template inventory were revised
for quality, after which the data digests and counters were taken again, and again for rules-v5 (one RNG per text
instead of one per task type: other wordings, the same counts within a few items). INSTRUCTPT_UPDATE_GOLDEN=1
rewrites them; the file records the rules version and inventory fingerprint they were taken with. stats.json may
differ only in timings and the counter renames listed here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from instructpt.demo import default_corpus
from instructpt.engines.config import EngineConfig
from instructpt.engines.rules import RULES_VERSION
from instructpt.errors import ResumeError
from instructpt.io.shards import read_shard
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates import inventory_fingerprint
from instructpt.templates.run import TemplifyConfig, templify

GOLDEN = Path(__file__).parents[1] / "golden" / "platform"
UPDATE = os.environ.get("INSTRUCTPT_UPDATE_GOLDEN") == "1"

# counter -> its name before the platform ("" for a counter that is new); see docs/stats.md
RENAMED = {
    "synthesize": {"rejected": "docs_rejected", "pairs_out": "pairs"},
    "templify": {"docs_out": "documents_out", "pairs_out": "pairs_rendered", "rejected": ""},
}

# keys written since 0.1 (templify: the lineage of each source document: its input file and kept fields)
NEW_KEYS: dict[str, tuple[str, ...]] = {"synthesize": (), "templify": ("source_fields",)}

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


def _digests(root: Path, drop: tuple[str, ...] | None = None) -> dict[str, str]:
    """sha256 of every data/ and rejects/ file; with ``drop``, of the data/ files alone, each jsonl line written
    again as the stage writes it without the keys in ``drop`` (keys added since 0.1)."""
    if drop is None:
        return {
            f"{sub}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("data", "rejects")
            for p in sorted((root / sub).glob("*"))
        }
    out = {}
    for p in sorted((root / "data").glob("*")):
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
        body = "".join(
            json.dumps({k: v for k, v in r.items() if k not in drop}, ensure_ascii=False) + "\n" for r in rows
        )
        out[f"data/{p.name}"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return out


def _as_before(stage: str, counts: dict) -> dict:
    renamed = RENAMED[stage]
    return {renamed.get(k, k): v for k, v in counts.items() if renamed.get(k, k)}


def _run(root: Path, fmt: str):
    corpus = _corpus(root)
    engine = EngineConfig(name="rules", model="rules", seed=0)
    pairs, aug, bad = root / "pairs", root / "aug", root / "bad-shard.jsonl"
    s = synthesize(
        SynthesizeConfig(inputs=[str(corpus)], output=str(pairs), id_field="id", rounds=2, shard_size=64,
                         format=fmt, progress=False, engine=engine)
    )  # fmt: skip
    bad.write_bytes(BAD_SHARD)
    t = templify(
        TemplifyConfig(inputs=[str(pairs), str(bad)], output=str(aug), seed=0, format=fmt, progress=False)
    )
    return {"synthesize": (s, pairs), "templify": (t, aug)}


def _rows(root: Path) -> list[dict]:
    """Every data row, with the nulls a typed parquet column gives for absent keys left out."""

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        return [clean(x) for x in v] if isinstance(v, list) else v

    return [clean(r) for p in sorted((root / "data").glob("shard-*")) for r in read_shard(p)]


def test_same_output_as_before_the_platform(tmp_path: Path) -> None:
    """jsonl data: the same bytes as 0.1. parquet data: the same rows (its columns are typed since, so the bytes
    differ). Rejects: the same entries, each now keeping its line as read. Counters: the same, renamed."""
    runs = {fmt: _run(tmp_path / fmt, fmt) for fmt in ("jsonl", "parquet")}
    if UPDATE:
        _write_golden(runs["jsonl"])
    golden = json.loads((GOLDEN / "digests.json").read_text())
    assert golden["taken_with"] == {"rules_version": RULES_VERSION, "inventory": inventory_fingerprint()}, (
        "the rules engine or the template inventory changed: check the new output, then take the digests again "
        "with INSTRUCTPT_UPDATE_GOLDEN=1"
    )
    for stage in ("synthesize", "templify"):
        want = golden["jsonl"][stage]
        summary, root = runs["jsonl"][stage]
        data = _digests(root, drop=NEW_KEYS[stage])
        assert data == {k: v for k, v in want["files"].items() if k.startswith("data/")}, stage
        assert _rows(runs["parquet"][stage][1]) == _rows(root), stage
        for fmt in ("jsonl", "parquet"):
            summary, root = runs[fmt][stage]
            assert _as_before(stage, summary.counts) == want["stats"]["counts"], (stage, fmt)
            assert summary.by == want["stats"]["by"], (stage, fmt)
            assert json.loads((root / "stats.json").read_text())["counts"] == summary.counts
            assert _rejects(root, drop=("record", "detail")) == {
                name: [{k: v for k, v in r.items() if k != "detail"} for r in rows]
                for name, rows in want["rejects"].items()
            }, (stage, fmt)
    s, t = runs["jsonl"]["synthesize"][0], runs["jsonl"]["templify"][0]
    assert s.counts["rejected"] == sum(s.by["rejects"].values()) == 8
    assert t.counts["rejected"] == sum(t.by["rejects"].values()) == 5
    read_rejects = [
        r for r in _rejects(runs["jsonl"]["synthesize"][1])["shard-00004.jsonl"] if r["stage"] == "read"
    ]
    originals = {line.rstrip(b"\n").decode("utf-8", "backslashreplace") for line in BAD_RECORDS}
    assert {r["record"] for r in read_rejects if r["reason"] != "duplicate_id"} == originals


def _write_golden(run: dict) -> None:
    out: dict = {
        "taken_with": {"rules_version": RULES_VERSION, "inventory": inventory_fingerprint()},
        "jsonl": {},
    }
    for stage, (summary, root) in run.items():
        out["jsonl"][stage] = {
            "files": _digests(root, drop=NEW_KEYS[stage]),
            "rejects": _rejects(root, drop=("record", "detail")),
            "stats": {"counts": _as_before(stage, summary.counts), "by": summary.by},
        }
    (GOLDEN / "digests.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


def _rejects(root: Path, drop: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    return {
        p.name: [
            {k: v for k, v in json.loads(line).items() if k not in drop}
            for line in p.read_text().splitlines()
        ]
        for p in sorted((root / "rejects").glob("*"))
    }


def test_resumes_into_run_directories_written_before_the_platform(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(GOLDEN / "v0.1.0", tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")  # the old runs were given relative paths
    before = {d: _digests(Path(d)) for d in ("synthesize", "templify")}
    old = {d: json.loads(Path(d, "stats.json").read_text())["counts"] for d in before}
    engine = EngineConfig(name="rules", model="rules", seed=0)
    # Today's rules engine and templates differ from 0.1's: resuming would mix outputs, so both runs refuse.
    with pytest.raises(ResumeError, match="rules_version"):
        synthesize(SynthesizeConfig(inputs=["small-corpus"], output="synthesize", id_field="id", shard_size=5,
                                    progress=False, engine=engine))  # fmt: skip
    with pytest.raises(ResumeError, match="inventory"):
        templify(TemplifyConfig(inputs=["synthesize"], output="templify", progress=False))
    assert {d: _digests(Path(d)) for d in before} == before
    # With the engine and inventory of those runs (named as their manifests record them), the platform takes the
    # old run directories as they are: every shard is done, nothing is written again.
    recorded = {d: json.loads(Path(d, "manifest.json").read_text())["fingerprint"] for d in before}
    monkeypatch.setattr(
        "instructpt.engines.rules.miner.RULES_VERSION", recorded["synthesize"]["rules_version"]
    )
    monkeypatch.setattr(
        "instructpt.templates.run.inventory_fingerprint", lambda: recorded["templify"]["inventory"]
    )
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
