"""The ``pack`` stage: tokenize a source once into memory-mapped token files with a document index.

    instructpt pack corpus/ -o packed/raw --tokenizer mistralai/Mistral-7B-v0.1
    instructpt pack out/augmented -o packed/aug --source-type augmented --tokenizer DIR --workers 0

Documents are read from the source (:mod:`.sources`: raw, augmented, collection, chat) and cut into shards of
``--shard-size`` documents, the unit of resume and of parallel work: ``--workers N`` tokenizes shards in N spawned
processes (0 = one per core) while this process reads and writes, holding at most two shards per worker, so memory
stays flat in the corpus size. Each document gets the special tokens its model family expects (the one policy table,
:mod:`instructpt.special_tokens`, recorded in ``pack.json``). The format is :mod:`instructpt.io.tokens`.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

from instructpt.config import option
from instructpt.errors import ConfigError, EngineError
from instructpt.io.inputs import _file_state, count_records, input_files
from instructpt.io.readers import DEFAULT_MAX_LINE_BYTES, ReadOptions
from instructpt.io.shards import ShardedOutput, stage_shards
from instructpt.io.stats import Stats
from instructpt.io.tokens import HEADER, OFFSETS, TOKENS, encode_documents, token_dtype
from instructpt.pack.sources import CHAT_TEMPLATE_VERSION, SOURCE_TYPES, PackDoc, read_source
from instructpt.progress import Progress
from instructpt.records import Reject
from instructpt.special_tokens import SpecialTokenPolicy, policy_for
from instructpt.stages import RunInfo, ShardedOptions, ShardPlan, Summary, open_output, summarize

log = logging.getLogger(__name__)

HEADLINE = ("docs_in", "rejected", "docs_out", "tokens_out")


@dataclass
class PackConfig(ShardedOptions):
    """``instructpt pack``: a source -> token files with a document index."""

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "inputs": "Raw corpora (files, directories, globs, HF ids), or stage outputs for the other --source-type.",
        "format": "Format of the document index shards.",
    }

    tokenizer: str = option("", "Tokenizer of the model to train: HF hub id or local directory (required).")
    revision: str | None = option(None, "Tokenizer revision (branch, tag or commit) for hub ids.")
    trust_remote_code: bool = option(False, "Allow tokenizer repos to run their own code (off by default).")
    model_type: str | None = option(
        None, "Model family for the BOS/EOS policy (llama, mistral, qwen2, gpt2, ...) when the tokenizer's class "
        "does not tell it."
    )  # fmt: skip
    source_type: str = option(
        "raw", "What the inputs hold: raw | augmented | collection | chat.", choices=SOURCE_TYPES
    )
    text_field: str = option("text", "raw: field holding the document text.")
    id_field: str | None = option(
        None, "Field holding a document id (default: a stable id from file + line)."
    )
    split: str = option("train", "Split of an HF dataset input.")
    shard_size: int = option(10_000, "Documents per shard (the unit of resume and of parallel work).")
    workers: int = option(1, "Tokenizer processes (0 = one per CPU core); 1 tokenizes in this process.")
    max_doc_tokens: int | None = option(
        None, "Reject documents longer than this many tokens (none: keep all)."
    )
    seed: int = option(0, "collection: seed of the templates its rows are rendered with.")
    max_line_bytes: int = option(DEFAULT_MAX_LINE_BYTES, "Longer input lines are rejected as line_too_long.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tokenizer:
            raise ConfigError("--tokenizer is required (the tokenizer of the model the tokens are for)")
        if self.shard_size < 1 or self.workers < 0:
            raise ConfigError("--shard-size must be >= 1 and --workers >= 0")
        if self.max_doc_tokens is not None and self.max_doc_tokens < 1:
            raise ConfigError("--max-doc-tokens must be >= 1")

    @property
    def read_options(self) -> ReadOptions:
        return ReadOptions(
            self.text_field, self.id_field, self.split, self.max_line_bytes, exclude=(self.output,)
        )

    def fingerprint(self, tokenizer_hash: str, policy: SpecialTokenPolicy, dtype: str) -> dict[str, Any]:
        fp = {
            "inputs": self.inputs,
            "source_type": self.source_type,
            "tokenizer": {"name": self.tokenizer, "revision": self.revision, "hash": tokenizer_hash},
            "special_tokens": policy.to_dict(),
            "dtype": dtype,
            "text_field": self.text_field,
            "id_field": self.id_field,
            "split": self.split,
            "shard_size": self.shard_size,
            "max_doc_tokens": self.max_doc_tokens,
            "format": self.format,
        }
        if self.source_type == "collection":
            from instructpt.io.collection import COLLECTION_PARSER

            fp["collection_parser"] = COLLECTION_PARSER
            from instructpt.templates import inventory_fingerprint

            fp.update(seed=self.seed, inventory=inventory_fingerprint())
        elif self.source_type == "chat":
            fp["chat_template"] = CHAT_TEMPLATE_VERSION
        return fp


# ---- tokenizing, here or in worker processes ----
_TOKENIZER: Any = None


def _load(name: str, revision: str | None, trust_remote_code: bool) -> Any:
    from instructpt.engines.tokenizer import load_hf_tokenizer

    return load_hf_tokenizer(name, revision, trust_remote_code, error=ConfigError)


def _init_worker(name: str, revision: str | None, trust_remote_code: bool) -> None:
    from instructpt.runtime import worker_setup

    worker_setup()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process, one core: the pool is the parallelism
    global _TOKENIZER
    _TOKENIZER = _load(name, revision, trust_remote_code)


class TokenizeWorker:
    """pack --ray: the tokenizer in a Ray actor; encodes one shard's texts per call."""

    def __init__(self, name: str, revision: str | None, trust_remote_code: bool) -> None:
        _init_worker(name, revision, trust_remote_code)

    def __call__(self, index: int, texts: list[str]) -> tuple[int, list[list[int]]]:
        return index, encode_texts(texts)


def encode_texts(texts: list[str], tokenizer: Any = None) -> list[list[int]]:
    """Token ids of ``texts`` with no special tokens added (the policy adds them)."""
    tok = tokenizer or _TOKENIZER
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return list(tok(texts, add_special_tokens=False)["input_ids"])


@dataclass
class _Shard:
    index: int
    docs: list[PackDoc]
    rejects: list[Reject]
    n_in: int


class Packer:
    """Reads the source in shards, tokenizes them (in workers when asked) and writes each as it is done."""

    def __init__(self, config: PackConfig, tokenizer: Any, policy: SpecialTokenPolicy, dtype: str) -> None:
        self.config, self.tokenizer, self.policy, self.dtype = config, tokenizer, policy, dtype
        self.workers = config.workers or (os.cpu_count() or 1)
        total = (
            count_records(config.inputs, exclude=(config.output,)) if config.source_type == "raw" else None
        )
        self.progress = Progress("pack", total=total if config.progress else None, enabled=config.progress)

    def shards(self) -> Iterator[_Shard]:
        stream = read_source(
            self.config.source_type, self.config.inputs, self.config.read_options, self.config.seed
        )
        index = 0
        while chunk := list(islice(stream, self.config.shard_size)):
            docs = [d for d in chunk if isinstance(d, PackDoc)]
            yield _Shard(index, docs, [d for d in chunk if isinstance(d, Reject)], len(chunk))
            index += 1

    def start_pool(self) -> cf.ProcessPoolExecutor | None:
        """The worker processes, started and each holding the tokenizer (start-up is timed apart from the work);
        None when this process tokenizes."""
        if self.workers == 1:
            return None
        c = self.config
        ctx = multiprocessing.get_context("spawn")
        args = (c.tokenizer, c.revision, c.trust_remote_code)
        pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=args)
        try:
            list(pool.map(encode_texts, [["warm up"]] * self.workers))
        except cf.process.BrokenProcessPool as exc:
            pool.shutdown(cancel_futures=True)
            raise EngineError(f"the pack worker processes could not start: {exc}") from exc
        return pool

    def run(self, out: ShardedOutput, plan: ShardPlan, pool: cf.ProcessPoolExecutor | None) -> float:
        """Pack the shards ``plan`` owns; returns the seconds spent starting Ray actors (``--ray``), else 0."""
        todo = (s for s in self.shards() if plan.owns(s.index) and not self._done(out, s))
        if self.config.ray.enabled:
            return self._run_ray(out, todo)
        if pool is None:
            for shard in todo:
                self._write(out, shard, encode_texts([d.text for d in shard.docs], self.tokenizer))
        else:
            self._run_pool(out, todo, pool)
        self.progress.close()
        return 0.0

    def _run_ray(self, out: ShardedOutput, todo: Iterator[_Shard]) -> float:
        """--ray: Ray actors hold the tokenizer and encode each shard's texts; this process writes the shards (so
        a dead actor's shard is encoded again and written once)."""
        from instructpt.scale.ray import run_on_ray

        c, pending = self.config, dict[int, _Shard]()

        def tasks() -> Iterator[tuple[int, list[str]]]:
            for shard in todo:
                pending[shard.index] = shard
                yield shard.index, [d.text for d in shard.docs]

        def done(result: tuple[int, list[list[int]]]) -> None:
            self._write(out, pending.pop(result[0]), result[1])

        startup = run_on_ray(
            c.ray, TokenizeWorker, (c.tokenizer, c.revision, c.trust_remote_code), tasks(), done
        )
        self.progress.close()
        return startup

    def _done(self, out: ShardedOutput, shard: _Shard) -> bool:
        if out.is_done(shard.index):
            self.progress.skip(shard.n_in)
            return True
        return False

    def _run_pool(self, out: ShardedOutput, todo: Iterator[_Shard], pool: cf.ProcessPoolExecutor) -> None:
        workers = self.workers
        pending: dict[cf.Future, _Shard] = {}
        try:
            for shard in todo:
                pending[pool.submit(encode_texts, [d.text for d in shard.docs])] = shard
                while len(pending) >= 2 * workers:  # bounded: memory flat in the corpus size
                    self._collect(out, pending, cf.FIRST_COMPLETED)
            while pending:
                self._collect(out, pending, cf.FIRST_COMPLETED)
        except cf.process.BrokenProcessPool as exc:
            raise EngineError(
                "a pack worker process died; finished shards are kept, re-run to resume"
            ) from exc
        finally:
            for fut in pending:
                fut.cancel()

    def _collect(self, out: ShardedOutput, pending: dict[cf.Future, _Shard], how: str) -> None:
        done, _ = cf.wait(pending, return_when=how)
        for fut in done:
            self._write(out, pending.pop(fut), fut.result())

    def _write(self, out: ShardedOutput, shard: _Shard, encoded: list[list[int]]) -> None:
        stats, rejects, kept, rows = Stats(), list(shard.rejects), [], []
        limit, offset = self.config.max_doc_tokens, 0
        for doc, ids in zip(shard.docs, encoded):
            if not ids:
                rejects.append(Reject(doc.id, doc.source, "empty_after_tokenization", "", "pack", doc.text))
                continue
            ids = self.policy.wrap(ids)
            if limit is not None and len(ids) > limit:
                rejects.append(
                    Reject(doc.id, doc.source, "too_many_tokens", f"{len(ids)} > {limit}", "pack", doc.text)
                )
                continue
            kept.append(ids)
            rows.append(_index_row(doc, offset, len(ids)))
            offset += len(ids)
            stats.count("tokens_per_doc", 1 << (len(ids) - 1).bit_length())
        tokens, offsets = encode_documents(kept, self.dtype)
        stats.add("docs_in", shard.n_in)
        stats.add("docs_out", len(kept))
        stats.add("tokens_out", offset)
        marker = f"tokens-sha256 {hashlib.sha256(tokens).hexdigest()}"
        out.write_shard(
            shard.index, rows, rejects, stats, marker=marker, files={TOKENS: tokens, OFFSETS: offsets}
        )
        self.progress.update(docs=shard.n_in, tokens=offset)


def _index_row(doc: PackDoc, offset: int, length: int) -> dict[str, Any]:
    row: dict[str, Any] = {"id": doc.id, "source": doc.source, "lineage": doc.lineage, "offset": offset}
    row["length"] = length
    if doc.n_pairs is not None:
        row["n_pairs"] = doc.n_pairs
    return row


def _input_state(config: PackConfig) -> dict[str, Any]:
    if config.source_type != "augmented":
        return input_files(config.inputs, (config.output,))
    shards = stage_shards(config.inputs, reader="pack --source-type augmented", producer="templify")
    return {str(sh.path): _file_state(sh.path) for sh in shards}


def pack(config: PackConfig, plan: ShardPlan | None = None) -> Summary:
    """Run the stage (the shards ``plan`` owns; all by default); returns the summary also in ``OUT/stats.json``."""
    from instructpt.engines.tokenizer import tokenizer_hash

    inputs = _input_state(config)
    t0 = time.monotonic()
    tokenizer = _load(config.tokenizer, config.revision, config.trust_remote_code)
    policy, dtype = policy_for(tokenizer, config.model_type), token_dtype(len(tokenizer))
    fp = config.fingerprint(tokenizer_hash(tokenizer), policy, dtype)
    plan = plan or config.shard_plan()
    out = open_output(config, "pack", fp, plan, inputs=inputs)
    packer = Packer(config, tokenizer, policy, dtype)
    pool = packer.start_pool() if not config.ray.enabled else None
    t1 = t2 = time.monotonic()
    ray_startup = 0.0
    try:
        ray_startup = packer.run(out, plan, pool)
        t2 = time.monotonic()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    work, startup = t2 - t1 - ray_startup, t1 - t0 + ray_startup
    run = RunInfo("docs", packer.progress.docs, work, startup, time.monotonic() - t2)
    run.shards_resumed = len(out.completed_shards()) - out.written
    summary = summarize(out, run, HEADLINE, plan=plan)
    out.write_file(HEADER, _header(fp, len(tokenizer), summary))
    return summary


def _header(fp: dict[str, Any], vocab_size: int, summary: Summary) -> bytes:
    """``pack.json``: what a reader needs to open the token files, and what they hold."""
    from instructpt.io.rundir import json_bytes

    keys = ("source_type", "tokenizer", "special_tokens", "dtype")
    counts = {k: summary.counts.get(k, 0) for k in ("docs_out", "tokens_out", "rejected", "shards")}
    return json_bytes(
        {**{k: fp[k] for k in keys}, "vocab_size": vocab_size, "format": "instructpt-pack-v1", **counts}
    )


main = pack
Config = PackConfig
