"""The stage with a tokenizer in the layout of the released synthesizer's (Mistral/Llama ``tokenizer.json``:
``▁``-prepending normalizer, no pre-tokenizer, byte fallback), trained here; the engine is the scripted test
double. The tiny model's byte-level tokenizer covers the rest of the suite; this layout treats spaces and the
start of every piece differently, so budgets, splits and prefix reuse are checked with it too."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from instructpt.engines.config import EngineConfig  # noqa: E402
from instructpt.engines.tokenizer import LLAMA_CLASSES, load_codec  # noqa: E402
from instructpt.io.shards import read_shard  # noqa: E402
from instructpt.records import RawDoc  # noqa: E402
from instructpt.synthesizer.chains import ChainRunner, make_items  # noqa: E402
from instructpt.synthesizer.run import SynthesizeConfig, synthesize  # noqa: E402
from instructpt.wire import context_block, serialize_example  # noqa: E402
from tests.doubles.scripted_engine import ScriptedEngine, canned_pairs  # noqa: E402
from tests.tinymodel import make_example, train_llama_layout_tokenizer  # noqa: E402

MAX_MODEL_LEN, MAX_NEW = 256, 32


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(3)
    texts = [serialize_example(*make_example(rng)) for _ in range(1500)]
    out = tmp_path_factory.mktemp("llama-layout")
    train_llama_layout_tokenizer(out, texts, vocab_size=1500)
    return out


@pytest.fixture(scope="module")
def codec(tok_dir: Path):
    return load_codec(EngineConfig(tokenizer=str(tok_dir)))


def _variant(tok_dir: Path, tmp_path: Path, name: str, edit) -> Path:
    import shutil

    out = tmp_path / name
    shutil.copytree(tok_dir, out)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    edit(config)
    config_path.write_text(json.dumps(config))
    return out


def _llama_class(config: dict) -> None:
    config.update(tokenizer_class="LlamaTokenizer", legacy=True)


def _llama_class_default_specials(config: dict) -> None:
    _llama_class(config)
    for key in ("bos_token", "eos_token", "unk_token"):
        config.pop(key, None)


@pytest.mark.parametrize("edit", [_llama_class, _llama_class_default_specials])
def test_llama_class_configs_keep_the_tokenizer_json_pretokenization(
    tok_dir: Path, tmp_path: Path, edit, caplog
):
    """The released synthesizer names ``LlamaTokenizer`` in its tokenizer_config.json, as Mistral-7B does.
    transformers 5 rebuilds that class with a Metaspace pre-tokenizer that drops the ``▁`` the file's
    normalizer puts after ``<s>``; the codec must give the file's ids (what the model was trained with) and keep
    the special tokens the class sets up, also when the config leaves them to the class defaults."""
    from transformers import AutoTokenizer

    llama_dir = _variant(tok_dir, tmp_path, edit.__name__, edit)
    text = context_block("Hello world.") + "</s>" + context_block("Next one.")
    want = load_codec(EngineConfig(tokenizer=str(tok_dir))).encode(text)
    got = load_codec(EngineConfig(tokenizer=str(llama_dir)))
    assert got.encode(text) == want and got.encode_batch([text]) == [want]
    assert (got.bos_token_id, got.eos_token_id, got.tokenizer.unk_token_id) == (1, 2, 0)
    assert type(got.tokenizer).__name__ in LLAMA_CLASSES  # the class transformers chose is kept
    rebuilt = AutoTokenizer.from_pretrained(llama_dir).encode(text, add_special_tokens=False)
    if rebuilt != want:  # transformers 5: the rebuild differs, and the codec said what it did
        assert "using the file's" in caplog.text


def test_add_prefix_space_set_in_the_config_is_kept(tok_dir: Path, tmp_path: Path) -> None:
    """A config that sets ``add_prefix_space`` asks for the rebuilt pre-tokenization (transformers 4 rebuilt
    the tokenizer then too): it is not replaced."""
    from transformers import AutoTokenizer

    def edit(config: dict) -> None:
        _llama_class(config)
        config["add_prefix_space"] = True

    d = _variant(tok_dir, tmp_path, "prefix", edit)
    text = context_block("Hello world.")
    got = load_codec(EngineConfig(tokenizer=str(d))).encode(text)
    assert got == AutoTokenizer.from_pretrained(d).encode(text, add_special_tokens=False)


def test_wire_tokens_map_to_the_special_ids(codec) -> None:
    assert codec.encode("<s>") == [codec.bos_token_id] and codec.encode("</s>") == [codec.eos_token_id]
    ids = codec.encode(context_block("Der Fluss trägt das Boot. 🚣"))  # non-ASCII goes through byte fallback
    assert ids[0] == codec.bos_token_id and ids.count(codec.bos_token_id) == 1
    # The layout prepends "▁" to the text after a special token, so decoding shows one more space after <s>
    # (the ids are what a whole-text encode gives; nothing is re-encoded from decoded prompt text).
    assert codec.decode(ids) == "<s>  <CON> Der Fluss trägt das Boot. 🚣 </CON>\n\n"


def test_stage_budgets_splits_and_prefix_reuse(codec, tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [{"id": f"d{i}", "text": make_example(rng, rng.randint(1, 6))[0]} for i in range(40)]
    rows[7]["text"] = " ".join(make_example(rng, 40)[0] for _ in range(3))  # far over the budget: split
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine_cfg = EngineConfig(name="rules", max_model_len=MAX_MODEL_LEN, max_new_tokens=MAX_NEW)
    cfg = SynthesizeConfig(
        inputs=[str(corpus)], output=str(tmp_path / "out"), engine=engine_cfg, rounds=3, id_field="id",
        shard_size=20, progress=False,
    )  # fmt: skip
    engine = ScriptedEngine(canned_pairs, codec=codec, config=engine_cfg)
    summary = synthesize(cfg, engine=engine)
    budget = MAX_MODEL_LEN - MAX_NEW
    assert all(len(r.prompt_ids) <= budget for r in engine.seen)
    # every prompt's ids are exactly what the codec gives for its text (so the budget counted the real prompt)
    # when the chain so far was reused token for token, and the chain prefix is kept between steps
    records = [r for p in sorted((tmp_path / "out" / "data").iterdir()) for r in read_shard(p)]
    assert summary.counts["docs_split"] == 1 and any(r["id"].startswith("d7#") for r in records)
    assert summary.counts["reused_generations"] > 0 and max(r["chain_pos"] for r in records) == 2
    by_id = {r.record_id: r for r in engine.seen}
    for rec in records:
        if rec["chain_pos"] > 0:
            prev = next(
                r
                for r in records
                if r["chain_id"] == rec["chain_id"] and r["chain_pos"] == rec["chain_pos"] - 1
            )
            before, now = by_id[prev["id"]].prompt_ids, by_id[rec["id"]].prompt_ids
            gen = codec.encode(canned_pairs(by_id[prev["id"]])) + [codec.eos_token_id]
            assert now[: len(before) + len(gen)] == before + gen
            assert now[len(before) + len(gen) :] == codec.encode(context_block(rec["text"]))
    assert all(r["pairs"] for r in records)


def _with_unfinished_tail(request) -> str:
    return canned_pairs(request) + "\n\n<QUE> And then? <ANS> cut"  # parses with a drop: not reused


@pytest.mark.parametrize(
    ("script", "return_ids"), [(_with_unfinished_tail, True), (canned_pairs, False)], ids=["drops", "no-ids"]
)
def test_rebuilt_chains_are_the_whole_prompt_encoding(
    codec, tmp_path: Path, script, return_ids: bool
) -> None:
    """When the generated ids are not reused, a chain's prompt ids are exactly what encoding its whole prompt text
    gives — as the reference script and a text-prompt server have them — not the pairs encoded on their own (this
    layout would start them with "▁<"); the previous prompt stays a token prefix."""
    rng = random.Random(9)
    corpus = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}", "text": make_example(rng, rng.randint(1, 4))[0]} for i in range(12)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine_cfg = EngineConfig(name="rules", max_model_len=MAX_MODEL_LEN, max_new_tokens=MAX_NEW)
    cfg = SynthesizeConfig(
        inputs=[str(corpus)], output=str(tmp_path / "out"), engine=engine_cfg, rounds=3, id_field="id",
        progress=False,
    )  # fmt: skip
    engine = ScriptedEngine(script, codec=codec, config=engine_cfg, return_ids=return_ids)
    summary = synthesize(cfg, engine=engine)
    assert summary.counts.get("reused_generations", 0) == 0
    later = [r for r in engine.seen if r.prompt.count("<s>") > 1]
    assert len(later) >= 6  # chains went on past their first step
    for req in engine.seen:
        assert req.prompt_ids == codec.encode(req.prompt)
    by_id = {r.record_id: r for r in engine.seen}
    for i in range(0, 12, 3):  # chains of 3: each prompt extends the one before it
        a, b = by_id[f"d{i}"].prompt_ids, by_id[f"d{i + 1}"].prompt_ids
        assert b[: len(a)] == a


_WORDS = [
    "The",
    "river",
    "holds",
    "Fluss",
    "trägt",
    "🚣",
    "naïve",
    "x<y",
    "</CON>?",
    "a\nb",
    "\n\n",
    "42.",
    "—",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=60).map(" ".join), min_size=1, max_size=7
    ),
    outputs=st.lists(st.sampled_from(["two", "tail", "none", "bad"]), min_size=1, max_size=7),
    budget=st.integers(min_value=40, max_value=220),
    return_ids=st.booleans(),
)
def test_property_budgets_prefixes_and_whole_text_ids(codec, texts, outputs, budget, return_ids) -> None:
    """Property with the Mistral/Llama layout: every prompt fits the budget; a chain's prompt extends the one
    before it; and when generated ids are never reused, every prompt's ids are its whole text's encoding."""
    answers = iter(outputs * 40)

    def script(req) -> str:
        kind = next(answers)
        pairs = canned_pairs(req)
        return {
            "two": pairs,
            "tail": pairs + "\n\n<QUE> more? <ANS> cut",
            "none": "",
            "bad": "<ANS> x </END>",
        }[kind]

    engine = ScriptedEngine(script, codec=codec, return_ids=return_ids)
    docs = [RawDoc(f"d{i}", t, "s") for i, t in enumerate(texts)]
    items = make_items(docs, codec, budget)
    for i in range(0, len(items), 3):
        runner, prev = ChainRunner(items[i : i + 3], codec, budget, {}, {}), None
        while not runner.done:
            req = runner.next_request(0)
            assert len(req.prompt_ids) <= budget
            if runner.chain_pos > 0:
                assert req.prompt_ids[: len(prev)] == prev
            if not return_ids:
                assert req.prompt_ids == codec.encode(req.prompt)
            prev = req.prompt_ids
            runner.on_result(engine.generate([req])[0])


def test_other_classes_keep_what_transformers_built_from_their_config(tmp_path: Path) -> None:
    """transformers adjusts a GPT-2-class tokenizer's pre-tokenizer from ``add_prefix_space`` in its config (as
    transformers 4 did): that is not undone."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(["hello world, a byte level tokenizer"] * 20, trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="GPT2Tokenizer", add_prefix_space=True)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    text = "hello world"
    assert load_codec(EngineConfig(tokenizer=str(tmp_path))).encode(text) == AutoTokenizer.from_pretrained(
        tmp_path
    ).encode(text, add_special_tokens=False)
