"""pack and mix: tokenize once, mix by tokens, read exact blocks; the from-scratch, domain and vanilla presets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from instructpt.engines.config import EngineConfig, RulesOptions
from instructpt.errors import ConfigError, InputError
from instructpt.io.tokens import PackedSource, token_dtype
from instructpt.mix.reader import MixtureReader
from instructpt.mix.run import MixConfig, mix
from instructpt.pack.run import PackConfig, pack
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

pytestmark = pytest.mark.slow

SENTENCES = [
    "Rivers carry water to the sea.", "However, deserts have little rain.", "Therefore, few plants grow there.",
    "The old bridge crosses the valley.", "In other words, travel is slow.", "Moreover, the roads are narrow.",
]  # fmt: skip


def _doc(i: int) -> str:
    return f"Report {i}\n\n" + " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(3 + i % 4))


def _corpus(path: Path, n: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": _doc(i)}) + "\n" for i in range(n)))
    return path


def _pack(tmp: Path, name: str, inputs: list[Path], tok: Path, **kw) -> Path:
    out = tmp / "packed" / name
    kw.setdefault("id_field", "id")
    pack(
        PackConfig(inputs=[str(p) for p in inputs], output=str(out), tokenizer=str(tok), progress=False, **kw)
    )
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_synth: Path) -> dict[str, Path]:
    """raw corpus -> synthesize (rules, --fraction 0.5) -> templify -> packs of raw, augmented, collection, chat."""
    tmp = tmp_path_factory.mktemp("packmix")
    raw = _corpus(tmp / "raw" / "docs.jsonl")
    pairs, aug = tmp / "pairs", tmp / "aug"
    synthesize(SynthesizeConfig(inputs=[str(raw)], output=str(pairs), id_field="id", fraction=0.5, progress=False,
                                engine=EngineConfig(name="rules")))  # fmt: skip
    templify(TemplifyConfig(inputs=[str(pairs)], output=str(aug), progress=False))
    coll = tmp / "collection.jsonl"
    coll.write_text("".join(json.dumps({"context": _doc(i), "QA_list": [{"Q": f"What is report {i}?", "A": "A report."}]})
                            + "\n" for i in range(20)))  # fmt: skip
    chat = tmp / "chat.jsonl"
    chat.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Say {i}."},
                                                     {"role": "assistant", "content": f"{i}, as asked."}]}) + "\n"
                            for i in range(30)))  # fmt: skip
    return {
        "tmp": tmp, "raw_corpus": raw, "pairs": pairs, "tok": tiny_synth,
        "raw": _pack(tmp, "raw", [raw], tiny_synth, shard_size=16),
        "augmented": _pack(tmp, "augmented", [aug], tiny_synth, source_type="augmented"),
        "collection": _pack(tmp, "collection", [coll], tiny_synth, source_type="collection", id_field=None),
        "general": _pack(tmp, "general", [chat], tiny_synth, source_type="chat", id_field=None),
    }  # fmt: skip


def test_pack_writes_each_document_once_with_its_special_tokens(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built["tok"])
    src = PackedSource.open(built["raw"])
    assert (
        src.header["dtype"] == "<u2"
        and src.header["special_tokens"]["add_bos"]
        and src.header["docs_out"] == 60
    )
    texts = {
        json.loads(line)["id"]: json.loads(line)["text"]
        for line in built["raw_corpus"].read_text().splitlines()
    }
    n = 0
    for shard in src.shards:
        for row, (a, b) in zip(shard.documents, zip(shard.offsets[:-1], shard.offsets[1:])):
            want = [
                tok.bos_token_id,
                *tok.encode(texts[row["id"]], add_special_tokens=False),
                tok.eos_token_id,
            ]
            assert shard.tokens[a:b].tolist() == want and row["lineage"] == [row["id"]]
            n += 1
    assert n == 60 and len(src.shards) == 4  # --shard-size 16


def test_pack_in_worker_processes_writes_the_same_bytes(built: dict[str, Path], tmp_path: Path) -> None:
    again = _pack(tmp_path, "raw2", [built["raw_corpus"]], built["tok"], shard_size=16, workers=2)
    for name in ("shard-00000.tokens", "shard-00003.offsets.npy", "shard-00002.jsonl"):
        assert (again / "data" / name).read_bytes() == (built["raw"] / "data" / name).read_bytes()


def test_bad_records_are_rejected_with_reasons(built: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine text here."}\nnot json\n{"id": "b", "text": ""}\n'
                   '{"id": "c", "text": "' + "long " * 200 + '"}\n')  # fmt: skip
    out = tmp_path / "p"
    s = pack(PackConfig(inputs=[str(bad)], output=str(out), tokenizer=str(built["tok"]), id_field="id",
                        max_doc_tokens=50, progress=False))  # fmt: skip
    assert (
        s.by["rejects"] == {"invalid_json": 1, "empty_text": 1, "too_many_tokens": 1}
        and s.counts["docs_out"] == 1
    )
    coll = tmp_path / "coll.jsonl"
    coll.write_text(
        '{"context": "x y z"}\n{"QA_list": []}\n{"context": "ok text", "QA_list": [{"Q": "q?", "A": "a"}]}\n'
    )
    s = pack(PackConfig(inputs=[str(coll)], output=str(tmp_path / "c"), tokenizer=str(built["tok"]),
                        source_type="collection", progress=False))  # fmt: skip
    assert s.by["rejects"] == {"missing_pairs": 1, "missing_context": 1} and s.counts["docs_out"] == 1
    with pytest.raises(InputError, match="does not fit 32-bit"):
        token_dtype(2**33)


def test_augmented_documents_keep_their_lineage_and_fraction_is_stable(
    built: dict[str, Path], tmp_path: Path
) -> None:
    rows = [r for sh in PackedSource.open(built["augmented"]).shards for r in sh.documents]
    with_pairs = [r for r in rows if r["n_pairs"]]
    assert with_pairs and all(set(r["lineage"]) <= {f"r{i}" for i in range(60)} for r in rows)
    stats = json.loads((built["pairs"] / "stats.json").read_text())["counts"]
    assert 10 < stats["docs_passed_through"] < 50  # about half, by a hash of the id
    again = tmp_path / "again"  # other shard size, two rules workers: the same documents picked
    synthesize(SynthesizeConfig(inputs=[str(built["raw_corpus"])], output=str(again), id_field="id", fraction=0.5,
                                shard_size=7, progress=False, engine=EngineConfig(name="rules", rules=RulesOptions(workers=2))))  # fmt: skip

    def picked(root: Path) -> set[str]:
        return {json.loads(line)["id"] for p in (root / "data").glob("*.jsonl") for line in p.read_text().splitlines()
                if json.loads(line)["finish_reason"] != "not_selected"}  # fmt: skip

    assert picked(again) == picked(built["pairs"])


def _mix(tmp: Path, name: str, *sources: str, **kw) -> Path:
    out = tmp / "mixes" / name
    mix(MixConfig(output=str(out), sources=list(sources), seq_len=kw.pop("seq_len", 16), **kw))
    return out


def test_manifest_counts_equal_the_blocks_and_the_same_seed_gives_the_same_blocks(
    built: dict[str, Path],
) -> None:
    tmp = built["tmp"]
    a = _mix(tmp, "plain", f"raw={built['raw']}:0.7", f"general={built['general']}:0.3", tokens=3000)
    manifest = json.loads((a / "mixture.json").read_text())
    reader = MixtureReader(a, seq_len=16)
    stream = np.concatenate([reader.block(k)[:-1] for k in range(reader.num_blocks)])
    assert reader.total_tokens == manifest["train"]["tokens"] == sum(manifest["tokens_by_source"].values())
    assert len(stream) == reader.num_blocks * 16 and reader.num_blocks == (reader.total_tokens - 1) // 16
    by_source = {s["name"]: s["train_tokens"] for s in manifest["sources"]}
    assert abs(by_source["raw"] / sum(by_source.values()) - 0.7) < 0.05  # shares by tokens
    block, starts = reader.block(3, with_doc_starts=True)
    assert len(block) == 17 and all(0 <= s < 17 for s in starts)
    b = _mix(tmp, "plain-again", f"raw={built['raw']}:0.7", f"general={built['general']}:0.3", tokens=3000)
    assert (a / "train.npy").read_bytes() == (b / "train.npy").read_bytes()
    val = MixtureReader(a, split="val", seq_len=16)
    train_docs = {tuple(r) for r in reader.refs.tolist()}
    assert val.num_blocks >= 1 and not train_docs & {tuple(r) for r in val.refs.tolist()}  # disjoint


def test_from_scratch_replaces_raw_documents_and_vanilla_matches_its_budget(built: dict[str, Path]) -> None:
    tmp = built["tmp"]
    before = {p: p.stat().st_mtime_ns for p in built["raw"].rglob("*")}
    ipt = _mix(tmp, "ipt", f"raw={built['raw']}", f"augmented={built['augmented']}",
               f"collection={built['collection']}", preset="from-scratch", replace_fraction=0.3)  # fmt: skip
    info = json.loads((ipt / "mixture.json").read_text())["preset_info"]
    covered = 60 - info["raw_without_augmented"]  # raw documents that have an augmented version
    assert info["raw_replaced"] >= min(18, covered) > 0 and info["augmented_unmatched"] == 0
    reader = MixtureReader(ipt, seq_len=16)
    names = [s["name"] for s in reader.manifest["sources"]]
    raw_src = PackedSource.open(built["raw"])
    aug_src = PackedSource.open(built["augmented"])
    refs = {
        *map(tuple, reader.refs.tolist()),
        *map(tuple, MixtureReader(ipt, split="val", seq_len=16).refs.tolist()),
    }
    raw_ids = {raw_src.shards[h].documents[d]["id"] for s, h, d in refs if names[s] == "raw"}
    aug_lineage = {
        x for s, h, d in refs if names[s] == "augmented" for x in aug_src.shards[h].documents[d]["lineage"]
    }
    assert (
        aug_lineage and not raw_ids & aug_lineage
    )  # never a raw document together with its augmented version
    van = _mix(tmp, "vanilla", f"raw={built['raw']}", preset="vanilla", pair_with=str(ipt))
    v = json.loads((van / "mixture.json").read_text())["train"]["tokens"]
    longest = max(int(s.lengths.max()) for s in raw_src.shards)
    assert 0 <= v - reader.total_tokens < longest  # the same budget, within one document (< one block here)
    assert {p: p.stat().st_mtime_ns for p in built["raw"].rglob("*")} == before  # mixing re-tokenizes nothing


def test_domain_preset_mixes_one_to_one_by_tokens(built: dict[str, Path]) -> None:
    dom = _mix(built["tmp"], "domain", f"augmented={built['augmented']}", f"general={built['general']}",
               preset="domain", val_fraction=0.0)  # fmt: skip
    t = json.loads((dom / "mixture.json").read_text())["tokens_by_source"]
    assert t["general"] >= t["augmented"] and t["general"] - t["augmented"] < 40  # up-sampled to 1:1


def test_refusals(built: dict[str, Path], tmp_path: Path) -> None:
    from tests.tinymodel import train_llama_layout_tokenizer

    other_tok = tmp_path / "tok"
    train_llama_layout_tokenizer(other_tok, [_doc(i) for i in range(50)], vocab_size=400)
    other = _pack(tmp_path, "other", [built["raw_corpus"]], other_tok)
    with pytest.raises(InputError, match="packed with tokenizer .* pack them with one"):
        _mix(tmp_path, "x", f"raw={built['raw']}", f"other={other}")
    with pytest.raises(ConfigError, match="from-scratch needs the sources raw, augmented"):
        _mix(tmp_path, "y", f"raw={built['raw']}", preset="from-scratch")
    (tmp_path / "u").mkdir()
    renamed = _pack(
        tmp_path, "renamed", [_renamed(built["raw_corpus"], tmp_path / "u" / "r.jsonl")], built["tok"]
    )
    with pytest.raises(InputError, match="name raw documents that are not in the raw source"):
        _mix(tmp_path, "z", f"raw={renamed}", f"augmented={built['augmented']}", preset="from-scratch")


def _renamed(corpus: Path, out: Path) -> Path:
    out.write_text(corpus.read_text().replace('"id": "r', '"id": "other-'))
    return out


def test_corrupted_or_truncated_token_files_are_found(built: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "raw"
    shutil.copytree(built["raw"], copy)
    tokens = copy / "data" / "shard-00001.tokens"
    data = bytearray(tokens.read_bytes())
    data[10] ^= 0xFF
    tokens.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not hash to what was written"):
        _mix(tmp_path, "c", f"raw={copy}")
    ok = _mix(tmp_path, "c2", f"raw={copy}", verify=False)  # the size still matches: found only by the hash
    tokens.write_bytes(bytes(data[:-4]))
    with pytest.raises(InputError, match="truncated or replaced"):
        MixtureReader(ok, seq_len=16)


def test_the_command_line_and_the_documented_counters(built: dict[str, Path], tmp_path: Path, capsys) -> None:
    import re

    from instructpt import cli

    rc = cli.main(
        ["mix", "-o", str(tmp_path / "m"), "--sources", f"raw={built['raw']}:x2", "--seq-len", "16", "-q"]
    )
    assert rc == 0 and "instructpt mix: docs_out=" in capsys.readouterr().err
    counts = json.loads((tmp_path / "m" / "stats.json").read_text())
    doc = set(re.findall(r"`([a-z_<>]+)`", (Path(__file__).parents[2] / "docs" / "stats.md").read_text()))
    packed = json.loads((built["raw"] / "stats.json").read_text())
    for stats in (counts, packed):
        assert set(stats["counts"]) | set(stats["by"]) <= doc


def test_pack_resumes_shard_by_shard(built: dict[str, Path], tmp_path: Path) -> None:
    out = _pack(tmp_path, "raw", [built["raw_corpus"]], built["tok"], shard_size=16)
    again = pack(PackConfig(inputs=[str(built["raw_corpus"])], output=str(out), tokenizer=str(built["tok"]),
                            id_field="id", shard_size=16, progress=False))  # fmt: skip
    assert again.run.shards_resumed == 4 and again.run.done_this_run == 0  # nothing to do
    before = (out / "data" / "shard-00002.tokens").read_bytes()
    (out / "done" / "shard-00002").unlink()  # as if the run had stopped while writing shard 2
    (out / "data" / "shard-00002.tokens").write_bytes(b"half")
    resumed = pack(PackConfig(inputs=[str(built["raw_corpus"])], output=str(out), tokenizer=str(built["tok"]),
                              id_field="id", shard_size=16, progress=False))  # fmt: skip
    assert resumed.run.shards_resumed == 3 and resumed.run.done_this_run == 16
    assert (out / "data" / "shard-00002.tokens").read_bytes() == before
