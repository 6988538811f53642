"""M-shot chains (SPEC §4): each text is synthesized after the earlier examples of its chain.

A shard's items (texts, or pieces of over-long texts) are taken in order in groups of ``rounds``; each group is
worked through by one :class:`ChainRunner`, one step at a time. A chain grows while examples yield pairs and the
next prompt fits ``max_model_len - max_new_tokens`` by exact token count; an example with no pairs ends its chain,
and a text that would not fit starts a new chain. Runners are independent: the scheduler submits a runner's next
step as soon as its previous step returns, so there is no global round barrier.

Prefix reuse: when a generation parsed cleanly (no drops) and stopped at EOS, the next prompt is the previous
prompt's ids + the generated ids (+ EOS) + the next context block — token for token what the engine already has in
its prefix cache. Otherwise (drops, length cut, or an engine that returns no ids) the finished example's target is
encoded from the canonical serialization of the kept pairs (or, with no ids, the generated text) as it follows the
context block in one text (:func:`~instructpt.wire.encode_example`), so the next prompt still shares
the previous prompt as a prefix but not the generation. With the Mistral/Llama tokenizer layout the chain's ids are
then exactly the encoding of its whole prompt text, as the reference script and text-prompt servers have it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from instructpt.engines.base import Generation, Request, TextCodec
from instructpt.io.stats import Stats
from instructpt.records import QAPair, RawDoc, Reject, SynthRecord
from instructpt.synthesizer.samples import Kept, Sample, SamplePolicy, count_samples, parse_samples
from instructpt.synthesizer.split import split_to_fit
from instructpt.wire import EOS, context_block, encode_example, serialize_pairs


@dataclass
class Item:
    """One text to synthesize: a whole document or one piece of a long one."""

    id: str
    doc_id: str
    source: str
    text: str
    piece: int = 0
    n_pieces: int = 1
    ctx_ids: list[int] | None = None  # exact ids of context_block(text) when the engine has a codec
    fields: dict[str, Any] | None = None  # the document's kept input fields (--keep-fields)


def make_items(docs: list[RawDoc], codec: TextCodec | None, budget: int | None) -> list[Item]:
    """Items for a shard's documents: exact context-block ids, and long texts split into fitting pieces (a text
    that fits once the whitespace around it is stripped keeps its id, as one piece)."""
    if codec is None or budget is None:
        return [Item(d.id, d.id, d.source, d.text, fields=d.fields) for d in docs]
    encode_batch = getattr(codec, "encode_batch", None)
    blocks = [context_block(d.text) for d in docs]
    all_ids = encode_batch(blocks) if encode_batch else [codec.encode(b) for b in blocks]
    items: list[Item] = []
    for doc, ids in zip(docs, all_ids):
        if len(ids) <= budget:
            items.append(Item(doc.id, doc.id, doc.source, doc.text, ctx_ids=ids, fields=doc.fields))
            continue
        pieces = split_to_fit(doc.text, _fits(codec, budget))
        if len(pieces) == 1:  # it fits once the whitespace around it is stripped: not a split
            ids = codec.encode(context_block(pieces[0]))
            items.append(Item(doc.id, doc.id, doc.source, pieces[0], ctx_ids=ids, fields=doc.fields))
            continue
        for k, piece in enumerate(pieces):
            ids_k = codec.encode(context_block(piece))
            items.append(Item(f"{doc.id}#{k}", doc.id, doc.source, piece, k, len(pieces), ids_k, doc.fields))
    return items


def _fits(codec: TextCodec, budget: int) -> Callable[[str], bool]:
    """Whether a text's context block fits the prompt budget."""
    return lambda text: len(codec.encode(context_block(text))) <= budget


def count_splits(docs: list[RawDoc], items: list[Item], stats: Stats) -> None:
    """Count the documents split into pieces, the pieces, and the texts stripped of whitespace to fit."""
    split = [it for it in items if it.n_pieces > 1]
    if split:
        stats.add("docs_split", len({it.doc_id for it in split}))
        stats.add("pieces_from_splits", len(split))
    texts = {d.id: d.text for d in docs}
    stripped = sum(it.text != texts[it.doc_id] for it in items if it.n_pieces == 1)
    if stripped:
        stats.add("docs_stripped_to_fit", stripped)


@dataclass
class StepResult:
    record: SynthRecord | None = None
    reject: Reject | None = None
    drops: dict[str, int] = field(default_factory=dict)
    skip_reason: str | None = None
    reused_generation: bool = False
    # with several samples (--num-samples): each parsed, what the record kept, and (--keep all) the records of
    # the other samples, written after the chain's own
    samples: list[Sample] = field(default_factory=list)
    kept: Kept | None = None
    sample_records: list[SynthRecord] = field(default_factory=list)

    @property
    def records(self) -> list[SynthRecord]:
        """The records of this step: the example's, and (--keep all) its other samples'."""
        return [self.record, *self.sample_records] if self.record else []

    def count(self, stats: Stats) -> None:
        """Add this step to a shard's counters."""
        if self.reject is not None:
            stats.add("engine_errors")  # the reject is counted with the shard's others when it is written
            return
        rec = self.record
        assert rec is not None  # a step gives a record or a reject
        records = self.records
        stats.add("records_out", len(records))
        stats.add("pairs_out", sum(len(r.pairs) for r in records))
        stats.add("prompt_tokens", rec.prompt_tokens)
        # every sample's tokens: what the engine generated, whichever the records kept
        generated = [s.gen.generated_tokens for s in self.samples] or [rec.generated_tokens]
        stats.add("generated_tokens", sum(generated))
        for r in records:
            stats.count("finish_reasons", r.finish_reason)
            stats.update("drops", r.drops)
            for p in r.pairs:
                if p.task_type:
                    stats.count("task_types", p.task_type)
        stats.add("reused_generations", int(self.reused_generation))
        reasons = [self.skip_reason] + [
            s.gen.extra.get("skip_reason") for s in (self.kept.others if self.kept else [])
        ]
        for r, reason in zip(records, reasons):
            if not r.pairs:
                stats.add("records_without_pairs")
                stats.count("no_pairs_reason", reason or "no_valid_pair")
        if self.kept is not None:
            count_samples(stats, self.samples, self.kept)


class ChainRunner:
    """Works through one group of items, forming chains; one request in flight at a time."""

    def __init__(
        self,
        items: list[Item],
        codec: TextCodec | None,
        budget: int | None,
        synthesizer: dict[str, Any],
        sampling: dict[str, Any],
        whole_text: bool = False,
        samples: int = 1,
        policy: SamplePolicy | None = None,
    ) -> None:
        self.items, self.codec, self.budget = items, codec, budget
        self.n_samples, self.policy = samples, policy or SamplePolicy()
        self.whole_text = whole_text  # the engine tokenizes prompt text itself: count exactly that encoding
        self.synthesizer, self.sampling = synthesizer, sampling
        self.next_index = 0
        self._reset_chain()
        self._prompt_ids: list[int] | None = None
        self._prompt_text = ""

    def _reset_chain(self) -> None:
        self.history_ids: list[int] = []
        self.history_text = ""
        self.chain_id = ""
        self.chain_pos = 0

    @property
    def done(self) -> bool:
        return self.next_index >= len(self.items)

    def _ctx_ids(self, item: Item) -> list[int]:
        assert (
            item.ctx_ids is not None and self.budget is not None
        )  # make_items sets them when there is a codec
        return item.ctx_ids

    def _breaks_chain(self) -> bool:
        """The next text does not fit after the chain so far (exact ids): it starts a new chain."""
        ctx = self._ctx_ids(self.items[self.next_index])
        return bool(self.history_ids) and len(self.history_ids) + len(ctx) > (self.budget or 0)

    def next_prompt_tokens(self) -> int | None:
        """Exact length of the prompt :meth:`next_request` will build (None without a codec); changes nothing."""
        if self.codec is None:
            return None
        ctx = len(self._ctx_ids(self.items[self.next_index]))
        return ctx if self._breaks_chain() else len(self.history_ids) + ctx

    def next_request(self, key: Any) -> Request:
        """The prompt for the next item: after the chain so far if it fits, else alone as a new chain."""
        item = self.items[self.next_index]
        block = context_block(item.text)
        if self.codec is not None:
            if self._breaks_chain():
                self._reset_chain()  # over budget: the chain ends here and this text starts a new one
            self._prompt_ids = self.history_ids + self._ctx_ids(item)
        if not self.chain_id:
            self.chain_id = item.id
        self._prompt_text = self.history_text + block
        return Request(
            key=key,
            prompt=self._prompt_text,
            prompt_ids=self._prompt_ids,
            record_id=item.id,
            context=item.text,
            priority=-self.chain_pos,  # later steps first: their prefix (the chain so far) is in the cache
            n=self.n_samples,
        )

    def on_result(self, gen: Generation) -> StepResult:
        """Consume the generation of the item just requested; decide how the chain goes on."""
        item = self.items[self.next_index]
        self.next_index += 1
        if not gen.ok:
            self._reset_chain()
            return StepResult(
                reject=Reject(
                    item.id,
                    item.source,
                    "engine_error",
                    gen.error or "",
                    "synthesize",
                    {"id": item.id, "text": item.text},
                )
            )
        samples = parse_samples(gen)
        kept = self.policy.choose(item.text, samples)
        pairs, drops = kept.pairs, kept.drops
        record = self._record(item, kept.gen, pairs, drops, kept.sample)
        result = StepResult(record=record, drops=drops, skip_reason=kept.gen.extra.get("skip_reason"))
        if len(samples) > 1:
            result.samples, result.kept = samples, kept
            result.sample_records = [
                self._record(item, s.gen, s.pairs, s.drops, s.index, own_chain=True) for s in kept.others
            ]
        if not pairs:
            self._reset_chain()  # no pairs: the chain ends with this example
            return result
        clean = not drops and kept.from_one_sample
        result.reused_generation = self._extend_history(item, kept.gen, pairs, clean=clean)
        self.chain_pos += 1
        return result

    def _record(
        self,
        item: Item,
        gen: Generation,
        pairs: list[QAPair],
        drops: dict[str, int],
        sample: int | None = None,
        own_chain: bool = False,
    ) -> SynthRecord:
        """The record of an example; ``own_chain``: a further sample of it (``--keep all``), a chain of its own."""
        prompt_tokens = len(self._prompt_ids) if self._prompt_ids is not None else gen.prompt_tokens
        rid = f"{item.id}@s{sample}" if own_chain else item.id
        return SynthRecord(
            id=rid,
            doc_id=item.doc_id,
            source=item.source,
            text=item.text,
            pairs=pairs,
            chain_id=rid if own_chain else self.chain_id,
            chain_pos=0 if own_chain else self.chain_pos,
            piece=item.piece,
            n_pieces=item.n_pieces,
            finish_reason=gen.finish_reason,
            prompt_tokens=prompt_tokens,
            generated_tokens=gen.generated_tokens,
            drops=drops,
            synthesizer=self.synthesizer,
            sampling=self.sampling,
            fields=item.fields,
            sample=sample,
        )

    def _extend_history(self, item: Item, gen: Generation, pairs: list[QAPair], clean: bool) -> bool:
        """Append the finished example to the chain; True when the generated ids were reused verbatim."""
        gen_text = gen.text[: -len(EOS)] if gen.text.endswith(EOS) else gen.text
        reusable = clean and gen.finish_reason == "stop"
        if reusable:
            self.history_text = self._prompt_text + gen_text + EOS
        else:
            self.history_text = self._prompt_text + serialize_pairs(pairs) + EOS
        if self.codec is None:
            return reusable
        if self.whole_text:
            # <s> and </s> are special tokens, so this plus the next context block's ids is the next prompt's
            # whole-text encoding, whatever the tokenizer does at the pairs' junction with their context
            self.history_ids = self.codec.encode(self.history_text)
            return False
        eos, prompt_ids = self.codec.eos_token_id, self._prompt_ids or []
        if reusable and gen.token_ids is not None and eos is not None:
            out = list(gen.token_ids)
            if not out or out[-1] != eos:
                out.append(eos)
            self.history_ids = prompt_ids + out
            return True
        body = gen_text if reusable else serialize_pairs(pairs)
        _, target = encode_example(self.codec.encode, item.text, body, ctx_ids=item.ctx_ids)
        self.history_ids = prompt_ids + target
        return False
