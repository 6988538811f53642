"""Progress reporting: plain periodic log lines off a terminal, with rates and an ETA."""

from __future__ import annotations

import logging

from instructpt.progress import Progress


def test_log_lines_when_not_a_tty(caplog) -> None:
    caplog.set_level(logging.INFO, logger="instructpt.progress")
    p = Progress("synthesize", total=10, enabled=True, every=0.0)
    p.skip(2)
    p.update(docs=4, pairs=10, tokens=400)
    p.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines and "4/8 docs (+2 done before)" in lines[0]
    assert (
        "docs/s" in lines[0] and "pairs/doc=2.50" in lines[0] and "tok/s=" in lines[0] and "eta=" in lines[0]
    )
    assert "done" in lines[-1]


def test_disabled_progress_is_silent(caplog) -> None:
    caplog.set_level(logging.INFO, logger="instructpt.progress")
    p = Progress("x", enabled=False, every=0.0)
    p.update(docs=1)
    p.close()
    assert not caplog.records


def test_counters_that_stay_zero_are_not_shown(caplog) -> None:
    """The rules engine and templify generate no tokens: no ``tok/s=0``."""
    caplog.set_level(logging.INFO, logger="instructpt.progress")
    p = Progress("templify", enabled=True, every=0.0, unit="chains")
    p.update(docs=3, pairs=6)
    line = caplog.records[-1].getMessage()
    assert "tok/s" not in line and "pairs/chain=2.00" in line
    assert "3 chains (total unknown)" in line  # said, not left to guess


def test_a_pseudo_terminal_of_size_0x0_gets_log_lines(caplog, monkeypatch) -> None:
    """A terminal that reports 0 columns draws no bar at all: the progress goes to log lines instead."""
    import os
    import pty
    import sys

    caplog.set_level(logging.INFO, logger="instructpt.progress")
    leader, follower = pty.openpty()  # a new pseudo terminal has size 0x0
    with os.fdopen(follower, "w") as tty:
        assert tty.isatty() and os.get_terminal_size(tty.fileno()).columns == 0
        monkeypatch.setattr(sys, "stderr", tty)
        p = Progress("synthesize", total=4, enabled=True, every=0.0)
        p.update(docs=2)
        p.close()
    os.close(leader)
    assert p._bar is None
    assert [r.getMessage() for r in caplog.records][0].startswith("synthesize: 2/4 docs")


def test_an_estimated_total_and_parts_give_an_eta(caplog) -> None:
    caplog.set_level(logging.INFO, logger="instructpt.progress")
    p = Progress("synthesize", enabled=True, every=0.0)
    p.skip(10)
    p.estimate(110)  # from the bytes read of compressed inputs: shown as an estimate
    p.update(docs=20)
    assert "20/~100 docs (+10 done before)" in p.line() and "eta=" in p.line()
    p.estimate(60, approximate=False)  # every record read: exact
    assert "20/50 docs" in p.line()
    t = Progress("templify", enabled=True, every=0.0, unit="chains")
    t.update(docs=5)
    assert "eta=" not in t.line()
    t.parts_done(1, 4, "shards")  # chains per shard are not known ahead; shards are
    assert "shards 1/4" in t.line() and "eta=" in t.line() and "total unknown" not in t.line()


def _gz_corpus(path, n: int, words: int = 60) -> None:
    import gzip
    import json
    import random

    rng = random.Random(0)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    with gzip.open(path, "wt") as f:
        for i in range(n):
            text = " ".join(rng.choice(vocab) for _ in range(words)).capitalize() + "."
            f.write(json.dumps({"id": str(i), "text": text}) + "\n")


def test_the_bytes_read_of_a_gz_file_tell_how_far_reading_is(tmp_path) -> None:
    from instructpt.io.inputs import ReadMeter, count_records, input_bytes
    from instructpt.io.readers import ReadOptions, read_docs

    path = tmp_path / "c.jsonl.gz"
    _gz_corpus(path, 20000)
    assert count_records([str(path)]) is None  # counting would mean reading it all
    meter = ReadMeter(input_bytes([str(path)]) or 0)
    assert meter.total_bytes == path.stat().st_size > 1 << 20
    stream = read_docs([str(path)], ReadOptions(meter=meter))
    for _ in range(10000):
        next(stream)
    assert 0.4 < meter.fraction() < 0.6
    assert sum(1 for _ in stream) == 10000 and meter.fraction() == 1.0


def test_synthesize_estimates_the_total_of_gz_inputs(tmp_path, monkeypatch) -> None:
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize

    path = tmp_path / "c.jsonl.gz"
    _gz_corpus(path, 1500, words=200)
    seen: list[tuple[int, bool]] = []
    real = Progress.estimate

    def spy(self, expected: int, approximate: bool = True) -> None:
        seen.append((expected, approximate))
        real(self, expected, approximate)

    monkeypatch.setattr(Progress, "estimate", spy)
    config = SynthesizeConfig(inputs=[str(path)], output=str(tmp_path / "o"), shard_size=100, progress=True,
                              engine=EngineConfig(name="rules"))  # fmt: skip
    synthesize(config)
    estimates = [n for n, approximate in seen if approximate]
    assert len(estimates) >= 10 and seen[-1] == (1500, False)
    assert all(1000 < n < 2000 for n in estimates), estimates


def test_templify_counts_its_input_shards_for_the_eta(tmp_path, caplog, monkeypatch) -> None:
    import json

    from instructpt import stages
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize
    from instructpt.templates.run import TemplifyConfig, templify

    corpus = tmp_path / "c.jsonl"
    text = "Rivers carry water to the sea. However, deserts have little rain, so few rivers cross them."
    corpus.write_text("".join(json.dumps({"text": f"{text} Case {i}."}) + "\n" for i in range(9)))
    synthesize(SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "p"), shard_size=3, progress=False,
                                engine=EngineConfig(name="rules")))  # fmt: skip
    monkeypatch.setattr(stages, "Progress", lambda *a, **kw: Progress(*a, **{**kw, "every": 0.0}))
    caplog.set_level(logging.INFO, logger="instructpt.progress")
    templify(TemplifyConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "a")))
    lines = [r.getMessage() for r in caplog.records]
    assert any("shards 1/3" in line and "eta=" in line for line in lines), lines
    assert "shards 3/3" in lines[-1] and not any("tok/s" in line for line in lines)
