"""``instructpt demo``: the main job on the embedded default, offline, in seconds.

Runs ``synthesize --engine rules`` (the model-free miner) and then ``templify`` on the demo corpus shipped with the
package (or ``--corpus``), prints a short summary and sample instruction-augmented documents, and leaves both
outputs under ``--output`` (``pairs/`` and ``augmented/``). Re-running resumes (finished shards are kept).
"""

from __future__ import annotations

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
    output: str = option("demo-out", "Output directory (pairs/ and augmented/ inside).", aliases=("-o",))
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
    counts = {
        "docs_in": synth.counts.get("docs_in", 0),
        "rejected": synth.counts.get("rejected", 0) + aug.counts.get("rejected", 0),
        "docs_out": aug.counts.get("docs_out", 0),  # the pre-training documents
        "pairs_out": synth.counts.get("pairs_out", 0),
    }
    run = RunInfo(
        "docs",
        synth.run.done_this_run,
        synth.run.work_seconds + aug.run.work_seconds,
        synth.run.startup_seconds,
        synth.run.shutdown_seconds,
    )
    return Summary(
        "demo", counts, {}, run, HEADLINE
    )  # rejects: under pairs/ and augmented/ (the report says)


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
