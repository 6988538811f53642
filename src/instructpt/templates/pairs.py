"""Classify synthesized pairs into template families by the synthesizer's conventions (SPEC §3).

- multiple choice: the question ends with ``"\\nOptions:\\n- opt1\\n- opt2 ..."``; the answer is the verbatim
  option text;
- chain of thought: the question ends with ``"\\nLet's think step by step."``; the answer is
  ``"{rationale}\\nTherefore, the answer is {final}"``.

Both together make the ``options_cot`` family (the options come before the step-by-step cue). A pair that breaks
its convention is dropped with a reason, never rendered half-way:

- ``half_formed_cot``: a step-by-step question whose answer lacks a rationale or the "Therefore, the answer is"
  conclusion. Such answers are mostly cut-off generations; rendering them as plain QA would teach the model to
  answer a step-by-step request without reasoning, so they are dropped;
- ``answer_not_in_options``: the answer (or final answer) matches no option, not even after ignoring case,
  surrounding whitespace and a trailing period;
- ``too_few_options`` (fewer than two distinct options), ``too_many_options`` (more than can be labelled),
  ``empty_question`` / ``empty_answer`` (nothing left once the conventions are stripped).

Option lines that do not start with ``"- "`` continue the previous option (joined with a space), so a wrapped
option never becomes a separate one. Duplicate options are merged (first kept), so every label is distinct.
"""

from __future__ import annotations

import random
from typing import Any

from instructpt.templates.inventory import MAX_LABELS

COT_CUE = "Let's think step by step."
COT_LINK = "Therefore, the answer is"
OPTIONS_HEAD = "Options:\n"


class Item:
    """A renderable pair: question body, answer (the final answer for chain of thought), rationale (empty unless
    chain of thought) and the options in shuffled order with the index of the correct one."""

    __slots__ = ("family", "question", "answer", "rationale", "options", "answer_index")

    def __init__(
        self,
        family: str,
        question: str,
        answer: str,
        rationale: str = "",
        options: list[str] | None = None,
        answer_index: int = -1,
    ) -> None:
        self.family = family
        self.question = question
        self.answer = answer
        self.rationale = rationale
        self.options = options
        self.answer_index = answer_index


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".")


def _split_options(question: str) -> tuple[str, list[str] | None]:
    """(body, options) — options None when the question has no options block."""
    if question.startswith(OPTIONS_HEAD):
        body, block = "", question[len(OPTIONS_HEAD) :]
    else:
        body, sep, block = question.rpartition("\n" + OPTIONS_HEAD)
        if not sep:
            return question, None
    options: list[str] = []
    for line in block.split("\n"):
        line = line.strip()
        if line.startswith("- ") or line == "-":
            options.append(line[2:].strip())
        elif line and options:
            options[-1] = f"{options[-1]} {line}"
        elif line:  # text before the first bullet: not an option list after all
            return question, None
    distinct = [o for o in dict.fromkeys(options) if o]
    return body.rstrip(), distinct


def _match(answer: str, options: list[str]) -> int:
    if answer in options:
        return options.index(answer)
    key = _norm(answer)
    for i, option in enumerate(options):
        if _norm(option) == key:
            return i
    return -1


def _split_cot(answer: str) -> tuple[str, str]:
    rationale, sep, final = answer.rpartition(COT_LINK)
    if not sep:
        return "", ""
    final = final.strip()
    if final.startswith(":"):  # "Therefore, the answer is: X" is a common variant of the convention
        final = final[1:].lstrip()
    return rationale.strip(), final


def prepare_pair(pair: Any, rng: random.Random) -> tuple[Item | None, str]:
    """Classify one pair (anything with ``question`` and ``answer``); (item, "") or (None, drop reason).

    Draws from ``rng`` only to shuffle options (the synthesizer puts the gold option at A or C too often).
    """
    question = pair.question.strip()
    answer = pair.answer.strip()
    cot = question.endswith(COT_CUE)
    rationale = ""
    if cot:
        question = question[: -len(COT_CUE)].rstrip()
        rationale, answer = _split_cot(answer)
        if not rationale or not answer:
            return None, "half_formed_cot"
    question, options = _split_options(question)
    if not question:
        return None, "empty_question"
    if not answer:
        return None, "empty_answer"
    if options is None:
        return Item("qa_cot" if cot else "qa", question, answer, rationale), ""
    if len(options) < 2:
        return None, "too_few_options"
    if len(options) > MAX_LABELS:
        return None, "too_many_options"
    index = _match(answer, options)
    if index < 0:
        return None, "answer_not_in_options"
    correct = options[index]
    rng.shuffle(options)  # a fresh list from _split_options, never the caller's data
    return Item(
        "options_cot" if cot else "qa_options", question, correct, rationale, options, options.index(correct)
    ), ""
