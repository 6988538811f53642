"""Property: every kept question and answer shows up in the rendered document, unless a pattern omits it by design.

Chains are generated from well-formed pairs of all four families (so none is dropped), with text that includes
braces, punctuation and non-ASCII letters; every layout and many seeds are exercised.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instructpt.records import QAPair
from instructpt.templates import LAYOUTS, TemplifyOptions, load_inventory, render_chain
from instructpt.wire import MARKERS

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 .,;:?!'%()[]{}-é中"
phrase = (
    st.text(_ALPHABET, min_size=1, max_size=40)
    .map(str.strip)
    .filter(
        lambda s: (
            any(c.isalnum() for c in s)
            and not s.startswith(("-", ":"))
            and "Therefore, the answer is" not in s
        )
    )
)


@st.composite
def pairs(draw) -> tuple[QAPair, dict]:
    """A well-formed pair and what must be visible: question body, answer/final, rationale, options."""
    question = draw(phrase)
    kind = draw(st.sampled_from(["qa", "qa_options", "qa_cot", "options_cot"]))
    options = draw(st.lists(phrase, min_size=2, max_size=5, unique_by=lambda s: s.casefold().rstrip(".")))
    final = draw(st.sampled_from(options)) if "options" in kind else draw(phrase)
    rationale = draw(phrase) if "cot" in kind else ""
    q = question
    if "options" in kind:
        q += "\nOptions:\n" + "\n".join(f"- {o}" for o in options)
    if "cot" in kind:
        q += "\nLet's think step by step."
        answer = f"{rationale}\nTherefore, the answer is {final}"
    else:
        answer = final
    expect = {
        "kind": kind,
        "question": question,
        "answer": final,
        "rationale": rationale,
        "options": options if "options" in kind else [],
    }
    return QAPair(q, answer), expect


examples = st.lists(
    st.tuples(st.text(_ALPHABET + "\n", max_size=60), st.lists(pairs(), max_size=5)), min_size=1, max_size=3
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain=examples,
    layout=st.sampled_from((None, *LAYOUTS)),
    seed=st.integers(0, 2**32),
    record_id=st.text(max_size=10),
)
def test_kept_pairs_are_visible(chain, layout, seed, record_id):
    options = TemplifyOptions() if layout is None else TemplifyOptions(layout_weights={layout: 1})
    plain = [(context, [p for p, _ in ps]) for context, ps in chain]
    expected = [e for _, ps in chain for _, e in ps]
    if not any(c.strip() for c, _ in chain) and not expected:
        return  # nothing to render: covered by the EmptyChainError test
    doc = render_chain(plain, record_id=record_id, seed=seed, options=options)
    text = doc.text

    assert text.strip() and not doc.drops
    assert doc.n_pairs == len(expected) and doc.raw_only == (not expected)
    assert len(doc.layouts) == len(chain)
    assert not any(m in text for m in MARKERS)
    known = {p.id for fam in load_inventory().families.values() for p in fam}
    assert set(doc.template_ids) <= known and not set(doc.piece_ids) & known

    missing_rationales = missing_option_lists = 0
    for e in expected:
        assert e["question"] in text
        # The correct option's text is shown either as an option line or as the answer itself.
        assert e["answer"] in text
        if e["rationale"] and e["rationale"] not in text:
            missing_rationales += 1
        if e["options"] and not all(o in text for o in e["options"]):
            missing_option_lists += 1
    assert missing_rationales <= doc.omitted["rationale"]
    assert missing_option_lists <= doc.omitted["options"]
    for context, _ in chain:
        assert not context.strip() or context in text  # contexts are kept verbatim
