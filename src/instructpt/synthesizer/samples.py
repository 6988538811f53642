"""Several samples per text (``synthesize --num-samples K``): which pairs a record keeps, and what is counted.

The engine draws K generations for each example (vLLM and OpenAI-compatible servers: ``n``; transformers:
``num_return_sequences``; rules: K seeds), sample i seeded from (seed, record id, i). ``--keep`` then decides:

- ``best``: the sample with the most pairs that pass the quality rules of :mod:`instructpt.quality.filters` (ties:
  fewer failing or unparsable pairs, then the earlier sample); its pairs are the record's, unchanged.
- ``union``: sample 0's pairs, then those of each later sample that no earlier sample asked: not the same
  question (any case or spacing), nor the same answer of four words or more (one fact in another wording).
- ``all``: sample 0 is the record, and every other sample a further record of the same document
  (``ID@sI``, a chain of its own), each marked with its sample index.

The chain goes on with the kept pairs (``best``, ``union``) or with sample 0 (``all``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instructpt.engines.base import Generation
from instructpt.io.stats import Stats
from instructpt.quality.filters import FilterRules, check_pairs
from instructpt.records import QAPair
from instructpt.wire import parse_generation

KEEP_MODES = ("best", "all", "union")
UNION_ANSWER_WORDS = 4


@dataclass
class Sample:
    """One sample of an example, parsed: its pairs and the pairs the wire format could not read (``drops``)."""

    index: int
    gen: Generation
    pairs: list[QAPair]
    drops: dict[str, int]


@dataclass
class Kept:
    """What a record keeps of its samples. ``sample`` is the index of the sample the pairs come from (None for
    a union); ``others`` are the samples written as records of their own (``all``)."""

    pairs: list[QAPair]
    drops: dict[str, int]
    gen: Generation  # the generation the chain goes on from (its ids are reused when it parsed cleanly)
    sample: int | None
    from_one_sample: bool  # the pairs are one sample's as generated (else the chain re-encodes them)
    others: list[Sample] = field(default_factory=list)
    union_repeats: int = 0


def parse_samples(gen: Generation) -> list[Sample]:
    """Every sample of a generation with its pairs (structured ones as given, else parsed from the text)."""
    out = []
    for i, g in enumerate(gen.samples):
        if g.pairs is not None:
            out.append(Sample(i, g, list(g.pairs), {}))
        else:
            parsed = parse_generation(g.text)
            out.append(Sample(i, g, parsed.pairs, dict(parsed.drops)))
    return out


@dataclass(frozen=True)
class SamplePolicy:
    """``--keep`` with the quality rules that score samples for ``best``."""

    keep: str = "best"
    rules: FilterRules = field(default_factory=FilterRules)

    def choose(self, text: str, samples: list[Sample]) -> Kept:
        if len(samples) == 1 or self.keep == "all":
            first = samples[0]
            sample = first.index if len(samples) > 1 else None
            return Kept(first.pairs, first.drops, first.gen, sample, True, samples[1:])
        if self.keep == "best":
            best = max(samples, key=lambda s: self.score(text, s))
            return Kept(best.pairs, best.drops, best.gen, best.index, True)
        pairs, seen, repeats = [], set[tuple[str, str]](), 0
        drops: dict[str, int] = {}
        for s in samples:
            for reason, n in s.drops.items():
                drops[reason] = drops.get(reason, 0) + n
            new: set[tuple[str, str]] = set()
            for p in s.pairs:  # a sample's own pairs all stay: only what an earlier sample asked is left out
                keys = _fact_keys(p)
                if not seen.isdisjoint(keys):
                    repeats += 1
                    continue
                new.update(keys)
                pairs.append(p)
            seen |= new
        return Kept(pairs, drops, samples[0].gen, None, False, union_repeats=repeats)

    def score(self, text: str, sample: Sample) -> tuple[int, int, int]:
        """(pairs that pass the rules, minus pairs that fail or could not be parsed, minus the index)."""
        reasons = check_pairs(text, [(p.question, p.answer) for p in sample.pairs], self.rules)
        passed = sum(r is None for r in reasons)
        return passed, passed - len(reasons) - sum(sample.drops.values()), -sample.index


def _fact_keys(pair: QAPair) -> list[tuple[str, str]]:
    """What makes two pairs the same item in a union: the same question (any case or spacing), or the same answer
    of at least UNION_ANSWER_WORDS words (one fact asked in two wordings; short answers like "yes" recur)."""
    keys = [("q", " ".join(pair.question.casefold().split()))]
    answer = pair.answer.casefold().split()
    if len(answer) >= UNION_ANSWER_WORDS:
        keys.append(("a", " ".join(answer)))
    return keys


def count_samples(stats: Stats, samples: list[Sample], kept: Kept) -> None:
    """Per-sample counters (only with several samples): pairs and empty samples by index, the sample ``best``
    chose, and the questions a union asked once instead of again."""
    if len(samples) < 2:
        return
    for s in samples:
        stats.count("sample_pairs", s.index, len(s.pairs))
        if not s.pairs:
            stats.count("samples_without_pairs", s.index)
    if kept.sample is not None and not kept.others:
        stats.count("best_sample", kept.sample)
    if kept.union_repeats:
        stats.add("union_repeated_questions", kept.union_repeats)
