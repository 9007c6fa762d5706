"""Provenance: one JSON line per output in ``segfill-manifest.jsonl`` beside the outputs.

Every output of the CLI, the batch, the API and the tab gets an entry: where the input came from and its
content hash, how the mask was made (text, detector, thresholds, boxes with labels and scores, points, SAM
model name and hash, candidate, refinement, the mask file saved beside the output), the inpaint/outpaint
parameters and seed, the backend (or the WebUI checkpoint), the output path and hash, the time taken, and for
a failed input the error. ``entry["job"]`` is the whole recipe :mod:`segfill.jobs` reruns (``python -m
segfill replay``).

Appending rewrites the manifest through :mod:`segfill.fileio` (temporary file + rename) under a per-file
lock, so a reader never sees half a line and two API requests never interleave.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from segfill import defaults
from segfill.errors import InputError

MANIFEST_VERSION = 1
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pixels_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of decoded pixels (shape + bytes): the content hash of an image that came without a file."""
    array = np.ascontiguousarray(rgb)
    digest = hashlib.sha256(f"{array.shape}:{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def job_key(job: dict[str, Any]) -> str:
    """A stable hash of a job recipe: a batch rerun skips an input whose output was made by the same recipe."""
    return hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()[:32]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


def _lock_for(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class Manifest:
    """``segfill-manifest.jsonl`` in ``folder``."""

    def __init__(self, folder: str | os.PathLike, name: str = defaults.MANIFEST_NAME) -> None:
        self.path = Path(folder) / name

    def entries(self) -> list[dict[str, Any]]:
        """Every readable entry, oldest first (a damaged line is skipped, never fatal)."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        from segfill.fileio import atomic_write

        entry = jsonable({"manifest_version": MANIFEST_VERSION, **entry})
        line = (json.dumps(entry, sort_keys=False, separators=(",", ":")) + "\n").encode("utf-8")
        with _lock_for(self.path):
            old = self.path.read_bytes() if self.path.is_file() else b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            atomic_write(self.path, lambda handle: handle.write(old + line), make_parents=True)
        return entry

    def latest_for(self, output: str | os.PathLike) -> dict[str, Any] | None:
        target = str(Path(output).resolve())
        for entry in reversed(self.entries()):
            if str((entry.get("output") or {}).get("path") or "") == target:
                return entry
        return None


def read_entry(reference: str, manifest: str | os.PathLike | None = None) -> dict[str, Any]:
    """An entry from a JSON line, or from an index (0 = first, -1 = last) into ``manifest``."""
    text = str(reference).strip()
    if text.startswith("{"):
        try:
            entry = json.loads(text)
        except ValueError:
            raise InputError("The manifest line is not valid JSON; copy one whole line of segfill-manifest.jsonl.") from None
        if not isinstance(entry, dict) or "job" not in entry:
            raise InputError("That JSON is not a SegFill manifest entry (it has no 'job').")
        return entry
    try:
        index = int(text)
    except ValueError:
        raise InputError(f"Give a manifest line (JSON) or an index, not {reference!r}.") from None
    path = Path(manifest) if manifest is not None else Path(defaults.MANIFEST_NAME)
    if path.is_dir():
        path = path / defaults.MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"There is no manifest at {path}; pass --manifest PATH.")
    entries = Manifest(path.parent, path.name).entries()
    if not -len(entries) <= index < len(entries):
        raise InputError(f"{path} has {len(entries)} entries; index {index} does not exist.")
    return entries[index]
