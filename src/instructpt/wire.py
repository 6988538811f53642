"""The synthesizer's wire format (SPEC §3): serialize examples, build prompts, parse generations.

Pure functions, byte-exact with the released ``instruction-pretrain/instruction-synthesizer``::

    <s> <CON> {context} </CON>\\n\\n<QUE> {q1} <ANS> {a1} </END>\\n\\n<QUE> {q2} <ANS> {a2} </END></s>

Few-shot examples are concatenated with nothing in between. A prompt for a new text ends with the context block
``<s> <CON> {text} </CON>\\n\\n``; the model continues with pairs and stops at EOS.

Tokenization convention (used by synthesis and synthesizer training alike, :func:`encode_example`): text is
encoded with ``add_special_tokens=False`` so the literal ``<s>`` is the only BOS. A prompt ends with a context block,
so an example's ids are the context block's own ids followed by the target (pairs and ``</s>``) as it is encoded
after the block in one text. In the Mistral/Llama ``tokenizer.json`` layout (the released synthesizer's) that is
exactly the encoding of the whole example at once — what the reference script and text-prompt servers produce;
encoding the pairs on their own would differ, as the layout prepends ``▁`` to every text it encodes
(``\\n\\n<QUE>`` would become ``\\n\\n▁<QUE>``). Where the block's own ids are not a prefix of that (byte-level
BPEs encode a trailing ``\\n\\n`` as one token but ``\\n\\n<`` as ``\\n``, ``\\n``, ``<``), the target is encoded on
its own, so a prompt is always a token prefix of the examples the model was trained on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from instructpt.records import QAPair

BOS = "<s>"
EOS = "</s>"
CON_OPEN, CON_CLOSE = "<CON>", "</CON>"
QUE, ANS, END = "<QUE>", "<ANS>", "</END>"
PAIR_SEP = "\n\n"
FORMAT_VERSION = "instruction-synthesizer-v1"
MARKERS = (BOS, EOS, CON_OPEN, CON_CLOSE, QUE, ANS, END)

Example = tuple[str, Sequence[QAPair]]


def context_block(context: str) -> str:
    """The opening of an example: what a prompt ends with for the text being synthesized."""
    return f"{BOS} {CON_OPEN} {context} {CON_CLOSE}{PAIR_SEP}"


def serialize_pairs(pairs: Sequence[QAPair]) -> str:
    """The pairs as the model writes them (without the closing ``</s>``)."""
    return PAIR_SEP.join(f"{QUE} {p.question} {ANS} {p.answer} {END}" for p in pairs)


def serialize_example(context: str, pairs: Sequence[QAPair]) -> str:
    """A whole example: context block, pairs, ``</s>``."""
    return context_block(context) + serialize_pairs(pairs) + EOS


def encode_example(
    encode: Callable[[str], list[int]], context: str, body: str, ctx_ids: Sequence[int] | None = None
) -> tuple[list[int], list[int]]:
    """The ids of an example: its context block (what a prompt ends with) and its target (``body`` + ``</s>``).

    ``body`` is the pairs' text (:func:`serialize_pairs`, or a generation). ``ctx_ids`` passes the block's ids when
    they are known already. Training puts the loss on the target; synthesis appends it after the prompt.
    """
    block = context_block(context)
    ctx = list(ctx_ids) if ctx_ids is not None else encode(block)
    whole = encode(block + body)
    target = whole[len(ctx) :] if whole[: len(ctx)] == ctx else encode(body)
    return ctx, target + encode(EOS)


def question_body(question: str) -> str:
    """What follows a context block when the synthesizer is asked to answer ``question`` (``<QUE> q <ANS>``)."""
    return f"{QUE} {question} {ANS}"


def prompt_ids(encode: Callable[[str], list[int]], context: str, body: str = "") -> list[int]:
    """The ids of the context block followed by ``body``, encoded as :func:`encode_example` encodes examples (so
    without the closing ``</s>``): a prompt the model continues."""
    ctx, target = encode_example(encode, context, body)
    return ctx + target[: len(target) - len(encode(EOS))]


def answer_of(generation: str) -> str:
    """The answer a synthesizer wrote after a :func:`question_body` prompt: its text up to the first ``</END>``."""
    return generation.split(END)[0].strip()


def build_prompt(history: Sequence[Example], context: str) -> str:
    """The prompt for ``context`` after earlier examples (each with at least one pair)."""
    return "".join(serialize_example(c, p) for c, p in history) + context_block(context)


@dataclass
class ParseResult:
    """Pairs parsed from a generation, and every dropped piece counted by reason."""

    pairs: list[QAPair]
    drops: Counter = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return not self.drops


def parse_generation(text: str) -> ParseResult:
    """Parse a synthesizer continuation into pairs.

    Rules (SPEC §3): split on ``</END>``; a last piece not closed by ``</END>`` is unfinished and dropped; each
    piece needs exactly one ``<ANS>``, a question part starting with ``<QUE>``, a non-empty question and answer;
    questions are de-duplicated case-insensitively (first kept). Unlike the reference, every drop is counted.
    """
    if text.endswith(EOS):
        text = text[: -len(EOS)]
    pieces = text.split(END)
    last = pieces.pop()  # text after the final </END>: empty when the generation finished cleanly
    drops: Counter = Counter()
    if last.strip():
        drops["unfinished_pair"] += 1
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for piece in pieces:
        reason, pair = _parse_piece(piece)
        if pair is None:
            drops[reason] += 1
            continue
        key = pair.question.casefold()
        if key in seen:
            drops["duplicate_question"] += 1
            continue
        seen.add(key)
        pairs.append(pair)
    return ParseResult(pairs, drops)


def _parse_piece(piece: str) -> tuple[str, QAPair | None]:
    piece = piece.strip()
    if not piece:
        return "empty_piece", None
    n_ans = piece.count(ANS)
    if n_ans == 0:
        return "missing_answer_marker", None
    if n_ans > 1:
        return "multiple_answer_markers", None
    q_part, a_part = piece.split(ANS)
    q_part = q_part.strip()
    if not q_part.startswith(QUE):
        return "missing_question_marker", None
    question, answer = q_part[len(QUE) :].strip(), a_part.strip()
    if not question:
        return "empty_question", None
    if not answer:
        return "empty_answer", None
    # every marker starts with "<": the cheap test first
    if ("<" in question or "<" in answer) and any(m in question or m in answer for m in MARKERS):
        return "stray_marker", None
    return "", QAPair(question, answer)
