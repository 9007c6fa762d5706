"""Shared helpers for the SAM session / segment map / mask CLI tests: tiny models through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.tiny_models import save_tiny_sam


def load_tiny(path: Path, seed: int = 0, precision: str = "fp32"):
    """Save a tiny random SAM to ``path`` and load it back through ``segfill.sam.loading.load_sam``.

    fp32 by default: these tests compare SegFill's masks bit for bit with a bare ``SamPredictor``'s, which never
    autocasts (the bf16 encoder path has its own tests, tests/test_sam_precision.py)."""
    from segfill.sam.loading import load_sam

    save_tiny_sam(path, seed=seed)
    return load_sam(path, device="cpu", precision=precision)


def textured_image(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """A small RGB uint8 test image: a bright disc on a noisy gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 60)], axis=-1)
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.25) ** 2
    base[disc] = (240, 230, 40)
    noise = rng.integers(-10, 11, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def single_torch_thread():
    """Generator body for a module fixture: tiny models run in milliseconds on one thread, but torch's
    multi-threaded pool spins for whole seconds when the (shared, busy) machine has no free core."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
