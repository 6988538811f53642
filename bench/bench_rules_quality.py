"""Benchmark: how often the rules engine's mined items are right, on an annotated evaluation set.

The set (``bench/rules_quality/set-*.jsonl``, one document per line, written and annotated by hand for this project):

    {"id": "sci-01", "genre": "scientific_abstract", "text": "...",
     "expected": {"title": "..." | null,                      # what a careful annotator expects the text to yield
                  "links": [{"first": "...", "second": "...", "relation": "contrast|result|addition|paraphrase"}],
                  "definitions": ["term", ...], "causes": [{"cause": "...", "effect": "..."}]},
     "verdicts": [{"task_type": "...", "question": "...", "answer": "...",
                   "verdict": "correct" | "wrong", "reason": "..."}]}

``verdicts`` judge the items the engine mined when the set was frozen (``rules_version`` in ``set-meta.json``). This
script mines every text again (seed 0, the document's id as record id, at most 2 items per task type, as
``synthesize --engine rules`` does) and prints, per task type: items mined, items judged correct, precision (an item
with no verdict counts as not correct until annotated), and the coverage of the expected titles. ``--dump DOC_ID``
prints one document's mined items as verdict skeletons for annotating.

Run:  python bench/bench_rules_quality.py [--dump ID]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SET = Path(__file__).resolve().parent / "rules_quality"


def load_set() -> list[dict[str, Any]]:
    docs = [
        json.loads(line)
        for p in sorted(SET.glob("set-*.jsonl"))
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    ids = [d["id"] for d in docs]
    if len(ids) != len(set(ids)):
        raise SystemExit(f"duplicate document ids: {sorted(k for k, n in Counter(ids).items() if n > 1)}")
    return docs


def mined(doc: dict[str, Any]) -> list[dict[str, str]]:
    from instructpt.engines.rules import mine

    return [{"task_type": p.task_type or "", "question": p.question, "answer": p.answer}
            for p in mine(doc["text"], doc["id"], seed=0, max_per_type=2).pairs]  # fmt: skip


# Task types made from a pair of sentences as such (an article opening or a continuation may hold any pair).
PAIR_TYPES = ("nli", "connective", "cause_effect", "effect_cause", "paraphrase")


def _core(sentence: str) -> str:
    """A sentence as items quote it: no opening connective, no final punctuation, lower case."""
    from instructpt.engines.rules.patterns import strip_opener
    from instructpt.engines.rules.text import bare

    return bare(strip_opener(sentence)).lower()


def reused_pairs(doc: dict[str, Any], items: list[dict[str, str]]) -> tuple[int, int]:
    """(expected linked pairs used by items of more than one task type, expected linked pairs), for a document
    with two or more linked pairs; (0, 0) otherwise."""
    links = (doc.get("expected") or {}).get("links") or []
    if len(links) < 2:
        return 0, 0
    reused = 0
    for link in links:
        first, second = _core(link["first"]), _core(link["second"])
        types = {i["task_type"] for i in items if i["task_type"] in PAIR_TYPES
                 and first in (text := (i["question"] + "\n" + i["answer"]).lower()) and second in text}  # fmt: skip
        reused += len(types) > 1
    return reused, len(links)


def judge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task type: mined, correct, wrong, unannotated; plus title coverage and per-document redundancy."""
    per: dict[str, Counter[str]] = {}
    titles_expected = titles_found = 0
    regressions = []
    reuse = [0, 0, 0]  # pairs used by two or more task types, pairs, documents with any
    for doc in docs:
        verdicts = {(v["question"], v["answer"]): v for v in doc.get("verdicts", [])}
        items = mined(doc)
        for item in items:
            c = per.setdefault(item["task_type"], Counter())
            c["mined"] += 1
            v = verdicts.get((item["question"], item["answer"]))
            c["correct" if v and v["verdict"] == "correct" else "wrong" if v else "unannotated"] += 1
        reused, links = reused_pairs(doc, items)
        reuse[0] += reused
        reuse[1] += links
        reuse[2] += reused > 0
        seen = {(i["question"], i["answer"]) for i in items}
        regressions += [(doc["id"], v["question"]) for v in doc.get("verdicts", [])
                        if v["verdict"] == "correct" and (v["question"], v["answer"]) not in seen]  # fmt: skip
        title = (doc.get("expected") or {}).get("title")
        if title:
            titles_expected += 1
            titles_found += any(i["task_type"] in ("summarize", "title_to_article") and title.strip() in
                                (i["question"] + " " + i["answer"]) for i in items)  # fmt: skip
    total = sum((c for c in per.values()), Counter())
    return {
        "per_type": per,
        "total": total,
        "titles": (titles_found, titles_expected),
        "lost_correct": regressions,
        "reused_pairs": tuple(reuse),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", metavar="DOC_ID", help="print a document's mined items as verdict skeletons")
    args = p.parse_args()
    docs = load_set()
    if args.dump:
        doc = next((d for d in docs if d["id"] == args.dump), None)
        if doc is None:
            raise SystemExit(f"no document {args.dump!r}")
        for item in mined(doc):
            print(json.dumps({**item, "verdict": None, "reason": ""}, ensure_ascii=False))
        return
    from instructpt.engines.rules import RULES_VERSION

    r = judge(docs)
    print(f"rules engine {RULES_VERSION} on {len(docs)} annotated documents (genres: "
          f"{', '.join(f'{g} {n}' for g, n in sorted(Counter(d['genre'] for d in docs).items()))})")  # fmt: skip
    print(f"{'task type':<18}{'mined':>7}{'correct':>9}{'wrong':>7}{'unannotated':>13}{'precision':>11}")
    for name, c in sorted(r["per_type"].items()):
        print(f"{name:<18}{c['mined']:>7}{c['correct']:>9}{c['wrong']:>7}{c['unannotated']:>13}"
              f"{c['correct'] / max(1, c['mined']):>11.1%}")  # fmt: skip
    t = r["total"]
    print(f"{'all':<18}{t['mined']:>7}{t['correct']:>9}{t['wrong']:>7}{t['unannotated']:>13}"
          f"{t['correct'] / max(1, t['mined']):>11.1%}   (target >= 95%)")  # fmt: skip
    print(f"titles found on titled texts: {r['titles'][0]} of {r['titles'][1]} (target: all)")
    reused, links, in_docs = r["reused_pairs"]
    print(f"linked sentence pairs used by more than one task type (texts with two or more): {reused} of {links}, "
          f"in {in_docs} texts (target: 0)")  # fmt: skip
    print(f"items judged correct that the engine no longer mines: {len(r['lost_correct'])}")


if __name__ == "__main__":
    main()
