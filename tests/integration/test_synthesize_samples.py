"""Several samples per text (``synthesize --num-samples K --keep best|all|union``): the rules engine's K seeds,
what each --keep mode writes, the chain going on with the kept pairs, resume, and the per-sample counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.engines.base import Request
from instructpt.engines.config import EngineConfig, RulesOptions
from instructpt.engines.rules import mine
from instructpt.engines.rules.engine import RulesEngine
from instructpt.errors import ConfigError
from instructpt.io.shards import read_shard
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify
from instructpt.wire import build_prompt
from tests.doubles.scripted_engine import ScriptedEngine, WordCodec, last_context

TEXTS = [
    "Photosynthesis in Desert Plants\n\nDesert plants open their pores at night because daytime heat would cost "
    "them too much water. As a result, they store carbon dioxide as an acid until morning. However, this "
    "strategy slows their growth compared with plants in wetter places. Crassulacean acid metabolism is defined "
    "as this night-time uptake of carbon dioxide. The strategy is common in cacti, agaves and pineapples.",
    "The town council met on Tuesday to discuss the new bridge. Construction was delayed due to heavy rain in "
    "the spring. Therefore, the opening has moved to next year. In addition, the budget grew by a fifth. The "
    "council thanked the engineers for their patience and asked for monthly reports on the work.",
    "Glaciers form where more snow falls in winter than melts in summer. Over many years, the snow is pressed "
    "into dense ice. Consequently, the ice begins to flow downhill under its own weight. In contrast, sea ice "
    "forms when ocean water freezes at the surface. Both kinds of ice reflect sunlight back into space.",
]


def _corpus(path: Path, copies: int = 2) -> Path:
    rows = [{"id": f"d{i}-{k}", "text": t} for k in range(copies) for i, t in enumerate(TEXTS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(tmp_path: Path, corpus: Path, name: str = "out", **kw) -> SynthesizeConfig:
    kw.setdefault("engine", EngineConfig(name="rules"))
    kw.setdefault("shard_size", 2)
    return SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / name), progress=False, **kw)


def _records(out: str) -> list[dict]:
    return [r for p in sorted((Path(out) / "data").glob("shard-*")) for r in read_shard(p)]


def _stats(out: str) -> dict:
    return json.loads((Path(out) / "stats.json").read_text())


def _questions(pairs: list[dict]) -> list[str]:
    return [" ".join(p["question"].casefold().split()) for p in pairs]


def test_num_samples_is_checked_and_fingerprinted(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    model = EngineConfig(name="transformers", model="some/model")
    with pytest.raises(ConfigError, match="--temperature"):
        _config(tmp_path, corpus, engine=model, num_samples=2)
    _config(
        tmp_path, corpus, engine=EngineConfig(name="transformers", model="m", temperature=0.7), num_samples=2
    )
    with pytest.raises(ConfigError, match="--num-samples"):
        _config(tmp_path, corpus, num_samples=0)
    with pytest.raises(ConfigError, match="--keep"):
        _config(tmp_path, corpus, num_samples=2, keep="first")
    one = _config(tmp_path, corpus).fingerprint()
    assert "num_samples" not in one and "keep" not in one  # run directories written before still resume
    fp = _config(tmp_path, corpus, num_samples=3, keep="union").fingerprint()
    assert (fp["num_samples"], fp["keep"]) == (3, "union") and "filter_rules" not in fp
    assert "filter_rules" in _config(tmp_path, corpus, num_samples=3).fingerprint()  # best scores with them


def test_rules_engine_draws_k_seeded_samples() -> None:
    engine = RulesEngine(EngineConfig(name="rules"))
    text = TEXTS[0]
    req = Request("k", build_prompt([], text), record_id="d0", context=text, n=3)
    (gen,) = engine.generate([req])
    samples = gen.samples
    assert len(samples) == 3 and all(s.ok and s.pairs for s in samples)
    # sample 0 is what one sample gives; the others differ, and each is the same on every run
    assert samples[0].pairs == mine(text, "d0").pairs
    assert samples[1].pairs != samples[0].pairs and samples[2].pairs != samples[1].pairs
    (again,) = RulesEngine(EngineConfig(name="rules")).generate([req])
    assert [s.pairs for s in again.samples] == [s.pairs for s in samples]


@pytest.mark.slow
def test_rules_workers_give_the_same_samples(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    here = _config(tmp_path, corpus, "here", num_samples=3, keep="all")
    synthesize(here)
    workers = EngineConfig(name="rules", rules=RulesOptions(workers=2))
    there = _config(tmp_path, corpus, "there", engine=workers, num_samples=3, keep="all")
    synthesize(there)
    assert _records(here.output) == _records(there.output)


def test_keep_all_writes_every_sample_as_a_record_of_its_own(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    single = _config(tmp_path, corpus, "one")
    synthesize(single)
    cfg = _config(tmp_path, corpus, num_samples=3, keep="all")
    summary = synthesize(cfg)
    records, ones = _records(cfg.output), _records(single.output)
    main = [r for r in records if "@s" not in r["id"]]
    extra = [r for r in records if "@s" in r["id"]]
    assert len(main) == len(ones) == 6 and len(extra) == 12
    # sample 0 is the record a one-sample run writes, marked as sample 0; the chains go on from it
    assert [{k: v for k, v in r.items() if k != "sample"} for r in main] == ones
    assert {r["sample"] for r in main} == {0} and "sample" not in ones[0]
    for r in extra:
        doc, _, k = r["id"].partition("@s")
        assert r["doc_id"] == doc and r["sample"] == int(k) in (1, 2)
        assert r["chain_id"] == r["id"] and r["chain_pos"] == 0  # a chain of its own
    by_doc: dict[str, list[list[str]]] = {}
    for r in records:
        by_doc.setdefault(r["doc_id"], []).append(_questions(r["pairs"]))
    assert all(len(qs) == 3 and qs[0] != qs[1] for qs in by_doc.values())
    assert summary.counts["records_out"] == 18 and summary.counts["docs_out"] == 6
    assert summary.counts["pairs_out"] == sum(len(r["pairs"]) for r in records)
    stats = _stats(cfg.output)
    assert set(stats["by"]["sample_pairs"]) == {"0", "1", "2"}
    assert stats["by"]["sample_pairs"]["0"] == sum(len(r["pairs"]) for r in main)
    # templify renders each extra sample as a document of its own, the chains as before
    tcfg = TemplifyConfig(inputs=[cfg.output], output=str(tmp_path / "t"), progress=False)
    assert templify(tcfg).counts["docs_out"] == len({r["chain_id"] for r in records})


def test_keep_best_and_union(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    best = _config(tmp_path, corpus, "best", num_samples=3)
    union = _config(tmp_path, corpus, "union", num_samples=3, keep="union")
    every = _config(tmp_path, corpus, "all", num_samples=3, keep="all")
    for cfg in (best, union, every):
        synthesize(cfg)
    samples: dict[str, list[list[str]]] = {}
    for r in _records(every.output):
        samples.setdefault(r["doc_id"], []).append(_questions(r["pairs"]))
    for r in _records(best.output):
        assert _questions(r["pairs"]) == samples[r["doc_id"]][r["sample"]]  # one sample's pairs, whole
    assert sum(_stats(best.output)["by"]["best_sample"].values()) == 6
    for r in _records(union.output):
        questions = _questions(r["pairs"])
        assert "sample" not in r and len(questions) == len(set(questions))
        every_question = {q for qs in samples[r["doc_id"]] for q in qs}
        assert set(questions) <= every_question and len(questions) > len(samples[r["doc_id"]][0])
    repeated = _stats(union.output)["counts"]["union_repeated_questions"]
    n_union = sum(len(r["pairs"]) for r in _records(union.output))
    assert n_union + repeated == sum(len(qs) for s in samples.values() for qs in s)


def test_best_prefers_the_sample_whose_pairs_pass_the_rules_and_the_chain_goes_on_with_it(
    tmp_path: Path,
) -> None:
    """Sample 0 answers with an ungrounded pair and an unparsable one, sample 1 with grounded pairs: best keeps
    sample 1, and the next prompt of the chain holds sample 1's pairs, not sample 0's."""
    corpus = _corpus(tmp_path / "c.jsonl", copies=1)

    def sample(req: Request, i: int) -> str:
        words = last_context(req.prompt).split()
        if i == 0:
            return "<QUE> Who wrote the poem? <ANS> Xylophone Quagmire Zebra </END>\n\n<QUE> broken"
        return f"<QUE> What does the text begin with? <ANS> {' '.join(words[:6])} </END>"

    cfg = _config(tmp_path, corpus, engine=EngineConfig(name="rules"), num_samples=2, rounds=2, shard_size=10)
    engine = ScriptedEngine(
        codec=WordCodec(), config=EngineConfig(name="transformers", model="m"), samples=sample
    )
    synthesize(cfg, engine=engine)
    records = _records(cfg.output)
    assert all(
        r["sample"] == 1 and r["pairs"][0]["question"] == "What does the text begin with?" for r in records
    )
    second = [req for req in engine.seen if req.prompt.count("<CON>") == 2]
    assert second and all("Xylophone" not in req.prompt and "begin with" in req.prompt for req in second)
    assert all(req.n == 2 for req in engine.seen)


def test_an_interrupted_run_with_samples_resumes_to_the_same_output(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    full = _config(tmp_path, corpus, "full", num_samples=3, keep="union")
    synthesize(full)

    class CrashingRules(RulesEngine):
        calls = 0

        @staticmethod
        def miner(text, record_id, seed, max_per_type):
            CrashingRules.calls += 1
            if CrashingRules.calls > 7:
                raise KeyboardInterrupt  # stands in for a crash mid-run
            return mine(text, record_id, seed, max_per_type)

    part = _config(
        tmp_path, corpus, "part", num_samples=3, keep="union", max_inflight=1
    )  # one shard at a time
    with pytest.raises(KeyboardInterrupt):
        synthesize(part, engine=CrashingRules(part.engine))
    done = len(list((Path(part.output) / "done").iterdir()))
    assert 0 < done < 3
    assert synthesize(part).run.shards_resumed == done
    for name in ("data", "rejects"):
        a = sorted((Path(full.output) / name).iterdir())
        b = sorted((Path(part.output) / name).iterdir())
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert _stats(part.output)["by"]["sample_pairs"] == _stats(full.output)["by"]["sample_pairs"]


def test_parquet_output_has_the_sample_column_only_with_samples(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    corpus = _corpus(tmp_path / "c.jsonl", copies=1)
    one = _config(tmp_path, corpus, "one", format="parquet")
    three = _config(tmp_path, corpus, "three", format="parquet", num_samples=3, keep="all")
    for cfg in (one, three):
        synthesize(cfg)
    first = sorted((Path(one.output) / "data").glob("*.parquet"))[0]
    assert "sample" not in pq.read_schema(first).names
    rows = [r for p in sorted((Path(three.output) / "data").glob("*.parquet")) for r in read_shard(p)]
    assert sorted(r["sample"] for r in rows) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_sample_record_ids_never_collide_with_input_ids(tmp_path: Path) -> None:
    """--keep all names the other samples ID@sI; with --id-field an input record may hold such an id already:
    the document whose sample would take it is rejected as a duplicate id, as a clashing piece name is."""
    rows = [{"id": "a", "text": TEXTS[0]}, {"id": "a@s1", "text": TEXTS[1]}]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _config(tmp_path, corpus, id_field="id", num_samples=2, keep="all", rounds=1)
    synthesize(cfg)
    ids = [r["id"] for r in _records(cfg.output)]
    assert len(ids) == len(set(ids)) and "a" not in ids and "a@s1@s1" in ids
    rejects = [json.loads(line) for p in (Path(cfg.output) / "rejects").glob("*") for line in p.open()]
    assert [(r["id"], r["reason"]) for r in rejects] == [("a", "duplicate_id")]


def test_union_keeps_all_of_sample_0_and_counts_what_it_leaves_out(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    every = _config(tmp_path, corpus, "all", num_samples=3, keep="all")
    union = _config(tmp_path, corpus, "union", num_samples=3, keep="union")
    synthesize(every)
    synthesize(union)
    first = {r["doc_id"]: r["pairs"] for r in _records(every.output) if r["sample"] == 0}
    for r in _records(union.output):
        assert r["pairs"][: len(first[r["doc_id"]])] == first[r["doc_id"]]


def test_counters_cover_every_sample(tmp_path: Path) -> None:
    """generated_tokens counts every sample's tokens; records_without_pairs counts --keep all's records too."""
    corpus = _corpus(tmp_path / "c.jsonl", copies=1)

    def sample(req: Request, i: int) -> str:
        words = last_context(req.prompt).split()
        return (
            f"<QUE> What does the text begin with? <ANS> {' '.join(words[: 3 + i])} </END>"
            if i < 2
            else "no pairs"
        )

    engine = ScriptedEngine(
        codec=WordCodec(), config=EngineConfig(name="transformers", model="m"), samples=sample
    )
    cfg = _config(tmp_path, corpus, num_samples=3, keep="all", rounds=1, shard_size=10)
    counts = synthesize(cfg, engine=engine).counts
    expected = sum(len(WordCodec().encode(sample(req, i))) + 1 for req in engine.seen for i in range(3))
    assert counts["generated_tokens"] == expected
    assert (counts["records_out"], counts["records_without_pairs"]) == (9, 3)


def test_the_in_flight_token_bound_counts_every_sample(tmp_path: Path) -> None:
    """Each request costs its prompt + K x max-new-tokens: a bound two one-sample requests fit in holds one
    three-sample request at a time."""
    corpus = _corpus(tmp_path / "c.jsonl", copies=2)

    class Batches(ScriptedEngine):
        sizes: list[int] = []

        def submit(self, requests) -> None:
            Batches.sizes.append(len(requests))
            super().submit(requests)

    for k, first in ((1, 2), (3, 1)):
        Batches.sizes = []
        cfg = _config(tmp_path, corpus, f"k{k}", num_samples=k, rounds=1, shard_size=10, max_inflight_tokens="1000",
                      engine=EngineConfig(name="rules", max_new_tokens=300))  # fmt: skip
        synthesize(cfg, engine=Batches(codec=WordCodec(), config=cfg.engine))
        assert Batches.sizes[0] == first
