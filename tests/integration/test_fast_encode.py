"""Cached segment encoding (engines/fast_encode.py) against the tokenizer's own ids.

The encoder must give exactly ``Tokenizer.encode(text, add_special_tokens=False).ids`` for every text, in each
Llama/Mistral layout it accepts (the file layout of Mistral-7B, and transformers 5's Metaspace rebuilds), refuse
layouts where that could fail, and the codec must catch and survive a wrong id (fault injection)."""

from __future__ import annotations

import json
import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from instructpt.engines import fast_encode  # noqa: E402
from instructpt.engines.fast_encode import SegmentEncoder  # noqa: E402
from instructpt.engines.tokenizer import CHECK_EVERY, CHECK_FIRST, HFCodec  # noqa: E402
from instructpt.wire import context_block, serialize_example  # noqa: E402
from tests.tinymodel import make_example, train_llama_layout_tokenizer  # noqa: E402

METASPACE_SCHEMES = ("always", "first", "never")


@pytest.fixture(scope="module")
def file_layout(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """Mistral-7B's tokenizer.json layout: Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer."""
    rng = random.Random(11)
    texts = [serialize_example(*make_example(rng)) for _ in range(800)]
    texts += ["  indented  code   with    runs of spaces", "x  y   z    w"] * 50  # merges of ▁ runs
    out = tmp_path_factory.mktemp("fast-encode")
    tok = train_llama_layout_tokenizer(out, texts, vocab_size=1200).backend_tokenizer
    return _edited(tok, _space_run_merges)


def _space_run_merges(spec: dict) -> None:
    """Pieces for runs of spaces, as Llama/Mistral vocabularies have ("▁▁", "▁▁▁▁", "▁▁t"): merges inside a
    segment that the trainer here (splitting at every ▁) cannot learn."""
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    for left, right in (("▁", "▁"), ("▁▁", "▁▁"), ("▁▁", "▁t")):
        vocab[left + right] = len(vocab) + len(spec["added_tokens"])
        merges.insert(0, [left, right])


def metaspace_layout(file_layout: Tokenizer, scheme: str) -> Tokenizer:
    """The same vocabulary as transformers 5 rebuilds a Llama-class tokenizer: no normalizer, Metaspace."""
    tok = Tokenizer.from_str(file_layout.to_str())
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=False)
    return tok


def replace_only_layout(file_layout: Tokenizer) -> Tokenizer:
    """Gemma's layout: spaces become ▁ and nothing is prepended."""
    tok = Tokenizer.from_str(file_layout.to_str())
    tok.normalizer = normalizers.Replace(" ", "▁")
    return tok


def layouts(file_layout: Tokenizer) -> dict[str, Tokenizer]:
    return {
        "file": file_layout,
        "replace-only": replace_only_layout(file_layout),
        **{s: metaspace_layout(file_layout, s) for s in METASPACE_SCHEMES},
    }


PIECES = st.sampled_from(
    ["<s>", "</s>", "<unk>", "<0x0A>", " ", "  ", "▁", "\n", "\n\n", "\t", "<CON>", "</END>", "<QUE>", "é", "🚣",
     "the", "The", "ing", "patients", "x", "1999", ".", ",", "(", "ſ", "İ", "\u00a0", "\u200b"]
)  # fmt: skip
TEXTS = st.one_of(st.lists(PIECES, max_size=30).map("".join), st.text(max_size=60))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_segment_ids_equal_the_tokenizers_in_every_accepted_layout(file_layout: Tokenizer, text: str) -> None:
    for name, tok in layouts(file_layout).items():
        enc, why = SegmentEncoder.build(tok)
        assert enc is not None, (name, why)
        want = tok.encode(text, add_special_tokens=False).ids
        assert enc.encode(text) == want, name
        assert enc.encode(text) == want, name  # the second time from the cache


def test_wire_format_texts_and_the_cache(file_layout: Tokenizer) -> None:
    enc, _ = SegmentEncoder.build(file_layout)
    assert enc is not None
    rng = random.Random(2)
    texts = [
        context_block(make_example(rng, 3)[0]) + serialize_example(*make_example(rng)) for _ in range(200)
    ]
    assert [enc.encode(t) for t in texts] == [
        e.ids for e in file_layout.encode_batch(texts, add_special_tokens=False)
    ]
    assert 0 < len(enc._cache) < sum(len(t.split()) for t in texts)  # words repeat: cached once each
    assert enc.encode("") == []


def test_the_cache_is_bounded(file_layout: Tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_encode, "MAX_CACHE_ENTRIES", 5)
    enc, _ = SegmentEncoder.build(file_layout)
    assert enc is not None
    text = "one two three four five six seven eight nine ten " + "x" * 200
    for _ in range(3):
        assert enc.encode(text) == file_layout.encode(text, add_special_tokens=False).ids
        assert len(enc._cache) <= 5 and not any(len(k) > fast_encode.MAX_CACHED_CHARS for k in enc._cache)


def _edited(tok: Tokenizer, edit) -> Tokenizer:
    spec = json.loads(tok.to_str())
    edit(spec)
    return Tokenizer.from_str(json.dumps(spec))


def _crossing_merge(spec: dict) -> None:
    vocab = spec["model"]["vocab"]
    vocab["s▁"] = len(vocab) + len(spec["added_tokens"])
    spec["model"]["merges"].insert(0, ["s", "▁"])


def _stripping_added_token(spec: dict) -> None:
    spec["added_tokens"][1]["lstrip"] = True


def _truncating(spec: dict) -> None:
    spec["truncation"] = {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}


def _other_normalizer(spec: dict) -> None:
    spec["normalizer"]["normalizers"].append({"type": "NFKC"})


def _no_unk_no_byte_for_e_acute(spec: dict) -> None:
    spec["model"]["unk_token"] = None
    del spec["model"]["vocab"]["<0xA9>"]  # "é" is C3 A9: no symbol for it, BPE drops it


def _no_meta_piece(spec: dict) -> None:
    del spec["model"]["vocab"]["▁"]
    spec["model"]["merges"] = [m for m in spec["model"]["merges"] if "▁" not in m]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_crossing_merge, "joins a character to the ▁"),
        (_no_unk_no_byte_for_e_acute, "could be dropped"),
        (_no_meta_piece, "▁ is not in the vocabulary"),
        (_stripping_added_token, "matching options"),
        (_truncating, "truncates"),
        (_other_normalizer, "not the Llama/Mistral layout"),
    ],
)
def test_layouts_it_cannot_reproduce_are_refused(file_layout: Tokenizer, edit, reason: str) -> None:
    tok = _edited(file_layout, edit)
    enc, why = SegmentEncoder.build(tok)
    assert enc is None and reason in why
    # where the refusal is needed, a text shows it: segment ids would differ from the tokenizer's
    text = {_crossing_merge: "this is a test", _no_unk_no_byte_for_e_acute: "a é a"}.get(edit)
    if text is not None:
        unchecked = SegmentEncoder(tok, "all", {})
        assert unchecked.encode(text) != tok.encode(text, add_special_tokens=False).ids


def test_split_special_tokens_is_refused(file_layout: Tokenizer) -> None:
    tok = Tokenizer.from_str(file_layout.to_str())
    tok.encode_special_tokens = True  # what transformers sets for split_special_tokens=True
    enc, why = SegmentEncoder.build(tok)
    assert enc is None and "special tokens are encoded as text" in why


def test_byte_level_tokenizers_use_the_tokenizer() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.normalizer = normalizers.NFC()
    tok.train_from_iterator(
        ["a byte level tokenizer"] * 10, trainers.BpeTrainer(vocab_size=300, show_progress=False)
    )
    enc, why = SegmentEncoder.build(tok)
    assert enc is None and "not the Llama/Mistral layout" in why
    codec = HFCodec(PreTrainedTokenizerFast(tokenizer_object=tok))
    assert codec.fast is None and codec.encode_batch(["a byte"]) == [codec.encode("a byte")]


def test_the_codec_checks_samples_and_falls_back_on_a_wrong_id(file_layout: Tokenizer, caplog) -> None:
    """Fault injection: a wrong cache entry must be caught by the codec's comparison, which then returns the
    tokenizer's ids and stops using the cache for good."""
    hf = PreTrainedTokenizerFast(tokenizer_object=file_layout, bos_token="<s>", eos_token="</s>")
    codec = HFCodec(hf)
    assert codec.fast is not None
    texts = [f"text number {i} about patients" for i in range(CHECK_FIRST + 2 * CHECK_EVERY)]
    want = [hf.encode(t, add_special_tokens=False) for t in texts]
    assert codec.encode_batch(texts) == want
    assert codec.fast_checks == CHECK_FIRST + 2 and codec.fast_mismatches == 0  # the first ones, then 1 in N
    codec._fast_encoded = CHECK_EVERY * 10  # the next text is a sampled one
    codec.fast._cache["▁patients"] = [0]  # the fault
    with caplog.at_level(logging.ERROR):
        assert codec.encode(texts[5]) == want[5]
    assert codec.fast is None and codec.fast_mismatches == 1 and "other ids than the tokenizer" in caplog.text
    assert codec.encode_batch(texts[:3]) == want[:3]
    assert HFCodec(hf, fast=False).fast is None


def test_texts_of_new_words_go_to_the_tokenizer_and_the_cache_keeps_learning(file_layout: Tokenizer) -> None:
    """Mostly-unseen words are slower through the cache than through the tokenizer: once the recent share of
    missed segments is high, texts go to the tokenizer (one in LEARN_EVERY still through the cache); when the
    words start repeating, the share falls and the cache takes over again. The ids never change."""
    enc, _ = SegmentEncoder.build(file_layout)
    assert enc is not None
    rng = random.Random(4)
    letters = "abcdefghijklmnopqrstuvwxyz"

    def check(text: str) -> None:
        assert enc.encode(text) == file_layout.encode(text, add_special_tokens=False).ids

    for _ in range(200):  # every word new
        check(" ".join("".join(rng.choices(letters, k=9)) for _ in range(30)))
    assert enc.miss_share > fast_encode.MISS_LIMIT
    assert (
        enc.texts_by_tokenizer > 150 and enc.texts - enc.texts_by_tokenizer >= 200 // fast_encode.LEARN_EVERY
    )
    words = ["".join(rng.choices(letters, k=9)) for _ in range(50)]
    before = enc.texts_by_tokenizer
    for _ in range(600):  # a small vocabulary, learned through the sampled texts
        check(" ".join(rng.choices(words, k=30)))
    assert enc.miss_share < 0.1 and enc.texts_by_tokenizer - before < 500
    tail = enc.texts_by_tokenizer
    for _ in range(50):
        check(" ".join(rng.choices(words, k=30)))
    assert enc.texts_by_tokenizer == tail  # back on the cache
