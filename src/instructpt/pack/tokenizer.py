"""A tokenizer trained on a small corpus, for runs with no tokenizer of their own (the demo, the micro experiment)."""

from __future__ import annotations

import json
from pathlib import Path


def train_tokenizer(corpus: Path, out: Path, vocab_size: int) -> str:
    """A byte-level BPE with ``<s>``, ``</s>``, ``<pad>``, trained on the texts of the ``*.jsonl`` files in ``corpus``
    (offline, ~1 s for a small corpus; every text is held in memory); kept in ``out`` and reused on a re-run."""
    if (out / "tokenizer.json").exists():
        return str(out)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [
        json.loads(line)["text"] for f in sorted(corpus.glob("*.jsonl")) for line in f.open(encoding="utf-8")
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out)
    return str(out)
