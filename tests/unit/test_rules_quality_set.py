"""The rules engine's annotated evaluation set (bench/rules_quality/): its shape, and the regression checks. While
the engine's RULES_VERSION is the one the set was annotated for, its items must be exactly the annotated ones: an
output change without a version bump fails here. After a bump, bench_rules_quality.py measures the new items
(unannotated ones count as not correct) until they are annotated in a commit of their own (see the README there)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_rules_quality import judge, load_set, mined  # noqa: E402

DOCS = load_set()
pytestmark = pytest.mark.skipif(not DOCS, reason="no annotated set in bench/rules_quality")


def test_the_set_covers_the_genres_and_every_verdict_is_complete() -> None:
    meta = json.loads((ROOT / "bench" / "rules_quality" / "set-meta.json").read_text())
    assert len(DOCS) >= 40 and len(Counter(d["genre"] for d in DOCS)) >= 6
    assert any((d.get("expected") or {}).get("title") for d in DOCS)
    assert any(not (d.get("expected") or {}).get("title") for d in DOCS)
    for d in DOCS:
        for v in d["verdicts"]:
            assert v["verdict"] in ("correct", "wrong"), (d["id"], v)
            assert v["verdict"] == "correct" or v.get("reason"), (d["id"], v["question"])
    assert meta["rules_version"] and meta["frozen"]


def test_no_item_annotated_correct_is_lost() -> None:
    from instructpt.engines.rules import RULES_VERSION

    meta = json.loads((ROOT / "bench" / "rules_quality" / "set-meta.json").read_text())
    if meta["rules_version"] != RULES_VERSION:
        pytest.skip(f"the set was annotated for {meta['rules_version']}; the engine is {RULES_VERSION}")
    lost = judge(DOCS)["lost_correct"]
    assert not lost, (
        f"items annotated correct under {meta['rules_version']} are no longer mined by {RULES_VERSION}: {lost[:5]} "
        "- an output change needs a RULES_VERSION bump (then annotate the new items in their own commit)"
    )


def test_every_mined_item_of_the_frozen_engine_is_annotated() -> None:
    from instructpt.engines.rules import RULES_VERSION

    meta = json.loads((ROOT / "bench" / "rules_quality" / "set-meta.json").read_text())
    if meta["rules_version"] != RULES_VERSION:
        pytest.skip(f"the set was annotated for {meta['rules_version']}; the engine is {RULES_VERSION}")
    for d in DOCS:
        judged = {(v["question"], v["answer"]) for v in d["verdicts"]}
        missing = [i["question"] for i in mined(d) if (i["question"], i["answer"]) not in judged]
        assert not missing, (d["id"], missing[:3])
