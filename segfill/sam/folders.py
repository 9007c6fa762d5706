"""Where SAM checkpoints live, and what is installed there.

Default folders, in priority order (the first existing one also receives downloads):

1. folders in ``$SEGFILL_MODELS`` (``os.pathsep``-separated),
2. the WebUI's ``models/sam`` (the folder sd-webui-segment-anything uses),
3. Inpaint Anything's ``extensions/sd-webui-inpaint-anything/models`` if that extension is installed,
4. SegFill's own ``models/sam`` inside the extension folder.

Listing never loads a model and never deserialises a file: each file's format is checked first (a zip's
entries: TorchScript archives and other unexpected archives are left out), then it is identified by the
registry (name and size, or an already computed hash), else by its tensor shapes, which SegFill's restricted
reader takes from the file's header or pickle structure without reading any weights
(:mod:`segfill.sam.safe_load`); a file whose structure cannot be read shows as unidentified until it is
loaded, when the loader says what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segfill.sam.registry import (
    MODEL_FILE_SUFFIXES,
    Identification,
    ModelSpec,
    NotSamCheckpoint,
    UnsafeCheckpoint,
    identify_checkpoint,
)
from segfill.sam.safe_load import check_file

MODELS_ENV = "SEGFILL_MODELS"
EXTENSION_ROOT = Path(__file__).resolve().parents[2]  # the SegFill checkout: <webui>/extensions/<segfill>


@dataclass(frozen=True)
class ModelFile:
    """An installed checkpoint. ``name`` is what UIs show and what :meth:`SamManager.get` accepts."""

    name: str
    path: Path
    size_bytes: int
    identification: Identification | None = None

    @property
    def spec(self) -> ModelSpec | None:
        return self.identification.spec if self.identification else None

    @property
    def family(self) -> str | None:
        return self.identification.family if self.identification else None

    @property
    def arch(self) -> str | None:
        return self.identification.arch if self.identification else None


def guess_webui_root(extension_root: Path = EXTENSION_ROOT) -> Path | None:
    """``<webui>`` when SegFill sits in ``<webui>/extensions/<name>`` next to a ``models`` folder."""
    parent = extension_root.parent
    if parent.name == "extensions" and (parent.parent / "models").is_dir():
        return parent.parent
    return None


def env_model_folders(environ: dict | None = None) -> list[Path]:
    value = (environ if environ is not None else os.environ).get(MODELS_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def default_model_folders(webui_root: str | os.PathLike | None = None,
                          extension_root: str | os.PathLike = EXTENSION_ROOT,
                          environ: dict | None = None) -> list[Path]:
    """The default search list (see the module docstring); folders need not exist yet."""
    extension_root = Path(extension_root)
    root = Path(webui_root) if webui_root is not None else guess_webui_root(extension_root)
    folders = env_model_folders(environ)
    if root is not None:
        folders.append(root / "models" / "sam")
        inpaint_anything = root / "extensions" / "sd-webui-inpaint-anything" / "models"
        if inpaint_anything.is_dir():
            folders.append(inpaint_anything)
    folders.append(extension_root / "models" / "sam")
    return unique_folders(folders)


def unique_folders(folders: Iterable[str | os.PathLike]) -> list[Path]:
    seen: set[Path] = set()
    unique: list[Path] = []
    for folder in folders:
        path = Path(folder).expanduser()
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def download_folder(folders: Sequence[str | os.PathLike]) -> Path:
    """Where a download goes: the first folder that exists, else the first one (created by the download)."""
    if not folders:
        raise ValueError("no model folders configured")
    for folder in folders:
        if Path(folder).is_dir():
            return Path(folder)
    return Path(folders[0])


def list_model_files(folders: Sequence[str | os.PathLike], identify: bool = True,
                     inspect: bool | str = "cheap") -> list[ModelFile]:
    """Checkpoint files (.pth, .pt, .safetensors) directly inside ``folders``, sorted by name.

    A file name found in two folders is listed once, from the earlier folder. Partial downloads (``.part``)
    and hidden files are skipped. With ``identify``, every file's structure is checked first
    (:func:`segfill.sam.safe_load.check_file`: TorchScript and other unexpected archives are left out), then
    files the registry does not know are identified by their tensor shapes, read without reading weights
    (``inspect="cheap"`` or True; results cached). Readable files that hold another kind of model (or
    pickled objects SegFill refuses to load) are left out, while damaged or uninspected files stay listed
    (loading them explains what is wrong).
    """
    found: dict[str, ModelFile] = {}
    for folder in unique_folders(folders):
        if not folder.is_dir():
            continue
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            if path.name.startswith(".") or path.suffix.lower() not in MODEL_FILE_SUFFIXES:
                continue
            if path.name in found or not path.is_file():
                continue
            identification = None
            if identify:
                try:
                    check_file(path)  # a zip's entries only: never unpickles, never imports torch
                except UnsafeCheckpoint:
                    continue
                except Exception:  # not readable as a checkpoint at all: listed, loading it says why
                    pass
                try:
                    identification = identify_checkpoint(path, use_hash=False, inspect=inspect)
                except (NotSamCheckpoint, UnsafeCheckpoint):
                    continue
                except Exception:  # damaged or not inspected: its shapes decide when it is loaded
                    identification = None
            found[path.name] = ModelFile(path.name, path, path.stat().st_size, identification)
    return [found[name] for name in sorted(found, key=str.lower)]
