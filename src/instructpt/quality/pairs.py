"""What a synthesized pair is and whether its answer is grounded in its text: one definition, which
evaluate-synthesizer, the report and the quality filters share.

Task types (rule-based, first match wins): ``chain_of_thought`` (the question ends with "Let's think step by step."
or the answer ends with "Therefore, the answer is ..."), ``multiple_choice`` (an ``Options:`` list in the
question), ``yes_no`` (the answer is yes/no/true/false), ``title_summary`` (the question asks for a title, headline,
summary or topic), ``completion`` (the question asks to complete or continue the text, or what comes next),
``extractive`` (the answer appears verbatim in the text), ``other``.

Grounding: the answer's content words (lower-cased words of three or more letters or any digits, stop words left
out) all occur in the text. For a chain-of-thought answer the final answer after "Therefore, the answer is" is
checked; a multiple-choice answer is its option text. Answers with no content word (yes/no, a letter) are not
applicable and counted apart.
"""

from __future__ import annotations

import re

TASK_TYPES = (
    "chain_of_thought",
    "multiple_choice",
    "yes_no",
    "title_summary",
    "completion",
    "extractive",
    "other",
)
COT_CUE, COT_ANSWER = "let's think step by step", "therefore, the answer is"
YES_NO = {"yes", "no", "true", "false", "yes.", "no.", "true.", "false."}
_STOP = (
    "the and for are but not you all any can had her was one our out has him his how man new now old see two way who "
    "its did get may say she too use that with have this will your from they know want been good much some time very "
    "when come here just like long make many more only over such take than them well were what which their there "
    "would about into also then these could other after first where most those being does while because through "
    "between both each under again same yes true false"
)
STOP_WORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def classify(question: str, answer: str, text: str) -> str:
    q, a = question.strip().lower(), answer.strip().lower()
    if q.endswith(COT_CUE + ".") or COT_ANSWER in a:
        return "chain_of_thought"
    if "\noptions:\n" in q or q.startswith("options:"):
        return "multiple_choice"
    if a in YES_NO:
        return "yes_no"
    if re.search(r"\b(title|headline|summar\w*|topic|main idea)\b", q):
        return "title_summary"
    if re.search(r"\b(complete|continue|continuation|what comes next|next sentence|finish)\b", q):
        return "completion"
    if a and a.rstrip(".") in text.lower():
        return "extractive"
    return "other"


def final_answer(answer: str) -> str:
    """The part of an answer that states it: after "Therefore, the answer is" when there is a chain of thought."""
    low = answer.lower()
    at = low.rfind(COT_ANSWER)
    return answer[at + len(COT_ANSWER) :].strip() if at >= 0 else answer.strip()


def content_words(text: str) -> set[str]:
    words = {
        w.lower() for w in set(_WORD.findall(text))
    }  # distinct words first: lower-casing each is the cost
    return {w for w in words if (len(w) >= 3 or any(ch.isdigit() for ch in w)) and w not in STOP_WORDS}


def grounded(answer: str, text: str) -> bool | None:
    """Whether the answer's content words all occur in ``text`` (None: the answer has none to check)."""
    words = content_words(final_answer(answer))
    if not words:
        return None
    return words <= content_words(text)
