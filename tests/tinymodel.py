"""Builds a tiny instruction synthesizer for tests: a byte-level BPE tokenizer and a 2-layer Mistral.

Nothing is downloaded. The tokenizer is trained on Python's own documentation text plus generated wire-format
examples; the model is trained for a short while on CPU with loss on the pair tokens only (SPEC §6), until greedy
decoding writes well-formed ``<QUE> ... <ANS> ... </END>`` pairs and stops at ``</s>``. It is trained by
``instructpt train-synthesizer``'s own code (few-shot packing, pair-only loss, the shared training loop). Its answers are not
meant to be right — tests check the pipeline, not the model's knowledge.

Build once per test session (``build_tiny_synthesizer(dir)``); the result is cached under ``.cache/`` keyed by a
hash of this file and the training code, so repeated local runs skip training (CI starts clean).
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from pathlib import Path

from instructpt.records import QAPair
from instructpt.wire import serialize_example

NOUNS = [
    "river",
    "doctor",
    "engine",
    "garden",
    "market",
    "teacher",
    "planet",
    "bridge",
    "farmer",
    "cell",
    "library",
    "signal",
    "harbor",
    "patient",
    "crystal",
    "village",
    "sensor",
    "forest",
    "bank",
    "queen",
]
VERBS = ["moves", "holds", "builds", "feeds", "measures", "protects", "opens", "follows", "heats", "carries"]
ADJS = ["small", "bright", "old", "quiet", "rapid", "green", "heavy", "careful", "distant", "warm"]


def _sentence(rng: random.Random) -> tuple[str, str, str, str]:
    a, n1, v, n2 = rng.choice(ADJS), rng.choice(NOUNS), rng.choice(VERBS), rng.choice(NOUNS)
    return f"The {a} {n1} {v} the {n2}.", n1, v, n2


def make_example(rng: random.Random, n_sentences: int | None = None) -> tuple[str, list[QAPair]]:
    """A generated context and 1-2 pairs grounded in it (mostly one, so greedy output stops cleanly)."""
    n = n_sentences or rng.randint(2, 5)
    sents = [_sentence(rng) for _ in range(n)]
    context = " ".join(s[0] for s in sents)
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for _, n1, v, n2 in rng.sample(sents, k=min(len(sents), 1 if rng.random() < 0.65 else 2)):
        q = (
            f"What {v.removesuffix('s')}s the {n1}?"
            if rng.random() < 0.5
            else f"Which thing does the {n1} {v[:-1]}?"
        )
        if q.casefold() in seen:
            continue
        seen.add(q.casefold())
        pairs.append(QAPair(q, f"The {n2}."))
    return context, pairs


def _corpus_text() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics.values())


def train_tokenizer(out_dir: Path, rng: random.Random):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    wire = [serialize_example(*make_example(rng)) for _ in range(2000)]
    tok.train_from_iterator([_corpus_text(), *wire], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )
    fast.save_pretrained(out_dir)
    return fast


def train_llama_layout_tokenizer(out_dir: Path, texts: list[str], vocab_size: int = 2000):
    """A BPE in the layout of the Mistral-7B / Llama-2 ``tokenizer.json`` (the released synthesizer is a Mistral
    fine-tune): normalizer ``Prepend("▁")`` + ``Replace(" ", "▁")``, no pre-tokenizer, byte fallback, ids
    ``<unk>``, ``<s>``, ``</s>`` = 0-2 then the 256 byte tokens. Merges are learned with a Metaspace split
    (training on unsplit texts is impractical); encoding uses the unsplit layout. As in those vocabularies, a
    newline has no piece of its own: it is always the byte token ``<0x0A>``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens], show_progress=False
    )
    tok.train_from_iterator([t.replace("\n", " ") for t in texts], trainer=trainer)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(out_dir)
    return fast


def train_model(out_dir: Path, tokenizer, rng: random.Random, steps: int = 300) -> None:
    """A randomly initialised tiny Mistral fine-tuned by ``instructpt train-synthesizer``'s own code on generated
    examples (few-shot packed, loss on the pairs only), exported into ``out_dir``."""
    import json

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from instructpt.train_synthesizer.run import SynthTrainOptions, TrainSynthesizerConfig, train_synthesizer

    work = Path(tempfile.mkdtemp(prefix="tiny-synth-train."))
    try:
        torch.manual_seed(0)
        config = MistralConfig(
            vocab_size=len(tokenizer),
            hidden_size=96,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=24,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,
            sliding_window=None,
        )
        MistralForCausalLM(config).save_pretrained(work / "init", safe_serialization=True)
        tokenizer.save_pretrained(work / "init")
        rows = []
        for i in range(4000):
            context, pairs = make_example(rng)
            rows.append({"id": f"tiny-{i}", "source": "tiny", "context": context,
                         "QA_list": [{"Q": p.question, "A": p.answer} for p in pairs]})  # fmt: skip
        data = work / "examples.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        train = SynthTrainOptions(max_steps=steps, batch_size=16, seq_len=160, lr=3e-3, warmup_steps=30,
                                  checkpoint_every=steps, log_every=100)  # fmt: skip
        train_synthesizer(TrainSynthesizerConfig(inputs=[str(data)], output=str(work / "run"), init=str(work / "init"),
                                                 heldout_fraction=0.0, eval_examples=0, progress=False, train=train))  # fmt: skip
        for f in (work / "run" / "model").iterdir():
            shutil.copy2(f, out_dir / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# the training code the tiny model depends on: a change to any of it trains a new one
_SOURCES = ("tests/tinymodel.py", "src/instructpt/wire.py", "src/instructpt/io/collection.py",
            "src/instructpt/train/loop.py", "src/instructpt/train/model.py", "src/instructpt/train/distributed.py",
            "src/instructpt/train/checkpoint.py", "src/instructpt/train_synthesizer/sequences.py",
            "src/instructpt/train_synthesizer/data.py", "src/instructpt/train_synthesizer/model.py",
            "src/instructpt/train_synthesizer/run.py")  # fmt: skip


def _fingerprint() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _complete(cache: Path) -> bool:
    return all((cache / f).exists() for f in _FILES)


def build_tiny_synthesizer(out_dir: Path, cache_root: Path | None = None) -> Path:
    """Train (or copy from cache) the tiny synthesizer into ``out_dir``; returns ``out_dir``.

    Safe with concurrent builders: each trains into its own temporary directory and the first rename wins.
    """
    cache = (cache_root or Path(__file__).resolve().parents[1] / ".cache") / f"tiny-synth-{_fingerprint()}"
    if not _complete(cache):
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
        rng = random.Random(1234)
        tokenizer = train_tokenizer(tmp, rng)
        train_model(tmp, tokenizer, rng)
        if cache.exists() and not _complete(cache):
            shutil.rmtree(cache, ignore_errors=True)  # left by an interrupted build
        try:
            tmp.rename(cache)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(cache, out_dir)
    return out_dir
