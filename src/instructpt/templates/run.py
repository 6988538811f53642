"""The ``templify`` stage: synthesize output in, instruction-augmented pre-training documents out.

    instructpt templify out/pairs -o out/augmented [--seed 0] [--layout-weights classic=0.8,dialog=0.05,...]

A map stage on the platform runner (:func:`instructpt.stages.run_map_stage`): each finished input shard (from
``synthesize``, any engine) becomes the output shard of the same number. Its records are read back as typed
``SynthRecord``s, grouped by chain (consecutive records sharing ``chain_id``), and every chain is rendered into
one document with the seeded template inventory. Same input + seed + inventory -> the same bytes, whatever the
order or number of workers. Resumable and fingerprinted like every stage; malformed records go to ``rejects/``
with their reason. A chain whose records carry kept input fields (synthesize ``--keep-fields``) keeps them, with
each source document's ``source``, in ``source_fields``. With ``--filter``, the pairs that fail the quality rules of
``instructpt filter`` (options under ``--filter.*``) are left out first, each to ``rejects/``. Progress counts chains; its ETA comes from the input
shards (how many chains a shard holds is not known before it is read).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from instructpt.config import option
from instructpt.errors import ConfigError
from instructpt.filter.options import PairChecker, RuleOptions
from instructpt.io.shards import STRIDE, ShardFile, read_records, stage_shards
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import AugmentedDoc, Reject, SynthRecord
from instructpt.stages import ShardedOptions, ShardPlan, ShardResult, Summary, run_map_stage
from instructpt.templates import DEFAULT_LAYOUT_WEIGHTS, TemplifyOptions, inventory_fingerprint, render_chain

log = logging.getLogger(__name__)


@dataclass
class PairFilter(RuleOptions):
    """templify --filter: pairs that fail the quality rules of instructpt filter are dropped before rendering."""

    enabled: bool = option(
        False,
        "Drop the pairs that fail the quality rules of `instructpt filter` before rendering (each to rejects/ "
        "with its rule; the thresholds are this section's options).",
        aliases=("--filter",),
    )

    def __post_init__(self) -> None:
        self.check()


@dataclass
class TemplifyConfig(ShardedOptions):
    """``instructpt templify``: synthesized pairs -> instruction-augmented pre-training documents."""

    FIELD_HELP: ClassVar[dict[str, str]] = {"inputs": "synthesize output directories or their shard files."}
    INPUTS: ClassVar[str] = "a synthesize output directory or shard file"

    seed: int = option(0, "Global seed; every chain's draws come from (seed, chain id).")
    layout_weights: dict[str, float] = option(
        dict(DEFAULT_LAYOUT_WEIGHTS), "Relative weight of each chain layout."
    )
    intro_prob: float = option(0.5, "classic layout: chance of an intro line around the context.")
    instruction_prob: float = option(0.5, "classic layout: chance of an 'answer these questions' line.")
    fewshot_rationale_prob: float = option(
        0.5, "inline_fewshot layout: chance the test item keeps its rationale."
    )
    filter: PairFilter = field(default_factory=PairFilter)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.options  # noqa: B018 - validates the weights now, naming the flag on error

    @property
    def options(self) -> TemplifyOptions:
        try:
            return TemplifyOptions(
                layout_weights=dict(self.layout_weights),
                intro_prob=self.intro_prob,
                instruction_prob=self.instruction_prob,
                fewshot_rationale_prob=self.fewshot_rationale_prob,
            )
        except ConfigError as exc:
            raise ConfigError(f"--layout-weights / --*-prob: {exc}") from exc

    def fingerprint(self) -> dict[str, Any]:
        fp = {
            "inputs": self.inputs,
            "seed": self.seed,
            "layout_weights": self.layout_weights,
            "inventory": inventory_fingerprint(),
            "format": self.format,
        }
        # Recorded when not default, so output directories written before they were recorded still resume.
        for key, default in (("intro_prob", 0.5), ("instruction_prob", 0.5), ("fewshot_rationale_prob", 0.5)):
            if getattr(self, key) != default:
                fp[key] = getattr(self, key)
        if len(self.inputs) > 1:
            fp["shard_numbers"] = f"input * {STRIDE} + synthesize shard"
        if self.filter.enabled:
            fp["filter"] = self.filter.rules_fingerprint()
        return fp


def _chains(items: Iterable[SynthRecord | Reject], rejects: list[Reject]) -> Iterator[list[SynthRecord]]:
    """Consecutive records of one chain, grouped; rejects (rows that could not be used) set aside in order."""
    chain: list[SynthRecord] = []
    for item in items:
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        if chain and item.chain_id != chain[0].chain_id:
            yield chain
            chain = []
        chain.append(item)
    if chain:
        yield chain


class Templify:
    """The map stage: one synthesize shard in, one shard of rendered documents out."""

    name, unit = "templify", "chains"
    headline: tuple[str, ...] = ("chains_in", "docs_out", "pairs_out", "rejected")
    # counter names of earlier versions' shard stats -> today's
    renamed: dict[str, str] = {"documents_out": "docs_out", "pairs_rendered": "pairs_out"}  # noqa: RUF012

    def __init__(
        self, config: TemplifyConfig, shards: Sequence[ShardFile] = (), plan: ShardPlan | None = None
    ) -> None:
        self.config, self.options = config, config.options
        self.checker = PairChecker(config.filter) if config.filter.enabled else None
        plan = plan or ShardPlan()
        owned = [sh.index for sh in shards if plan.owns(sh.index)]
        self._owned_after = {index: len(owned) - k - 1 for k, index in enumerate(owned)}
        self._shards_done = 0

    def map_shard(self, shard: ShardFile, progress: Progress) -> ShardResult:
        stats, rejects, docs = Stats(), list[Reject](), list[dict[str, Any]]()
        for chain in _chains(read_records(shard.path, SynthRecord.from_row, "templify"), rejects):
            stats.add("pairs_in", sum(len(r.pairs) for r in chain))
            if self.checker is not None:
                chain = _filtered(self.checker, chain, stats, rejects)
            doc = self._render(chain, stats)
            docs.append(doc.to_dict())
            progress.update(docs=1, pairs=doc.n_pairs)
        stats.add("docs_out", len(docs))
        self._shards_done += 1  # the shards after this one are what is left (finished ones are skipped)
        left = self._owned_after.get(shard.index)
        if left is not None:
            progress.parts_done(self._shards_done, self._shards_done + left, "shards")
        return ShardResult(docs, rejects, stats)

    def _render(self, chain: list[SynthRecord], stats: Stats) -> AugmentedDoc:
        chain_id, seed = chain[0].chain_id, self.config.seed
        rendered = render_chain(
            [(r.text, r.pairs) for r in chain], record_id=chain_id, seed=seed, options=self.options
        )
        stats.add("chains_in")
        stats.add("records_in", len(chain))
        stats.add("pairs_out", rendered.n_pairs)
        stats.add("raw_only", int(rendered.raw_only))
        stats.update("drops", rendered.drops)
        stats.update("omitted", rendered.omitted)
        for layout in rendered.layouts:
            stats.count("layouts", layout)
        for tid in rendered.template_ids:
            stats.count("template_families", tid.split("/")[0])
        return AugmentedDoc(
            id=chain_id,
            text=rendered.text,
            chain_id=chain_id,
            record_ids=[r.id for r in chain],
            source_ids=list(dict.fromkeys(r.doc_id for r in chain)),
            layout="+".join(rendered.layouts),
            template_ids=rendered.template_ids,
            seed=seed,
            n_pairs=rendered.n_pairs,
            piece_ids=rendered.piece_ids,
            source_fields=_source_fields(chain),
        )


def _filtered(
    checker: PairChecker, chain: list[SynthRecord], stats: Stats, rejects: list[Reject]
) -> list[SynthRecord]:
    """templify --filter: each record's pairs that fail a rule (or score low) left out of rendering."""
    out = []
    for r, bad in zip(
        chain, checker.failures([(r.text, [(p.question, p.answer) for p in r.pairs]) for r in chain])
    ):
        for i, (reason, detail) in sorted(bad.items()):
            rejects.append(
                Reject(f"{r.id}#pair{i}", r.source, reason, detail, "templify", r.pairs[i].to_dict())
            )
            stats.count("filtered", reason)
        stats.add("pairs_filtered", len(bad))
        out.append(replace(r, pairs=[p for i, p in enumerate(r.pairs) if i not in bad]) if bad else r)
    return out


def _source_fields(chain: list[SynthRecord]) -> dict[str, dict[str, Any]]:
    """Source document id -> the input file it came from (``source``) and its kept input fields (lineage)."""
    out: dict[str, dict[str, Any]] = {}
    for r in chain:
        out.setdefault(r.doc_id, {"source": r.source, **(r.fields or {})})
    return out


def templify(config: TemplifyConfig, plan: ShardPlan | None = None) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``."""
    plan = plan or config.shard_plan()
    shards = stage_shards(config.inputs, reader="templify", producer="synthesize")
    return run_map_stage(Templify(config, shards, plan), config, config.fingerprint(), shards, plan)


main = templify
Config = TemplifyConfig
