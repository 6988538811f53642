"""The one table of the project that says which special tokens a model family expects around a document.

Pack adds them to every document it tokenizes, pretrain and export record them with the model, evaluate adds BOS
to prompts when the policy says so. A family is found from the model's ``model_type`` when it is known (a config),
else from the tokenizer's class; a tokenizer of no known family gets BOS when it has a BOS token distinct from its
EOS token, and EOS when it has one.

| family                              | BOS | EOS | why                                                         |
|-------------------------------------|-----|-----|-------------------------------------------------------------|
| llama, mistral, mixtral, gemma(2/3) | yes | yes | trained with ``<s>``/``<bos>`` first (SPEC §8: BOS is added) |
| qwen2, qwen3                        | no  | yes | no BOS token in training; documents end with ``<|endoftext|>`` |
| gpt2, gpt_neox, olmo, olmo2         | no  | yes | one ``<|endoftext|>`` between documents                      |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# family -> (add BOS, add EOS)
FAMILIES: dict[str, tuple[bool, bool]] = {
    "llama": (True, True),
    "mistral": (True, True),
    "mixtral": (True, True),
    "gemma": (True, True),
    "gemma2": (True, True),
    "gemma3": (True, True),
    "qwen2": (False, True),
    "qwen3": (False, True),
    "gpt2": (False, True),
    "gpt_neox": (False, True),
    "olmo": (False, True),
    "olmo2": (False, True),
}

# tokenizer class name (without "Fast") -> family, for tokenizers that come without a model config
TOKENIZER_CLASSES: dict[str, str] = {
    "LlamaTokenizer": "llama",
    "CodeLlamaTokenizer": "llama",
    "GemmaTokenizer": "gemma",
    "Qwen2Tokenizer": "qwen2",
    "GPT2Tokenizer": "gpt2",
    "GPTNeoXTokenizer": "gpt_neox",
}


@dataclass(frozen=True)
class SpecialTokenPolicy:
    """Which special tokens go around every document, with their ids, and where the rule came from."""

    family: str
    add_bos: bool
    add_eos: bool
    bos_token_id: int | None
    eos_token_id: int | None

    def wrap(self, ids: list[int]) -> list[int]:
        """A document's ids with the policy's BOS and EOS around them."""
        head = [self.bos_token_id] if self.add_bos and self.bos_token_id is not None else []
        tail = [self.eos_token_id] if self.add_eos and self.eos_token_id is not None else []
        return head + ids + tail if head or tail else ids

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def family_of(tokenizer: Any, model_type: str | None = None) -> str:
    """The family of a model: its ``model_type`` when known, else the tokenizer's class, else ``generic``."""
    if model_type and model_type in FAMILIES:
        return model_type
    name = type(tokenizer).__name__.removesuffix("Fast")
    return TOKENIZER_CLASSES.get(name, "generic")


def policy_for(tokenizer: Any, model_type: str | None = None) -> SpecialTokenPolicy:
    """The policy for a model with this tokenizer (and ``model_type``, when its config is known)."""
    family = family_of(tokenizer, model_type)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos, add_eos = FAMILIES.get(family, (bos is not None and bos != eos, eos is not None))
    return SpecialTokenPolicy(family, add_bos and bos is not None, add_eos and eos is not None, bos, eos)
