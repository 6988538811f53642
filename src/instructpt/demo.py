"""``instructpt demo``: the main job on the embedded default, offline, in seconds.

Runs ``synthesize --engine rules`` (the model-free miner) and then ``templify`` on the demo corpus shipped with the
package (or ``--corpus``), prints a short summary and sample instruction-augmented documents; then (unless
``--no-train``) the model half through the same stages: a tokenizer trained on the corpus, ``pack``, ``mix``
(from-scratch recipe), ``pretrain`` of a tiny model, ``evaluate`` on sentence completions drawn from the corpus,
and ``report``. Everything lands under ``--output``; re-running resumes (finished work is kept).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from instructpt.config import option
from instructpt.errors import ConfigError
from instructpt.stages import RunInfo, RunOptions, Summary


def default_corpus() -> str:
    return str(resources.files("instructpt") / "resources" / "demo")


@dataclass
class DemoConfig(RunOptions):
    """``instructpt demo``: rules synthesizer -> templify on the shipped demo corpus; prints a summary."""

    corpus: str | None = option(None, "Raw corpus to use instead of the shipped demo corpus.")
    rounds: int = option(2, "Examples per chain.")
    seed: int = option(0, "Seed of the rules miner and the templates.")
    samples: int = option(2, "How many augmented documents to print.")
    train: bool = option(
        True,
        "Then the model half: tokenizer, pack, mix, pretrain a tiny model, evaluate it, report (--no-train: skip).",
    )
    steps: int = option(150, "Pre-training steps of the tiny model (batch 8 x 128 tokens).")
    output: str = option(
        "demo-out",
        "Output directory (pairs/, augmented/ and the model half's steps inside).",
        aliases=("-o",),
    )
    progress: bool = option(False, "Show progress bars.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounds < 1 or self.samples < 0:
            raise ConfigError("--rounds must be >= 1 and --samples >= 0")


HEADLINE = ("docs_in", "rejected", "docs_out", "pairs_out")


def demo(config: DemoConfig) -> Summary:
    from instructpt.engines.config import EngineConfig
    from instructpt.synthesizer.run import SynthesizeConfig, synthesize
    from instructpt.templates.run import TemplifyConfig, templify

    out = Path(config.output)
    corpus = config.corpus or default_corpus()
    synth = synthesize(
        SynthesizeConfig(
            inputs=[corpus],
            output=str(out / "pairs"),
            rounds=config.rounds,
            progress=config.progress,
            overwrite=config.overwrite,
            id_field="id",
            engine=EngineConfig(name="rules", model="rules", seed=config.seed),
        )
    )
    aug = templify(
        TemplifyConfig(
            inputs=[str(out / "pairs")],
            output=str(out / "augmented"),
            seed=config.seed,
            progress=config.progress,
            overwrite=config.overwrite,
        )
    )
    print(report(synth, aug, out, config.samples))
    model_seconds = 0.0
    if config.train:
        t0 = time.monotonic()
        print(model_half(config, corpus, out))
        model_seconds = time.monotonic() - t0
    counts = {
        "docs_in": synth.counts.get("docs_in", 0),
        "rejected": synth.counts.get("rejected", 0) + aug.counts.get("rejected", 0),
        "docs_out": aug.counts.get("docs_out", 0),  # the pre-training documents
        "pairs_out": synth.counts.get("pairs_out", 0),
    }
    run = RunInfo(
        "docs",
        synth.run.done_this_run,
        synth.run.work_seconds + aug.run.work_seconds + model_seconds,
        synth.run.startup_seconds,
        synth.run.shutdown_seconds,
    )
    return Summary(
        "demo", counts, {}, run, HEADLINE
    )  # rejects: under pairs/ and augmented/ (the report says)


def model_half(config: DemoConfig, corpus: str, out: Path) -> str:
    """The rest of the pipeline on the demo's output, through the stages: a tokenizer trained on the corpus, pack
    (raw and augmented), mix (the paper's from-scratch recipe: a fifth of the raw documents replaced by their
    augmented versions), pretrain a tiny model, evaluate it on sentence completions from the corpus, report."""
    from instructpt.evaluate.run import EvaluateConfig, evaluate
    from instructpt.experiment.report import scores
    from instructpt.mix.run import MixConfig, mix
    from instructpt.pack.run import PackConfig, pack
    from instructpt.pack.tokenizer import train_tokenizer
    from instructpt.pretrain.run import PretrainConfig, pretrain
    from instructpt.report.run import ReportConfig, report
    from instructpt.train.options import TrainOptions

    common: dict[str, Any] = {"progress": config.progress, "overwrite": config.overwrite}
    over: dict[str, Any] = {"overwrite": config.overwrite}  # commands without a progress bar
    tokenizer = train_tokenizer(Path(corpus), out / "tokenizer", 4000)
    pack(
        PackConfig(
            inputs=[corpus], output=str(out / "packed" / "raw"), tokenizer=tokenizer, id_field="id", **common
        )
    )
    pack(PackConfig(inputs=[str(out / "augmented")], output=str(out / "packed" / "augmented"), tokenizer=tokenizer,
                    source_type="augmented", **common))  # fmt: skip
    sources = [f"raw={out / 'packed' / 'raw'}", f"augmented={out / 'packed' / 'augmented'}"]
    mixed = mix(
        MixConfig(output=str(out / "mix"), preset="from-scratch", sources=sources, seq_len=128, **over)
    )
    train = TrainOptions(max_steps=config.steps, batch_size=8, seq_len=128, warmup_steps=5, checkpoint_every=10_000,
                         device="cpu", seed=config.seed)  # fmt: skip
    run = pretrain(PretrainConfig(data=str(out / "mix"), output=str(out / "model"), model_config="tiny",
                                  train=train, **common))  # fmt: skip
    tasks = completion_task(Path(corpus), out / "tasks" / "completion.jsonl", config.seed)
    scored = evaluate(EvaluateConfig(model=str(out / "model" / "model"), suite=str(tasks.parent),
                                     output=str(out / "eval"), device="cpu", **over))  # fmt: skip
    report(ReportConfig(run_dir=str(out / "model")))
    accuracy = scores(out / "eval" / "results.json").get("completion", float("nan"))
    return "\n".join([
        "",
        "instructpt demo: the model half (tokenizer -> pack -> mix -> pretrain -> evaluate -> report)",
        f"  mixture      {mixed.counts.get('tokens_out', 0):,} tokens: {mixed.counts.get('raw_replaced', 0)} of "
        f"{mixed.counts.get('raw_documents', 0)} raw documents replaced by their augmented versions (from-scratch)",
        f"  pretrain     tiny model, {config.steps} steps; final {_final(run)}",
        f"  evaluate     sentence completion from the corpus, {scored.counts.get('rows', 0)} rows (4 options, chance "
        f"0.25): accuracy {accuracy:.3f}",
        f"  report       {out / 'model' / 'report' / 'report.html'}",
        "  (a tiny model after a minute proves the pipeline, not the method: see `instructpt experiment`)",
    ])  # fmt: skip


def _final(summary: Summary) -> str:
    labels = {"final_loss": "loss", "val_loss": "val_loss"}  # pretrain's counters -> what the line says
    counts = summary.counts
    shown = [
        f"{label} {counts[k]:.3f}" for k, label in labels.items() if isinstance(counts.get(k), int | float)
    ]
    return ", ".join(shown) or "see the run's metrics.jsonl"


def completion_task(corpus: Path, path: Path, seed: int, n: int = 60) -> Path:
    """Multiple-choice sentence completions from the corpus (``instructpt evaluate``'s row format): a sentence cut
    before its last word, the word and three other words of the corpus as options."""
    import json
    import random
    import re

    rng = random.Random(seed)
    sentences = []
    for f in sorted(corpus.glob("*.jsonl")):
        for line in f.open(encoding="utf-8"):
            text = json.loads(line).get("text", "")
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if 8 <= len(s.split()) <= 40]
    words = sorted({w for s in sentences for w in re.findall(r"[a-z]{5,}", s)})
    rows = []
    for s in rng.sample(sentences, min(n, len(sentences))):
        head, _, last = s.rstrip(".!?").rpartition(" ")
        if not last.isalpha() or not head:
            continue
        options = [last, *rng.sample([w for w in words if w != last.lower()], 3)]
        rng.shuffle(options)
        rows.append({"input": head, "options": options, "gold_index": options.index(last)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _top(counter: dict[str, int], n: int = 12) -> str:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


def report(synth: Summary, aug: Summary, out: Path, samples: int) -> str:
    """A short human summary of a demo run and ``samples`` rendered documents."""
    c, by = synth.counts, synth.by
    ac, aby = aug.counts, aug.by
    docs_out = c.get("docs_out", 0)
    lines = [
        "instructpt demo: rules synthesizer -> templify",
        f"  documents    read {c.get('docs_in', 0)}, rejected {c.get('rejected', 0)}, "
        f"synthesized {docs_out}, without pairs {c.get('records_without_pairs', 0)} "
        f"({_top(by.get('no_pairs_reason', {}))})",
        f"  pairs        {c.get('pairs_out', 0)} total, {c.get('pairs_out', 0) / max(docs_out, 1):.2f} per document",
        f"  task types   {_top(by.get('task_types', {}))}",
        f"  augmented    {ac.get('docs_out', 0)} documents from {ac.get('chains_in', 0)} chains; "
        f"pairs rendered {ac.get('pairs_out', 0)}; layouts {_top(aby.get('layouts', {}))}",
        f"  drops        synthesize: {_top(by.get('drops', {}))}; templify: {_top(aby.get('drops', {}))}",
        f"  omitted      templify, by design (kept the pair, left a part out): {_top(aby.get('omitted', {}))}",
        f"  outputs      {out / 'pairs'} (pairs), {out / 'augmented'} (pre-training text), stats.json in each",
        f"  next         your own synthesizer, on the shipped fine-tuning sample: instructpt train-synthesizer "
        f"{resources.files('instructpt') / 'resources' / 'ft_sample'} -o runs/synth --init BASE_MODEL",
    ]
    for doc in _samples(out / "augmented", samples):
        lines += [
            "",
            f"--- sample: {doc['id']} (layout {doc['layout']}, {doc['n_pairs']} pairs) ---",
            doc["text"],
        ]
    return "\n".join(lines)


def _samples(root: Path, n: int, pool: int = 200) -> list[dict[str, Any]]:
    """``n`` documents that carry pairs, evenly spaced over the first ``pool`` such documents."""
    from itertools import islice

    from instructpt.io.shards import finished_shards, read_shard

    docs = (d for sh in finished_shards(root) for d in read_shard(sh.path) if d.get("n_pairs"))
    candidates = list(islice(docs, pool))
    if n <= 0 or not candidates:
        return []
    step = max(1, len(candidates) // n)
    return candidates[::step][:n]


main = demo
Config = DemoConfig
