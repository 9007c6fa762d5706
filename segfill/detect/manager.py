"""DetectorManager: which detector is loaded, on which device, for how long — SAM's policy, for detectors.

Like :class:`segfill.sam.manager.SamManager`: one model at a time (asking for another unloads the previous
one), ``offload_to_cpu()`` before a generation (the next ``get`` moves it back), ``unload()``, and an idle
unload after ``idle_unload_s`` without a ``get``. Hosts build one with the same device and unload settings as
their SamManager and release both together.

Names from web requests go through :meth:`DetectorManager.resolve_name`: an installed folder's name, a family
name or a hub id SegFill knows; never a path. Explicit sources (CLI, trusted settings) go to :meth:`get`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segfill.detect.download import ProgressCallback, download_detector
from segfill.detect.loading import default_detector_folders, load_detector, resolve_folder
from segfill.detect.registry import FAMILIES, KNOWN_DETECTORS, family_of_config, read_config
from segfill.errors import InputError


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
        self.idle_unload_s = idle_unload_s if idle_unload_s and idle_unload_s > 0 else None
        self._clock = clock
        self._lock = threading.RLock()
        self._loaded = None
        self._loaded_folder: Path | None = None
        self._offloaded = False
        self._last_used = 0.0
        self._timer: threading.Timer | None = None
        self.load_count = 0
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
    def loaded(self):
        return self._loaded

    def is_current(self, loaded) -> bool:
        return loaded is not None and loaded is self._loaded and not self._offloaded

    def get(self, source: str, progress: ProgressCallback | None = None):
        """The loaded detector for ``source`` (folder, family name or hub id), downloading a hub id once with
        ``progress(done_bytes, total_bytes)``, loading or moving it back onto the device as needed."""
        def download(repo_id: str, into: Path) -> Path:
            return self._downloader(repo_id, into, progress=progress)

        with self._lock:
            folder, canonical = resolve_folder(source, self.folders, download=download)
            device = self.device
            if self._loaded is not None and self._loaded_folder == folder:
                if self._offloaded or self._loaded.device != device:
                    self._loaded.to(device)
                    self._offloaded = False
            else:
                self._drop_locked()
                self._loaded = load_detector(folder, source=canonical, device=device)
                self._loaded_folder = folder
                self._offloaded = False
                self.load_count += 1
            self._touch_locked()
            return self._loaded

    # ---- releasing (same contract as SamManager)

    def unload(self) -> bool:
        with self._lock:
            was = self._loaded is not None
            self._drop_locked()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return was

    def offload_to_cpu(self) -> bool:
        from segfill.sam.manager import _free_device_memory

        with self._lock:
            if self._loaded is None:
                return False
            previous = self._loaded.device
            if previous != "cpu":
                self._loaded.to("cpu")
                _free_device_memory(previous)
            self._offloaded = True
            return True

    offload = offload_to_cpu

    def unload_if_idle(self, now: float | None = None) -> bool:
        with self._lock:
            if self._loaded is None or self.idle_unload_s is None:
                return False
            now = self._clock() if now is None else now
            if now - self._last_used < self.idle_unload_s:
                return False
            self._drop_locked()
            return True

    def _drop_locked(self) -> None:
        from segfill.sam.manager import _free_device_memory

        if self._loaded is None:
            return
        device = self._loaded.device
        self._loaded = None
        self._loaded_folder = None
        self._offloaded = False
        _free_device_memory(device)

    def _touch_locked(self) -> None:
        self._last_used = self._clock()
        if self.idle_unload_s is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_unload_s, self._on_timer)
        self._timer.daemon = True
        self._timer.name = "segfill-detector-idle-unload"
        self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            if not self.unload_if_idle() and self._loaded is not None and self.idle_unload_s is not None:
                remaining = max(0.01, self._last_used + self.idle_unload_s - self._clock())
                self._timer = threading.Timer(remaining, self._on_timer)
                self._timer.daemon = True
                self._timer.start()
