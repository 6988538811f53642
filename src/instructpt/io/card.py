"""Dataset cards: a ``README.md`` in the HF dataset repository convention for synthesize and templify outputs.

The YAML header's ``configs`` / ``data_files`` point at ``data/*`` only, so ``datasets.load_dataset(DIR)`` reads
the records and never the run's own ``stats.json``, ``manifest.json`` or ``rejects/``; the directory can be pushed
to a hub as it is. The body gives the lineage (inputs, synthesizer and its revision, template inventory, seed, all
from the run's manifest) and the counts (from ``stats.json``). The license is the source corpus's: it is left as
``other`` with a line saying so, for the user to set before sharing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructpt._version import __version__

CARD_STAGES = ("synthesize", "templify")
WHAT = {"synthesize": "instruction-response pairs synthesized from a raw corpus (one record per text)",
        "templify": "instruction-augmented pre-training documents (raw texts with their pairs rendered as text)"}  # fmt: skip


def dataset_card(root: Path, stage: str, counts: dict[str, Any]) -> str:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    fp: dict[str, Any] = manifest.get("fingerprint", {})
    suffix = "parquet" if any((root / "data").glob("*.parquet")) else "jsonl"
    header = ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
              f"    path: data/*.{suffix}\nlicense: other\ntags:\n- instructpt\n- instruction-pretraining\n"
              "- synthetic\n---\n\n")  # fmt: skip
    lineage = {k: fp[k] for k in ("inputs", "model", "engine", "revision", "seed", "rounds", "inventory",
                                  "prompt_format", "sampling") if k in fp}  # fmt: skip
    rows = "\n".join(f"| {k} | {v:,} |" if isinstance(v, int) else f"| {k} | {v} |" for k, v in counts.items()
                     if isinstance(v, int | float | str))  # fmt: skip
    return (
        header + f"# {root.resolve().name}\n\n{WHAT.get(stage, stage)}, written by instructpt {__version__} "
        f"(`instructpt {stage}`).\n\n"
        "License: that of the source corpus (set the `license` field above before sharing).\n\n"
        f'```python\nfrom datasets import load_dataset\nds = load_dataset("path/to/{root.resolve().name}", '
        'split="train")\n```\n\n'
        f"## Lineage\n\n```json\n{json.dumps(lineage, indent=2, sort_keys=True, default=str)}\n```\n\n"
        f"## Counts\n\n| counter | value |\n|---|---:|\n{rows}\n\n"
        "Records the stage could not use are in `rejects/` (not part of the dataset), with their reason.\n"
    )


def write_card(root: Path, stage: str, counts: dict[str, Any]) -> None:
    """Write ``root/README.md`` for a stage that makes a dataset (unless the bytes are there already)."""
    from instructpt.io.rundir import atomic_write

    if stage not in CARD_STAGES or not (root / "manifest.json").exists():
        return
    text = dataset_card(root, stage, counts).encode("utf-8")
    path = root / "README.md"
    if not path.exists() or path.read_bytes() != text:
        atomic_write(path, text)
