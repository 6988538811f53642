"""The chain scheduler of ``synthesize``: one engine driven over a stream of shards with independent chains.

:class:`Synthesizer` opens several shards at once so the engine always has work; what is in flight is bounded by
requests and by prompt + new tokens; a chain's next step goes before chains not yet started; a finished shard is
written atomically and marked done (see :mod:`instructpt.synthesizer.run` for the stage around it).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import cast

from instructpt.engines.base import Engine
from instructpt.errors import ConfigError, EngineError
from instructpt.io.ids import SeenIds, pack, unpack
from instructpt.io.inputs import ReadMeter, count_records, input_bytes
from instructpt.io.readers import read_docs
from instructpt.io.shards import ShardedOutput
from instructpt.io.stats import Stats
from instructpt.progress import Progress
from instructpt.records import RawDoc, Reject, SynthRecord
from instructpt.stages import ShardPlan
from instructpt.synthesizer.chains import ChainRunner, StepResult, count_splits, make_items
from instructpt.synthesizer.config import SynthesizeConfig
from instructpt.synthesizer.ids import check_ids, check_piece_ids, passed_through, selected
from instructpt.synthesizer.samples import SamplePolicy
from instructpt.wire import context_block

log = logging.getLogger(__name__)


@dataclass
class _Shard:
    index: int
    runners: list[ChainRunner]
    rejects: list[Reject]
    stats: Stats
    results: list[list[StepResult]] = field(default_factory=list)
    active: int = 0
    kept_ids: list[int] | None = None
    passed: list[SynthRecord] = field(default_factory=list)  # not picked by --fraction: written as they are


class Synthesizer:
    """Drives one engine over a stream of shards with independent chains (no round barrier)."""

    def __init__(
        self, config: SynthesizeConfig, engine: Engine, out: ShardedOutput, plan: ShardPlan | None = None
    ) -> None:
        self.config, self.engine, self.out = config, engine, out
        self.plan = plan or config.shard_plan()
        if self.plan.world_size > 1 and config.id_field:
            # a repeated id is found by remembering the ids of every earlier shard this rank did; the other
            # ranks' shards are not read here: `instructpt verify` finds repeats across ranks
            log.warning(
                "--id-field with %d ranks: a repeated id is rejected when this rank saw it before; "
                "run `instructpt verify` afterwards to find ids repeated across ranks",
                self.plan.world_size,
            )
        self.codec = engine.codec
        e = config.engine
        self.budget: int | None = None
        if self.codec is not None:
            self.budget = budget = e.max_model_len - e.max_new_tokens
            # the context block around a text, plus room for any one character (4 byte tokens at most)
            need = len(self.codec.encode(context_block("x"))) + 4
            if budget < need:
                raise ConfigError(
                    f"--max-model-len {e.max_model_len} - --max-new-tokens {e.max_new_tokens} leaves {budget} "
                    f"prompt tokens; a prompt needs at least {need} (the context block around a text)"
                )
        self.synth_info = engine.describe()
        self.sampling = e.sampling.to_dict()
        total, self.meter = progress_total(config)
        self.progress = Progress("synthesize", total=total, enabled=config.progress, unit="docs")
        # Derived ids (file + line) are unique by construction; ids read from --id-field are checked across shards.
        self.earlier_ids = SeenIds() if config.id_field else None
        self.token_cap = config.inflight_token_cap(engine)
        # Failed requests in a row; while there are any, finished shards wait in `held` (see _on_result).
        self.error_streak, self.held = 0, list[_Shard]()
        self.retried = 0  # finished shards run again (--retry-errors)
        self.max_new_tokens = e.max_new_tokens
        self.policy = SamplePolicy(config.keep)
        if self.token_cap is not None:
            log.info(
                "in flight: at most %d requests and %d prompt + new tokens",
                config.max_inflight,
                self.token_cap,
            )

    # ---- reading and preparing shards ----
    def _shards(self) -> Iterator[tuple[int, list[RawDoc | Reject]]]:
        read = 0
        for index, chunk in input_shards(self.config, self.meter):
            read += len(chunk)
            if self.meter is not None and self.meter.fraction() > 0:  # records so far / share of bytes read
                self.progress.estimate(max(read, round(read / self.meter.fraction())))
            yield index, chunk
        self.progress.estimate(read, approximate=False)  # every record is read: the total is known

    def _retry(self, index: int) -> bool:
        """With --retry-errors, a finished shard with failed requests is reopened to be run again."""
        if not self.config.retry_errors:
            return False
        failed = self.out.shard_stats(index).counts.get("engine_errors", 0)
        if failed:
            log.info(
                "shard %d: running it again for its %d failed request(s) (--retry-errors)", index, failed
            )
            self.out.reopen(index)
            self.retried += 1
        return bool(failed)

    def _skip_done(self, index: int) -> None:
        """A finished shard is not run again; the ids it kept still count for the shards after it."""
        if self.earlier_ids is None:
            return
        packed = self.out.read_ids(index)
        if packed is None:
            log.warning("finished shard %d stored no ids; duplicates of its ids are not detected", index)
            return
        self.earlier_ids.add_many(unpack(packed))

    def _open(self, index: int, chunk: list[RawDoc | Reject]) -> _Shard:
        stats = Stats()
        docs, rejects, kept = check_ids(chunk, self.earlier_ids)
        c = self.config
        passed = [
            passed_through(d, self.synth_info, self.sampling)
            for d in docs
            if not selected(d.id, c.fraction, c.fraction_seed)
        ]
        if passed:  # --fraction: the other documents pass through as raw records, never sent to the engine
            docs = [d for d in docs if selected(d.id, c.fraction, c.fraction_seed)]
            stats.add("docs_passed_through", len(passed))
        samples = c.num_samples if c.keep == "all" else 1  # the other samples' records take ids ID@sI
        items, clashes = check_piece_ids(
            make_items(docs, self.codec, self.budget), docs, kept, self.earlier_ids, samples
        )
        count_splits(docs, items, stats)
        rejects += clashes
        if self.earlier_ids is not None:
            self.earlier_ids.add_many(kept)
        stats.add("docs_in", len(chunk))
        derived = sum(d.id_derived for d in docs)
        if derived:  # --id-field given, but these records had no usable value there: file + line ids
            stats.add("ids_derived", derived)
        stats.add("items", len(items))
        m = self.config.rounds
        runners = [
            ChainRunner(
                items[i : i + m],
                self.codec,
                self.budget,
                self.synth_info,
                self.sampling,
                whole_text=self.engine.tokenizes_prompt_text,
                samples=c.num_samples,
                policy=self.policy,
            )
            for i in range(0, len(items), m)
        ]
        return _Shard(index, runners, rejects, stats, [[] for _ in runners], len(runners), kept, passed)

    # ---- the scheduling loop ----
    def run(self, shards: Iterator[tuple[int, list[RawDoc | Reject]]] | None = None) -> None:
        """Synthesize the input's shards (or ``shards``: (index, records) given by a caller, e.g. a Ray driver)."""
        shards = shards if shards is not None else self._shards()
        open_shards: dict[int, _Shard] = {}
        ready: deque[tuple[int, int]] = deque()  # (shard index, runner index) with a step to submit
        inflight: dict[tuple[int, int], int] = {}  # -> prompt + max new tokens
        inflight_tokens = 0
        exhausted = False
        while True:
            while not exhausted and len(ready) + len(inflight) < self.config.max_inflight:
                nxt = next(shards, None)
                if nxt is None:
                    exhausted = True
                    break
                index, chunk = nxt
                if not self.plan.owns(index):  # another rank's shard
                    self.progress.exclude(len(chunk))
                    continue
                if self.out.is_done(index) and not self._retry(index):
                    self._skip_done(index)
                    self.progress.skip(len(chunk))
                    continue
                shard = self._open(index, chunk)
                self.progress.update(docs=len(shard.rejects))  # rejected at read time: done
                open_shards[index] = shard
                ready.extend((index, r) for r, runner in enumerate(shard.runners) if not runner.done)
                if shard.active == 0:  # every record of the shard was rejected at read time
                    self._finish(shard, open_shards)
            batch = []
            while ready and len(inflight) < self.config.max_inflight:
                key = ready[0]
                runner = open_shards[key[0]].runners[key[1]]
                # the samples of a request share its prompt's cache blocks, each generating its own tokens
                cost = (runner.next_prompt_tokens() or 0) + self.max_new_tokens * self.config.num_samples
                # Over the token bound, the queue waits (in order: continuations stay first) unless nothing is
                # in flight; a single request always fits the KV cache, since prompts fit max_model_len.
                if self.token_cap is not None and inflight and inflight_tokens + cost > self.token_cap:
                    break
                ready.popleft()
                batch.append(runner.next_request(key))
                inflight[key] = cost
                inflight_tokens += cost
            if batch:
                self.engine.submit(batch)
            if not inflight:
                if exhausted:
                    break
                continue
            for gen in self.engine.poll():
                inflight_tokens -= inflight.pop(cast(tuple[int, int], gen.key))  # keys are ours
                self._on_result(gen, open_shards, ready)
        self._write_held(open_shards)
        self.progress.close()

    def _check_streak(self, gen, open_shards: dict[int, _Shard]) -> None:
        """Failures one at a time are rejects; a long run of them means the engine is down, and the run stops.

        A shard that finishes while the latest requests failed is held back, not written: if the run stops, it is
        redone on resume instead of keeping its failures as rejects. The first success writes what was held.

        "In a row" is in the order results arrive. Engines answer out of order, so a success can be that of a
        request sent before the failures; numbering by submission instead made quick refusals (a 400, a prompt
        vLLM rejects) outrun the slow successes in flight and stop healthy runs. The cost: a late success in an
        outage's first moments can end its streak and write held shards with failures; ``--retry-errors``
        redoes them.
        """
        if gen.ok:
            self.error_streak = 0
            self._write_held(open_shards)
            return
        self.error_streak += 1
        limit = self.config.max_consecutive_errors
        if limit and self.error_streak >= limit:
            self.progress.close()
            raise EngineError(
                f"{self.error_streak} requests failed in a row (last: {gen.error}); stopped so that they are not "
                "all rejected. Finished shards are kept: fix the engine or server and re-run to resume "
                "(--max-consecutive-errors sets the limit)"
            )

    def _write_held(self, open_shards: dict[int, _Shard]) -> None:
        while self.held:
            self._finish(self.held.pop(0), open_shards)

    def _on_result(self, gen, open_shards: dict[int, _Shard], ready: deque) -> None:
        index, r = gen.key
        shard = open_shards[index]
        runner = shard.runners[r]
        result = runner.on_result(gen)
        self._check_streak(gen, open_shards)
        shard.results[r].append(result)
        result.count(shard.stats)
        # prompt tokens the engine served from its prefix cache (vLLM reports them): the payoff of chain reuse
        shard.stats.add("cached_prompt_tokens", gen.extra.get("num_cached_tokens", 0))
        n_pairs = sum(len(rec.pairs) for rec in result.records)
        item = runner.items[runner.next_index - 1]
        # progress counts input records, as its total does: a split text when its last piece is done
        tokens = sum(s.generated_tokens for s in gen.samples)
        self.progress.update(docs=int(item.piece == item.n_pieces - 1), pairs=n_pairs, tokens=tokens)
        if runner.done:
            shard.active -= 1
            if shard.active == 0:
                if self.error_streak and self.config.max_consecutive_errors:  # 0: the run never stops
                    self.held.append(shard)
                else:
                    self._finish(shard, open_shards)
        else:
            # a continuing chain goes first: its prompt extends what the engine just cached, and waiting
            # behind every other open chain would let that prefix be evicted
            ready.appendleft((index, r))

    def _finish(self, shard: _Shard, open_shards: dict[int, _Shard]) -> None:
        # a chain's records in order; --keep all: the other samples' records after them (chains of their own)
        records = [
            rec
            for results in shard.results
            for rec in [
                *(r.record for r in results if r.record),
                *(x for r in results for x in r.sample_records),
            ]
        ]
        rejects = shard.rejects + [res.reject for results in shard.results for res in results if res.reject]
        per_doc: Counter = Counter()
        for rec in records:
            per_doc[rec.doc_id] += len(rec.pairs)
        for n in per_doc.values():
            shard.stats.count("pairs_per_doc", min(n, 50))
        records += shard.passed
        shard.stats.add("docs_out", len(per_doc) + len(shard.passed))
        shard.stats.add("chains", len({rec.chain_id for rec in records}))
        ids = pack(shard.kept_ids or []) if self.earlier_ids is not None else None
        rows = [r.to_parquet_row() if self.config.format == "parquet" else r.to_dict() for r in records]
        self.out.write_shard(shard.index, rows, rejects, shard.stats, ids)
        open_shards.pop(shard.index, None)


# The counters `instructpt synthesize` prints, and the names earlier versions gave some of them in shard stats
# (docs_rejected left out engine errors; `rejected` is recounted from the rejects by reason).


def input_shards(
    config: SynthesizeConfig, meter: ReadMeter | None = None
) -> Iterator[tuple[int, list[RawDoc | Reject]]]:
    """The input records cut into shards of ``--shard-size`` (bad records included, so boundaries never move)."""
    stream = read_docs(config.inputs, replace(config.read_options, meter=meter))
    if config.limit is not None:
        stream = islice(stream, config.limit)
    index = 0
    while chunk := list(islice(stream, config.shard_size)):
        yield index, chunk
        index += 1


def progress_total(config: SynthesizeConfig) -> tuple[int | None, ReadMeter | None]:
    """The records to do, when counting them is cheap; else a meter of the bytes read, which estimates it as the
    run goes (compressed, CSV and JSON-array inputs); neither for HF datasets: their total is unknown."""
    if not config.progress:
        return None, None
    if config.limit is not None:
        return config.limit, None
    total = count_records(config.inputs, exclude=(config.output,))
    size = input_bytes(config.inputs, (config.output,)) if total is None else None
    return total, ReadMeter(size) if size else None
