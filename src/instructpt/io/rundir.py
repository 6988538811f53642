"""The run directory every stage writes into, sharded or not: manifest, resolved config, summary.

Layout of ``OUT/`` (a sharded stage adds ``data/``, ``rejects/``, ``stats/``, ``done/``: see :mod:`.shards`)::

    manifest.json   stage name, fingerprint (what must match to resume), package version
    inputs.json     the input files as they were when the run started (size, hashes of first and last MiB)
    config.yaml     the resolved config of the latest run that wrote something
    stats.json      the run's summary (counters merged over everything finished, timings of that run)

Opening a run directory either creates it or checks that it may be resumed: one written by another stage, with
another fingerprint, or from input files that were since added, removed, grown, shrunk or replaced, is refused once
it holds finished work, with the list of differences (a directory with nothing finished yet starts over with the
new configuration; ``overwrite=True`` starts over in any run directory of the same stage). A re-run with nothing
left to do writes nothing, so a finished run directory may be read-only. Several processes (ranks) may open the
same directory at once: the manifest is created with an atomic link, so the first writer wins and the others check
its fingerprint. Every file is written to a temporary name, synced and renamed, so a crash never leaves half a
file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from instructpt.errors import ResumeError
from instructpt.io.inputs import input_changes, legacy_differences

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
INPUTS = "inputs.json"
MAX_CHANGES_SHOWN = 20
_TMP_PREFIX = ".tmp-"  # temporary files of atomic writes; never taken for foreign content


class JsonSummary(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def atomic_write(path: Path, data: bytes | Callable[[IO[bytes]], None], shared: bool = False) -> None:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` all or nothing.

    The temporary file is ``.tmp-NAME`` beside it, so a write cut short (SIGKILL) leaves one that the next write of
    the same file replaces, rather than litter; ``shared``: several processes may write this file at once (a run
    directory's top-level files), so each uses a temporary name of its own."""
    suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}" if shared else ""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}{suffix}")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_bytes(obj: Any, indent: int | None = 2) -> bytes:
    return json.dumps(obj, indent=indent, ensure_ascii=False).encode("utf-8")


def jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples as lists, other objects as their ``str``)."""
    return json.loads(json.dumps(obj, default=str))


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key whose value differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


class RunDir:
    """The output directory of one stage run; subclasses add what the stage writes (:class:`ShardedOutput`)."""

    SUBDIRS: tuple[str, ...] = ()
    # fingerprint keys added after runs were made: a run with results whose manifest lacks one resumes as before,
    # unchecked on it (without results, the manifest is written again with the key)
    ADDED_KEYS: tuple[str, ...] = ()
    # what a run of a stage writes at the top of its directory (removed by overwrite=True, with SUBDIRS)
    OWN_FILES: tuple[str, ...] = (MANIFEST, INPUTS, "config.yaml", "stats.json")

    def __init__(
        self,
        root: str | Path,
        stage: str,
        fingerprint: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        """``inputs``: the input files' state (:func:`~instructpt.io.inputs.input_files`), checked on resume."""
        self.root, self.stage, self.fingerprint, self.inputs = Path(root), stage, fingerprint, inputs
        self._cleared = False  # --overwrite removed an earlier run here: files it leaves are the user's own
        try:
            if overwrite:
                self._clear()
            self._check_or_create()
            self._check_inputs()
        except OSError as exc:  # a file in the way, no permission, a full disk: say so, no traceback
            raise ResumeError(f"cannot use {self.root} as the output directory: {exc}") from exc

    def has_results(self) -> bool:
        """Whether finished work is stored here (then a changed fingerprint is refused, not started over)."""
        return False

    # ---- creation and the resume check ----
    def _clear(self) -> None:
        """Remove what an earlier run of this stage wrote here (``--overwrite``); refuse anything else."""
        if not self.root.exists():
            return
        old = self._read_manifest() if self.root.is_dir() else None
        if old is None:
            if self.root.is_dir() and not self._foreign_content():
                return
            raise ResumeError(f"--overwrite: {self.root} is not an instructpt run directory; not deleting it")
        if old.get("stage") != self.stage:
            raise ResumeError(
                f"--overwrite: {self.root} holds output of {old.get('stage')!r}, not {self.stage!r}"
            )
        log.warning("--overwrite: deleting the earlier %s run in %s", self.stage, self.root)
        for name in (*self.SUBDIRS, *self.EXTRA_DIRS):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for name in self.OWN_FILES:
            (self.root / name).unlink(missing_ok=True)
        self._cleared = True

    EXTRA_DIRS: tuple[str, ...] = ()  # written only by some runs (synthesize --id-field: ids/)

    def _check_inputs(self) -> None:
        """Refuse to resume from input files that changed since the finished work was made from them."""
        if self.inputs is None:
            return
        path = self.root / INPUTS
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            old = None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResumeError(
                f"{path} is not readable ({exc}); delete it to resume without the check"
            ) from exc
        if old == self.inputs:
            return
        if old is not None and self.has_results():
            changes = input_changes(old, self.inputs)
            more = (
                f"; and {len(changes) - MAX_CHANGES_SHOWN} more" if len(changes) > MAX_CHANGES_SHOWN else ""
            )
            raise ResumeError(
                f"the input files changed since {self.root} was written ({'; '.join(changes[:MAX_CHANGES_SHOWN])}"
                f"{more}); finished shards would no longer match the records they were made from. Use a new "
                "output directory, or --overwrite to start over"
            )
        if old is None and self.has_results():  # written by a version that did not record its inputs (0.1)
            legacy = legacy_differences(self.inputs)
            if legacy:
                raise ResumeError(
                    f"{self.root} was written by instructpt 0.1, which read these inputs otherwise or not at all "
                    f"({'; '.join(legacy[:MAX_CHANGES_SHOWN])}): resuming would shift records between shards. "
                    "Use a new output directory, or --overwrite to start over"
                )
            log.info("%s does not record its input files; recording them now", self.root)
        atomic_write(path, json_bytes(self.inputs), shared=True)

    def _check_or_create(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ResumeError(f"{self.root} exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(
            3
        ):  # a manifest another process creates meanwhile is read and checked on the next pass
            old = self._read_manifest()
            if old is not None:
                self._check(old)
                break
            if self._foreign_content() and not self._cleared:
                # another process created the manifest meanwhile: check it on the next pass
                if (self.root / MANIFEST).exists():
                    continue
                raise ResumeError(
                    f"{self.root} exists, is not empty and is not an instructpt {self.stage} output"
                )
            if self._create_manifest():
                break
        else:  # pragma: no cover - a manifest that keeps appearing and vanishing
            raise ResumeError(f"{self.root / MANIFEST} keeps changing; is another run using {self.root}?")
        for sub in self.SUBDIRS:
            (self.root / sub).mkdir(exist_ok=True)

    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise ResumeError(f"{path} is not a readable instructpt manifest ({exc})") from exc
        try:
            old = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResumeError(f"{path} is not a readable instructpt manifest ({exc})") from exc
        if not isinstance(old, dict):
            raise ResumeError(f"{path} is not an instructpt manifest")
        return old

    def _check(self, old: dict[str, Any]) -> None:
        if old.get("stage") != self.stage:
            raise ResumeError(f"{self.root} holds output of {old.get('stage')!r}, not {self.stage!r}")
        new = jsonable(self.fingerprint)
        recorded = old.get("fingerprint", {})
        if self.has_results():  # finished work from before a key was recorded: not checked on it
            recorded = {**{k: new[k] for k in self.ADDED_KEYS if k in new and k not in recorded}, **recorded}
        changes = diff(recorded, new)
        if not changes:
            return
        if self.has_results():
            raise ResumeError(
                f"{self.root} was written with a different configuration ({'; '.join(changes)}); "
                "use a new output directory, or delete this one to start over"
            )
        log.warning("%s holds no finished work; starting it over with this configuration", self.root)
        atomic_write(self.root / MANIFEST, self._manifest_bytes(), shared=True)

    def _foreign_content(self) -> bool:
        return any(not p.name.startswith(_TMP_PREFIX) for p in self.root.iterdir())

    def _manifest_bytes(self) -> bytes:
        from instructpt._version import __version__

        return json_bytes({"stage": self.stage, "version": __version__, "fingerprint": self.fingerprint})

    def _create_manifest(self) -> bool:
        """Create the manifest unless another process did first (returns whether this one did)."""
        path = self.root / MANIFEST
        tmp = path.with_name(f"{_TMP_PREFIX}{MANIFEST}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            atomic_write(tmp, self._manifest_bytes(), shared=True)
            try:
                os.link(tmp, path)  # fails if it exists: exactly one process creates it, whole
            except FileExistsError:
                return False
            except OSError:  # a filesystem without hard links: exclusive create, then the bytes
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as f:
                    f.write(tmp.read_bytes())
            return True
        finally:
            tmp.unlink(missing_ok=True)

    # ---- what every stage writes ----
    def write_config(self, config: Any) -> None:
        """The resolved config of this run as ``config.yaml`` (what repeats it exactly), unless it is there."""
        from instructpt.config import to_yaml

        self.write_file("config.yaml", to_yaml(config).encode("utf-8"))

    def write_summary(self, summary: JsonSummary) -> None:
        self.write_file("stats.json", json_bytes(summary.to_dict()))

    def write_file(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name`` in the run directory unless it holds those bytes already; a directory that
        cannot be written is one clear error."""
        path = self.root / name
        try:
            if path.exists() and path.read_bytes() == data:
                return
            atomic_write(path, data, shared=True)
        except OSError as exc:
            raise ResumeError(f"cannot write {path}: {exc}") from exc
