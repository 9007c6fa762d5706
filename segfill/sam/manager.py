"""SamManager: which SAM is loaded, on which device, and for how long.

One model is kept at a time (SAM checkpoints are large); asking for another unloads the previous one.
Models are looked up by the names :meth:`SamManager.list_models` reports, or by registry name: user input
is never joined into a path, so ``get("../../etc/passwd")`` is just an unknown name. Loading an explicit
path is a separate method, :meth:`SamManager.get_path`, for the CLI and trusted settings only.

Thread-safe: one lock guards loading, moving and unloading, so concurrent requests for the same model load it
once. ``idle_unload_s`` frees the model after that many seconds without a :meth:`get`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from segfill.errors import InputError, ModelError
from segfill.residency import ModelSlot
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
        self._loader = loader
        # the one LoadedSam held, keyed by (resolved path, model_type): segfill.residency's policy
        self._slot = ModelSlot(idle_unload_s, clock, name="sam")
        self._device: str | None = None

    # ---- devices

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.device_setting)
        return self._device

    def set_device(self, device: str) -> None:
        """Change the device policy; a loaded model moves on its next :meth:`get`."""
        resolved = resolve_device(device)
        with self._slot.lock:
            self.device_setting = device
            self._device = resolved
            if self._slot.loaded is not None and self._slot.loaded.device != resolved:
                self._slot.mark_to_move()

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
    def idle_unload_s(self) -> float | None:
        return self._slot.idle_unload_s

    @property
    def load_count(self) -> int:
        """How many times a file was actually loaded (tests, diagnostics)."""
        return self._slot.load_count

    @property
    def loaded(self):
        """The LoadedSam currently held (possibly offloaded to the CPU), or None."""
        return self._slot.loaded

    def is_current(self, loaded) -> bool:
        """Whether ``loaded`` (a LoadedSam a session kept) is still the held model, on its device.

        False after an unload, an idle unload, a switch to another model or an offload to the CPU: the
        holder must call :meth:`get` again (a cheap check, fit for every click)."""
        return self._slot.is_current(loaded)

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
        def load():
            loader = self._loader
            if loader is None:
                from segfill.sam.loading import load_sam as loader
            extra = {}
            if progress is not None or should_stop is not None:
                extra = {"progress": progress, "should_stop": should_stop}
            loaded = loader(path, model_type=model_type, device=self.device, **extra)
            if hasattr(loaded, "precision"):
                loaded.precision = self.precision
            return loaded

        return self._slot.get((str(path.resolve()), model_type), self.device, load)

    # ---- releasing (segfill.residency.ModelSlot)

    def unload(self) -> bool:
        """Forget the loaded model and free its memory; True if one was loaded."""
        return self._slot.unload()

    def offload_to_cpu(self) -> bool:
        """Move the model to the CPU (e.g. before an image generation); the next get() moves it back."""
        return self._slot.offload_to_cpu()

    offload = offload_to_cpu

    def unload_if_idle(self, now: float | None = None) -> bool:
        """Unload when ``idle_unload_s`` has passed since the last get(); True if it unloaded."""
        return self._slot.unload_if_idle(now)
