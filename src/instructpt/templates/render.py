"""Render a synthesized chain into one instruction-augmented pre-training document (SPEC §5). Pure and seeded.

A chain is a list of examples, each ``(context, pairs)``. Every pair is classified into a family (plain QA, QA
with options, QA with chain of thought, options + chain of thought; see :mod:`instructpt.templates.pairs`), each
example gets a layout drawn by weight, and the examples are joined with a blank line:

- ``classic``: optional intro line around the context, optional "answer these questions" line, then the pairs,
  each rendered with one pattern of its family (one pattern per family per example, so an example reads evenly);
- ``dialog``: the pairs as alternating speaker turns after the context;
- ``numbered``: all questions with labels, then all answers;
- ``inline_fewshot``: earlier pairs as worked examples, the last one as the test item (its rationale kept with
  probability ``fewshot_rationale_prob``; a dropped rationale is counted in ``omitted``);
- ``next_turn``: a dialog built from the pairs whose last turn is asked for and then given;
- ``inverted``: the pairs first, then a "write a passage" prompt and the context.

A layout that does not fit an example (numbered and few-shot need two pairs, inverted needs a context) falls back to
classic. An example with no renderable pair is its raw context. All randomness comes from ONE ``random.Random``
per chain, seeded from a sha256 of (seed, record id) and drawn sequentially, so the same input gives the same bytes
on any machine and in any worker order. Inputs are never mutated; an empty document is never returned
(:class:`EmptyChainError`). No wire marker comes from the inventory (checked at load); contexts are kept verbatim.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from instructpt.errors import ConfigError
from instructpt.records import QAPair
from instructpt.templates.inventory import MAX_LABELS, Inventory, Pattern, load_inventory
from instructpt.templates.pairs import Item, prepare_pair

LAYOUTS = ("classic", "dialog", "numbered", "inline_fewshot", "next_turn", "inverted")
DEFAULT_LAYOUT_WEIGHTS = {
    "classic": 0.80,
    "dialog": 0.04,
    "numbered": 0.04,
    "inline_fewshot": 0.04,
    "next_turn": 0.04,
    "inverted": 0.04,
}
RAW = "raw"  # the layout name reported for an example rendered as its bare context
_WITHOUT_COT = {"qa_cot": "qa", "options_cot": "qa_options", "qa": "qa", "qa_options": "qa_options"}
T = TypeVar("T")


class EmptyChainError(ValueError):
    """The chain has nothing to render (no examples, or only blank contexts without pairs)."""


def _check_prob(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"templify option {name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class TemplifyOptions:
    """Rendering knobs. ``layout_weights`` need not sum to 1 (they are normalized; missing layouts weigh 0)."""

    layout_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LAYOUT_WEIGHTS))
    intro_prob: float = 0.5  # classic: wrap the context in an intro line
    instruction_prob: float = 0.5  # classic: an "answer these questions" line before the pairs
    fewshot_rationale_prob: float = 0.5  # inline_fewshot: keep the test item's rationale
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        weights = self.layout_weights
        if not isinstance(weights, dict):
            raise ConfigError(
                f"layout_weights must be a mapping of layout -> weight, got {type(weights).__name__}"
            )
        unknown = sorted(set(weights) - set(LAYOUTS))
        if unknown:
            raise ConfigError(f"layout_weights: unknown layout(s) {unknown} (known: {list(LAYOUTS)})")
        for name, w in weights.items():
            if not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
                raise ConfigError(
                    f"layout_weights: weight of {name!r} must be a finite number >= 0, got {w!r}"
                )
        total = float(sum(weights.values()))
        if total <= 0:
            raise ConfigError(
                "layout_weights: all weights are zero; give at least one layout a positive weight"
            )
        normalized = {name: weights.get(name, 0) / total for name in LAYOUTS}
        object.__setattr__(self, "layout_weights", normalized)
        cumulative, acc = [], 0.0
        for name in LAYOUTS:
            acc += normalized[name]
            cumulative.append(acc)
        object.__setattr__(self, "_cumulative", tuple(cumulative))
        for name in ("intro_prob", "instruction_prob", "fewshot_rationale_prob"):
            _check_prob(name, getattr(self, name))

    def draw_layout(self, rng: random.Random) -> str:
        cum = self._cumulative
        i = bisect.bisect_right(cum, rng.random() * cum[-1])
        while i >= len(LAYOUTS) or self.layout_weights[LAYOUTS[i]] == 0:  # rounding at the top end
            i -= 1
        return LAYOUTS[i]


DEFAULT_OPTIONS = TemplifyOptions()


@dataclass
class Rendered:
    """One rendered chain and what happened to its pairs.

    ``template_ids`` are the pair patterns used ("qa_options/017"), ``piece_ids`` the layout pieces, option
    styles and chain-of-thought wordings ("intro/003", "option_style/dash"), each in order of first use.
    """

    text: str
    layouts: list[str]
    template_ids: list[str]
    n_pairs: int
    drops: Counter = field(default_factory=Counter)
    omitted: Counter = field(default_factory=Counter)
    raw_only: bool = False
    piece_ids: list[str] = field(default_factory=list)


def chain_rng(seed: int, record_id: str) -> random.Random:
    """The chain's only RNG: seeded by sha256 of (seed, record id), independent of Python's hash salt."""
    digest = hashlib.sha256(f"{seed}\x1f{record_id}".encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class _Chain:
    """Per-chain state: the RNG, pattern and piece ids used (ordered sets), omissions, the example's picks."""

    __slots__ = ("rng", "inv", "opts", "ids", "pieces", "omitted", "picks")

    def __init__(self, rng: random.Random, inv: Inventory, opts: TemplifyOptions) -> None:
        self.rng, self.inv, self.opts = rng, inv, opts
        self.ids: dict[str, None] = {}
        self.pieces: dict[str, None] = {}
        self.omitted: Counter = Counter()
        self.picks: dict[str, Any] = {}

    def pick(self, choices: Sequence[T]) -> T:
        chosen = choices[self.rng.randrange(len(choices))]
        self.pieces[chosen.id] = None  # type: ignore[attr-defined]
        return chosen

    def once(self, key: str, choices: Sequence[T]) -> T:
        """One pick per example for ``key``, drawn the first time the example needs it."""
        chosen = self.picks.get(key)
        if chosen is None:
            chosen = self.picks[key] = self.pick(choices)
        return chosen

    def pair(self, item: Item, keep_rationale: bool = True) -> str:
        """A pair rendered with its family's pattern for this example."""
        cot = bool(item.rationale) and keep_rationale
        if item.rationale and not keep_rationale:
            self.omitted["rationale"] += 1
        family = item.family if cot else _WITHOUT_COT[item.family]
        pat: Pattern | None = self.picks.get(family)
        if pat is None:
            patterns = self.inv.families[family]
            pat = self.picks[family] = patterns[self.rng.randrange(len(patterns))]
            self.ids[pat.id] = None
        style = pat.style
        answer = item.answer
        if item.options is not None:
            if style is None:
                self.omitted["options"] += 1
            elif pat.answer_mode == "label":
                answer = style.answers[item.answer_index]
            elif pat.answer_mode == "label_text":
                answer = style.prefixes[item.answer_index] + answer
        values = {"question": item.question}
        if cot:
            values["rationale"], values["final"] = item.rationale, answer
        else:
            values["answer"] = answer
        if style is not None:
            values["options"] = style.block(item.options or [])
        return pat.template.render(**values)

    def bare(self, item: Item, label_text: bool = False) -> tuple[str, str]:
        """(question, answer) without a pattern, for layouts that place the two halves themselves.

        With ``label_text``, a labelled option is answered with its label and its text ("(B) the text"): where the
        answers follow labels of their own (numbered), a bare option label would read as one more label ("3. B").
        """
        question, answer = item.question, item.answer
        if item.options is not None:
            style = self.once("option_style", self.inv.option_styles)
            question = f"{question}\n{style.block(item.options)}"
            if style.labelled:
                answer = (
                    (style.prefixes[item.answer_index] + answer)
                    if label_text
                    else style.answers[item.answer_index]
                )
        if item.rationale:
            question = f"{question}\n{self.once('cot_cue', self.inv.cot_cues).text}"
            answer = self.once("cot_conclusion", self.inv.cot_conclusions).render(
                rationale=item.rationale, final=answer
            )
        return question, answer


# ---------------------------------------------------------------- layouts


def _classic(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    parts = []
    if context:
        if ch.rng.random() < ch.opts.intro_prob:
            context = ch.pick(ch.inv.intros).render(context=context)
        parts.append(context)
    if ch.rng.random() < ch.opts.instruction_prob:
        parts.append(ch.pick(ch.inv.ask_one if len(items) == 1 else ch.inv.ask_many).text)
    parts.extend([ch.pair(item) for item in items])
    return parts


def _turns(ch: _Chain, items: list[Item]) -> tuple[Any, list[str], str]:
    """(speakers, all turns, the last answer alone) of a dialog built from the pairs."""
    speakers = ch.pick(ch.inv.speakers)
    asker, answerer = f"{speakers.asker}: ", f"{speakers.answerer}: "
    turns = []
    answer = ""
    for item in items:
        question, answer = ch.bare(item)
        turns.append(asker + question)
        turns.append(answerer + answer)
    return speakers, turns, answer


def _dialog(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    lead = ch.pick(ch.inv.dialog_leads).text
    _, turns, _ = _turns(ch, items)
    return [p for p in (context, lead) if p] + ["\n".join(turns)]


def _next_turn(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    lead = ch.pick(ch.inv.next_turn_leads).text
    speakers, turns, last = _turns(ch, items)
    prompt = ch.pick(ch.inv.next_turn_prompts).render(speaker=speakers.answerer, answer=last)
    return [p for p in (context, lead) if p] + ["\n".join(turns[:-1]), prompt]


def _numbered(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    nb = ch.pick(ch.inv.numbered)
    halves = [ch.bare(item, label_text=True) for item in items]
    # Multi-line questions (options, cues) read better with a blank line between items.
    sep = "\n\n" if any("\n" in q or "\n" in a for q, a in halves) else "\n"
    questions = sep.join([nb.q_labels[i] + q for i, (q, _) in enumerate(halves)])
    answers = sep.join([nb.a_labels[i] + a for i, (_, a) in enumerate(halves)])
    q_block = f"{nb.q_head}\n{questions}" if nb.q_head else questions
    a_block = f"{nb.a_head}\n{answers}" if nb.a_head else answers
    return [context, q_block, a_block] if context else [q_block, a_block]


def _inline_fewshot(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    fs = ch.pick(ch.inv.fewshot)
    parts = [p for p in (context, fs.head) if p]
    for i, item in enumerate(items[:-1]):
        label = fs.item_labels[i]
        parts.append(f"{label}\n{ch.pair(item)}" if label else ch.pair(item))
    test = items[-1]
    keep = not test.rationale or ch.rng.random() < ch.opts.fewshot_rationale_prob
    parts.append(f"{fs.test}\n{ch.pair(test, keep)}")
    return parts


def _inverted(ch: _Chain, context: str, items: list[Item]) -> list[str]:
    lead = ch.pick(ch.inv.inverted_leads).text
    prompt = ch.pick(ch.inv.inverted_prompts)
    parts = [lead] if lead else []
    parts.extend([ch.pair(item) for item in items])
    parts.append(prompt.render(context=context))
    return parts


_RENDERERS: dict[str, Callable[[_Chain, str, list[Item]], list[str]]] = {
    "classic": _classic,
    "dialog": _dialog,
    "numbered": _numbered,
    "inline_fewshot": _inline_fewshot,
    "next_turn": _next_turn,
    "inverted": _inverted,
}


def _fits(layout: str, n_items: int, has_context: bool) -> bool:
    if layout in ("numbered", "inline_fewshot"):
        return 2 <= n_items <= MAX_LABELS
    if layout == "inverted":
        return has_context
    return True


# ---------------------------------------------------------------- entry point


def render_chain(
    chain: Sequence[tuple[str, Sequence[QAPair]]],
    *,
    record_id: str,
    seed: int,
    options: TemplifyOptions = DEFAULT_OPTIONS,
    inventory: Inventory | None = None,
) -> Rendered:
    """Render one chain into one document; raises :class:`EmptyChainError` when there is nothing to render."""
    inv = inventory if inventory is not None else load_inventory()
    rng = chain_rng(seed, record_id)
    ch = _Chain(rng, inv, options)
    drops: Counter = Counter()
    blocks: list[str] = []
    layouts: list[str] = []
    n_pairs = 0
    for context, pairs in chain:
        if not context.strip():
            context = ""  # a blank context renders as nothing; any other is kept byte for byte
        items = []
        for pair in pairs:
            item, reason = prepare_pair(pair, rng)
            if item is None:
                drops[reason] += 1
            else:
                items.append(item)
        if not items:
            layouts.append(RAW)
            if context:
                blocks.append(context)
            continue
        layout = options.draw_layout(rng)
        if not _fits(layout, len(items), bool(context)):
            layout = "classic"
        layouts.append(layout)
        ch.picks = {}
        blocks.append("\n\n".join(_RENDERERS[layout](ch, context, items)))
        n_pairs += len(items)
    text = "\n\n".join(blocks)
    if not text.strip():
        raise EmptyChainError(f"chain {record_id!r}: no text and no renderable pair")
    return Rendered(text, layouts, list(ch.ids), n_pairs, drops, ch.omitted, n_pairs == 0, list(ch.pieces))
