"""The quality rules inside templify (``--filter``), and the model-based quality score (``--quality-model``) in
the filter stage and in templify, on a tiny classifier the test builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.cli import command_parser
from instructpt.config import resolve
from instructpt.errors import ConfigError, ResumeError
from instructpt.filter.run import FilterConfig, filter_pairs
from instructpt.io.shards import read_shard
from instructpt.templates.run import PairFilter, TemplifyConfig, templify

TEXT = (
    "The Danube flows through ten countries and four capital cities before it reaches the Black Sea. "
    "Its delta, in Romania and Ukraine, is one of the largest wetlands in Europe and a refuge for pelicans."
)
GOOD = [
    {"question": "Which sea does the Danube reach?", "answer": "The Black Sea."},
    {"question": "Where is the Danube delta?", "answer": "In Romania and Ukraine."},
    {"question": "What lives in the delta?\nOptions:\n- pelicans\n- penguins", "answer": "pelicans"},
]
UNGROUNDED = {
    "question": "Who built the first bridge over the river?",
    "answer": "Roman engineers under Trajan.",
}
BAD_OPTIONS = {
    "question": "Where does it end?\nOptions:\n- the Black Sea\n- the Baltic",
    "answer": "the North Sea",
}


def _synth_shard(root: Path) -> Path:
    """A shard of synthesize records: two chains, one of two records."""
    rows = [
        {"id": "a", "doc_id": "a", "text": TEXT, "chain_id": "a", "chain_pos": 0, "pairs": [GOOD[0], UNGROUNDED]},
        {"id": "b", "doc_id": "b", "text": TEXT, "chain_id": "a", "chain_pos": 1, "pairs": [BAD_OPTIONS, GOOD[1]]},
        {"id": "c", "doc_id": "c", "text": TEXT, "chain_id": "c", "chain_pos": 0, "pairs": [GOOD[2]]},
    ]  # fmt: skip
    root.mkdir(parents=True)
    (root / "shard-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "shard-00000.jsonl"


def _rejects(out: Path) -> list[dict]:
    return [
        json.loads(line) for p in sorted((out / "rejects").glob("*")) for line in p.read_text().splitlines()
    ]


def _docs(out: Path) -> list[dict]:
    return [r for p in sorted((out / "data").glob("shard-*")) for r in read_shard(p)]


def test_templify_filter_drops_failing_pairs_before_rendering(tmp_path: Path) -> None:
    pairs = _synth_shard(tmp_path / "pairs")
    plain = templify(TemplifyConfig(inputs=[str(pairs)], output=str(tmp_path / "plain"), progress=False))
    assert "Roman engineers" in _docs(tmp_path / "plain")[0]["text"]
    cfg = TemplifyConfig(
        inputs=[str(pairs)], output=str(tmp_path / "f"), progress=False, filter=PairFilter(enabled=True)
    )
    summary = templify(cfg)
    docs = _docs(tmp_path / "f")
    assert not any("Roman engineers" in d["text"] or "North Sea" in d["text"] for d in docs)
    assert "The Black Sea." in docs[0]["text"] and "Romania and Ukraine" in docs[0]["text"]
    rejects = {(r["id"], r["reason"]): r for r in _rejects(tmp_path / "f")}
    assert set(rejects) == {("a#pair1", "ungrounded"), ("b#pair0", "bad_options")}
    assert (
        rejects[("a#pair1", "ungrounded")]["record"] == UNGROUNDED
        and rejects[("a#pair1", "ungrounded")]["stage"] == "templify"
    )
    assert summary.by["filtered"] == {"ungrounded": 1, "bad_options": 1}
    assert summary.counts["pairs_filtered"] == 2
    assert summary.counts["pairs_in"] == plain.counts["pairs_in"] == 5
    # templify leaves out the pair whose answer is none of its options by itself; the ungrounded one it renders
    assert (plain.counts["pairs_out"], summary.counts["pairs_out"]) == (4, 3)
    # the filter and its thresholds are part of the fingerprint: a changed threshold refuses to resume
    other = PairFilter(enabled=True, min_grounding=0.1)
    with pytest.raises(ResumeError):
        templify(
            TemplifyConfig(inputs=[str(pairs)], output=str(tmp_path / "f"), progress=False, filter=other)
        )
    assert "filter" not in TemplifyConfig(inputs=["x"], output="y").fingerprint()


def test_templify_filter_options_from_flags_and_yaml(tmp_path: Path) -> None:
    parser, module = command_parser("templify")
    args = vars(parser.parse_args(["in", "-o", "out", "--filter", "--filter.min-grounding", "0.7"]))
    cli = {k: v for k, v in args.items() if k not in ("config", "verbose", "quiet", "report")}
    cfg = resolve(module.Config, None, cli)
    assert cfg.filter.enabled and cfg.filter.min_grounding == 0.7
    yaml = tmp_path / "t.yaml"
    yaml.write_text("inputs: [in]\noutput: out\nfilter:\n  enabled: true\n  max_answer_chars: 100\n")
    cfg = resolve(module.Config, str(yaml), {})
    assert cfg.filter.enabled and cfg.filter.rules.max_answer_chars == 100
    with pytest.raises(ConfigError, match="min-grounding"):
        resolve(module.Config, None, {**cli, "filter.min_grounding": 3.0})


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A tiny randomly initialised BERT-style classifier with labels (bad, good), saved as safetensors with the
    tests' tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=2, id2label={0: "bad", 1: "good"},
        label2id={"bad": 0, "good": 1},
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # spread the scores out, so a middle threshold keeps some pairs and drops others
        model.classifier.weight.mul_(40.0)
    out = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(out, safe_serialization=True)
    tiny_tokenizer.save_pretrained(out)
    return out


def test_quality_model_drops_exactly_the_pairs_scoring_below_the_threshold(
    tmp_path: Path, classifier: Path
) -> None:
    from instructpt.quality.model import QualityModel

    pairs = _synth_shard(tmp_path / "pairs")
    model = QualityModel(str(classifier))
    texts = [(p["question"], p["answer"]) for p in GOOD]
    scores = model.scores(texts)
    assert scores == pytest.approx(QualityModel(str(classifier), batch_size=1).scores(texts), abs=1e-5)
    bad = QualityModel(str(classifier), label="bad").scores(texts)
    assert [g + b for g, b in zip(scores, bad)] == pytest.approx([1.0] * 3, abs=1e-5)
    threshold = sorted(scores)[1]  # one of the three passing pairs scores below it
    cfg = FilterConfig(
        inputs=[str(pairs)], output=str(tmp_path / "f"), progress=False, quality_model=str(classifier),
        min_quality=threshold, min_question_chars=0,
    )  # fmt: skip
    summary = filter_pairs(cfg)
    low = {r["record"]["question"] for r in _rejects(tmp_path / "f") if r["reason"] == "low_quality"}
    expected = {q for (q, _), s in zip(texts, scores) if s < threshold}
    assert low == expected and len(low) == 1
    assert summary.by["drops"]["low_quality"] == 1
    kept = {p["question"] for r in _docs(tmp_path / "f") for p in r["pairs"]}
    assert kept == {q for q, _ in texts} - expected
    # templify --filter uses the same classifier the same way
    option = PairFilter(enabled=True, quality_model=str(classifier), min_quality=threshold)
    t = templify(
        TemplifyConfig(inputs=[str(pairs)], output=str(tmp_path / "t"), progress=False, filter=option)
    )
    assert t.by["filtered"]["low_quality"] == 1
    assert (
        "quality" in cfg.fingerprint()
        and "quality" not in FilterConfig(inputs=["x"], output="y").fingerprint()
    )


def test_quality_model_refuses_bad_labels_and_pickled_weights(tmp_path: Path, classifier: Path) -> None:
    from instructpt.quality.model import QualityModel

    with pytest.raises(ConfigError, match="quality-label"):
        QualityModel(str(classifier), label="excellent")
    import torch
    from transformers import AutoModelForSequenceClassification

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for f in classifier.iterdir():  # the same classifier, its weights as a pickle instead of safetensors
        if f.suffix != ".safetensors":
            (pickled / f.name).write_bytes(f.read_bytes())
    torch.save(
        AutoModelForSequenceClassification.from_pretrained(classifier).state_dict(),
        pickled / "pytorch_model.bin",
    )
    with pytest.raises(ConfigError, match="cannot load"):
        QualityModel(str(pickled))
    with pytest.raises(ConfigError, match="min-quality"):
        FilterConfig(inputs=["x"], output="y", min_quality=1.5)
