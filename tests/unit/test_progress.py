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
