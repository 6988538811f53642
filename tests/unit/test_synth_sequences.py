"""train-synthesizer's data: the collection reader's rejects and source names, few-shot packing with pair-only
labels (decoded back exactly), the inference prompt as a token prefix of the training sequence, over-long
examples, and batches that do not depend on the number of ranks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from instructpt.io.collection import CollectionExample, CollectionFields, read_collection
from instructpt.records import QAPair, RawDoc, Reject
from instructpt.train_synthesizer import sequences as seqs
from instructpt.wire import EOS, serialize_pairs
from tests.tinymodel import make_example, train_llama_layout_tokenizer

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "instructpt" / "resources" / "ft_sample"


@pytest.fixture(scope="module")
def llama_tok(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(5)
    texts = [json.dumps(r) for p in sorted(SAMPLE.rglob("*.jsonl")) for r in p.read_text().splitlines()]
    texts += [make_example(rng)[0] for _ in range(200)]
    return train_llama_layout_tokenizer(tmp_path_factory.mktemp("llama-tok"), texts)


def _examples() -> list[CollectionExample]:
    got = list(read_collection([str(SAMPLE)], CollectionFields(), "test"))
    assert all(isinstance(e, CollectionExample) for e in got)
    return got  # type: ignore[return-value]


def test_the_shipped_sample_reads_with_sources_from_folders_and_all_four_conventions() -> None:
    examples = _examples()
    assert len(examples) == 680 and len({e.source for e in examples}) == 6
    assert {e.source for e in examples} >= {"town_notes", "timetable_exam"}
    questions = [p.question for e in examples for p in e.pairs]
    options = [q for q in questions if "\nOptions:\n- " in q]
    cot = [q for q in questions if q.endswith("\nLet's think step by step.")]
    both = [q for q in options if q in cot]
    plain = [q for q in questions if q not in options and q not in cot]
    assert options and cot and both and plain
    cot_answers = [p.answer for e in examples for p in e.pairs if p.question in cot]
    assert all("\nTherefore, the answer is " in a for a in cot_answers)


def test_bad_rows_are_rejected_with_reasons_and_kept_as_read(tmp_path: Path) -> None:
    rows = [
        {"context": "Fine text.", "QA_list": [{"Q": "What?", "A": "Fine."}], "source": "a"},
        {"QA_list": [{"Q": "What?", "A": "x"}]},
        {"context": "Text.", "QA_list": []},
        {"context": "Text.", "QA_list": [{"Q": " ", "A": "x"}]},
        {"context": "Text.", "QA_list": [{"Q": "What?", "A": ""}]},
        {"context": 7, "QA_list": [{"Q": "What?", "A": "x"}]},
        {"context": "Text <QUE> inside.", "QA_list": [{"Q": "What?", "A": "x"}]},
        {"context": "Text.", "QA_list": [{"Q": "What?", "A": "ends</s>"}]},
        {"context": "Text.", "QA_list": "not a list"},
        {"context": "Text.", "answers": []},
        [1, 2],
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    got = list(read_collection([str(path)], CollectionFields(), "train-synthesizer"))
    ok = [g for g in got if isinstance(g, CollectionExample)]
    bad = [g for g in got if isinstance(g, Reject)]
    assert len(ok) == 1 and ok[0].source == "a" and ok[0].pairs == (QAPair("What?", "Fine."),)
    assert [r.reason for r in bad] == ["missing_context", "no_pairs", "empty_question", "empty_answer",
                                       "context_not_string", "marker_in_text", "marker_in_text", "malformed_pairs",
                                       "missing_pairs", "not_an_object", "invalid_json"]  # fmt: skip
    assert json.loads(bad[0].record) == rows[1] and all(r.stage == "train-synthesizer" for r in bad)


def test_field_names_are_options_and_sources_fall_back_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "coll" / "squad" / "shard").mkdir(parents=True)
    row = {"passage": "Some text.", "qas": [{"question": "Q?", "answer": "A."}]}
    (tmp_path / "coll" / "squad" / "shard" / "0.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "coll" / "top.jsonl").write_text(json.dumps(row) + "\n")
    fields = CollectionFields(
        context_field="passage", pairs_field="qas", question_key="question", answer_key="answer"
    )
    got = list(read_collection([str(tmp_path / "coll")], fields, "t"))
    assert sorted(g.source for g in got) == ["squad", "top"]  # type: ignore[union-attr]
    assert all(isinstance(g, CollectionExample) and g.pairs == (QAPair("Q?", "A."),) for g in got)


@pytest.mark.parametrize("layout", ["byte-level", "llama"])
def test_label_spans_decode_to_the_source_pairs_exactly(layout: str, tiny_tokenizer, llama_tok) -> None:
    tok = tiny_tokenizer if layout == "byte-level" else llama_tok

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    examples = _examples()[::5]
    encoded = [seqs.encode(e, encode, 512, "truncate") for e in examples]
    assert all(isinstance(e, seqs.Encoded) and not e.truncated for e in encoded)
    packed = seqs.pack(encoded, 512, 0, seqs.PackStats())  # type: ignore[arg-type]
    assert sum(packed.examples) == len(examples) and max(np.diff(packed.offsets)) <= 512
    assert sum(packed.examples > 1) > len(packed) // 2  # few-shot: most sequences hold several examples
    targets = {serialize_pairs(e.pairs) + EOS: e for e in examples}
    seen = 0
    for k in range(len(packed)):
        ids, mask = packed.ids(k), packed.loss_mask[packed.offsets[k] : packed.offsets[k + 1]]
        assert mask[0] == 0  # a sequence starts with a context block
        labels = packed.labels(k)
        assert all(labels[i] == ids[i] for i in np.flatnonzero(mask)) and (labels[mask == 0] == -100).all()
        # each run of label tokens is one example's target: its pairs and </s>, nothing of its context
        starts = np.flatnonzero(np.diff(np.concatenate([[0], mask])) == 1)
        ends = np.flatnonzero(np.diff(np.concatenate([mask, [0]])) == -1) + 1
        sources = set()
        for a, b in zip(starts, ends):
            text = tok.decode(ids[a:b].tolist(), skip_special_tokens=False)
            assert text in targets, text
            sources.add(targets[text].source)
            seen += 1
        assert len(sources) == 1  # one source per sequence
    assert seen == len(examples)


def test_the_synthesize_prompt_is_a_token_prefix_of_the_training_sequence(tiny_tokenizer, llama_tok) -> None:
    from instructpt.engines.tokenizer import HFCodec
    from instructpt.synthesizer.chains import make_items
    from instructpt.wire import encode_example

    for tok in (tiny_tokenizer, llama_tok):
        codec = HFCodec(tok)
        first, second = _examples()[0], _examples()[1]
        enc = [seqs.encode(e, codec.encode, 1024, "truncate") for e in (first, second)]
        packed = seqs.pack(enc, 1024, 0, seqs.PackStats())  # type: ignore[arg-type]
        ids = packed.ids(0).tolist()
        lead = first if ids[: len(enc[0].ctx)] == enc[0].ctx else second  # the seeded order picks the first
        other = second if lead is first else first
        items = make_items(
            [RawDoc(lead.id, lead.context, "s"), RawDoc(other.id, other.context, "s")], codec, 4096
        )
        assert ids[: len(items[0].ctx_ids or [])] == items[0].ctx_ids  # zero-shot prompt of synthesize
        # the M-shot prompt after the first example (its pairs, as chains encode them), then the second context
        history = sum(encode_example(codec.encode, lead.context, serialize_pairs(lead.pairs)), [])
        assert ids[: len(history) + len(items[1].ctx_ids or [])] == history + (items[1].ctx_ids or [])


def test_an_overlong_example_loses_context_never_pairs(tiny_tokenizer) -> None:
    def encode(text: str) -> list[int]:
        return tiny_tokenizer.encode(text, add_special_tokens=False)

    pairs = (QAPair("What feeds the garden?", "The river."),)
    long = CollectionExample("x", "s", " ".join(["The small river feeds the garden."] * 60), pairs)
    cut = seqs.encode(long, encode, 128, "truncate")
    assert isinstance(cut, seqs.Encoded) and cut.truncated and len(cut) <= 128
    assert tiny_tokenizer.decode(cut.target) == serialize_pairs(pairs) + EOS
    assert tiny_tokenizer.decode(cut.ctx).startswith("<s> <CON> The small river")
    assert seqs.encode(long, encode, 128, "skip") == "too_long"
    huge = CollectionExample("y", "s", "Short.", (QAPair("Q " * 200, "A."),))
    assert seqs.encode(huge, encode, 128, "truncate") == "pairs_too_long"


def test_batches_are_the_same_whatever_the_number_of_ranks(tiny_tokenizer) -> None:
    def encode(text: str) -> list[int]:
        return tiny_tokenizer.encode(text, add_special_tokens=False)

    enc = [seqs.encode(e, encode, 256, "truncate") for e in _examples()[:120]]
    packed = seqs.pack(enc, 256, 3, seqs.PackStats())  # type: ignore[arg-type]
    one = seqs.batches(packed, 4, 4, 1, 0, 0, seed=1)
    ranks = [seqs.batches(packed, 4, 1, 2, r, 0, seed=1) for r in range(2)]
    for step in (0, 5, len(packed) // 4 + 1):  # the last crosses into the second epoch
        (ids, labels), *_ = one(step)
        split = [t for r in ranks for t in r(step)]
        for row in range(4):
            got_ids, got_labels = split[row]
            n = int((got_labels >= -100).sum())
            assert n and got_ids[0].tolist() == ids[row, : got_ids.shape[1]].tolist()
            assert got_labels[0].tolist() == labels[row, : got_labels.shape[1]].tolist()
    assert one(0)[0][0].tolist() != one(len(packed) // 4)[0][0].tolist()  # epochs are reshuffled


def test_sources_are_named_by_a_telling_folder_whatever_the_input_names(tmp_path: Path) -> None:
    coll = tmp_path / "coll"
    for name in ("squad", "race"):
        (coll / name / "shard").mkdir(parents=True)
        row = {"context": f"{name} text.", "QA_list": [{"Q": "Q?", "A": "A."}]}
        (coll / name / "shard" / "00000.jsonl").write_text(json.dumps(row) + "\n")

    def sources(inputs: list[str]) -> list[str]:
        return sorted(g.source for g in read_collection(inputs, CollectionFields(), "t"))  # type: ignore[union-attr]

    want = ["race", "squad"]
    assert sources([str(coll)]) == want  # the collection directory
    assert sources([str(coll / "squad"), str(coll / "race")]) == want  # a directory per dataset
    assert sources([str(coll / n / "shard" / "00000.jsonl") for n in ("squad", "race")]) == want  # the files


def test_a_null_pairs_field_falls_through_to_the_next_known_field() -> None:
    from instructpt.io.collection import parse_pairs_row

    row = {"context": "Text.", "QA_list": None, "pairs": [{"question": "Q?", "answer": "A."}]}
    assert parse_pairs_row(row, CollectionFields()) == ("Text.", [QAPair("Q?", "A.")])


def test_lora_trains_the_embeddings_when_wire_tokens_were_added() -> None:
    pytest.importorskip("peft")
    from transformers import MistralConfig, MistralForCausalLM

    from instructpt.train.lora import LoraOptions, add_adapters

    def model():
        return MistralForCausalLM(MistralConfig(vocab_size=128, hidden_size=32, intermediate_size=64,
                                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))  # fmt: skip

    def trainable(m) -> set[str]:
        names = [n for n, p in m.named_parameters() if p.requires_grad and "lora_" not in n]
        return {part for n in names for part in ("embed_tokens", "lm_head") if part in n}

    assert trainable(add_adapters(model(), LoraOptions(r=2))) == set()  # adapters only
    assert {"embed_tokens", "lm_head"} <= trainable(
        add_adapters(model(), LoraOptions(r=2), train_embeddings=True)
    )


def test_a_tokenizer_without_the_wire_tokens_gets_them(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    from instructpt.train_synthesizer.model import add_wire_tokens, fit_model

    raw = Tokenizer(models.BPE(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]", "<|bos|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    raw.train_from_iterator(["The river feeds the garden. <s> and </s> as text."] * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|bos|>", eos_token="<|eos|>")
    model = MistralForCausalLM(MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))  # fmt: skip
    assert len(tok.encode("<s>", add_special_tokens=False)) > 1
    assert add_wire_tokens(tok) == ["<s>", "</s>"]
    fit_model(model, tok)
    assert tok.encode("<s> x</s>", add_special_tokens=False)[0] == tok.bos_token_id
    assert tok.eos_token == "</s>" and model.config.eos_token_id == tok.eos_token_id
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    assert add_wire_tokens(tok) == []  # already there: nothing added the second time


def test_a_dataset_repository_is_read_config_by_config_each_a_source(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    repo = tmp_path / "collection"
    for name, n in (("squad", 2), ("race", 3)):
        (repo / name).mkdir(parents=True)
        rows = [
            {"context": f"{name} text {i}.", "QA_list": [{"Q": f"Q{i}?", "A": f"A{i}."}]} for i in range(n)
        ]
        (repo / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: squad\n  data_files: squad/*.jsonl\n"
        "- config_name: race\n  data_files: race/*.jsonl\n---\n"
    )
    got = list(read_collection([str(repo)], CollectionFields(), "t"))
    assert sorted((g.source, g.context) for g in got) == sorted(  # type: ignore[union-attr]
        [("squad", f"squad text {i}.") for i in range(2)] + [("race", f"race text {i}.") for i in range(3)]
    )
    one = list(read_collection([str(repo)], CollectionFields(hf_config="race"), "t"))
    assert [g.source for g in one] == ["race"] * 3  # type: ignore[union-attr]


def test_the_answer_prompt_is_a_token_prefix_of_the_training_example(tiny_tokenizer, llama_tok) -> None:
    from instructpt.wire import answer_of, prompt_ids, question_body

    for tok in (tiny_tokenizer, llama_tok):

        def encode(text: str, tok=tok) -> list[int]:
            return tok.encode(text, add_special_tokens=False)

        ex = _examples()[0]
        enc = seqs.encode(ex, encode, 1024, "truncate")
        assert isinstance(enc, seqs.Encoded)
        whole = enc.ctx + enc.target
        asked = prompt_ids(encode, ex.context, question_body(ex.pairs[0].question))
        assert whole[: len(asked)] == asked and len(asked) > len(enc.ctx)  # what training taught comes next
        assert prompt_ids(encode, ex.context) == enc.ctx  # the zero-shot prompt: the context block alone
    assert answer_of(" The river. </END>\n\n<QUE> Next? <ANS> x </END>") == "The river."
