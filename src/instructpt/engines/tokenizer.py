"""Loading the synthesizer's tokenizer and wrapping it as the exact codec every engine shares.

The one tokenization convention of the project (SPEC §3): text is encoded with ``add_special_tokens=False`` so the
literal ``<s>`` written by the wire format is the only BOS, and decoding keeps special tokens as text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructpt.engines.config import EngineConfig
from instructpt.engines.fast_encode import SegmentEncoder
from instructpt.engines.hub import looks_like_path
from instructpt.errors import EngineError
from instructpt.io.hf import hub_offline, offline_hint
from instructpt.wire import BOS, EOS

log = logging.getLogger(__name__)


CHECK_FIRST = 64  # texts whose cached-segment ids are compared with the tokenizer's own, before sampling
CHECK_EVERY = 1024  # then one text in this many


class HFCodec:
    """A ``transformers`` tokenizer behind the small :class:`~instructpt.engines.base.TextCodec` protocol.

    For a tokenizer in the Llama/Mistral layout, texts are encoded through
    :class:`~instructpt.engines.fast_encode.SegmentEncoder` (the same ids, cached per word); its ids are compared
    with the tokenizer's own for the first ``CHECK_FIRST`` texts and one in ``CHECK_EVERY`` after that, and a
    difference switches it off for good (logged). ``fast=False`` always uses the tokenizer."""

    def __init__(self, tokenizer: Any, fast: bool = True) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id: int | None = tokenizer.eos_token_id
        self.bos_token_id: int | None = tokenizer.bos_token_id
        self.fast: SegmentEncoder | None = None
        self.fast_checks = 0  # texts compared, and how many differed (0 unless a layout check is wrong)
        self.fast_mismatches = 0
        self._fast_encoded = 0
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if fast and backend is not None:
            self.fast, why = SegmentEncoder.build(backend)
            if self.fast is None:
                log.debug("cached segment encoding not used: %s", why)

    def encode(self, text: str) -> list[int]:
        return self._encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        if self.fast is not None:
            return [self._encode(t) for t in texts]
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and hasattr(backend, "encode_batch_fast"):  # same ids, ~1.25x faster
            return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=False)]
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _encode(self, text: str) -> list[int]:
        """Through the segment cache while it is on (checking a sample), else through the tokenizer."""
        fast = self.fast  # read once: another thread may switch it off meanwhile
        if fast is None:
            return self.tokenizer.encode(text, add_special_tokens=False)
        ids = fast.encode(text)
        n = self._fast_encoded
        self._fast_encoded = n + 1
        if n < CHECK_FIRST or n % CHECK_EVERY == 0:
            self.fast_checks += 1
            want = self.tokenizer.encode(text, add_special_tokens=False)
            if ids != want:
                self.fast_mismatches += 1
                self.fast = None
                log.error(
                    "cached segment encoding gave other ids than the tokenizer for %r; using the tokenizer from"
                    " now on (please report this tokenizer)",
                    text[:80],
                )  # fmt: skip
                return want
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def check_wire_tokens(self) -> None:
        """Warn when ``<s>``/``</s>`` do not map to the BOS/EOS ids (the model would see different tokens)."""
        for literal, want in ((BOS, self.bos_token_id), (EOS, self.eos_token_id)):
            got = self.encode(literal)
            if want is not None and got != [want]:
                log.warning("tokenizer encodes %r as %s, not as the special id %s", literal, got, want)


def load_tokenizer(config: EngineConfig) -> Any:
    """The HF tokenizer of ``--tokenizer`` (or ``--model``), local directory or hub id."""
    return load_hf_tokenizer(config.tokenizer or config.model, config.revision, config.trust_remote_code)


def load_hf_tokenizer(
    name: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    error: type[Exception] = EngineError,
) -> Any:
    """An HF tokenizer by hub id or local directory, with the pre-tokenization its ``tokenizer.json`` was written
    with (see :func:`_restore_file_pretokenization`); loading problems raise ``error`` with the reason."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise error("the tokenizer needs transformers: pip install 'instructpt[hf]'") from exc
    if looks_like_path(name) and not Path(name).expanduser().exists():
        raise error(f"model directory {name!r} does not exist (a hub id is written org/name)")
    if hub_offline() and not Path(name).expanduser().exists() and not _in_hub_cache(name, revision):
        raise error(f"cannot load tokenizer: {offline_hint(name)}")  # at once, not after retries
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001 - many loader errors; all mean the same to the user
        raise error(f"cannot load tokenizer {name!r}: {' '.join(str(exc).split())}") from exc
    _restore_file_pretokenization(tokenizer, name, revision)
    return tokenizer


def _in_hub_cache(name: str, revision: str | None) -> bool:
    """Whether the local Hugging Face cache holds a tokenizer or model file of hub id ``name``."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers brings huggingface_hub
        return True  # cannot tell: let the loader say
    for filename in ("tokenizer_config.json", "tokenizer.json", "config.json"):
        try:
            if isinstance(try_to_load_from_cache(name, filename, revision=revision), str):
                return True
        except Exception:  # noqa: BLE001 - a malformed id: the loader says what is wrong with it
            return True
    return False


def tokenizer_hash(tokenizer: Any) -> str:
    """A hash of what decides a tokenizer's ids: its serialized model and pipeline, and its special tokens."""
    import hashlib

    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    special = json.dumps(
        {"special": [str(t) for t in tokenizer.all_special_tokens], "bos": tokenizer.bos_token_id,
         "eos": tokenizer.eos_token_id}, sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256((body + special).encode("utf-8")).hexdigest()[:16]


LLAMA_CLASSES = ("LlamaTokenizer", "LlamaTokenizerFast")  # what Llama-2 and Mistral-7B configs name


def _restore_file_pretokenization(tokenizer: Any, name: str, revision: str | None) -> bool:
    """Give a Llama-class tokenizer the normalizer and pre-tokenizer of its ``tokenizer.json`` when transformers
    built it with others (returns whether it did).

    transformers 5 rebuilds these tokenizers from vocabulary and merges with a ``Metaspace`` pre-tokenizer, where
    the ``tokenizer.json`` of Mistral-7B (and of the synthesizer fine-tuned from it) has a normalizer that
    prepends ``▁`` to every text between special tokens, even one that starts with a space. The Metaspace schemes
    do not (``always``: only when the text does not start with a space; ``first``: only at the very start), so
    ``<s> <CON>`` starts with other tokens than the model was trained with: transformers 4 used the file's fast
    tokenizer as written unless ``add_prefix_space`` was set. Only those two parts are replaced, in place; the
    special tokens and everything else the class set up stay. Other classes are left alone: transformers adjusts
    them from their configs on purpose (``add_prefix_space``, ``do_lower_case``)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(tokenizer).__name__ not in LLAMA_CLASSES:
        return False
    if getattr(tokenizer, "init_kwargs", {}).get("add_prefix_space") is not None:
        return False  # set on purpose: transformers 4 rebuilt the tokenizer too
    try:
        from tokenizers import Tokenizer
        from transformers.utils import cached_file

        path = cached_file(
            name, "tokenizer.json", revision=revision, _raise_exceptions_for_missing_entries=False
        )
        if not path:
            return False
        as_written = Tokenizer.from_file(path)
    except Exception:  # noqa: BLE001 - no readable file to compare with: keep what transformers built
        return False
    if _pretokenization(as_written) == _pretokenization(backend):
        return False
    backend.normalizer = as_written.normalizer
    backend.pre_tokenizer = as_written.pre_tokenizer
    import transformers

    log.warning(
        "transformers %s builds the %s tokenizer of %r with another pre-tokenization than its tokenizer.json;"
        " using the file's (the ids the model was trained with)",
        transformers.__version__, type(tokenizer).__name__, name,
    )  # fmt: skip
    return True


def _pretokenization(tokenizer: Any) -> tuple[Any, Any]:
    spec = json.loads(tokenizer.to_str())  # re-serialized: older files spell options differently
    return spec.get("normalizer"), spec.get("pre_tokenizer")


def load_codec(config: EngineConfig) -> HFCodec:
    codec = HFCodec(load_tokenizer(config))
    codec.check_wire_tokens()
    return codec
