"""Loading the synthesizer's tokenizer and wrapping it as the exact codec every engine shares.

The one tokenization convention of the project (SPEC §3): text is encoded with ``add_special_tokens=False`` so the
literal ``<s>`` written by the wire format is the only BOS, and decoding keeps special tokens as text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from instructpt.engines.base import EngineConfig, EngineError
from instructpt.synthesizer.format import BOS, EOS

log = logging.getLogger(__name__)


class HFCodec:
    """A ``transformers`` tokenizer behind the small :class:`~instructpt.engines.base.TextCodec` protocol."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id: int | None = tokenizer.eos_token_id
        self.bos_token_id: int | None = tokenizer.bos_token_id

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and hasattr(backend, "encode_batch_fast"):  # same ids, ~1.25x faster
            return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=False)]
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

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
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError("the tokenizer needs transformers: pip install 'instructpt[hf]'") from exc
    name = config.tokenizer or config.model
    try:
        return AutoTokenizer.from_pretrained(
            name, revision=config.revision, trust_remote_code=config.trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001 - many loader errors; all mean the same to the user
        raise EngineError(f"cannot load tokenizer {name!r}: {exc}") from exc


def load_codec(config: EngineConfig) -> HFCodec:
    codec = HFCodec(load_tokenizer(config))
    codec.check_wire_tokens()
    return codec
