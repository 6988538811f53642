"""HF dataset inputs with a config (subset) name, a revision and data_files, offline: a local dataset repository
(data files and a README.md whose YAML header declares ``configs:``) is read as a hub id is, through
``datasets.load_dataset``; a hub id that is not cached while offline fails at once with the hint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instructpt.io.hf import DatasetSpec, is_dataset_repo
from instructpt.io.inputs import input_files, resolve_inputs
from instructpt.io.readers import ReadOptions, read_docs
from instructpt.records import RawDoc

datasets = pytest.importorskip("datasets")

CARD = """---
configs:
- config_name: en
  data_files:
  - split: train
    path: data/en/*.jsonl
- config_name: fr
  data_files:
  - split: train
    path: data/fr/*.jsonl
---
# A corpus in two languages
"""


def _repo(root: Path) -> Path:
    repo = root / "webcorpus"
    for lang, files in {"en": [["Rivers carry water.", "Deserts are dry."], ["Oases matter."]],
                        "fr": [["Les rivières coulent."]]}.items():  # fmt: skip
        for k, texts in enumerate(files):
            path = repo / "data" / lang / f"part-{k}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = [{"text": t, "metadata": {"lang": lang, "n": i}} for i, t in enumerate(texts)]
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (repo / "README.md").write_text(CARD)
    return repo


def _texts(repo: Path, **spec) -> list[RawDoc]:
    options = ReadOptions(dataset=DatasetSpec(**spec), keep_fields=("metadata",))
    return [d for d in read_docs([str(repo)], options) if isinstance(d, RawDoc)]


def test_a_local_dataset_repository_is_read_by_config_and_data_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert is_dataset_repo(repo) and not is_dataset_repo(repo / "data")
    assert resolve_inputs([str(repo)]) == [("hf_repo", str(repo))]
    en = _texts(repo, config="en")
    assert [d.text for d in en] == ["Rivers carry water.", "Deserts are dry.", "Oases matter."]
    assert [d.id for d in en] == ["webcorpus/en/train:0", "webcorpus/en/train:1", "webcorpus/en/train:2"]
    assert en[0].fields == {"metadata": {"lang": "en", "n": 0}}
    assert [d.text for d in _texts(repo, config="fr")] == ["Les rivières coulent."]
    one = _texts(repo, config="en", data_files=("data/en/part-1.jsonl",))
    assert [d.text for d in one] == ["Oases matter."]
    # every file of the repository is recorded, so a resumed run sees a changed one
    assert {Path(p).name for p in input_files([str(repo)])} == {"README.md", "part-0.jsonl", "part-1.jsonl"}


def test_the_options_reach_load_dataset(tmp_path: Path, monkeypatch) -> None:
    repo, seen = _repo(tmp_path), []
    real = datasets.load_dataset

    def spy(path, **kw):
        seen.append(kw)
        return real(path, **kw)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    _texts(repo, config="en", revision="main", data_files=("data/en/part-0.jsonl",))
    assert seen == [{"name": "en", "revision": "main", "data_files": ["data/en/part-0.jsonl"], "split": "train",
                     "streaming": True}]  # fmt: skip


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "instructpt", "synthesize", *args, "-q"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_the_command_line_takes_config_revision_and_data_files(tmp_path: Path) -> None:
    repo, out = _repo(tmp_path), tmp_path / "out"
    proc = _cli(str(repo), "-o", str(out), "--hf-config", "en", "--hf-data-files", "data/en/part-0.jsonl",
                "--hf-revision", "main")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "docs_in=2" in proc.stderr
    fp = json.loads((out / "manifest.json").read_text())["fingerprint"]
    assert (fp["hf_config"], fp["hf_revision"], fp["hf_data_files"]) == (
        "en",
        "main",
        ["data/en/part-0.jsonl"],
    )
    rows = [json.loads(line) for line in (out / "data" / "shard-00000.jsonl").read_text().splitlines()]
    assert rows[0]["fields"] == {"metadata": {"lang": "en", "n": 0}}
    # a repository with several configs and none named: one line that says which flag names one
    proc = _cli(str(repo), "-o", str(tmp_path / "o2"))
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1
    assert "['en', 'fr']" in proc.stderr and "--hf-config" in proc.stderr


def test_an_offline_hub_dataset_not_in_the_cache_fails_with_the_hint(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = _cli("org/not-cached-corpus", "-o", str(tmp_path / "o"), "--hf-config", "sample-10BT", env=env)
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "HF_HUB_OFFLINE=1 is set" in proc.stderr
    assert "hf download --repo-type dataset org/not-cached-corpus" in proc.stderr
