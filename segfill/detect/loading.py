"""Load a detector from a local folder or a Hugging Face hub id -> :class:`LoadedDetector`.

Sources, in the order they are tried:

1. a folder holding ``config.json`` (what ``save_pretrained`` writes, or a hub repository's files);
2. a family name (``grounding_dino``, ``owlvit``, ``owlv2``, ``sam3``): that family's default hub id;
3. a hub id ``owner/name``: the folder ``<detectors folder>/owner--name`` when a previous run downloaded it
   (no network at all), else downloaded there once, with a progress bar (:mod:`segfill.detect.download`).

Only safetensors weights are loaded (``use_safetensors=True``): a folder with nothing but pickled ``.bin``
weights is refused with a sentence, since unpickling can run code on torch < 2.6.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segfill.detect.registry import (
    FAMILIES,
    DetectorFamily,
    family_of_config,
    family_status,
    guess_family,
    is_hub_id,
    read_config,
)
from segfill.errors import ModelError

DETECTORS_ENV = "SEGFILL_DETECTORS"


class DetectorUnavailableError(ModelError):
    """The installed transformers cannot run this detector; the message says which version it needs."""


def default_detector_folders(environ: dict[str, str] | None = None) -> list[Path]:
    """``$SEGFILL_DETECTORS`` folders, then SegFill's ``models/detectors`` (the first also receives downloads)."""
    from segfill.sam.folders import EXTENSION_ROOT

    environ = os.environ if environ is None else environ
    folders = [Path(p).expanduser() for p in environ.get(DETECTORS_ENV, "").split(os.pathsep) if p.strip()]
    folders.append(EXTENSION_ROOT / "models" / "detectors")
    return folders


@dataclass
class LoadedDetector:
    """A detector ready to run: transformers model + processor, with where it came from."""

    family: DetectorFamily
    source: str  # what the user named: a hub id, a family name or a folder
    path: Path  # the local folder it was loaded from
    model: Any
    processor: Any
    device: str
    model_key: str  # family and a fingerprint of the folder's config and weights' sizes (manifests, caches)
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source

    def to(self, device: str) -> LoadedDetector:
        self.model.to(device)
        self.device = device
        return self


def folder_fingerprint(folder: Path) -> str:
    """SHA-256 (16 hex) over the config and the names + sizes of the weight files: cheap, changes with the model."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name == "config.json":
            digest.update(path.read_bytes())
        elif path.suffix == ".safetensors":
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def resolve_folder(source: str, folders: list[Path] | None = None,
                   download: Callable[[str, Path], Path] | None = None) -> tuple[Path, str]:
    """``(local folder, canonical source)`` for a folder, family name or hub id, downloading a hub id on first
    use with ``download(repo_id, into_folder)``. Raises :class:`ModelError` with one sentence."""
    from segfill.detect.download import folder_name

    text = str(source).strip()
    if not text:
        raise ModelError("Name a detector: a local folder or a Hugging Face id such as "
                         f"{FAMILIES['grounding_dino'].default_model}.")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"The detector folder {path} has no config.json; it is not a transformers model folder.")
        return path.resolve(), str(path)
    if text in FAMILIES:
        text = FAMILIES[text].default_model
    if not is_hub_id(text):
        raise ModelError(f"The detector {source!r} is neither a folder nor a Hugging Face id (owner/name).")
    folders = folders if folders is not None else default_detector_folders()
    for folder in folders:
        candidate = Path(folder) / folder_name(text)
        if (candidate / "config.json").is_file():
            return candidate.resolve(), text
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        raise ModelError(f"The detector {text} is not downloaded yet and HF_HUB_OFFLINE is set.")
    if download is None:
        from segfill.detect.download import download_detector

        def download(repo_id: str, into: Path) -> Path:
            return download_detector(repo_id, into)

    return Path(download(text, Path(folders[0]))).resolve(), text


def load_detector(folder: Path, source: str | None = None, device: str = "cpu") -> LoadedDetector:
    """Load the detector in ``folder`` (transformers ``from_pretrained``, local files only, safetensors only)."""
    folder = Path(folder)
    config = read_config(folder)
    if not config:
        raise ModelError(f"The detector folder {folder} has no readable config.json.")
    family_name = family_of_config(config) or guess_family(str(source or folder))
    if family_name is None:
        raise ModelError(f"{folder} holds a {config.get('model_type', 'unknown')!r} model, not a detector SegFill "
                         f"knows ({', '.join(f.title for f in FAMILIES.values())}).")
    family = FAMILIES[family_name]
    status = family_status(family_name)
    if not status.available:
        raise DetectorUnavailableError(status.message)
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder} has no .safetensors weights; SegFill does not load pickled .bin weights "
                         "(they can run code).")
    import transformers

    model_class = getattr(transformers, family.model_class, None)
    if model_class is None:
        raise DetectorUnavailableError(family_status(family_name).message)
    processor_class = getattr(transformers, _PROCESSORS[family_name], None) or transformers.AutoProcessor
    try:
        processor = processor_class.from_pretrained(str(folder), local_files_only=True)
        model = model_class.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"Cannot load the {family.title} detector from {folder}: {first[:300]}") from None
    model.eval()
    model.to(device)
    return LoadedDetector(family=family, source=str(source or folder), path=folder, model=model,
                          processor=processor, device=device,
                          model_key=f"{family.name}:{folder_fingerprint(folder)}")


_PROCESSORS = {
    "grounding_dino": "GroundingDinoProcessor",
    "owlvit": "OwlViTProcessor",
    "owlv2": "Owlv2Processor",
    "sam3": "Sam3Processor",
}
