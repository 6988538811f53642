"""The mixtures ``mix`` can build: plain shares or repeats, and the paper's three presets.

- ``none``: each source by its share of the mixture's tokens (``NAME=DIR:SHARE``, normalised over sources) or by a
  repeat count (``NAME=DIR:x2``); a source with neither is taken once. Without ``--tokens``, shares are met at the
  largest budget that up-samples no shared source.
- ``from-scratch`` (sources ``raw``, ``augmented``, optional ``collection``): ``--replace-fraction`` (default 1/5,
  SPEC §7; unverified, so configurable) of the raw *documents* are replaced by the instruction-augmented documents
  made from them; the fine-tuning collection is added (once, or by its share / repeat count).
- ``domain`` (sources ``augmented``, ``general``): all domain documents, instruction-augmented, plus general
  instruction data at ``--instruction-ratio`` general tokens per domain token (1:1 by default, as the paper's
  authors advise).
- ``vanilla`` (source ``raw``): the raw documents alone, at the token budget of the arm it is paired with
  (``--pair-with MIX_DIR``) or ``--tokens``.

Replacement is exact: an included augmented document's raw documents (its lineage, recorded at pack time) are left
out, unless ``--keep-raw``. Lineage ids that match no raw document are counted, and more than ``--max-unmatched``
of the augmented documents with such ids stops the preset (their ids were made differently: use ``--id-field``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.errors import ConfigError, InputError
from instructpt.mix.select import Pick, Source, repeat, rng_for, split_validation, take_tokens

Pools = dict[int, np.ndarray]


def _named(
    sources: list[Source], preset: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict:
    by_name = {s.spec.name: s for s in sources}
    missing = [n for n in required if n not in by_name]
    extra = [n for n in by_name if n not in required + optional]
    if missing or extra:
        want = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
        raise ConfigError(f"--preset {preset} needs the sources {want}; got {', '.join(by_name) or 'none'}")
    return by_name


def _all(sources: list[Source]) -> Pools:
    return {s.position: np.arange(len(s.refs), dtype=np.int64) for s in sources}


def _by_spec(sources: list[Source], train: Pools, budget: int | None, seed: int) -> tuple[list[Pick], dict]:
    """Each source by its share of ``budget`` tokens, or its repeat count, or once."""
    shared = [s for s in sources if s.spec.share is not None]
    fixed = [s for s in sources if s.spec.share is None]
    picks = []
    for s in fixed:
        docs, how = repeat(train[s.position], s.spec.repeats or 1.0, rng_for(seed, f"pick:{s.spec.name}"))
        picks.append(Pick(s, docs, how))
    total_share = sum(s.spec.share or 0.0 for s in shared)
    if shared:
        natural = min(
            int(s.lengths[train[s.position]].sum()) / ((s.spec.share or 1) / total_share) for s in shared
        )
        rest = budget - sum(p.tokens for p in picks) if budget else int(natural)
        if rest <= 0:
            raise ConfigError(f"--tokens {budget} leaves nothing for the sources given by share")
        for s in shared:
            target = int(round(rest * (s.spec.share or 0.0) / total_share))
            docs, how = take_tokens(s, train[s.position], target, rng_for(seed, f"pick:{s.spec.name}"))
            picks.append(Pick(s, docs, how))
    return picks, {}


def plain(sources: list[Source], cfg: Any) -> tuple[list[Pick], Pools, dict]:
    train, val = split_validation(sources, _all(sources), cfg.val_fraction, cfg.seq_len + 1, cfg.seed)
    picks, info = _by_spec(sources, train, cfg.tokens, cfg.seed)
    return picks, val, info


def from_scratch(sources: list[Source], cfg: Any) -> tuple[list[Pick], Pools, dict]:
    named = _named(sources, "from-scratch", ("raw", "augmented"), ("collection",))
    raw, aug = named["raw"], named["augmented"]
    chosen, replaced, info = _replacement(raw, aug, cfg)
    pools = _all(sources)
    pools[aug.position] = chosen
    if not cfg.keep_raw:
        pools[raw.position] = np.setdiff1d(pools[raw.position], replaced)
    train, val = split_validation(sources, pools, cfg.val_fraction, cfg.seq_len + 1, cfg.seed)
    main = [raw, aug]
    budget = cfg.tokens
    picks: list[Pick] = []
    if "collection" in named:
        extra, _ = _by_spec([named["collection"]], train, None, cfg.seed)
        picks += extra
        budget = budget - extra[0].tokens if budget else None
    natural = sum(int(s.lengths[train[s.position]].sum()) for s in main)
    for s in main:  # one pass, or the budget spread over both by their natural sizes
        if budget:
            share = int(s.lengths[train[s.position]].sum()) / max(natural, 1)
            docs, how = take_tokens(
                s, train[s.position], int(round(budget * share)), rng_for(cfg.seed, f"pick:{s.spec.name}")
            )
        else:
            docs, how = train[s.position], "all"
        picks.append(Pick(s, docs, how))
    return picks, val, info


def _replacement(raw: Source, aug: Source, cfg: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """The augmented documents chosen to replace ``--replace-fraction`` of the raw documents, and those raw ones."""
    raw_index = {row["id"]: i for i, row in enumerate(raw.rows)}
    with_pairs: list[int] = []
    lineages: dict[int, list[int]] = {}
    unmatched_docs = unmatched_ids = 0
    for i, row in enumerate(aug.rows):
        if row.get("n_pairs") == 0:
            continue  # the raw text passed through (synthesize --fraction): not an augmented version
        with_pairs.append(i)
        missing = [x for x in row.get("lineage", []) if x not in raw_index]
        if missing:
            unmatched_docs, unmatched_ids = unmatched_docs + 1, unmatched_ids + len(missing)
        else:
            lineages[i] = [raw_index[x] for x in row["lineage"]]
    share = unmatched_docs / max(len(with_pairs), 1)
    if share > cfg.max_unmatched:
        raise InputError(
            f"{unmatched_docs} of {len(with_pairs)} augmented documents ({share:.1%}) name raw documents that are not "
            f"in the raw source; their ids were probably made differently (give synthesize and pack the same "
            f"--id-field), or the sources do not belong together"
        )
    target = int(round(cfg.replace_fraction * len(raw.rows)))
    chosen: list[int] = []
    replaced: set[int] = set()
    for i in rng_for(cfg.seed, "replace").permutation(np.array(sorted(lineages), dtype=np.int64)):
        if len(replaced) >= target:
            break
        chosen.append(int(i))
        replaced.update(lineages[int(i)])
    covered = {r for ids in lineages.values() for r in ids}
    info = {
        "replace_fraction": cfg.replace_fraction,
        "raw_documents": len(raw.rows),
        "raw_replaced": len(replaced),
        "augmented_with_pairs": len(with_pairs),
        "augmented_chosen": len(chosen),
        "augmented_unmatched": unmatched_docs,
        "lineage_ids_unmatched": unmatched_ids,
        "raw_without_augmented": len(raw.rows) - len(covered),
    }
    return np.array(sorted(chosen), dtype=np.int64), np.array(sorted(replaced), dtype=np.int64), info


def domain(sources: list[Source], cfg: Any) -> tuple[list[Pick], Pools, dict]:
    named = _named(sources, "domain", ("augmented", "general"))
    aug, gen = named["augmented"], named["general"]
    train, val = split_validation(sources, _all(sources), cfg.val_fraction, cfg.seq_len + 1, cfg.seed)
    ratio = cfg.instruction_ratio
    if cfg.tokens:
        aug_docs, aug_how = take_tokens(
            aug, train[aug.position], int(cfg.tokens / (1 + ratio)), rng_for(cfg.seed, "pick:augmented")
        )
    else:
        aug_docs, aug_how = train[aug.position], "all"
    aug_pick = Pick(aug, aug_docs, aug_how)
    gen_docs, gen_how = take_tokens(
        gen, train[gen.position], int(round(aug_pick.tokens * ratio)), rng_for(cfg.seed, "pick:general")
    )
    return [aug_pick, Pick(gen, gen_docs, gen_how)], val, {"instruction_ratio": ratio}


def vanilla(sources: list[Source], cfg: Any) -> tuple[list[Pick], Pools, dict]:
    raw = _named(sources, "vanilla", ("raw",))["raw"]
    budget = cfg.tokens
    if cfg.pair_with:
        paired = json.loads((Path(cfg.pair_with) / "mixture.json").read_text(encoding="utf-8"))
        budget = int(paired["train"]["tokens"])
    if not budget:
        raise ConfigError(
            "--preset vanilla needs the budget of its paired arm: --pair-with MIX_DIR or --tokens"
        )
    train, val = split_validation(sources, _all(sources), cfg.val_fraction, cfg.seq_len + 1, cfg.seed)
    docs, how = take_tokens(raw, train[raw.position], budget, rng_for(cfg.seed, "pick:raw"))
    return [Pick(raw, docs, how)], val, {"paired_with": cfg.pair_with, "budget": budget}


PRESETS = {"none": plain, "from-scratch": from_scratch, "domain": domain, "vanilla": vanilla}
