"""M-shot chains: growth, break rules, exact budgets, prefix reuse, failures — with a scripted test-double engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from instructpt.engines.config import EngineConfig
from instructpt.records import RawDoc
from instructpt.synthesizer.chains import ChainRunner, Item, make_items
from instructpt.wire import EOS, context_block, serialize_pairs
from tests.doubles.scripted_engine import ScriptedEngine, WordCodec, last_context

GOOD = "<QUE> q1 <ANS> a1 </END>"


def _items(codec, texts):
    return [
        Item(f"d{i}", f"d{i}", "src", t, ctx_ids=codec.encode(context_block(t)) if codec else None)
        for i, t in enumerate(texts)
    ]


def _run(runner: ChainRunner, engine: ScriptedEngine):
    results = []
    while not runner.done:
        (gen,) = engine.generate([runner.next_request(0)])
        results.append(runner.on_result(gen))
    return results


def test_chain_grows_and_prompt_extends_previous_prompt_and_generation() -> None:
    codec = WordCodec()
    engine = ScriptedEngine(lambda r: GOOD, codec=codec)
    runner = ChainRunner(_items(codec, ["alpha one", "beta two", "gamma three"]), codec, 1000, {}, {})
    results = _run(runner, engine)
    recs = [r.record for r in results]
    assert [(r.chain_id, r.chain_pos) for r in recs] == [("d0", 0), ("d0", 1), ("d0", 2)]
    p0, p1, p2 = engine.seen
    gen_ids = codec.encode(GOOD) + [codec.eos_token_id]
    assert p1.prompt_ids == p0.prompt_ids + gen_ids + codec.encode(context_block("beta two"))
    assert p2.prompt_ids[: len(p1.prompt_ids) + len(gen_ids)] == p1.prompt_ids + gen_ids
    assert p2.prompt == p1.prompt + GOOD + EOS + context_block("gamma three")
    assert all(r.reused_generation for r in results)
    # Later steps ask to run sooner (vLLM priority scheduling): their prefix is the cached chain so far.
    assert [r.priority for r in engine.seen] == [0, -1, -2]


def test_drops_rebuild_history_from_kept_pairs() -> None:
    codec = WordCodec()
    messy = GOOD + "\n\n<QUE> broken </END>"
    engine = ScriptedEngine(lambda r: messy, codec=codec)
    runner = ChainRunner(_items(codec, ["a b", "c d"]), codec, 1000, {}, {})
    results = _run(runner, engine)
    assert results[0].drops == {"missing_answer_marker": 1} and not results[0].reused_generation
    canonical = serialize_pairs(results[0].record.pairs)
    assert engine.seen[1].prompt == context_block("a b") + canonical + EOS + context_block("c d")


def test_no_pairs_ends_the_chain() -> None:
    engine = ScriptedEngine(lambda r: "" if last_context(r.prompt) == "b" else GOOD)
    results = _run(ChainRunner(_items(None, ["a", "b", "c"]), None, None, {}, {}), engine)
    assert [(r.record.chain_id, r.record.chain_pos, len(r.record.pairs)) for r in results] == [
        ("d0", 0, 1),
        ("d0", 1, 0),
        ("d2", 0, 1),
    ]
    assert engine.seen[2].prompt == context_block("c")
    assert [r.priority for r in engine.seen] == [0, -1, 0]  # a new chain starts at the default priority


def test_over_budget_starts_a_new_chain() -> None:
    codec = WordCodec()
    engine = ScriptedEngine(lambda r: GOOD, codec=codec)
    budget = len(codec.encode(context_block("w " * 10))) + 3
    runner = ChainRunner(_items(codec, ["w " * 10, "x", "y " * 10]), codec, budget, {}, {})
    recs = [r.record for r in _run(runner, engine)]
    # "x" does not fit after "w ..." and its pairs; "y ..." does not fit after "x" and its pairs
    assert [(r.chain_id, r.chain_pos) for r in recs] == [("d0", 0), ("d1", 0), ("d2", 0)]
    assert all(len(req.prompt_ids) <= budget for req in engine.seen)


def test_engine_error_rejects_the_item_and_resets_the_chain() -> None:
    engine = ScriptedEngine(lambda r: None if last_context(r.prompt) == "b" else GOOD)
    results = _run(ChainRunner(_items(None, ["a", "b", "c"]), None, None, {}, {}), engine)
    assert results[1].reject is not None and results[1].reject.reason == "engine_error"
    assert results[2].record.chain_id == "d2" and results[2].record.chain_pos == 0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8),
    st.integers(min_value=30, max_value=120),
)
def test_no_prompt_ever_exceeds_the_budget(lengths: list[int], n_pairs: list[int], budget: int) -> None:
    """Property: whatever the texts and outputs, every prompt fits max_model_len - max_new_tokens."""
    codec = WordCodec()
    outputs = iter(n_pairs * 20)

    def script(req):
        k = next(outputs)
        return "\n\n".join(f"<QUE> q{i} word word <ANS> a{i} word </END>" for i in range(k))

    engine = ScriptedEngine(
        script, codec=codec, config=EngineConfig(max_model_len=budget + 16, max_new_tokens=16)
    )
    docs = [RawDoc(f"d{i}", " ".join(f"w{j}" for j in range(n)) + ".", "s") for i, n in enumerate(lengths)]
    items = make_items(docs, codec, budget)
    for i in range(0, len(items), 3):
        _run(ChainRunner(items[i : i + 3], codec, budget, {}, {}), engine)
    assert engine.seen
    assert all(len(r.prompt_ids) <= budget for r in engine.seen)
    assert " ".join(i.text for i in items).split() == " ".join(d.text for d in docs).split()


def test_requests_carry_the_verbatim_context_even_with_marker_like_text() -> None:
    from instructpt.engines.base import EngineConfig as Cfg
    from instructpt.engines.rules import RulesEngine

    text = "Cats sleep a lot. <s> <CON> is not a real block here. However, dogs sleep less than cats do."
    runner = ChainRunner(_items(None, [text]), None, None, {}, {})
    req = runner.next_request(0)
    assert req.context == text
    (gen,) = RulesEngine(Cfg(name="rules")).generate([req])
    assert gen.ok
