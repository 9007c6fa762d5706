"""Inpainting backends: one protocol (:mod:`segfill.backends.base`), several implementations.

Backends with heavy optional dependencies are imported lazily through :func:`create_backend`.
"""

from __future__ import annotations

import importlib
from typing import Any

from segfill.backends.base import InpaintBackend, InpaintRequest, ProgressCallback
from segfill.errors import InputError, MissingDependencyError, ModelError, SegFillError

__all__ = ["BACKEND_NAMES", "InpaintBackend", "InpaintRequest", "ProgressCallback", "create_backend"]

BACKEND_NAMES = ("opencv", "diffusers")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


def create_backend(name: str, **options: Any) -> InpaintBackend:
    """Build a backend by name.

    ``opencv``: options of :class:`~segfill.backends.opencv_backend.OpenCVBackend` (method, radius,
    working_size, grain). ``diffusers``: ``model`` (path or hub id) and optional ``device``, ``dtype``,
    ``attention_slicing``, ``cpu_offload`` for ``DiffusersBackend.from_model``. A missing package, a missing
    or unreadable model raise :class:`~segfill.errors.ModelError` (or a subclass) with one sentence.
    """
    key = name.strip().lower()
    if key == "opencv":
        from segfill.backends.opencv_backend import OpenCVBackend

        return OpenCVBackend(**options)
    if key == "diffusers":
        return _create_diffusers(**options)
    raise InputError(f"Unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}.")


def _create_diffusers(model: str | None = None, **options: Any) -> InpaintBackend:
    if not model:
        raise ModelError("The diffusers backend needs a model: a local folder/file or a Hugging Face id (--model).")
    try:
        module = importlib.import_module("segfill.backends.diffusers_backend")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "diffusers"
        if missing.startswith("segfill"):
            raise ModelError("The diffusers backend is not available in this SegFill version.") from exc
        raise MissingDependencyError(missing, "The diffusers backend") from exc
    try:
        return module.DiffusersBackend.from_model(model, **options)
    except SegFillError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"Could not load the inpainting model {model!r}: {_first_line(exc)}.") from exc
