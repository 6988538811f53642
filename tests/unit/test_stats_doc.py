"""Every counter and breakdown a stage writes into stats.json is explained in docs/stats.md."""

from __future__ import annotations

import re
from pathlib import Path

from instructpt.decontaminate.run import DecontaminateConfig, decontaminate
from instructpt.engines.config import EngineConfig
from instructpt.filter.run import FilterConfig, filter_pairs
from instructpt.synthesizer.run import SynthesizeConfig, synthesize
from instructpt.templates.run import TemplifyConfig, templify

DOC = Path(__file__).resolve().parents[2] / "docs" / "stats.md"


def test_every_counter_written_is_documented(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    long = " ".join(f"Sentence {i} is about rivers. However, it is short." for i in range(60))
    corpus.write_text(
        '{"id": "a", "text": "Rivers carry water to the sea. However, deserts have little rain."}\n'
        "not json\n"
        f'{{"id": "b", "text": "{long}"}}\n'
    )
    s = synthesize(
        SynthesizeConfig(inputs=[str(corpus)], output=str(tmp_path / "p"), id_field="id", progress=False,
                         engine=EngineConfig(name="rules", max_model_len=200, max_new_tokens=16))
    )  # fmt: skip
    t = templify(TemplifyConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "a"), progress=False))
    items = tmp_path / "eval.txt"
    items.write_text("Rivers carry water to the sea. However, deserts have little rain.\n")
    d = decontaminate(DecontaminateConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "d"),
                                          against=[str(items)], cache_dir="", progress=False))  # fmt: skip
    documented = set(re.findall(r"`([a-z_<>]+)`", DOC.read_text(encoding="utf-8")))
    fl = filter_pairs(FilterConfig(inputs=[str(tmp_path / "p")], output=str(tmp_path / "fl"), progress=False,
                                   min_grounding=1.0))  # fmt: skip
    for summary in (s, t, d, fl):
        written = set(summary.counts) | set(summary.by) | set(summary.derived)
        written |= {k.replace(f"{summary.run.unit}_", "<unit>_") for k in summary.run.to_dict()}
        assert written - documented == set(), summary.stage
    assert {"rejected", "pairs_out", "chains"} <= set(s.counts) and "layouts" in t.by  # exercised
    assert d.counts["contaminated_docs"] >= 1 and "contamination" in d.by
