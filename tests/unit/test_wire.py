"""The wire format is byte-exact (SPEC §3): golden strings, prompts, parsing and its drop reasons."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instructpt.records import QAPair
from instructpt.wire import (
    MARKERS,
    build_prompt,
    context_block,
    encode_example,
    parse_generation,
    serialize_example,
    serialize_pairs,
)

PAIRS = [QAPair("What is X?", "A letter."), QAPair("Why?", "Because.")]


def test_golden_example() -> None:
    assert serialize_example("Some text.", PAIRS) == (
        "<s> <CON> Some text. </CON>\n\n<QUE> What is X? <ANS> A letter. </END>\n\n"
        "<QUE> Why? <ANS> Because. </END></s>"
    )


def test_golden_prompt_few_shot_has_nothing_between_examples() -> None:
    prompt = build_prompt([("First.", PAIRS[:1]), ("Second.", PAIRS[1:])], "Third.")
    assert prompt == (
        "<s> <CON> First. </CON>\n\n<QUE> What is X? <ANS> A letter. </END></s>"
        "<s> <CON> Second. </CON>\n\n<QUE> Why? <ANS> Because. </END></s>"
        "<s> <CON> Third. </CON>\n\n"
    )
    assert build_prompt([], "Alone.") == context_block("Alone.") == "<s> <CON> Alone. </CON>\n\n"


def _prepend_codec(text: str) -> list[int]:
    """Toy tokenizer in the Mistral/Llama layout: splits at the special tokens, prepends "▁" to every other
    piece, one id per character."""
    ids: list[int] = []
    for piece in re.split(r"(</?s>)", text):
        if piece in ("<s>", "</s>"):
            ids.append(1 if piece == "<s>" else 2)
        elif piece:
            ids += [ord(c) for c in "▁" + piece]
    return ids


def _trailing_merge_codec(text: str) -> list[int]:
    """Toy tokenizer like a byte-level BPE: a trailing "\n\n" is one token, "\n\n" before text is two."""
    ids = [ord(c) for c in text]
    return ids[:-2] + [1010] if text.endswith("\n\n") else ids


def test_example_ids_are_the_whole_text_encoding_in_the_llama_layout() -> None:
    ctx, target = encode_example(_prepend_codec, "Ctx.", serialize_pairs(PAIRS))
    assert ctx == _prepend_codec(context_block("Ctx."))  # what a prompt for this text ends with
    assert ctx + target == _prepend_codec(serialize_example("Ctx.", PAIRS))  # not ..."\n\n▁<QUE>"
    assert target[-1] == 2 and chr(target[0]) == "<"
    ctx2, target2 = encode_example(_prepend_codec, "Ctx.", serialize_pairs(PAIRS), ctx_ids=ctx)
    assert (ctx2, target2) == (ctx, target)


def test_example_keeps_the_prompt_a_token_prefix_when_the_boundary_merges() -> None:
    ctx, target = encode_example(_trailing_merge_codec, "Ctx.", serialize_pairs(PAIRS))
    assert ctx[-1] == 1010  # the prompt's own ending...
    assert target == _trailing_merge_codec(serialize_pairs(PAIRS) + "</s>")  # ...and the target after it


def test_parse_clean_generation() -> None:
    result = parse_generation(serialize_pairs(PAIRS))
    assert result.pairs == PAIRS and result.clean


def test_parse_tolerates_trailing_eos_and_whitespace() -> None:
    result = parse_generation("\n\n<QUE>  What is X?  <ANS>  A letter.  </END></s>")
    assert result.pairs == [QAPair("What is X?", "A letter.")]
    assert result.clean


def test_parse_drops_unfinished_last_pair() -> None:
    result = parse_generation("<QUE> a? <ANS> b </END>\n\n<QUE> c? <ANS> d")
    assert result.pairs == [QAPair("a?", "b")]
    assert result.drops == {"unfinished_pair": 1}


def test_parse_counts_every_drop_reason() -> None:
    text = (
        "<QUE> ok? <ANS> yes </END>"
        "<QUE> no answer marker </END>"
        "<QUE> two <ANS> ans <ANS> wers </END>"
        "question without marker <ANS> x </END>"
        "<QUE>  <ANS> empty question </END>"
        "<QUE> empty answer? <ANS>   </END>"
        "<QUE> OK? <ANS> duplicate in another case </END>"
        "<QUE> stray <CON> marker? <ANS> x </END>"
        "   </END>"
    )
    result = parse_generation(text)
    assert result.pairs == [QAPair("ok?", "yes")]
    assert result.drops == {
        "missing_answer_marker": 1,
        "multiple_answer_markers": 1,
        "missing_question_marker": 1,
        "empty_question": 1,
        "empty_answer": 1,
        "duplicate_question": 1,
        "stray_marker": 1,
        "empty_piece": 1,
    }


def test_parse_keeps_options_and_cot_conventions() -> None:
    q = "Is it red?\nOptions:\n- yes\n- no"
    cot = "How many?\nLet's think step by step."
    gen = f"<QUE> {q} <ANS> yes </END>\n\n<QUE> {cot} <ANS> Two and two.\nTherefore, the answer is 4 </END>"
    pairs = parse_generation(gen).pairs
    assert pairs[0].question == q and pairs[0].answer == "yes"
    assert pairs[1].answer.endswith("Therefore, the answer is 4")


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s and not any(m in s for m in MARKERS) and "</" not in s and "<" not in s
)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.lists(st.tuples(_text, _text), min_size=1, max_size=5, unique_by=lambda t: t[0].casefold()))
def test_serialize_then_parse_round_trips(raw: list[tuple[str, str]]) -> None:
    pairs = [QAPair(q, a) for q, a in raw]
    result = parse_generation(serialize_pairs(pairs) + "</s>")
    assert result.pairs == pairs
    assert result.clean
