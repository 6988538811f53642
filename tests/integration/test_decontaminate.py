"""decontaminate: benchmark text planted in synthesized pairs and raw texts is found (exactly and with case,
whitespace and punctuation changed), a shuffled-word paraphrase is not; drop and flag; suites; cache; resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.decontaminate.index import EvalItem, NgramIndex, cached_index, ngram_hashes
from instructpt.decontaminate.run import DecontaminateConfig, decontaminate, evaluation_items
from instructpt.errors import ConfigError, ResumeError
from instructpt.io.shards import read_shard

QUESTION = (
    "Which enzyme converts angiotensin I into angiotensin II in the pulmonary circulation of healthy adults "
    "according to the classical model of blood pressure regulation?"
)
ANSWER = "Angiotensin-converting enzyme"
FILLER = (
    "The river valley was settled by farmers in the twelfth century, who cleared the forest and built terraces "
    "on the southern slopes. Their villages grew around mills and small churches."
)


def _tasks(root: Path) -> Path:
    """A user task directory as evaluate reads it: <Task>/test.json rows with options and gold_index."""
    task = root / "tasks" / "PhysioQA"
    task.mkdir(parents=True, exist_ok=True)
    rows = [
        {"input": f"Question: {QUESTION}\nAnswer:", "options": [ANSWER, "Renin", "Aldosterone synthase"],
         "gold_index": 0},
        {"input": "Question: What is the normal resting heart rate range of adults in beats per minute?\nAnswer:",
         "options": ["60 to 100", "20 to 40"], "gold_index": 0},
    ]  # fmt: skip
    (task / "test.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root / "tasks"


def _shard(root: Path) -> Path:
    shuffled = " ".join(reversed(QUESTION.rstrip("?").split()))
    rows = [
        {"id": "clean", "text": FILLER, "pairs": [{"question": "Who settled the valley?", "answer": "Farmers."}]},
        {"id": "pair-exact", "text": FILLER, "pairs": [
            {"question": "Who settled the valley?", "answer": "Farmers."},
            {"question": QUESTION, "answer": ANSWER}]},
        {"id": "pair-noisy", "text": FILLER, "pairs": [
            {"question": "  " + QUESTION.upper().replace(" ", "  \n").replace("?", " ??!"), "answer": "ACE."}]},
        {"id": "text-copied", "text": FILLER + " Quiz: " + QUESTION.replace(",", "") + " " + ANSWER + "."},
        {"id": "shuffled", "text": FILLER, "pairs": [{"question": shuffled + "?", "answer": ANSWER}]},
        {"id": "short", "text": FILLER, "pairs": [
            {"question": "what is the normal resting heart rate range of adults in beats per minute 60 to 100",
             "answer": "Yes."}]},
        "not an object",
    ]  # fmt: skip
    path = root / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _config(tmp_path: Path, **kw) -> DecontaminateConfig:
    base = dict(inputs=[str(_shard(tmp_path))], output=str(tmp_path / "out"), against=[str(_tasks(tmp_path))],
                cache_dir=str(tmp_path / "cache"), progress=False)  # fmt: skip
    return DecontaminateConfig(**{**base, **kw})


def _rejects(out: Path) -> list[dict]:
    return [
        json.loads(line) for p in sorted((out / "rejects").glob("*")) for line in p.read_text().splitlines()
    ]


def test_planted_items_are_dropped_with_their_match_and_the_rest_kept(tmp_path: Path) -> None:
    summary = decontaminate(_config(tmp_path))
    out = tmp_path / "out"
    rows = {r["id"]: r for p in sorted((out / "data").glob("*")) for r in read_shard(p)}
    assert set(rows) == {"clean", "pair-exact", "pair-noisy", "shuffled", "short"}
    assert rows["pair-exact"]["pairs"] == [{"question": "Who settled the valley?", "answer": "Farmers."}]
    assert rows["pair-noisy"]["pairs"] == []  # case, whitespace and punctuation changed: still found
    assert rows["shuffled"]["pairs"][0]["answer"] == ANSWER  # the words shuffled: not a copy
    assert rows["short"]["pairs"] == []  # an item shorter than 13 words, copied whole
    rejects = {(r["id"], r["reason"]): r for r in _rejects(out)}
    assert set(rejects) == {
        ("pair-exact#pair1", "contaminated_pair"),
        ("pair-noisy#pair0", "contaminated_pair"),
        ("short#pair0", "contaminated_pair"),
        ("text-copied", "contaminated_text"),
        ("pairs.jsonl:7", "not_an_object"),  # the line number
    }
    match = json.loads(rejects[("text-copied", "contaminated_text")]["detail"])[0]
    assert (match["benchmark"], match["task"], match["row"], match["field"]) == (
        "tasks",
        "PhysioQA",
        0,
        "text",
    )
    assert len(match["match"].split()) == 13 and match["match"] in QUESTION.lower().replace(",", "")
    assert rejects[("pair-exact#pair1", "contaminated_pair")]["record"] == {
        "question": QUESTION,
        "answer": ANSWER,
    }
    assert summary.counts["contaminated_docs"] == 4 and summary.counts["contaminated_pairs"] == 3
    pytest.importorskip("matplotlib")
    from instructpt.report.run import ReportConfig, report

    report(ReportConfig(run_dir=str(out)))
    card = (out / "report" / "report.md").read_text()
    assert "contaminated_pairs" in card and "tasks/PhysioQA" in card
    assert summary.by["contamination"] == {"tasks/PhysioQA": 4}  # one match per contaminated field


def test_flag_keeps_every_record_and_marks_the_matches(tmp_path: Path) -> None:
    decontaminate(_config(tmp_path, action="flag"))
    rows = {r["id"]: r for p in sorted((tmp_path / "out" / "data").glob("*")) for r in read_shard(p)}
    assert len(rows) == 6 and "contamination" not in rows["clean"] and "contamination" not in rows["shuffled"]
    assert [m["field"] for m in rows["pair-exact"]["contamination"]] == ["pairs[1].question"]
    assert rows["text-copied"]["contamination"][0]["field"] == "text"


def test_the_domain_suites_are_read_from_a_data_dir_and_the_index_is_cached(tmp_path: Path) -> None:
    from instructpt.evaluate.tasks import SUITES

    data = tmp_path / "finance-tasks"
    for task, (kind, _) in SUITES["finance"].items():
        (data / task).mkdir(parents=True)
        row = {"input": f"{task}: {QUESTION}"}
        row.update({"label": ANSWER} if kind == "gen" else {"options": [ANSWER, "no"], "gold_index": 0})
        (data / task / "test.json").write_text(json.dumps(row) + "\n")
    items = evaluation_items(["finance"], str(data))
    assert {i.task for i in items} == set(SUITES["finance"]) and all(i.benchmark == "finance" for i in items)
    first, cached = cached_index(items, 13, tmp_path / "cache")
    again, cached_again = cached_index(items, 13, tmp_path / "cache")
    assert (
        not cached
        and cached_again
        and list(again.hashes) == list(first.hashes)
        and again.items == first.items
    )
    summary = decontaminate(_config(tmp_path, against=["finance"], data_dir=str(data)))
    assert summary.by["contamination"]["finance/FPB"] >= 1


def test_changed_evaluation_sets_refuse_to_resume_and_bad_settings_are_named(tmp_path: Path) -> None:
    decontaminate(_config(tmp_path))
    other = tmp_path / "other.txt"
    other.write_text("a completely different evaluation question about the history of glassmaking\n")
    with pytest.raises(ResumeError, match="against"):
        decontaminate(_config(tmp_path, against=[str(other)]))
    with pytest.raises(ConfigError, match="--action"):
        _config(tmp_path, action="delete")
    with pytest.raises(ConfigError, match="--against"):
        _config(tmp_path, against=[])


def test_ngram_hashes_fold_case_punctuation_and_whitespace() -> None:
    a = ngram_hashes("The Quick, brown fox -- jumps over the lazy dog!", 3)
    b = ngram_hashes("the quick brown   fox jumps\nover the LAZY dog", 3)
    assert list(a) == list(b) and len(a) == 7
    index = NgramIndex.build([EvalItem("b", "t", 0, "the brown fox jumps over the dog")], 3)
    assert index.find("The Quick, brown fox -- jumps over the lazy dog!") == {0: "brown fox jumps"}
    assert index.find("fox brown jumps the quick") == {}
    assert ngram_hashes("", 13).size == 0 and index.find("") == {}


def test_a_short_item_is_found_inside_longer_text_and_by_its_question_alone(tmp_path: Path) -> None:
    index = NgramIndex.build([EvalItem("quiz", "geo", 0, "What is the capital of France?\nParis"),
                              EvalItem("quiz", "geo", 1, "Name it.\nRome")], 13)  # fmt: skip
    assert index.short == [6, 7]  # the item (7 words) and its question (6); "Name it. Rome" is too short
    assert index.find("Here is a quiz. What is the capital of France? Paris. Good luck!") == {
        0: "what is the capital of france paris"
    }
    assert index.find("A student asked: what is the capital of France?") == {
        0: "what is the capital of france"
    }
    assert index.find("Name it. Rome was not built in a day.") == {}


def test_bad_rows_are_rejected_by_line_and_flags_survive_parquet(tmp_path: Path) -> None:
    shard = tmp_path / "odd.jsonl"
    shard.write_text(
        '\n{"text": "clean text about rivers and valleys"}\n"not an object"\n'
        + json.dumps({"text": FILLER + " " + QUESTION})
        + '\n{"text": "lone \\ud800 surrogate"}\n'
    )
    decontaminate(_config(tmp_path, inputs=[str(shard)]))
    rejects = {(r["id"], r["reason"]) for r in _rejects(tmp_path / "out")}
    assert rejects == {("odd.jsonl:3", "not_an_object"), ("odd.jsonl:4", "contaminated_text"),
                       ("odd.jsonl:5", "invalid_unicode")}  # fmt: skip
    decontaminate(_config(tmp_path, inputs=[str(shard)], output=str(tmp_path / "pq"), format="parquet",
                          action="flag"))  # fmt: skip
    rows = [r for p in sorted((tmp_path / "pq" / "data").glob("*")) for r in read_shard(p)]
    assert rows[0].get("contamination") is None and rows[1]["contamination"][0]["field"] == "text"


def test_an_unreadable_cache_file_is_built_again(tmp_path: Path) -> None:
    items = [EvalItem("b", "t", 0, QUESTION)]
    index, cached = cached_index(items, 13, tmp_path)
    (path,) = tmp_path.glob("ngrams-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # cut short
    again, cached = cached_index(items, 13, tmp_path)
    assert not cached and list(again.hashes) == list(index.hashes)
    assert cached_index(items, 13, tmp_path)[1]  # and cached again


def test_the_command_line(tmp_path: Path) -> None:
    items = tmp_path / "items.txt"
    items.write_text(QUESTION + "\n")
    shard = _shard(tmp_path)
    cmd = [sys.executable, "-m", "instructpt", "decontaminate", str(shard), "-o", str(tmp_path / "cli"),
           "--against", str(items), "--cache-dir", "", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "cli" / "stats.json").read_text())
    assert stats["counts"]["contaminated_pairs"] == 2 and stats["by"]["contamination"] == {
        "items.txt/items": 3
    }


def test_near_duplicates_are_clustered_and_all_but_the_first_dropped(tmp_path: Path) -> None:
    pytest.importorskip("datasketch")
    from instructpt.decontaminate.neardup import cluster_sizes, near_duplicates

    base = " ".join(f"millers{i} ground grain." if i % 7 == 0 else f"valley{i}" for i in range(200))
    other = " ".join(f"glassmakers{i} moved furnaces." if i % 5 == 0 else f"island{i}" for i in range(200))
    rows = [
        {"id": "a", "text": base},
        {"id": "b", "text": other},
        {
            "id": "a-edited",
            "text": base.replace("valley50", "hill").replace("valley150", "lake") + " The end.",
        },
        {"id": "a-copy", "text": base.upper()},  # the same words, other case: a duplicate after normalisation
        {"id": "c", "text": FILLER * 3},
    ]
    shard = tmp_path / "docs.jsonl"
    shard.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    found = near_duplicates([(i, r["id"], r["text"]) for i, r in enumerate(rows)], threshold=0.8)
    assert {rows[k]["id"]: d.kept for k, d in found.items()} == {"a-edited": "a", "a-copy": "a"}
    assert list(cluster_sizes(found)) == [3]
    summary = decontaminate(_config(tmp_path, inputs=[str(shard)], near_dup=True))
    kept = [r["id"] for p in sorted((tmp_path / "out" / "data").glob("*")) for r in read_shard(p)]
    assert kept == ["a", "b", "c"] and summary.counts["near_duplicates"] == 2
    dropped = {r["id"]: json.loads(r["detail"]) for r in _rejects(tmp_path / "out")}
    assert dropped["a-copy"] == {"kept": "a", "similarity": 1.0} and dropped["a-edited"]["kept"] == "a"
    flagged = decontaminate(_config(tmp_path, inputs=[str(shard)], near_dup=True, action="flag",
                                    output=str(tmp_path / "flag")))  # fmt: skip
    rows_out = {r["id"]: r for p in sorted((tmp_path / "flag" / "data").glob("*")) for r in read_shard(p)}
    assert len(rows_out) == 5 and rows_out["a-edited"]["near_duplicate"]["kept"] == "a"
    assert "near_duplicate" not in rows_out["a"] and flagged.counts["near_duplicates"] == 2


def test_synthesize_and_templify_outputs_are_read_as_they_are(tmp_path: Path) -> None:
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize
    from instructpt.templates.run import TemplifyConfig, templify

    corpus = tmp_path / "corpus.jsonl"
    texts = [FILLER * 2 + " " + QUESTION + " The answer is the " + ANSWER + ".", FILLER * 3]
    corpus.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t}) for i, t in enumerate(texts)) + "\n")
    synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "pairs"), id_field="id", rounds=1,
                                progress=False, engine=EngineConfig(name="rules")))  # fmt: skip
    templify(TemplifyConfig(inputs=[str(tmp_path / "pairs")], output=str(tmp_path / "aug"), progress=False))
    for stage_out in ("pairs", "aug"):
        s = decontaminate(
            _config(tmp_path, inputs=[str(tmp_path / stage_out)], output=str(tmp_path / f"{stage_out}-c"))
        )
        dropped = {
            r["id"] for r in _rejects(tmp_path / f"{stage_out}-c") if r["reason"] == "contaminated_text"
        }
        assert dropped == {"d0"} and s.counts["docs_out"] == s.counts["docs_in"] - 1, stage_out
