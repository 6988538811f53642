"""instructpt filter as a stage: dropped pairs go to rejects/ by rule, counts in stats.json, resume, rules output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.errors import ConfigError, ResumeError
from instructpt.filter.run import FilterConfig, filter_pairs
from instructpt.io.shards import read_shard

TEXT = (
    "The Danube flows through ten countries and four capital cities before it reaches the Black Sea. "
    "Its delta, in Romania and Ukraine, is one of the largest wetlands in Europe and a refuge for pelicans."
)


def _shard(root: Path) -> Path:
    rows = [
        {"id": "d1", "text": TEXT, "pairs": [
            {"question": "Which sea does the Danube reach?", "answer": "The Black Sea."},
            {"question": "Who built the first bridge over the river?", "answer": "Roman engineers under Trajan."},
            {"question": "Where does it end?\nOptions:\n- the Black Sea\n- the Baltic", "answer": "the North Sea"}]},
        {"id": "d2", "text": TEXT, "pairs": [
            {"question": "Which sea does the Danube reach?", "answer": "The Black Sea."},
            {"question": "Which sea does the Danube reach ?", "answer": "The Black Sea, in the east."}]},
        {"id": "raw", "text": TEXT},
        {"id": "bad", "text": TEXT, "pairs": "not a list"},
    ]  # fmt: skip
    path = root / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_dropped_pairs_are_rejected_by_rule_and_counted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = filter_pairs(FilterConfig(inputs=[str(_shard(tmp_path))], output=str(out), progress=False))
    rows = {r["id"]: r for p in sorted((out / "data").glob("*")) for r in read_shard(p)}
    assert [p["answer"] for p in rows["d1"]["pairs"]] == ["The Black Sea."]
    assert len(rows["d2"]["pairs"]) == 1 and "pairs" not in rows["raw"]
    rejects = {
        (r["id"], r["reason"]): r
        for p in sorted((out / "rejects").glob("*"))
        for r in map(json.loads, p.open())
    }
    assert set(rejects) == {("d1#pair1", "ungrounded"), ("d1#pair2", "bad_options"),
                            ("d2#pair1", "duplicate_question"), ("bad", "bad_pairs")}  # fmt: skip
    assert rejects[("d1#pair2", "bad_options")]["record"]["answer"] == "the North Sea"  # the pair as it was
    assert summary.by["drops"] == {"ungrounded": 1, "bad_options": 1, "duplicate_question": 1}
    assert (summary.counts["pairs_in"], summary.counts["pairs_out"], summary.counts["docs_out"]) == (5, 2, 3)
    with pytest.raises(ResumeError, match="rules"):
        filter_pairs(
            FilterConfig(inputs=[str(_shard(tmp_path))], output=str(out), progress=False, min_grounding=0.2)
        )
    with pytest.raises(ConfigError, match="min-grounding"):
        FilterConfig(inputs=["x"], output="y", min_grounding=2.0)


def test_rules_engine_output_through_the_command_line(tmp_path: Path) -> None:
    from instructpt.demo import default_corpus
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    corpus = sorted(Path(default_corpus()).glob("*.jsonl"))[0]
    synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "pairs"), id_field="id",
                                progress=False, engine=EngineConfig(name="rules")))  # fmt: skip
    cmd = [sys.executable, "-m", "instructpt", "filter", str(tmp_path / "pairs"), "-o", str(tmp_path / "f"),
           "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = json.loads((tmp_path / "f" / "stats.json").read_text())["counts"]
    # the rules engine's pairs are grounded in their texts by construction: few are dropped
    assert counts["pairs_out"] >= 0.9 * counts["pairs_in"] > 0
