"""Which open-vocabulary detectors exist, which ones the installed transformers has, and what a source names.

Cheap to import and to ask: availability is decided from the files of the installed ``transformers`` package
(its ``models/<family>`` folder and its version line), without importing it (that takes seconds), so building
the tab never pays for it and a missing or old transformers never hides anything: it only changes what the
"Select by text" box says.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from segfill import defaults


@dataclass(frozen=True)
class DetectorFamily:
    """One kind of detector as transformers implements it."""

    name: str  # "grounding_dino", "owlvit", "owlv2", "sam3"
    title: str
    model_class: str  # the transformers class that loads it
    package_folder: str  # transformers/models/<folder>
    config_model_types: tuple[str, ...]  # config.json "model_type" values
    min_transformers: str
    default_model: str  # hub id used when only the family is named
    uses_text_threshold: bool
    makes_masks: bool  # SAM 3 answers a text with masks itself
    box_threshold: float


FAMILIES: dict[str, DetectorFamily] = {
    family.name: family
    for family in (
        DetectorFamily("grounding_dino", "GroundingDINO", "GroundingDinoForObjectDetection", "grounding_dino",
                       ("grounding-dino",), "4.40", "IDEA-Research/grounding-dino-tiny", True, False,
                       defaults.DETECT_BOX_THRESHOLD["grounding_dino"]),
        DetectorFamily("owlv2", "OWLv2", "Owlv2ForObjectDetection", "owlv2", ("owlv2",), "4.35",
                       "google/owlv2-base-patch16-ensemble", False, False, defaults.DETECT_BOX_THRESHOLD["owlv2"]),
        DetectorFamily("owlvit", "OWL-ViT", "OwlViTForObjectDetection", "owlvit", ("owlvit",), "4.26",
                       "google/owlvit-base-patch32", False, False, defaults.DETECT_BOX_THRESHOLD["owlvit"]),
        DetectorFamily("sam3", "SAM 3", "Sam3Model", "sam3", ("sam3", "sam3_video"), "5.0", "facebook/sam3",
                       False, True, defaults.DETECT_BOX_THRESHOLD["sam3"]),
    )
}

#: hub ids SegFill knows (the API accepts these besides installed folders and family names)
KNOWN_DETECTORS: dict[str, str] = {
    "IDEA-Research/grounding-dino-tiny": "grounding_dino",
    "IDEA-Research/grounding-dino-base": "grounding_dino",
    "google/owlv2-base-patch16-ensemble": "owlv2",
    "google/owlv2-base-patch16": "owlv2",
    "google/owlv2-large-patch14-ensemble": "owlv2",
    "google/owlvit-base-patch32": "owlvit",
    "google/owlvit-base-patch16": "owlvit",
    "google/owlvit-large-patch14": "owlvit",
    "facebook/sam3": "sam3",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_VERSION_LINE = re.compile(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


def is_hub_id(text: str) -> bool:
    """``owner/name`` as the Hugging Face hub spells repository ids (no path tricks: no ``..``, no slashes more)."""
    return bool(_HUB_ID.match(text)) and ".." not in text


def version_tuple(version: str) -> tuple[int, ...]:
    """``"4.46.1"`` -> ``(4, 46, 1)``; ``"5.0.0rc1"`` -> ``(5, 0, 0)`` (pre-releases count as the release)."""
    numbers = []
    for part in version.split(".")[:3]:
        digits = re.match(r"\d+", part)
        if not digits:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers)


def _transformers_folder() -> Path | None:
    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def transformers_version() -> str | None:
    """The installed transformers' version (read from its ``__init__.py``, not imported), or None."""
    folder = _transformers_folder()
    if folder is None:
        return None
    try:
        found = _VERSION_LINE.search((folder / "__init__.py").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return found.group(1) if found else None


@dataclass(frozen=True)
class FamilyStatus:
    family: DetectorFamily
    available: bool
    message: str  # what to install when not available; the family's title otherwise

    @property
    def name(self) -> str:
        return self.family.name


#: transformers 5 switches its models off below this torch (they import as placeholders)
TORCH_FOR_TRANSFORMERS_5 = "2.6"


def torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def family_status(name: str) -> FamilyStatus:
    family = FAMILIES[name]
    folder = _transformers_folder()
    if folder is None:
        return FamilyStatus(family, False, f"{family.title} needs the package 'transformers' "
                                           f"(pip install 'transformers>={family.min_transformers}').")
    installed = transformers_version() or "unknown"
    needs = f"{family.title} needs transformers >= {family.min_transformers}"
    if version_tuple(family.min_transformers) >= (5,):
        needs += f" (with torch >= {TORCH_FOR_TRANSFORMERS_5})"
    if not (folder / "models" / family.package_folder).is_dir():
        return FamilyStatus(family, False, f"{needs}; this installation has {installed}.")
    torch = torch_version()
    if version_tuple(installed) >= (5,) and torch and version_tuple(torch) < version_tuple(TORCH_FOR_TRANSFORMERS_5):
        return FamilyStatus(family, False, f"{needs}; transformers {installed} is installed but disables its models "
                                           f"on torch {torch}.")
    return FamilyStatus(family, True, family.title)


def detector_status() -> list[FamilyStatus]:
    """Every family with whether this installation can run it (GroundingDINO first: it is the best boxer)."""
    return [family_status(name) for name in FAMILIES]


def available_families() -> list[str]:
    return [status.name for status in detector_status() if status.available]


def default_detector() -> str | None:
    """The hub id to use when the user names no detector: the first available family's default model."""
    for status in detector_status():
        if status.available and not status.family.makes_masks:
            return status.family.default_model
    return None


def availability_message() -> str:
    """One line for the "Select by text" box: what works here and what to install for the rest."""
    statuses = detector_status()
    usable = [s.family.title for s in statuses if s.available]
    missing = [s.message for s in statuses if not s.available]
    if not usable:
        return "Select by text needs transformers: " + " ".join(missing)
    text = "Detectors here: " + ", ".join(usable) + "."
    return text + (" " + " ".join(missing) if missing else "")


def family_of_config(config: dict) -> str | None:
    model_type = str(config.get("model_type", ""))
    for family in FAMILIES.values():
        if model_type in family.config_model_types:
            return family.name
    return None


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def guess_family(source: str) -> str | None:
    """The family a hub id or folder name suggests (known ids exactly, else its name), or None."""
    if source in KNOWN_DETECTORS:
        return KNOWN_DETECTORS[source]
    lowered = source.lower().replace("_", "-")
    for marker, name in (("grounding-dino", "grounding_dino"), ("owlv2", "owlv2"), ("owlvit", "owlvit"),
                         ("owl-vit", "owlvit"), ("sam3", "sam3")):
        if marker in lowered:
            return name
    return None
