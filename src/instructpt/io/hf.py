"""Hugging Face datasets as inputs, and what to say when the hub cannot be reached.

Three kinds of dataset input: a hub id (``org/name``, streamed), a local dataset repository (a directory whose
``README.md`` starts with a YAML header declaring ``configs:``, as a hub dataset repository does; read like a hub
id, offline) and a ``save_to_disk`` directory. Hub ids and repositories take a config (subset) name, a revision
and ``data_files`` (``--hf-config``, ``--hf-revision``, ``--hf-data-files``), passed to
``datasets.load_dataset`` as they are.

With ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) a hub id that is not in the local cache fails at once
with a hint instead of the libraries' own multi-line messages (:func:`offline_hint`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.errors import InputError

README_HEAD_BYTES = 64 * 1024  # the YAML header of a dataset card is read from at most this much


def hub_offline() -> bool:
    """Whether the Hugging Face libraries run offline (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set)."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def offline_hint(name: str, repo_type: str = "model") -> str:
    """One line saying that hub id ``name`` is not in the local cache while the hub is offline, and what to do."""
    download = "hf download" + (" --repo-type dataset" if repo_type == "dataset" else "")
    return (
        f"{repo_type} {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set: download it where "
        f"there is network ({download} {name}) into this cache, or unset HF_HUB_OFFLINE"
    )


def is_dataset_repo(path: Path) -> bool:
    """A local dataset repository: its ``README.md`` opens with a YAML header (``---``) that declares ``configs:``."""
    readme = path / "README.md"
    if not readme.is_file():
        return False
    try:
        with open(readme, "rb") as f:
            head = f.read(README_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    lines = head.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return False
    for line in lines[1:]:
        if line.strip() == "---":
            return False
        if line.startswith("configs:"):
            return True
    return False


@dataclass(frozen=True)
class DatasetSpec:
    """What of a dataset to read: the split, and for hub ids and repositories a config, revision, data files."""

    split: str = "train"
    config: str | None = None
    revision: str | None = None
    data_files: tuple[str, ...] = ()

    def source(self, name: str) -> str:
        """The source name of the dataset's records (``name/split``, ``name/config/split`` with a config)."""
        return "/".join(p for p in (name, self.config, self.split) if p)


def open_dataset(kind: str, location: str, spec: DatasetSpec) -> tuple[Iterable[dict[str, Any]], list[str]]:
    """The rows of a dataset input (``kind``: ``hf_disk``, ``hf_repo`` or ``hf_hub``) and its column names
    (empty when a streamed dataset does not know them before its first row)."""
    try:
        import datasets
    except ImportError as exc:
        raise InputError(
            f"reading {location!r} needs the datasets package: pip install 'instructpt[hf]'"
        ) from exc
    try:
        if kind == "hf_disk":
            ds = datasets.load_from_disk(location)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[spec.split]
        else:
            ds = datasets.load_dataset(
                location, name=spec.config, revision=spec.revision, data_files=list(spec.data_files) or None,
                split=spec.split, streaming=True,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - hub/network/format errors all mean "cannot read this input"
        raise InputError(_load_error(kind, location, spec, exc)) from exc
    return ds, list(getattr(ds, "column_names", None) or [])


def _load_error(kind: str, location: str, spec: DatasetSpec, exc: Exception) -> str:
    """One line: what could not be loaded and why, with the hint that fits (offline, or a config to name)."""
    what = f"split {spec.split!r}" + (f", config {spec.config!r}" if spec.config else "")
    reason = " ".join(str(exc).split())
    if kind == "hf_hub" and hub_offline():
        return f"cannot load dataset {location!r} ({what}): {offline_hint(location, 'dataset')} ({reason})"
    if "config name is missing" in reason.lower():
        reason += "; name one with --hf-config"
    return f"cannot load dataset {location!r} ({what}): {reason}"
