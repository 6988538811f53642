"""``instructpt evaluate-synthesizer``: numbers for a synthesizer and for the pairs it wrote.

    # response accuracy on held-out examples (the fine-tuning collection's format), any engine
    instructpt evaluate-synthesizer --heldout heldout.jsonl --engine transformers --model runs/synth/model -o ev/
    # split by seen/unseen source datasets: name the sources the synthesizer was trained on
    instructpt evaluate-synthesizer --heldout ft-data/ --trained-on runs/synth --engine vllm --model runs/synth/model -o ev/
    # quality of any synthesize output (no model needed)
    instructpt evaluate-synthesizer --pairs pairs/ -o ev/

Response accuracy: for each held-out (context, gold question, gold answer), the synthesizer answers the question in
context through the wire format (the prompt is the context block plus ``<QUE> question <ANS>``); its response, up to
``</END>``, is compared with the gold answer: exact match, token F1, ROUGE-L (:mod:`instructpt.quality.answers`),
overall, by source dataset and by seen/unseen source.

Pair quality of synthesize outputs: parse rate, pairs per text, duplicate rate, answer grounding, task-type mix,
question and answer lengths (:mod:`instructpt.quality.pairs`), written to ``pairs.json`` for ``instructpt report``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructpt.config import option, to_dict
from instructpt.engines.config import EngineConfig
from instructpt.errors import ConfigError, InputError
from instructpt.io.collection import CollectionExample, CollectionFields, collect
from instructpt.io.rundir import RunDir, json_bytes
from instructpt.io.shards import write_jsonl
from instructpt.records import Reject
from instructpt.stages import RunInfo, RunOptions, Summary
from instructpt.wire import answer_of

HEADLINE = ("questions", "exact_match", "token_f1", "rouge_l", "texts", "parse_rate", "grounded")
LENGTH_EDGES = (4, 8, 16, 32, 64, 128, 256)  # histogram of words per question / answer: <=4, <=8, ... >256


@dataclass
class EvaluateSynthesizerConfig(RunOptions):
    """``instructpt evaluate-synthesizer``: response accuracy and pair quality."""

    heldout: list[str] = option([], "Held-out examples (context + pairs, the fine-tuning format) to answer.")
    pairs: list[str] = option([], "synthesize output directories to measure (no model needed).")
    trained_on: str | None = option(
        None, "A train-synthesizer run directory: its training sources are 'seen', the others 'unseen'."
    )
    seen_sources: list[str] = option(
        [], "Source datasets the synthesizer was trained on (instead of --trained-on)."
    )
    limit: int | None = option(None, "Held-out examples to answer (the first N).")
    data: CollectionFields = field(default_factory=CollectionFields)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(name="transformers"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.heldout and not self.pairs:
            raise ConfigError(
                "give --heldout (examples to answer) and/or --pairs (synthesize outputs to measure)"
            )
        if self.heldout and self.engine.name == "rules":
            raise ConfigError("the rules engine writes pairs from a text; it cannot answer a given question")
        if self.heldout and not self.engine.model:
            raise ConfigError("--heldout needs a synthesizer: --engine transformers|vllm|openai --model NAME")

    def fingerprint(self) -> dict[str, Any]:
        return {"heldout": self.heldout, "pairs": self.pairs, "limit": self.limit, "data": to_dict(self.data),
                "engine": self.engine.fingerprint() if self.heldout else None}  # fmt: skip


def evaluate_synthesizer(config: EvaluateSynthesizerConfig) -> Summary:
    t0 = time.monotonic()
    out = RunDir(config.output, "evaluate-synthesizer", config.fingerprint(), overwrite=config.overwrite)
    out.write_config(config)
    counts: dict[str, Any] = {}
    by: dict[str, Any] = {}
    report: dict[str, Any] = {}
    if config.pairs:
        quality = {p: pair_quality(p) for p in config.pairs}
        out.write_file("pairs.json", json_bytes(quality))
        report["pairs"] = quality
        total = _merge(list(quality.values()))
        counts.update({k: total[k] for k in ("texts", "pairs", "parse_rate", "pairs_per_text", "grounded",
                                             "duplicate_rate")})  # fmt: skip
        by["task_types"] = total["task_types"]
    t1 = time.monotonic()
    if config.heldout:
        responses, rejects = _responses(config, out.root)
        out.write_file("responses.json", json_bytes(responses))
        report["responses"] = responses
        counts.update(
            {k: responses["overall"][k] for k in ("questions", "exact_match", "token_f1", "rouge_l")}
        )
        counts["rejected"] = len(rejects)
        by["rejects"] = dict(Counter(r.reason for r in rejects))
        by["by_source"] = {s: v["token_f1"] for s, v in responses["by_source"].items()}
    out.write_file("results.md", _markdown(report).encode("utf-8"))
    run = RunInfo("questions", int(counts.get("questions", 0)), time.monotonic() - t1, t1 - t0)
    summary = Summary("evaluate-synthesizer", counts, by, run, HEADLINE, output=str(out.root))
    out.write_summary(summary)
    return summary


# ---- pair quality of synthesize outputs ----
def pair_quality(path: str) -> dict[str, Any]:
    """The figures of one synthesize output directory (see the module docstring)."""
    from instructpt.io.shards import finished_shards, read_records
    from instructpt.quality.pairs import classify, grounded
    from instructpt.records import SynthRecord

    shards = finished_shards(Path(path))
    if not shards:
        raise InputError(f"--pairs {path}: no finished synthesize shard (data/ with done markers)")
    texts = with_pairs = n_pairs = dup = n_grounded = n_checked = 0
    types: Counter[str] = Counter()
    drops: Counter[str] = Counter()
    q_len: Counter[str] = Counter()
    a_len: Counter[str] = Counter()
    seen: Counter[tuple[str, str]] = Counter()
    for shard in shards:
        for rec in read_records(shard.path, SynthRecord.from_row, "evaluate-synthesizer"):
            if isinstance(rec, Reject):
                continue
            texts += 1
            with_pairs += bool(rec.pairs)
            drops.update(rec.drops)
            for p in rec.pairs:
                n_pairs += 1
                key = (" ".join(p.question.lower().split()), " ".join(p.answer.lower().split()))
                dup += seen[key] > 0
                seen[key] += 1
                types[classify(p.question, p.answer, rec.text)] += 1
                g = grounded(p.answer, rec.text)
                if g is not None:
                    n_checked += 1
                    n_grounded += g
                q_len[_bucket(len(p.question.split()))] += 1
                a_len[_bucket(len(p.answer.split()))] += 1
    return {"texts": texts, "pairs": n_pairs, "parse_rate": _share(with_pairs, texts),
            "pairs_per_text": _share(n_pairs, texts), "duplicate_rate": _share(dup, n_pairs),
            "grounded": _share(n_grounded, n_checked), "grounding_checked": n_checked,
            "task_types": dict(types.most_common()), "drops": dict(drops.most_common()),
            "question_words": _ordered(q_len), "answer_words": _ordered(a_len)}  # fmt: skip


def _bucket(n: int) -> str:
    return next((f"<={e}" for e in LENGTH_EDGES if n <= e), f">{LENGTH_EDGES[-1]}")


def _ordered(hist: Counter[str]) -> dict[str, int]:
    keys = [f"<={e}" for e in LENGTH_EDGES] + [f">{LENGTH_EDGES[-1]}"]
    return {k: hist[k] for k in keys if hist[k]}


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    texts, pairs = sum(p["texts"] for p in parts), sum(p["pairs"] for p in parts)
    types: Counter[str] = Counter()
    for p in parts:
        types.update(p["task_types"])
    return {"texts": texts, "pairs": pairs,
            "parse_rate": _share(sum(p["parse_rate"] * p["texts"] for p in parts), texts),
            "pairs_per_text": _share(pairs, texts),
            "duplicate_rate": _share(sum(p["duplicate_rate"] * p["pairs"] for p in parts), pairs),
            "grounded": _share(sum(p["grounded"] * p["grounding_checked"] for p in parts),
                               sum(p["grounding_checked"] for p in parts)),
            "task_types": dict(types.most_common())}  # fmt: skip


# ---- response accuracy ----
def _seen(config: EvaluateSynthesizerConfig) -> set[str] | None:
    if config.seen_sources:
        return set(config.seen_sources)
    if config.trained_on:
        prepared = Path(config.trained_on) / "sequences" / "prepared.json"
        if not prepared.exists():
            raise InputError(
                f"--trained-on {config.trained_on}: not a train-synthesizer run ({prepared} missing)"
            )
        info = json.loads(prepared.read_text(encoding="utf-8"))
        return set(info["sources"]) - set(info["heldout_sources"])
    return None


def _responses(config: EvaluateSynthesizerConfig, root: Path) -> tuple[dict[str, Any], list[Reject]]:
    from instructpt.engines.base import load_engine
    from instructpt.quality.answers import exact_match, rouge_l, token_f1

    examples, rejects = collect(config.heldout, config.data, "evaluate-synthesizer", exclude=(str(root),))
    write_jsonl(root / "rejects.jsonl", [r.to_dict() for r in rejects])
    examples = examples[: config.limit] if config.limit else examples
    if not examples:
        raise InputError(
            f"--heldout holds no usable example ({len(rejects)} rejected: see {root / 'rejects.jsonl'})"
        )
    seen = _seen(config)
    with load_engine(config.engine) as engine:
        questions = [(e, p) for e in examples for p in e.pairs]
        gens = engine.generate([_request(engine, i, e, p.question) for i, (e, p) in enumerate(questions)])
    rows = []
    for (e, p), g in zip(questions, gens):
        reply = answer_of(g.text) if g.ok else ""
        rows.append({"id": e.id, "source": e.source, "seen": None if seen is None else e.source in seen,
                     "question": p.question, "gold": p.answer, "response": reply, "error": g.error,
                     "exact_match": exact_match(reply, p.answer), "token_f1": token_f1(reply, p.answer),
                     "rouge_l": rouge_l(reply, p.answer)})  # fmt: skip
    write_jsonl(root / "samples.jsonl", rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["source"]), []).append(r)
    split = {k: [r for r in rows if r["seen"] is v] for k, v in (("seen", True), ("unseen", False))}
    return {"overall": _means(rows), "by_source": {s: _means(g) for s, g in sorted(groups.items())},
            "by_seen": {k: _means(v) for k, v in split.items() if v} if seen is not None else {},
            "engine": config.engine.name, "model": config.engine.model}, rejects  # fmt: skip


def _request(engine: Any, key: int, example: CollectionExample, question: str) -> Any:
    from instructpt.engines.base import Request
    from instructpt.wire import context_block, prompt_ids, question_body

    body = question_body(question)
    codec = getattr(engine, "codec", None)
    ids = prompt_ids(codec.encode, example.context, body) if codec is not None else None
    return Request(
        key, context_block(example.context) + body, ids, record_id=example.id, context=example.context
    )


def _means(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    return {
        "questions": n,
        **{k: _share(sum(r[k] for r in rows), n) for k in ("exact_match", "token_f1", "rouge_l")},
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# Synthesizer evaluation", ""]
    if "responses" in report:
        r = report["responses"]
        lines += [f"Response accuracy ({r['engine']} {r['model']}):", "", "| group | questions | EM | token F1 | ROUGE-L |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        groups = {
            "all": r["overall"],
            **r["by_seen"],
            **{f"source {k}": v for k, v in r["by_source"].items()},
        }
        for name, m in groups.items():
            lines.append(
                f"| {name} | {m['questions']} | {m['exact_match']:.4f} | {m['token_f1']:.4f} | {m['rouge_l']:.4f} |"
            )
        lines.append("")
    for path, q in report.get("pairs", {}).items():
        lines += [f"Pairs of `{path}`: {q['texts']} texts, {q['pairs']} pairs, parse rate {q['parse_rate']:.3f}, "
                  f"{q['pairs_per_text']:.2f} pairs per text, duplicates {q['duplicate_rate']:.3f}, grounded "
                  f"{q['grounded']:.3f} (of {q['grounding_checked']} checkable); task types "
                  f"{', '.join(f'{k} {v}' for k, v in q['task_types'].items()) or 'none'}", ""]  # fmt: skip
    return "\n".join(lines)


main = evaluate_synthesizer
Config = EvaluateSynthesizerConfig
