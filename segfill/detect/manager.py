"""DetectorManager: which detector is loaded, on which device, for how long — SAM's policy, for detectors.

Like :class:`segfill.sam.manager.SamManager`: one model at a time (asking for another unloads the previous
one), ``offload_to_cpu()`` before a generation (the next ``get`` moves it back), ``unload()``, and an idle
unload after ``idle_unload_s`` without a ``get``. Hosts build one with the same device and unload settings as
their SamManager and release both together.

Names from web requests go through :meth:`DetectorManager.resolve_name`: an installed folder's name, a family
name or a hub id SegFill knows; never a path. Explicit sources (CLI, trusted settings) go to :meth:`get`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segfill.detect.download import ProgressCallback, download_detector
from segfill.detect.loading import default_detector_folders, load_detector, resolve_folder
from segfill.detect.registry import FAMILIES, KNOWN_DETECTORS, family_of_config, read_config
from segfill.errors import InputError
from segfill.residency import ModelSlot


class UnknownDetectorError(InputError):
    """A detector name a web request may not use (not installed, not a family, not a known hub id)."""


@dataclass(frozen=True)
class InstalledDetector:
    name: str  # the folder's name, e.g. "IDEA-Research--grounding-dino-tiny"
    path: Path
    family: str | None


class DetectorManager:
    def __init__(self, folders: Sequence[str | Path] | None = None, device: str = "auto",
                 idle_unload_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 downloader: Callable[..., Path] = download_detector) -> None:
        self.folders = [Path(f) for f in (folders if folders is not None else default_detector_folders())]
        self.device_setting = device
        # the one detector held, keyed by its folder: SAM's policy (segfill.residency)
        self._slot = ModelSlot(idle_unload_s, clock, name="detector")
        self._downloader = downloader  # downloader(repo_id, into_folder, progress=...) -> folder (tests inject one)

    @property
    def device(self) -> str:
        from segfill.sam.manager import resolve_device

        return resolve_device(self.device_setting)

    # ---- what is there

    def list_installed(self) -> list[InstalledDetector]:
        found = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.endswith(".part") and (child / "config.json").is_file():
                    found.append(InstalledDetector(child.name, child, family_of_config(read_config(child))))
        return found

    def resolve_name(self, name: str) -> str:
        """The source :meth:`get` may load for a name from a web request (raises UnknownDetectorError)."""
        text = str(name or "").strip()
        for entry in self.list_installed():
            if entry.name == text:
                return str(entry.path)
        if text in FAMILIES or text in KNOWN_DETECTORS:
            return text
        installed = ", ".join(e.name for e in self.list_installed()) or "none"
        raise UnknownDetectorError(f"Unknown detector {text!r}; use a family ({', '.join(FAMILIES)}), a known "
                                   f"hub id or an installed folder (installed: {installed}).")

    def choose(self, requested: str | None) -> str:
        """The source to load for a request (API, tab): :meth:`resolve_name` of a name; without one, the first
        installed folder of a family this transformers runs, else the best available family's default hub id."""
        from segfill.detect.loading import DetectorUnavailableError
        from segfill.detect.registry import availability_message, default_detector, family_status

        if requested:
            return self.resolve_name(requested)
        for entry in self.list_installed():  # an installed folder beats a download
            if entry.family and family_status(entry.family).available:
                return str(entry.path)
        source = default_detector()
        if source is None:
            raise DetectorUnavailableError(availability_message())
        return source

    # ---- loading

    @property
    def idle_unload_s(self) -> float | None:
        return self._slot.idle_unload_s

    @property
    def load_count(self) -> int:
        return self._slot.load_count

    @property
    def loaded(self):
        return self._slot.loaded

    def is_current(self, loaded) -> bool:
        return self._slot.is_current(loaded)

    def get(self, source: str, progress: ProgressCallback | None = None):
        """The loaded detector for ``source`` (folder, family name or hub id), downloading a hub id once with
        ``progress(done_bytes, total_bytes)``, loading or moving it back onto the device as needed."""
        def download(repo_id: str, into: Path) -> Path:
            return self._downloader(repo_id, into, progress=progress)

        with self._slot.lock:
            folder, canonical = resolve_folder(source, self.folders, download=download)
            device = self.device
            return self._slot.get(folder, device, lambda: load_detector(folder, source=canonical, device=device))

    # ---- releasing (same contract as SamManager: segfill.residency.ModelSlot)

    def unload(self) -> bool:
        return self._slot.unload()

    def offload_to_cpu(self) -> bool:
        return self._slot.offload_to_cpu()

    offload = offload_to_cpu

    def unload_if_idle(self, now: float | None = None) -> bool:
        return self._slot.unload_if_idle(now)
