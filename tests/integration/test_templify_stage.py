"""The templify stage: one document per chain, deterministic bytes, resume, rejects and stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.engines.config import EngineConfig
from instructpt.errors import ResumeError
from instructpt.io.shards import read_shard
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify
from tests.doubles.scripted_engine import ScriptedEngine, last_context

MC = "<QUE> Which colour is named?\nOptions:\n- red\n- blue\n- green <ANS> blue </END>"
COT = (
    "<QUE> How many words are there?\nLet's think step by step. <ANS> Count them one by one.\n"
    "Therefore, the answer is 9 </END>"
)
PLAIN = "<QUE> What does the text talk about? <ANS> A topic. </END>"


def _script(req) -> str:
    ctx = last_context(req.prompt)
    if "number 3 " in ctx:  # first text of the second chain
        return ""  # no pairs: the chain ends and renders as raw text
    return "\n\n".join([PLAIN, MC, COT])


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    corpus = root / "c.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": f"Document number {i} talks about a blue topic today."}) + "\n"
            for i in range(30)
        )
    )
    cfg = SynthesizeConfig(
        inputs=[str(corpus)],
        output=str(root / "out"),
        rounds=3,
        shard_size=10,
        progress=False,
        engine=EngineConfig(name="rules"),
    )
    synthesize(cfg, engine=ScriptedEngine(_script, config=cfg.engine))
    return root / "out"


def _cfg(pairs: Path, out: Path, **kw) -> TemplifyConfig:
    return TemplifyConfig(inputs=[str(pairs)], output=str(out), progress=False, **kw)


def _docs(out: Path) -> list[dict]:
    return [d for p in sorted((out / "data").iterdir()) for d in read_shard(p)]


def test_one_document_per_chain_with_lineage(pairs_dir: Path, tmp_path: Path) -> None:
    summary = templify(_cfg(pairs_dir, tmp_path / "aug"))
    records = [r for p in sorted((pairs_dir / "data").iterdir()) for r in read_shard(p)]
    chains = list(dict.fromkeys(r["chain_id"] for r in records))
    docs = _docs(tmp_path / "aug")
    assert [d["chain_id"] for d in docs] == chains
    assert summary.counts["docs_out"] == len(chains) == summary.counts["chains_in"]
    for doc in docs:
        assert doc["text"].strip()
        assert not any(m in doc["text"] for m in ("<QUE>", "<ANS>", "</END>", "<CON>", "<s>"))
        members = [r for r in records if r["chain_id"] == doc["chain_id"]]
        assert doc["record_ids"] == [r["id"] for r in members]
        for r in members:
            assert r["text"] in doc["text"]  # every layout keeps the contexts verbatim
    raw = [d for d in docs if d["n_pairs"] == 0]
    assert raw and summary.counts["raw_only"] == len(raw)
    assert summary.counts["pairs_out"] > 0
    assert set(summary.by["template_families"]) <= {"qa", "qa_options", "qa_cot", "options_cot"}


def test_same_input_and_seed_give_identical_bytes(pairs_dir: Path, tmp_path: Path) -> None:
    templify(_cfg(pairs_dir, tmp_path / "a"))
    templify(_cfg(pairs_dir, tmp_path / "b"))
    templify(_cfg(pairs_dir, tmp_path / "c", seed=1))
    a = [p.read_bytes() for p in sorted((tmp_path / "a" / "data").iterdir())]
    assert a == [p.read_bytes() for p in sorted((tmp_path / "b" / "data").iterdir())]
    assert a != [p.read_bytes() for p in sorted((tmp_path / "c" / "data").iterdir())]


def test_resume_redoes_only_unfinished_shards(pairs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    templify(_cfg(pairs_dir, out))
    before = [p.read_bytes() for p in sorted((out / "data").iterdir())]
    (out / "done" / "shard-00001").unlink()
    (out / "data" / "shard-00001.jsonl").write_text("partial garbage")
    summary = templify(_cfg(pairs_dir, out))
    assert summary.run.shards_resumed == 2
    assert [p.read_bytes() for p in sorted((out / "data").iterdir())] == before
    with pytest.raises(ResumeError, match="seed"):
        templify(_cfg(pairs_dir, out, seed=5))


def test_malformed_records_are_rejected_with_reasons(tmp_path: Path) -> None:
    shard = tmp_path / "shard-00000.jsonl"
    good = {
        "id": "a",
        "text": "Some text here.",
        "chain_id": "a",
        "pairs": [{"question": "Q?", "answer": "A."}],
    }
    rows = [
        good,
        {"id": "b", "text": "", "chain_id": "b", "pairs": []},
        {"id": "c", "text": "t", "pairs": []},
        {"id": "d", "text": "t", "chain_id": "d", "pairs": [{"q": 1}]},
        {"id": "e", "text": "t", "chain_id": "e"},
        {"text": "t", "chain_id": "f", "pairs": []},
    ]
    lines = [json.dumps(r).encode() + b"\n" for r in rows] + [b'{"id": "g", "text": "tr\n', b"\xff\xfe\n"]
    shard.write_bytes(b"".join(lines))
    summary = templify(_cfg(shard, tmp_path / "aug"))
    assert summary.by["rejects"] == {
        "malformed_pairs": 1,
        "missing_chain_id": 1,
        "missing_pairs": 1,
        "missing_text": 1,
        "missing_id": 1,
        "invalid_json": 1,
        "invalid_utf8": 1,
    }
    assert summary.counts["docs_out"] == 1
    rejects = (tmp_path / "aug" / "rejects" / "shard-00000.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["id"] for r in rejects) == [
        "b", "c", "d", "e", "shard-00000.jsonl:6", "shard-00000.jsonl:7", "shard-00000.jsonl:8"
    ]  # fmt: skip


def _pairs_config(tmp_path: Path, n: int) -> SynthesizeConfig:
    """A synthesize run into tmp_path/pairs over n short documents, shards of 10, chains of 2."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(json.dumps({"text": f"Document number {i} talks about blue."}) + "\n" for i in range(n))
    )
    return SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "pairs"), rounds=2, shard_size=10,
                            progress=False, engine=EngineConfig(name="rules"))  # fmt: skip


def test_resume_maps_every_input_shard_to_the_same_output_shard(tmp_path: Path) -> None:
    """synthesize finishes shards out of order; templify run in between must not renumber them on resume."""
    cfg = _pairs_config(tmp_path, 30)
    synthesize(cfg, engine=ScriptedEngine(_script, config=cfg.engine))
    full = tmp_path / "full"
    templify(_cfg(tmp_path / "pairs", full))
    (tmp_path / "pairs" / "done" / "shard-00001").unlink()  # as if shard 1 were still being synthesized
    part = tmp_path / "part"
    templify(_cfg(tmp_path / "pairs", part))
    assert sorted(p.name for p in (part / "data").iterdir()) == ["shard-00000.jsonl", "shard-00002.jsonl"]
    (tmp_path / "pairs" / "done" / "shard-00001").write_text("ok\n")  # it finishes later
    templify(_cfg(tmp_path / "pairs", part))
    for name in ("data", "rejects"):
        a, b = sorted((full / name).iterdir()), sorted((part / name).iterdir())
        assert [p.name for p in a] == [p.name for p in b] and [p.read_bytes() for p in a] == [
            p.read_bytes() for p in b
        ]


def test_a_rewritten_input_shard_is_rendered_again(tmp_path: Path) -> None:
    """synthesize --retry-errors rewrites a finished shard; templify re-renders it on its next run."""
    cfg = _pairs_config(tmp_path, 20)
    flaky = ScriptedEngine(lambda r: None if "number 12 " in last_context(r.prompt) else _script(r))
    synthesize(cfg, engine=flaky)
    part = tmp_path / "part"
    templify(_cfg(tmp_path / "pairs", part))
    retry = SynthesizeConfig(**{**cfg.__dict__, "retry_errors": True})
    synthesize(retry, engine=ScriptedEngine(_script, config=cfg.engine))
    summary = templify(_cfg(tmp_path / "pairs", part))
    assert summary.run.shards_resumed == 1  # shard 0 unchanged; shard 1 rendered again
    full = tmp_path / "full"
    templify(_cfg(tmp_path / "pairs", full))
    for name in ("data", "rejects", "stats"):
        a, b = sorted((full / name).iterdir()), sorted((part / name).iterdir())
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_outputs_carry_piece_ids_and_the_probabilities_are_fingerprinted(
    pairs_dir: Path, tmp_path: Path
) -> None:
    templify(_cfg(pairs_dir, tmp_path / "aug"))
    docs = _docs(tmp_path / "aug")
    assert any(d["piece_ids"] for d in docs)
    with pytest.raises(ResumeError, match="intro_prob"):
        templify(_cfg(pairs_dir, tmp_path / "aug", intro_prob=0.9))


def test_unreadable_inputs_and_formats_are_clear_errors(tmp_path: Path) -> None:
    from instructpt.errors import ConfigError, InputError

    (tmp_path / "shard-00000.jsonl.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(InputError, match="reads the .jsonl or .parquet shards"):
        templify(_cfg(tmp_path / "shard-00000.jsonl.gz", tmp_path / "aug"))
    with pytest.raises(ConfigError, match="--format"):
        _cfg(tmp_path, tmp_path / "o", format="csv")


def test_bad_layout_weights_name_the_flag(tmp_path: Path) -> None:
    from instructpt.errors import ConfigError

    with pytest.raises(ConfigError, match="--layout-weights"):
        _cfg(tmp_path, tmp_path / "o", layout_weights={"sideways": 1.0})
