"""Shared helpers for the SAM session / segment map / mask CLI tests: tiny models through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.tiny_models import save_tiny_sam


def load_tiny(path: Path, seed: int = 0):
    """Save a tiny random SAM to ``path`` and load it back through ``segfill.sam.loading.load_sam``."""
    save_tiny_sam(path, seed=seed)
    try:
        from segfill.sam.loading import load_sam
    except ImportError:  # TEMPORARY until segfill.sam.loading lands
        import types

        from tests.tiny_models import build_tiny_sam

        return types.SimpleNamespace(model=build_tiny_sam(seed=seed), arch="vit_b", family="sam", path=path, model_key=f"tiny-{seed}")
    return load_sam(path, device="cpu")


def textured_image(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """A small RGB uint8 test image: a bright disc on a noisy gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 60)], axis=-1)
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.25) ** 2
    base[disc] = (240, 230, 40)
    noise = rng.integers(-10, 11, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)
