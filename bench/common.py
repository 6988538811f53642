"""Helpers shared by bench_synthesize.py and bench_chains.py (not a benchmark itself).

- ``pin_one_core``: one CPU core, single-threaded tokenizers (call before ``tokenizers`` is first used);
- ``abstract_text``: generated PubMed-abstract-like English text from word lists (no downloads);
- ``train_bpe_tokenizer``: a byte-level BPE trained with ``tokenizers`` on generated text, Python's
  ``pydoc_data`` topics and the standard library's source (the topics alone saturate at ~9k merges);
  ``train_llama_layout_tokenizer``: the same text, in the released synthesizer's (Mistral) layout;
- ``import_test_doubles``: puts the repository root on ``sys.path`` so ``tests.doubles``/``tests.tinymodel``
  import when a script is run as ``python bench/NAME.py``;
- small timing, GC and printing helpers.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")

_NOUNS_TEXT = (
    "patients cohort trial mortality outcome baseline dose placebo efficacy cells expression protein receptor "
    "pathway inhibitor tumor survival analysis treatment therapy risk association levels serum plasma kidney "
    "liver insulin glucose mice model infection antibody response vaccine study results hospital admission "
    "disease diagnosis screening sensitivity specificity biomarker mutation genotype phenotype cytokine "
    "inflammation lesion surgery recurrence incidence prevalence adherence rehabilitation questionnaire "
    "participants children adults women men volunteers clinicians guideline regimen toxicity tolerance "
    "metabolism enzyme membrane mitochondria neuron synapse cortex hippocampus artery pressure fibrosis"
)
_VERBS_TEXT = (
    "increased reduced improved predicted modulated attenuated enhanced inhibited regulated induced "
    "correlated prevented accelerated impaired restored suppressed stimulated affected"
)
_ADJS_TEXT = (
    "chronic acute significant randomized prospective retrospective systemic severe mild moderate novel "
    "primary secondary clinical cellular molecular adverse elevated impaired cardiovascular renal hepatic"
)
_NOUNS, _VERBS, _ADJS = _NOUNS_TEXT.split(), _VERBS_TEXT.split(), _ADJS_TEXT.split()
_LINKS = ("in", "among", "after", "during", "with", "without", "compared with", "in response to", "versus")
_SECTIONS = ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS")


def pin_one_core() -> set[int]:
    """Pin this process to one core and keep the Rust tokenizers single-threaded; returns the core set."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    first = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {first})
    return os.sched_getaffinity(0)


def import_test_doubles() -> None:
    """Make ``tests.doubles`` and ``tests.tinymodel`` importable from a script in bench/."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _clause(rng: random.Random) -> str:
    subject = f"{rng.choice(_ADJS)} {rng.choice(_NOUNS)}"
    obj = f"{rng.choice(_NOUNS)} {rng.choice(_LINKS)} {rng.choice(_ADJS)} {rng.choice(_NOUNS)}"
    return f"{subject} {rng.choice(_VERBS)} {obj}"


def _statistic(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"(n = {rng.randint(12, 4800)})"
    if kind == 1:
        lo = rng.uniform(0.2, 2.0)
        return f"(OR {lo + 0.4:.2f}, 95% CI {lo:.2f}-{lo + 0.9:.2f})"
    return f"(p < 0.{rng.choice(['05', '01', '001'])})"


def sentence(rng: random.Random) -> str:
    """One abstract-like sentence of ~12-30 words, sometimes with a statistic."""
    parts = [_clause(rng) for _ in range(rng.randint(1, 3))]
    text = ", and ".join(parts)
    if rng.random() < 0.35:
        text += " " + _statistic(rng)
    return text[0].upper() + text[1:] + "."


def abstract_text(rng: random.Random, n_words: int) -> str:
    """A structured abstract of about ``n_words`` words (section headings, sentences, statistics)."""
    out: list[str] = []
    words = 0
    section = 0
    while words < n_words:
        if section < len(_SECTIONS) and words >= section * n_words // len(_SECTIONS):
            out.append(f"{_SECTIONS[section]}:")
            section += 1
        s = sentence(rng)
        out.append(s)
        words += s.count(" ") + 1
    return " ".join(out)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _tokenizer_training_text(rng: random.Random, n_generated: int) -> list[str]:
    from pydoc_data.topics import topics

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = [p.read_text(encoding="utf-8", errors="ignore") for p in sorted(stdlib.glob("*.py"))]
    generated = [abstract_text(rng, 250) for _ in range(n_generated)]
    return ["\n".join(topics.values()), *sources, *generated]


def train_bpe_tokenizer(out_dir: Path, rng: random.Random, vocab_size: int = 32_000) -> Any:
    """A byte-level BPE with ``<pad>``, ``<s>``, ``</s>`` (ids 0-2), saved to ``out_dir`` and reloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tokenizer_training_text(rng, 2000), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )
    fast.save_pretrained(out_dir)
    return PreTrainedTokenizerFast.from_pretrained(out_dir)


def train_llama_layout_tokenizer(out_dir: Path, rng: random.Random, vocab_size: int = 32_000) -> Any:
    """A BPE in the Mistral/Llama-2 ``tokenizer.json`` layout (tests/tinymodel.py), saved to ``out_dir`` and
    reloaded through the project's loader."""
    import_test_doubles()
    from tests.tinymodel import train_llama_layout_tokenizer as train

    from instructpt.engines.config import EngineConfig
    from instructpt.engines.tokenizer import load_tokenizer

    train(out_dir, _tokenizer_training_text(rng, 2000), vocab_size)
    return load_tokenizer(EngineConfig(tokenizer=str(out_dir)))


TOKENIZERS = {"byte-level": train_bpe_tokenizer, "llama-layout": train_llama_layout_tokenizer}


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall seconds and this process's CPU seconds (the latter is robust to a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def rate_line(
    label: str, n: int, wall: float, cpu: float, baseline: float | None, target: float | None
) -> str:
    """``label``, docs/s by wall and by CPU time, and the CPU-time rate as ratios to a baseline and a target."""
    rate = n / cpu if cpu > 0 else float("inf")
    line = f"  {label:<46} wall {n / wall:>9,.0f}/s  cpu {rate:>9,.0f}/s ({cpu:6.2f} s)"
    if baseline:
        line += f"  x{rate / baseline:5.2f} baseline"
    if target:
        line += f"  x{rate / target:5.2f} target"
    return line


@contextmanager
def gc_threshold(first: int | None) -> Iterator[None]:
    """Collect generation 0 only every ``first`` net allocations (None: leave the default) during one run."""
    saved = gc.get_threshold()
    if first is not None:
        gc.set_threshold(first, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
