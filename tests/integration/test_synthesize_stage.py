"""The synthesize stage end to end with a scripted test-double engine: shards, rejects, stats, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.engines.base import Generation
from instructpt.engines.config import EngineConfig, RulesOptions
from instructpt.errors import EngineError, ResumeError
from instructpt.io.shards import read_shard
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from tests.doubles.scripted_engine import ScriptedEngine, WordCodec, canned_pairs, last_context


def _corpus(path: Path, n: int = 23) -> Path:
    lines = [
        json.dumps({"text": f"Document number {i} talks about topic {i % 5}. It has two sentences."})
        for i in range(n)
    ]
    lines.insert(5, "{broken json")
    lines.insert(9, json.dumps({"text": ""}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path: Path, corpus: Path, **kw) -> SynthesizeConfig:
    kw.setdefault("engine", EngineConfig(name="rules", max_model_len=4096, max_new_tokens=64))
    kw.setdefault("shard_size", 7)
    return SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "out"), progress=False, **kw)


def _all_records(out: Path) -> list[dict]:
    return [r for p in sorted((out / "data").glob("shard-*")) for r in read_shard(p)]


def test_stage_writes_records_rejects_and_stats(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), rounds=2)
    summary = synthesize(cfg, engine=ScriptedEngine(canned_pairs, codec=WordCodec(), config=cfg.engine))
    out = Path(cfg.output)
    records = _all_records(out)
    assert len(records) == 23 and len({r["id"] for r in records}) == 23
    assert all(len(r["pairs"]) == 2 for r in records)
    assert {r["chain_pos"] for r in records} == {0, 1}
    rejects = [
        json.loads(line) for p in (out / "rejects").glob("*.jsonl") for line in p.read_text().splitlines()
    ]
    assert sorted(r["reason"] for r in rejects) == ["empty_text", "invalid_json"]
    c = summary.counts
    assert (c["docs_in"], c["rejected"], c["docs_out"], c["pairs_out"]) == (25, 2, 23, 46)
    assert summary.run.done_this_run == 25  # input records, rejects included, as the progress total
    assert summary.by["pairs_per_doc"] == {"2": 23}
    assert json.loads((out / "stats.json").read_text())["counts"] == c
    assert (out / "config.yaml").exists() and len(list((out / "done").iterdir())) == 4
    first = records[0]
    for key in (
        "id",
        "source",
        "text",
        "pairs",
        "chain_id",
        "chain_pos",
        "finish_reason",
        "prompt_tokens",
        "generated_tokens",
        "synthesizer",
        "sampling",
    ):
        assert key in first


def test_resume_skips_done_shards_and_matches_uninterrupted_run(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    full = _config(tmp_path / "full", corpus, rounds=3, max_inflight=3)
    synthesize(full, engine=ScriptedEngine(canned_pairs, codec=WordCodec(), config=full.engine))

    part = _config(tmp_path / "part", corpus, rounds=3, max_inflight=3)
    calls = {"n": 0}

    def crash_after_some(req):
        calls["n"] += 1
        if calls["n"] > 14:
            raise KeyboardInterrupt  # stands in for a crash mid-run
        return canned_pairs(req)

    with pytest.raises(KeyboardInterrupt):
        synthesize(part, engine=ScriptedEngine(crash_after_some, codec=WordCodec(), config=part.engine))
    done_before = len(list((Path(part.output) / "done").iterdir()))
    assert 0 < done_before < 4
    second = ScriptedEngine(canned_pairs, codec=WordCodec(), config=part.engine)
    summary = synthesize(part, engine=second)
    assert summary.run.shards_resumed == done_before
    assert len(second.seen) < 23  # finished shards were not redone
    for name in ("data", "rejects"):
        a = sorted((Path(full.output) / name).iterdir())
        b = sorted((Path(part.output) / name).iterdir())
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_resume_refuses_a_different_configuration(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    cfg = _config(tmp_path, corpus, rounds=2)
    synthesize(cfg, engine=ScriptedEngine(canned_pairs, config=cfg.engine))
    with pytest.raises(ResumeError, match="rounds: 2 -> 3"):
        synthesize(_config(tmp_path, corpus, rounds=3), engine=ScriptedEngine(canned_pairs))
    other = EngineConfig(name="rules", model="another/model")
    with pytest.raises(ResumeError, match="model"):
        synthesize(_config(tmp_path, corpus, rounds=2, engine=other), engine=ScriptedEngine(canned_pairs))


def test_failed_requests_are_rejected_not_lost(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), rounds=2)
    fail = {"Document number 3 talks"}
    engine = ScriptedEngine(
        lambda r: None if any(f in last_context(r.prompt) for f in fail) else canned_pairs(r),
        config=cfg.engine,
    )
    summary = synthesize(cfg, engine=engine)
    assert summary.by["rejects"]["engine_error"] == 1
    assert summary.counts["records_out"] == 22
    rejects = [
        json.loads(line)
        for p in (Path(cfg.output) / "rejects").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert any(r["reason"] == "engine_error" and r["detail"] == "scripted failure" for r in rejects)


def test_resume_refuses_another_limit_or_line_size(tmp_path: Path) -> None:
    """A shard cut short by --limit is finished; resuming without the limit would skip the rest of it."""
    corpus = _corpus(tmp_path / "c.jsonl")
    synthesize(_config(tmp_path, corpus, limit=10), engine=ScriptedEngine(canned_pairs))
    with pytest.raises(ResumeError, match="limit: 10 -> None"):
        synthesize(_config(tmp_path, corpus), engine=ScriptedEngine(canned_pairs))
    with pytest.raises(ResumeError, match="max_line_bytes"):
        synthesize(
            _config(tmp_path, corpus, limit=10, max_line_bytes=100), engine=ScriptedEngine(canned_pairs)
        )


def test_a_shard_with_no_records_is_a_readable_parquet_file(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": ""}\n{"text": ""}\n{"text": "Doc one is here. It flows."}\n')
    cfg = _config(tmp_path, corpus, shard_size=2, format="parquet")
    synthesize(cfg, engine=ScriptedEngine(canned_pairs))
    shards = sorted((Path(cfg.output) / "data").iterdir())
    assert [len(list(read_shard(p))) for p in shards] == [0, 1]


def test_piece_ids_never_repeat_another_records_id(tmp_path: Path) -> None:
    """A long text X is split into X#0, X#1; a record whose own id is X#0 keeps it, and X is rejected."""
    corpus = tmp_path / "c.jsonl"
    long_text = " ".join(f"Sentence number {i} is here." for i in range(40))
    rows = [{"id": "X#0", "text": "Short one."}, {"id": "X", "text": long_text}, {"id": "Y", "text": long_text},
            {"id": "Y#1", "text": "Later short one."}]  # fmt: skip
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = EngineConfig(name="rules", max_model_len=80, max_new_tokens=16)
    cfg = _config(tmp_path, corpus, engine=engine, id_field="id", shard_size=3)
    summary = synthesize(cfg, engine=ScriptedEngine(canned_pairs, codec=WordCodec(), config=engine))
    ids = [r["id"] for r in _all_records(Path(cfg.output))]
    assert (
        len(ids) == len(set(ids)) and "X#0" in ids and not any(i.startswith("X#") and i != "X#0" for i in ids)
    )
    texts = [r["text"] for r in _all_records(Path(cfg.output))]
    assert (
        "Y#1" in ids and "Later short one." not in texts
    )  # Y's piece came first; the record Y#1 is rejected
    assert summary.by["rejects"]["duplicate_id"] == 2  # X (its piece X#0), and the later record Y#1
    assert summary.run.done_this_run == 4  # progress counts input records, not pieces
    c = summary.counts
    assert c["docs_split"] == 1 and c["pieces_from_splits"] == sum(i.startswith("Y#") for i in ids)  # Y only


def test_a_text_over_budget_only_by_whitespace_keeps_its_id(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": "one two three " + " " * 400 + "\n" * 50}) + "\n")
    engine = EngineConfig(name="rules", max_model_len=60, max_new_tokens=16)
    cfg = _config(tmp_path, corpus, engine=engine, id_field="id")
    codec = WordCodec()
    codec.encode = lambda text: [10 + len(w) for w in text.split(" ")]  # every space counts: whitespace costs
    summary = synthesize(cfg, engine=ScriptedEngine(canned_pairs, codec=codec, config=engine))
    (rec,) = _all_records(Path(cfg.output))
    assert (rec["id"], rec["n_pieces"], rec["text"]) == ("d1", 1, "one two three")
    assert summary.counts["docs_stripped_to_fit"] == 1 and "docs_split" not in summary.counts


def test_a_budget_too_small_for_any_prompt_is_a_config_error(tmp_path: Path) -> None:
    from instructpt.errors import ConfigError

    engine = EngineConfig(name="rules", max_model_len=20, max_new_tokens=16)
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), engine=engine)
    with pytest.raises(ConfigError, match="leaves 4 prompt tokens"):
        synthesize(cfg, engine=ScriptedEngine(canned_pairs, codec=WordCodec(), config=engine))
    # nothing was finished in the output directory: the corrected command starts it over, not refused
    fixed = EngineConfig(name="rules", max_model_len=200, max_new_tokens=16)
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), engine=fixed)
    assert synthesize(cfg, engine=ScriptedEngine(canned_pairs, codec=WordCodec(), config=fixed)).counts[
        "docs_out"
    ]
    with pytest.raises(ConfigError, match="--limit"):
        _config(tmp_path, _corpus(tmp_path / "c.jsonl"), limit=-1)


class _Outage:
    """Script for the scripted test double: answers until ``after`` requests were served, then fails them all
    (an engine or server that went down); ``also`` fails single documents before that."""

    def __init__(self, after: int, also: tuple[str, ...] = ()) -> None:
        self.after, self.also, self.served = after, also, 0

    def __call__(self, request):
        self.served += 1
        if self.served > self.after or any(f in last_context(request.prompt) for f in self.also):
            return None
        return canned_pairs(request)


def test_a_run_of_failures_stops_the_run_and_a_rerun_redoes_it(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    kw = {"rounds": 2, "max_inflight": 1, "max_consecutive_errors": 3}
    want = synthesize(_config(tmp_path / "full", corpus, **kw), engine=ScriptedEngine(canned_pairs))
    # One request at a time. Document 5 is the last text of shard 0 (7 lines with a broken one): it fails alone,
    # so shard 0 finishes during a streak and waits; document 6 succeeds and writes it. The outage starts at the
    # 12th request, the last of shard 1, which then finishes inside the streak that stops the run.
    cfg = _config(tmp_path, corpus, **kw)
    with pytest.raises(EngineError, match="3 requests failed in a row"):
        synthesize(cfg, engine=ScriptedEngine(_Outage(after=11, also=("Document number 5 talks",))))
    out = Path(cfg.output)
    done = sorted(p.name for p in (out / "done").iterdir())
    assert done == ["shard-00000"]  # shard 1 finished inside the outage's streak: held back, not written
    rejects = [
        json.loads(line) for p in (out / "rejects").glob("*.jsonl") for line in p.read_text().splitlines()
    ]
    assert [r["reason"] for r in rejects if r["stage"] == "synthesize"] == ["engine_error"]  # document 5 only
    summary = synthesize(cfg, engine=ScriptedEngine(_Outage(after=10**9, also=("Document number 5 talks",))))
    assert summary.run.shards_resumed == 1
    assert summary.counts["records_out"] == want.counts["records_out"] - 1
    assert [r["id"] for r in _all_records(out)] == [
        r["id"] for r in _all_records(tmp_path / "full" / "out") if r["text"] != rejects[-1]["record"]["text"]
    ]


class _QuickFailuresEngine(ScriptedEngine):
    """Scripted test double: every ``fail_every``-th request fails at once (as a request a server refuses with a
    400), the others succeed ``delay`` polls later; so failures of newer requests arrive before successes of
    older ones."""

    def __init__(self, fail_every: int, delay: int) -> None:
        super().__init__(canned_pairs)
        self.fail_every, self.delay, self.n = fail_every, delay, 0
        self.waiting: list[list] = []  # [polls left, request]

    def poll(self):
        out = []
        for req in self.take():
            self.n += 1
            if self.n % self.fail_every == 0:
                out.append(Generation(req.key, "", "error", error="scripted 400"))
            else:
                self.waiting.append([self.delay, req])
        for entry in self.waiting:
            entry[0] -= 1
        self.submit([req for left, req in self.waiting if left <= 0])  # answered by the scripted poll below
        self.waiting = [e for e in self.waiting if e[0] > 0]
        return out + super().poll()


def test_scattered_quick_failures_do_not_stop_a_healthy_run(tmp_path: Path) -> None:
    """A streak counts failures in the order results arrive: successes arriving between quick failures show the
    engine works, even when their requests are older (numbering by submission stopped such runs)."""
    cfg = _config(
        tmp_path, _corpus(tmp_path / "c.jsonl", n=60), rounds=1, max_inflight=12, max_consecutive_errors=3
    )
    summary = synthesize(cfg, engine=_QuickFailuresEngine(fail_every=5, delay=3))
    assert summary.by["rejects"]["engine_error"] == 12 and summary.counts["docs_out"] == 48


def test_an_output_directory_inside_the_input_directory_is_not_read_back(tmp_path: Path) -> None:
    _corpus(tmp_path / "c.jsonl")
    cfg = SynthesizeConfig(
        inputs=[str(tmp_path)], output=str(tmp_path / "out"), progress=False, shard_size=7,
        engine=EngineConfig(name="rules", max_model_len=4096, max_new_tokens=64),
    )  # fmt: skip
    first = synthesize(cfg, engine=ScriptedEngine(canned_pairs))
    assert first.counts["docs_in"] == 25  # the corpus only, not the shards and rejects being written
    again = synthesize(cfg, engine=ScriptedEngine(canned_pairs))
    assert again.run.shards_resumed == 4 and again.counts["docs_in"] == 25


def test_retry_errors_reruns_only_the_shards_with_failed_requests(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    want = _config(tmp_path / "full", corpus, rounds=2)
    synthesize(want, engine=ScriptedEngine(canned_pairs, config=want.engine))
    cfg = _config(tmp_path, corpus, rounds=2)
    first = synthesize(cfg, engine=ScriptedEngine(_Outage(10**9, also=("Document number 9 talks",))))
    assert first.by["rejects"]["engine_error"] == 1
    again = synthesize(cfg, engine=ScriptedEngine(canned_pairs))
    assert again.run.shards_retried == 0 and again.by["rejects"]["engine_error"] == 1  # plain resume
    healthy = ScriptedEngine(canned_pairs)
    retry = SynthesizeConfig(**{**cfg.__dict__, "retry_errors": True})
    summary = synthesize(retry, engine=healthy)
    assert summary.run.shards_retried == 1 and summary.run.shards_resumed == 3
    assert "engine_error" not in summary.by["rejects"]
    assert len(healthy.seen) == 6  # shard 1 only: its six documents, not the whole corpus
    for name in ("data", "rejects", "stats"):
        a = sorted((Path(want.output) / name).iterdir())
        b = sorted((Path(cfg.output) / name).iterdir())
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_no_stop_when_the_limit_is_zero(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), rounds=1, max_consecutive_errors=0)
    with pytest.raises(EngineError, match=r"every record was rejected \(engine_error 23, empty_text 1"):
        synthesize(cfg, engine=ScriptedEngine(_Outage(after=0)))  # nothing came out: not a success
    summary = json.loads((Path(cfg.output) / "stats.json").read_text())  # but the run went to the end
    assert summary["by"]["rejects"]["engine_error"] == 23 and summary["run"]["shards_total"] == 4


def test_records_without_an_id_value_are_counted(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "One."}\n{"text": "Two."}\n{"id": null, "text": "Three."}\n')
    summary = synthesize(_config(tmp_path, corpus, id_field="id"), engine=ScriptedEngine(canned_pairs))
    assert summary.counts["ids_derived"] == 2 and summary.counts["docs_out"] == 3


def test_duplicate_ids_in_a_shard_are_rejected(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": i, "text": f"Text {n} here."}) + "\n"
            for n, i in enumerate(["a", "b", "a", "c"])
        )
    )
    cfg = _config(tmp_path, corpus, id_field="id")
    summary = synthesize(cfg, engine=ScriptedEngine(canned_pairs, config=cfg.engine))
    assert summary.by["rejects"] == {"duplicate_id": 1}
    assert [r["text"] for r in _all_records(Path(cfg.output))] == [
        "Text 0 here.",
        "Text 1 here.",
        "Text 3 here.",
    ]


def test_parquet_output(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"), format="parquet")
    synthesize(cfg, engine=ScriptedEngine(canned_pairs, config=cfg.engine))
    shards = sorted((Path(cfg.output) / "data").glob("*.parquet"))
    assert len(shards) == 4
    rows = [r for p in shards for r in read_shard(p)]
    assert len(rows) == 23 and rows[0]["pairs"][0]["question"] == "What does the text begin with?"


def test_cached_prompt_tokens_reported_by_the_engine_are_counted(tmp_path: Path) -> None:
    class CachingDouble(ScriptedEngine):
        """Test double: claims every prompt token but the last context block came from its cache."""

        def poll(self):
            gens = super().poll()
            for g in gens:
                g.extra["num_cached_tokens"] = 3
            return gens

    cfg = _config(tmp_path, _corpus(tmp_path / "c.jsonl"))
    summary = synthesize(cfg, engine=CachingDouble(canned_pairs, codec=WordCodec(), config=cfg.engine))
    assert summary.counts["cached_prompt_tokens"] == 3 * 23


def test_a_continuing_chain_is_submitted_before_waiting_chains(tmp_path: Path) -> None:
    """With one request in flight, each chain runs to its end before the next chain starts (its prefix is hot)."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Text number {i}."}) + "\n" for i in range(6))
    )
    cfg = _config(tmp_path, corpus, rounds=3, shard_size=6, max_inflight=1, id_field="id")
    engine = ScriptedEngine(canned_pairs, config=cfg.engine)
    synthesize(cfg, engine=engine)
    assert [r.record_id for r in engine.seen] == ["d0", "d1", "d2", "d3", "d4", "d5"]


class _CapacityDouble(ScriptedEngine):
    """Test double: a ScriptedEngine that reports a KV capacity and answers two requests per poll, recording the
    prompt + max-new tokens pending after every submit."""

    def __init__(self, capacity: int | None, **kw) -> None:
        super().__init__(canned_pairs, codec=WordCodec(), batch=2, **kw)
        self.kv_capacity_tokens = capacity
        self.loads: list[int] = []

    def submit(self, requests) -> None:
        super().submit(requests)
        new = self.config.max_new_tokens
        self.loads.append(sum(len(r.prompt_ids) + new for r in self._queue))


@pytest.mark.parametrize(("setting", "capacity"), [("auto", 180), ("180", None)])
def test_tokens_in_flight_stay_within_the_bound(tmp_path: Path, setting: str, capacity: int | None) -> None:
    """'auto' takes the engine's KV capacity, a number is used as given; without a bound (an engine that reports
    no capacity, or 'none') far more is in flight. The order of submission changes, the output does not."""
    corpus = _corpus(tmp_path / "c.jsonl")
    engine_cfg = EngineConfig(name="rules", max_model_len=4096, max_new_tokens=16)
    runs = {}
    for name, engine, bound in [
        ("free", _CapacityDouble(None, config=engine_cfg), "auto"),
        ("none", _CapacityDouble(180, config=engine_cfg), "none"),
        ("bounded", _CapacityDouble(capacity, config=engine_cfg), setting),
    ]:
        cfg = _config(tmp_path / name, corpus, engine=engine_cfg, rounds=3, max_inflight_tokens=bound)
        synthesize(cfg, engine)
        runs[name] = engine
    assert max(runs["free"].loads) > 180 and max(runs["none"].loads) > 180
    assert max(runs["bounded"].loads) <= 180
    assert len(runs["bounded"].loads) > len(
        runs["free"].loads
    )  # the bound made it submit in more, smaller steps
    records = _all_records(tmp_path / "free" / "out")
    assert _all_records(tmp_path / "bounded" / "out") == records == _all_records(tmp_path / "none" / "out")


def _dup_corpus(path: Path) -> Path:
    """Ids u0..u11 in shards of 4, with repeats inside a shard, across shards, and of an id first seen in a row
    that was rejected (which does not claim the id)."""
    rows = [{"id": f"u{i}", "text": f"Text {i} is here."} for i in range(12)]
    rows[2]["id"] = "u1"  # same shard as u1
    rows[6]["id"] = "u0"  # shard 1 repeats shard 0
    rows[9] = {"id": "u3", "text": ""}  # rejected as empty: does not claim u3 ...
    rows[11]["id"] = "u9"  # ... u9 was never kept, so this one is kept
    rows.append({"id": "u5", "text": "Shard 3 repeats shard 1."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rejects(out: Path) -> list[tuple[str, str]]:
    found = [
        json.loads(line)
        for p in sorted((out / "rejects").glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    return sorted((r["id"], r["reason"]) for r in found)


def test_repeated_ids_are_rejected_across_shards(tmp_path: Path) -> None:
    corpus = _dup_corpus(tmp_path / "c.jsonl")
    cfg = _config(tmp_path, corpus, shard_size=4, id_field="id")
    summary = synthesize(cfg, engine=ScriptedEngine(canned_pairs, config=cfg.engine))
    out = Path(cfg.output)
    assert _rejects(out) == [
        ("u0", "duplicate_id"),
        ("u1", "duplicate_id"),
        ("u3", "empty_text"),
        ("u5", "duplicate_id"),
    ]
    kept = [r["id"] for r in _all_records(out)]
    assert len(kept) == len(set(kept)) == 9 and "u9" in kept
    assert summary.by["rejects"] == {"duplicate_id": 3, "empty_text": 1}


def test_duplicate_decisions_survive_a_resume_with_shards_finished_out_of_order(tmp_path: Path) -> None:
    """A crash can leave a later shard done and an earlier one not; the resumed run must decide every duplicate
    as the uninterrupted run did (each shard is judged against the shards before it only)."""
    corpus = _dup_corpus(tmp_path / "c.jsonl")
    full = _config(tmp_path / "full", corpus, shard_size=4, id_field="id")
    synthesize(full, engine=ScriptedEngine(canned_pairs, config=full.engine))
    part = _config(tmp_path / "part", corpus, shard_size=4, id_field="id")
    synthesize(part, engine=ScriptedEngine(canned_pairs, config=part.engine))
    out = Path(part.output)
    for name in ("shard-00001", "shard-00003"):  # as if shards 0 and 2 had finished first
        (out / "done" / name).unlink()
        (out / "data" / f"{name}.jsonl").unlink()
    engine = ScriptedEngine(canned_pairs, config=part.engine)
    synthesize(part, engine=engine)
    # Only shards 1 and 3 ran again; shard 1's "u0" is still rejected (shard 0's stored ids) and shard 3's "u5"
    # too (shard 1's, kept again in this run).
    assert sorted(r.record_id for r in engine.seen) == ["u4", "u5", "u7"]
    for sub in ("data", "rejects", "ids"):
        for p in sorted((Path(full.output) / sub).iterdir()):
            assert (out / sub / p.name).read_bytes() == p.read_bytes(), p


def test_rules_workers_write_the_same_bytes_as_one_process(tmp_path: Path) -> None:
    """--rules-workers mines in worker processes; shards, rejects and stats are those of a one-process run."""
    from tests.unit.test_rules import ABSTRACT, FILLER

    rows = [json.dumps({"id": f"d{i}", "text": (FILLER * (i % 3)) + ABSTRACT}) for i in range(40)]
    rows[7], rows[23] = "{broken json", json.dumps({"id": "short", "text": "Too short."})
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(rows) + "\n")
    outs = {}
    for workers in (1, 2):
        engine = EngineConfig(name="rules", rules=RulesOptions(workers=workers))
        summary = synthesize(
            _config(tmp_path / f"w{workers}", corpus, engine=engine, rounds=2, id_field="id")
        )
        outs[workers] = tmp_path / f"w{workers}" / "out"
        assert summary.counts["pairs_out"] > 100 and summary.by["rejects"] == {"invalid_json": 1}
    for sub in ("data", "rejects", "stats"):
        one, two = outs[1] / sub, outs[2] / sub
        assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
        assert all((one / p.name).read_bytes() == (two / p.name).read_bytes() for p in one.iterdir()), sub
