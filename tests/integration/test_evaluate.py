"""instructpt evaluate on the tests' tiny model with small task files written here: the domain scorer against a
plain one-option-at-a-time reference, the output files, lm-eval YAML tasks through the library, parity of the
shipped generation YAMLs with `lm_eval`, --compare, resume, BOS handling and bad input."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.errors import InputError
from instructpt.evaluate.run import EvaluateConfig, evaluate
from tests.tinymodel import make_example

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("lm_eval")


def _finance(root: Path) -> Path:
    """A finance data directory in the AdaptLLM layout, with texts the tiny model has seen the like of."""
    rng = random.Random(3)
    rows: dict[str, list[dict]] = {t: [] for t in ("FPB", "FiQA_SA", "Headline", "NER", "ConvFinQA")}
    for i in range(8):
        context, pairs = make_example(rng)
        q = pairs[0].question
        opts = ["The river.", "The garden.", "The bank."]
        rows["FPB"].append({"input": f"{context}\n{q}", "options": opts, "gold_index": i % 3})
        rows["FiQA_SA"].append({"input": f"{context} Sentiment:", "options": ["negative", "neutral", "positive"],
                                "gold_index": (i + 1) % 3})  # fmt: skip
        sub = [
            "Does the news headline talk about price going up?",
            "Does the news headline talk about a past price?",
        ]
        rows["Headline"].append(
            {"input": f"{context}\n{sub[i % 2]}", "options": ["No", "Yes"], "gold_index": i % 2}
        )
        rows["NER"].append({"input": f"{context}\nEntities:", "label": "river (LOC); doctor (PER)"})
        rows["ConvFinQA"].append({"input": f"{context}\nHow many?", "label": str(i)})
    for task, items in rows.items():
        (root / task).mkdir(parents=True)
        text = (
            json.dumps(items) if task == "FPB" else "".join(json.dumps(r) + "\n" for r in items)
        )  # array or lines
        (root / task / "test.json").write_text(text)
    return root


def _reference_nll(model, tok, text: str, option: str) -> float:
    """Mean NLL of the option's tokens, one sequence at a time, no padding (the semantics, written plainly)."""
    import torch

    ctx = tok.encode(text, add_special_tokens=False)
    whole = tok.encode(text + " " + option, add_special_tokens=False)
    cont = whole[len(ctx) :]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([whole[:-1]])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return float(-torch.stack([logp[len(ctx) - 1 + k, t] for k, t in enumerate(cont)]).mean())


def test_finance_suite_on_local_files(tiny_synth: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = _finance(tmp_path / "fin")
    out = tmp_path / "eval"
    summary = evaluate(EvaluateConfig(model=str(tiny_synth), suite="finance", data_dir=str(data), output=str(out),
                                      batch_size=3, add_bos_token=False))  # fmt: skip
    assert summary.counts == {"tasks": 5, "rows": 40}
    report = json.loads((out / "results.json").read_text())
    assert report["model"]["add_bos_token"] is False and report["lm_eval_version"]
    assert set(report["tasks"]) == {"FPB", "FiQA_SA", "Headline", "NER", "ConvFinQA"}
    assert report["tasks"]["FPB"]["metric"] == "weighted_f1" and report["tasks"]["NER"]["metric"] == "ner_f1"
    assert "| Headline | headline_f1 |" in (out / "results.md").read_text()

    model = AutoModelForCausalLM.from_pretrained(tiny_synth).eval()
    tok = AutoTokenizer.from_pretrained(tiny_synth)
    rows = [json.loads(line) for line in (out / "samples" / "FPB.jsonl").read_text().splitlines()]
    src = json.loads((data / "FPB" / "test.json").read_text())
    for row, item in zip(rows, src):  # batched and padded scoring = the plain reference
        ref = [_reference_nll(model, tok, item["input"], o) for o in item["options"]]
        assert row["option_mean_nll"] == pytest.approx(ref, rel=1e-4)
        assert (
            row["prediction"] == min(range(3), key=lambda k: (ref[k], k))
            and row["gold"] == item["gold_index"]
        )
    from instructpt.evaluate import metrics

    preds = [r["prediction"] for r in rows]
    assert report["tasks"]["FPB"]["value"] == pytest.approx(
        metrics.weighted_f1(preds, [r["gold"] for r in rows])
    )
    gen = [json.loads(line) for line in (out / "samples" / "ConvFinQA.jsonl").read_text().splitlines()]
    assert len(gen) == 8 and all("\n" not in g["prediction"] for g in gen)
    assert report["tasks"]["ConvFinQA"]["value"] == pytest.approx(sum(g["score"] for g in gen) / 8)

    # a re-run resumes: the finished tasks are read back, nothing is scored again
    (out / "samples" / "FPB.jsonl").write_text("kept\n")
    again = evaluate(EvaluateConfig(model=str(tiny_synth), suite="finance", data_dir=str(data), output=str(out),
                                    batch_size=3, add_bos_token=False))  # fmt: skip
    assert again.counts == summary.counts and (out / "samples" / "FPB.jsonl").read_text() == "kept\n"

    # the shipped generation YAMLs give lm_eval the numbers of instructpt evaluate
    tasks = subprocess.run([sys.executable, "-m", "instructpt", "evaluate", "--print-tasks-path", "--data-dir",
                            str(data), "-o", str(tmp_path / "yamls")], capture_output=True, text=True, check=True,
                           cwd=REPO).stdout.strip()  # fmt: skip
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hfc")}
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                           f"pretrained={tiny_synth},add_bos_token=False,max_length=2048", "--tasks",
                           "instructpt_finance_ner,instructpt_finance_convfinqa", "--include_path", tasks, "--device",
                           "cpu", "--batch_size", "3", "--output_path", str(tmp_path / "lm"), "--log_samples"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = next((tmp_path / "lm").rglob("results_*.json"))
    lm = json.loads(found.read_text())["results"]
    assert lm["instructpt_finance_ner"]["ner_f1,none"] == pytest.approx(report["tasks"]["NER"]["value"])
    assert lm["instructpt_finance_convfinqa"]["convfinqa_match,none"] == pytest.approx(
        report["tasks"]["ConvFinQA"]["value"]
    )
    for lm_task, task in (("instructpt_finance_ner", "NER"), ("instructpt_finance_convfinqa", "ConvFinQA")):
        logged = next((tmp_path / "lm").rglob(f"samples_{lm_task}_*.jsonl")).read_text().splitlines()
        theirs = {json.loads(line)["doc_id"]: json.loads(line)["filtered_resps"][0] for line in logged}
        ours = [
            json.loads(line)["prediction"]
            for line in (out / "samples" / f"{task}.jsonl").read_text().splitlines()
        ]
        assert [theirs[i] for i in range(len(ours))] == ours and any(o.strip() for o in ours)  # row by row


def test_lm_eval_yaml_tasks_and_compare(tiny_synth: Path, tmp_path: Path, capsys) -> None:
    tasks = tmp_path / "yaml"
    tasks.mkdir()
    rng = random.Random(5)
    rows = []
    for i in range(6):
        context, pairs = make_example(rng)
        rows.append(
            {"q": f"{context}\n{pairs[0].question}", "choices": ["The river.", "The bank."], "gold": i % 2}
        )
    (tasks / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "tiny_mc.yaml").write_text(
        "task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {json.dumps(str(tasks / 'rows.jsonl'))}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{q}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: gold\nmetric_list:\n  - metric: acc\n'
    )
    a, b = tmp_path / "a", tmp_path / "b"
    for out, bos in ((a, False), (b, True)):
        evaluate(EvaluateConfig(model=str(tiny_synth), suite=str(tasks), output=str(out), add_bos_token=bos))
    report = json.loads((a / "results.json").read_text())
    acc = report["tasks"]["tiny_mc"]["metrics"]["acc"]
    assert acc["stderr"] is not None and acc["stderr"] > 0
    with_bos = [
        json.loads(x)["filtered_resps"] for x in (b / "samples" / "tiny_mc.jsonl").read_text().splitlines()
    ]
    without = [
        json.loads(x)["filtered_resps"] for x in (a / "samples" / "tiny_mc.jsonl").read_text().splitlines()
    ]
    assert with_bos != without  # BOS reached lm-eval's prompts (the tiny tokenizer adds none by itself)
    assert 0.0 <= acc["value"] <= 1.0 and report["tasks"]["tiny_mc"]["n"] == 6
    assert len((a / "samples" / "tiny_mc.jsonl").read_text().splitlines()) == 6
    capsys.readouterr()
    evaluate(EvaluateConfig(compare=[str(a / "results.json"), str(b)], output=str(tmp_path / "cmp")))
    shown = capsys.readouterr().out
    assert "| tiny_mc/acc |" in shown
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    vb = json.loads((b / "results.json").read_text())["tasks"]["tiny_mc"]["metrics"]["acc"]["value"]
    assert data["deltas"]["tiny_mc/acc"] == [0.0, pytest.approx(vb - acc["value"])]


def test_double_bos_and_bad_task_files_are_refused(tiny_synth: Path, tmp_path: Path) -> None:
    def run(rows: list, name: str = "t.jsonl", bos: bool = False) -> None:
        d = tmp_path / f"tasks-{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        evaluate(
            EvaluateConfig(model=str(tiny_synth), suite=str(d), output=str(d / "out"), add_bos_token=bos)
        )

    good = {"input": "The river feeds the garden.", "options": ["yes", "no"], "gold_index": 0}
    with pytest.raises(InputError, match="two BOS"):
        run([{**good, "input": "<s> The river feeds the garden."}], bos=True)
    with pytest.raises(InputError, match=r"t\.jsonl row 1: 'gold_index' must be an index into its 2 options"):
        run([good, {**good, "gold_index": 2}])
    with pytest.raises(InputError, match=r"row 0: 'options' must be a non-empty list of strings"):
        run([{**good, "options": "yes"}])
    with pytest.raises(InputError, match=r"row 0: 'input' must be a non-empty string"):
        run([{"options": ["a"], "gold_index": 0}])
    with pytest.raises(InputError, match="holds no row"):
        run([])
    with pytest.raises(InputError, match=r"row 1: a generation task needs a 'label'"):
        run([{"input": "x", "label": "y"}, {"input": "z"}])
    d = tmp_path / "broken"
    d.mkdir()
    (d / "t.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InputError, match=r"t\.jsonl line 2 \(row 1\): not JSON"):
        evaluate(EvaluateConfig(model=str(tiny_synth), suite=str(d), output=str(tmp_path / "o2")))


def test_biomedicine_suite_and_the_general_suite_names(tiny_synth: Path, tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    from instructpt.evaluate.harness import GENERAL

    known = set(TaskManager().all_tasks)
    assert [
        name for name, _ in GENERAL if name not in known
    ] == []  # every general-suite name exists in lm-eval
    data = tmp_path / "bio"
    for task, n_options in (("ChemProt", 13), ("RCT", 5), ("MQP", 2), ("USMLE", 4), ("PubMedQA", 3)):
        (data / task).mkdir(parents=True)
        rows = [{"input": f"The river feeds the garden {i}. Relation:", "options": [f"label {k}" for k in range(n_options)],
                 "gold_index": i % n_options} for i in range(3)]  # fmt: skip
        (data / task / "test.json").write_text(json.dumps(rows))
    summary = evaluate(EvaluateConfig(model=str(tiny_synth), suite="biomedicine", data_dir=str(data),
                                      output=str(tmp_path / "out"), limit=2))  # fmt: skip
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary.counts == {"tasks": 5, "rows": 10} and report["tasks"]["ChemProt"]["metric"] == "micro_f1"
    assert report["model"]["add_bos_token"] is True  # a Mistral model: the policy adds BOS (SPEC 8)
    for task in ("ChemProt", "USMLE"):
        rows = [
            json.loads(x) for x in (tmp_path / "out" / "samples" / f"{task}.jsonl").read_text().splitlines()
        ]
        assert report["tasks"][task]["value"] == pytest.approx(sum(r["score"] for r in rows) / 2)


def test_changed_task_files_are_not_resumed_as_if_nothing_changed(tiny_synth: Path, tmp_path: Path) -> None:
    from instructpt.errors import ResumeError

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    row = {"input": "The river feeds the garden.", "options": ["yes", "no"], "gold_index": 0}
    (tasks / "t.jsonl").write_text(json.dumps(row) + "\n")
    out = tmp_path / "out"
    evaluate(EvaluateConfig(model=str(tiny_synth), suite=str(tasks), output=str(out)))
    evaluate(EvaluateConfig(model=str(tiny_synth), suite=str(tasks), output=str(out)))  # unchanged: resumes
    (tasks / "t.jsonl").write_text(json.dumps({**row, "gold_index": 1}) + "\n")
    with pytest.raises(ResumeError, match=r"t\.jsonl was replaced"):
        evaluate(EvaluateConfig(model=str(tiny_synth), suite=str(tasks), output=str(out)))
