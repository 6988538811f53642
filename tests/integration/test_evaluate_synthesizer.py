"""evaluate-synthesizer on the tests' tiny synthesizer and on a rules-engine synthesize output: the figures equal
what the samples and records say, seen/unseen splits, bad rows rejected with reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig
from instructpt.errors import ConfigError
from instructpt.evaluate.synthesizer import EvaluateSynthesizerConfig, evaluate_synthesizer
from tests.tinymodel import make_example

pytestmark = pytest.mark.slow
pytest.importorskip("rouge_score")


def _documented(summary) -> None:
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "stats.md").read_text(encoding="utf-8")
    written = set(summary.counts) | set(summary.by)
    assert written - set(re.findall(r"`([a-z0-9_<>]+)`", doc)) == set()


def _heldout(path: Path) -> Path:
    rng = random.Random(9)
    rows = []
    for i in range(12):
        context, pairs = make_example(rng)
        rows.append({"id": f"h{i}", "source": "seen_set" if i % 2 else "new_set", "context": context,
                     "QA_list": [{"Q": p.question, "A": p.answer} for p in pairs]})  # fmt: skip
    rows.append({"context": "No pairs here.", "QA_list": []})
    rows.append({"context": "Text.", "QA_list": [{"Q": "Why?", "A": "</s>"}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_response_accuracy_of_the_tiny_synthesizer(tiny_synth: Path, tmp_path: Path) -> None:
    from instructpt.quality.answers import exact_match, rouge_l, token_f1

    engine = EngineConfig(name="transformers", model=str(tiny_synth), max_model_len=512, max_new_tokens=24)
    out = tmp_path / "ev"
    s = evaluate_synthesizer(EvaluateSynthesizerConfig(heldout=[str(_heldout(tmp_path / "h.jsonl"))], output=str(out),
                                                       seen_sources=["seen_set"], engine=engine))  # fmt: skip
    d = s.to_dict()
    assert d["counts"]["rejected"] == 2 and d["by"]["rejects"] == {"no_pairs": 1, "marker_in_text": 1}
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == d["counts"]["questions"] > 12  # every gold pair of the 12 examples is asked
    for r in rows:
        assert r["exact_match"] == exact_match(r["response"], r["gold"]) and r["rouge_l"] == rouge_l(
            r["response"], r["gold"]
        )
    report = json.loads((out / "responses.json").read_text())
    assert report["overall"]["token_f1"] == pytest.approx(
        sum(token_f1(r["response"], r["gold"]) for r in rows) / len(rows), abs=1e-6
    )
    assert set(report["by_seen"]) == {"seen", "unseen"} and set(report["by_source"]) == {
        "seen_set",
        "new_set",
    }
    assert report["by_seen"]["seen"]["questions"] + report["by_seen"]["unseen"]["questions"] == len(rows)
    # the tiny model's answers need not be right, but it answers in the format: a short reply, cut at its </END>
    assert sum(1 for r in rows if r["response"] and "<" not in r["response"]) >= 0.8 * len(rows)
    assert "| all |" in (out / "results.md").read_text()
    _documented(s)


def test_pair_quality_of_a_synthesize_output(tmp_path: Path) -> None:
    from instructpt.io.shards import finished_shards, read_shard
    from instructpt.quality.pairs import classify
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    demo = (
        Path(__file__).resolve().parents[2] / "src" / "instructpt" / "resources" / "demo" / "corpus-a.jsonl"
    )
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(demo.read_text().splitlines(keepends=True)[:12]))
    synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "pairs"), progress=False,
                                engine=EngineConfig(name="rules")))  # fmt: skip
    s = evaluate_synthesizer(
        EvaluateSynthesizerConfig(pairs=[str(tmp_path / "pairs")], output=str(tmp_path / "ev"))
    )
    q = json.loads((tmp_path / "ev" / "pairs.json").read_text())[str(tmp_path / "pairs")]
    records = [r for sh in finished_shards(tmp_path / "pairs") for r in read_shard(sh.path)]
    pairs = [(p, r["text"]) for r in records for p in r["pairs"]]
    assert q["texts"] == len(records) and q["pairs"] == len(pairs) > 0
    assert q["parse_rate"] == pytest.approx(sum(1 for r in records if r["pairs"]) / len(records), abs=1e-6)
    kinds: dict[str, int] = {}
    for p, text in pairs:
        kinds[classify(p["question"], p["answer"], text)] = (
            kinds.get(classify(p["question"], p["answer"], text), 0) + 1
        )
    assert q["task_types"] == kinds and sum(q["question_words"].values()) == len(pairs)
    assert s.counts["pairs"] == len(pairs) and 0.0 <= s.counts["grounded"] <= 1.0
    _documented(s)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot answer a given question"):
        EvaluateSynthesizerConfig(
            heldout=["x.jsonl"], output=str(tmp_path), engine=EngineConfig(name="rules")
        )
    with pytest.raises(ConfigError, match=r"give --heldout \(examples to answer\) and/or --pairs"):
        EvaluateSynthesizerConfig(output=str(tmp_path))
