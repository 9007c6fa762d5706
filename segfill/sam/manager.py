"""SamManager: which SAM is loaded, on which device, and for how long.

One model is kept at a time (SAM checkpoints are large); asking for another unloads the previous one.
Models are looked up by the names :meth:`SamManager.list_models` reports, or by registry name: user input
is never joined into a path, so ``get("../../etc/passwd")`` is just an unknown name. Loading an explicit
path is a separate method, :meth:`SamManager.get_path`, for the CLI and trusted settings only.

Thread-safe: one lock guards loading, moving and unloading, so concurrent requests for the same model load it
once. ``idle_unload_s`` frees the model after that many seconds without a :meth:`get`.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from segfill.errors import InputError, ModelError
from segfill.sam.folders import ModelFile, download_folder, list_model_files, unique_folders
from segfill.sam.precision import check_precision
from segfill.sam.registry import KNOWN_MODELS

DEVICES = ("auto", "cuda", "mps", "cpu")


def resolve_device(device: str | None = "auto") -> str:
    """"auto" -> "cuda" when available, else "mps" (Apple), else "cpu"; explicit choices are checked."""
    choice = (device or "auto").strip().lower()
    if choice.startswith("cuda:"):
        base = "cuda"
    else:
        base = choice
    if base not in DEVICES:
        raise InputError(f"Unknown device '{device}'; use one of {', '.join(DEVICES)}.")
    if base == "cpu":
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if base == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if base == "cuda" and not cuda:
        raise InputError("The device 'cuda' was chosen but no CUDA GPU is available; choose 'auto' or 'cpu'.")
    if base == "mps" and not mps:
        raise InputError("The device 'mps' was chosen but Apple's MPS is not available; choose 'auto' or 'cpu'.")
    return choice


def _free_device_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class SamManager:
    """Device policy and a one-model cache. ``loader`` is injectable for tests (default ``load_sam``)."""

    def __init__(self, folders: Sequence[str | os.PathLike] | None = None, device: str = "auto",
                 idle_unload_s: float | None = None, loader: Callable | None = None,
                 clock: Callable[[], float] = time.monotonic, precision: str = "auto") -> None:
        if folders is None:
            from segfill.sam.folders import default_model_folders

            folders = default_model_folders()
        self.folders: list[Path] = unique_folders(folders)
        self.device_setting = device
        self.precision = check_precision(precision)  # encoder number format (segfill.sam.precision)
        self.idle_unload_s = idle_unload_s if idle_unload_s and idle_unload_s > 0 else None
        self._loader = loader
        self._clock = clock
        self._lock = threading.RLock()
        self._loaded = None  # LoadedSam
        self._loaded_source: tuple[str, str | None] | None = None  # (resolved path, model_type)
        self._offloaded = False
        self._last_used = 0.0
        self._timer: threading.Timer | None = None
        self._device: str | None = None
        self.load_count = 0  # how many times a file was actually loaded (tests, diagnostics)

    # ---- devices

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.device_setting)
        return self._device

    def set_device(self, device: str) -> None:
        """Change the device policy; a loaded model moves on its next :meth:`get`."""
        resolved = resolve_device(device)
        with self._lock:
            self.device_setting = device
            self._device = resolved
            if self._loaded is not None and self._loaded.device != resolved:
                self._offloaded = True  # move on next get

    # ---- listing

    def list_models(self) -> list[ModelFile]:
        return list_model_files(self.folders)

    def download_folder(self) -> Path:
        return download_folder(self.folders)

    def resolve_name(self, name: str) -> ModelFile:
        """The installed file called ``name`` (a listed file name, or a registry name such as "sam_vit_b")."""
        installed = self.list_models()
        for entry in installed:
            if entry.name == name:
                return entry
        spec = KNOWN_MODELS.get(name)
        if spec is not None:
            for entry in installed:
                if entry.name == spec.filename or entry.spec == spec:
                    return entry
            self._explain_hidden(spec.filename)
            raise ModelError(f"The model '{name}' is not installed; download it first.")
        self._explain_hidden(name)
        names = ", ".join(entry.name for entry in installed) or "none"
        raise ModelError(f"Unknown SAM model '{name}'; installed models: {names}.")

    def _explain_hidden(self, name: str) -> None:
        """If a model folder holds a file called ``name`` that the listing left out (a TorchScript archive,
        pickled objects, another kind of model), raise the reason. Only names found by listing the folders are
        compared; ``name`` is never joined into a path."""
        from segfill.sam.registry import NotSamCheckpoint, UnsafeCheckpoint, identify_checkpoint
        from segfill.sam.safe_load import check_file

        for folder in self.folders:
            try:
                entries = list(folder.iterdir()) if folder.is_dir() else []
            except OSError:
                continue
            for path in entries:
                if path.name != name or not path.is_file():
                    continue
                try:
                    check_file(path)
                    identify_checkpoint(path, use_hash=False, inspect="cheap")
                except (UnsafeCheckpoint, NotSamCheckpoint):
                    raise
                except Exception:
                    return
                return

    # ---- loading

    @property
    def loaded(self):
        """The LoadedSam currently held (possibly offloaded to the CPU), or None."""
        return self._loaded

    def is_current(self, loaded) -> bool:
        """Whether ``loaded`` (a LoadedSam a session kept) is still the held model, on its device.

        False after an unload, an idle unload, a switch to another model or an offload to the CPU: the
        holder must call :meth:`get` again (a cheap check, fit for every click)."""
        return loaded is not None and loaded is self._loaded and not self._offloaded

    def get(self, name: str, model_type: str | None = None, progress: Callable | None = None,
            should_stop: Callable[[], bool] | None = None):
        """The loaded model called ``name`` (see :meth:`resolve_name`), loading or moving it if needed.

        ``progress(done, total, message)`` / ``should_stop()`` (:mod:`segfill.progress`) follow a load."""
        entry = self.resolve_name(name)
        return self._get(entry.path, model_type, progress, should_stop)

    def get_path(self, path: str | os.PathLike, model_type: str | None = None, progress: Callable | None = None,
                 should_stop: Callable[[], bool] | None = None):
        """Load an explicit file path (CLI / trusted settings only: never pass a path from a web request)."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"Model file {path} does not exist.")
        return self._get(path, model_type, progress, should_stop)

    def _get(self, path: Path, model_type: str | None, progress: Callable | None = None,
             should_stop: Callable[[], bool] | None = None):
        source = (str(path.resolve()), model_type)
        with self._lock:
            device = self.device
            if self._loaded is not None and self._loaded_source == source:
                if self._offloaded or self._loaded.device != device:
                    self._loaded.to(device)
                    self._offloaded = False
            else:
                self._drop_locked()
                loader = self._loader
                if loader is None:
                    from segfill.sam.loading import load_sam as loader
                extra = {}
                if progress is not None or should_stop is not None:
                    extra = {"progress": progress, "should_stop": should_stop}
                self._loaded = loader(path, model_type=model_type, device=device, **extra)
                if hasattr(self._loaded, "precision"):
                    self._loaded.precision = self.precision
                self._loaded_source = source
                self._offloaded = False
                self.load_count += 1
            self._touch_locked()
            return self._loaded

    # ---- releasing

    def unload(self) -> bool:
        """Forget the loaded model and free its memory; True if one was loaded."""
        with self._lock:
            was_loaded = self._loaded is not None
            self._drop_locked()
            self._cancel_timer_locked()
            return was_loaded

    def offload_to_cpu(self) -> bool:
        """Move the model to the CPU (e.g. before an image generation); the next get() moves it back."""
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
        """Unload when ``idle_unload_s`` has passed since the last get(); True if it unloaded."""
        with self._lock:
            if self._loaded is None or self.idle_unload_s is None:
                return False
            now = self._clock() if now is None else now
            if now - self._last_used < self.idle_unload_s:
                return False
            self._drop_locked()
            return True

    def _drop_locked(self) -> None:
        if self._loaded is None:
            return
        device = self._loaded.device
        self._loaded = None
        self._loaded_source = None
        self._offloaded = False
        _free_device_memory(device)

    # ---- idle timer

    def _touch_locked(self) -> None:
        self._last_used = self._clock()
        if self.idle_unload_s is None:
            return
        self._cancel_timer_locked()
        timer = threading.Timer(self.idle_unload_s, self._on_timer)
        timer.daemon = True
        timer.name = "segfill-sam-idle-unload"
        self._timer = timer
        timer.start()

    def _cancel_timer_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        with self._lock:
            if not self.unload_if_idle() and self._loaded is not None and self.idle_unload_s is not None:
                # used again meanwhile (the timer raced a get): check again when the new idle period ends
                remaining = max(0.01, self._last_used + self.idle_unload_s - self._clock())
                timer = threading.Timer(remaining, self._on_timer)
                timer.daemon = True
                self._timer = timer
                timer.start()
