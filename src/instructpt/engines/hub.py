"""Telling hub ids from local paths, and the commit a hub id resolves to in the local Hugging Face cache."""

from __future__ import annotations

from pathlib import Path


def looks_like_path(name: str) -> bool:
    """A filesystem path rather than a hub id (``org/name``): absolute, relative with ``.``, ``~``, or deeper."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def hub_commit(name: str, revision: str | None) -> str | None:
    """The commit a hub model id resolves to in the local Hugging Face cache (no network); None for a local
    directory, or when the cache does not hold it. Recorded with every output record, so outputs name the exact
    weights even when no ``--revision`` was given."""
    if Path(name).exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers brings huggingface_hub
        return None
    try:
        path = try_to_load_from_cache(name, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id or cache: no commit to record, nothing else changes
        return None
    if not isinstance(path, str):
        return None
    parts = Path(path).parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None
