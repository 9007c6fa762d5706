"""The model-free backend: OpenCV Telea / Navier-Stokes inpainting.

Deterministic, instant, nothing to download: for quick previews, for tests, and for a first run. ``strength``
blends the inpainted pixels over the input (1 = fully inpainted), so a low-strength seam-fix pass softens
rather than replaces. Prompts, seeds, steps and guidance are accepted and ignored (unless ``grain`` is set:
then the seed drives a little Gaussian grain in the repainted area, which makes tile seeds observable).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from segfill.backends.base import InpaintRequest, ProgressCallback
from segfill.errors import InputError

METHODS = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS, "ns": cv2.INPAINT_NS}


class OpenCVBackend:
    """:class:`~segfill.backends.base.InpaintBackend` on ``cv2.inpaint``."""

    name = "opencv"

    def __init__(self, method: str = "telea", radius: int = 5, working_size: int = 512, grain: float = 0.0) -> None:
        if method not in METHODS:
            raise InputError(f"OpenCV inpainting method {method!r} is not one of telea, navier_stokes.")
        if radius < 1:
            raise InputError("The OpenCV inpainting radius must be at least 1 px.")
        self.method = method
        self.radius = int(radius)
        self.working_size = int(working_size)
        self.grain = float(grain)
        self.calls = 0  # for tests and benchmarks

    def inpaint(self, request: InpaintRequest, progress: ProgressCallback | None = None) -> Image.Image:
        if request.image.size != request.mask.size:
            raise InputError(f"The tile is {request.image.size} px but its mask is {request.mask.size} px.")
        self.calls += 1
        rgb = np.asarray(request.image.convert("RGB"), dtype=np.uint8)
        mask = np.asarray(request.mask.convert("L"), dtype=np.uint8) >= 128
        if progress is not None:
            progress(0.0)
        if not mask.any():
            out = rgb.copy()
        else:
            filled = cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8) * 255, self.radius,
                                 METHODS[self.method]).astype(np.float32)
            if self.grain > 0:
                noise = np.random.default_rng(request.seed).standard_normal(mask.shape, dtype=np.float32)
                filled += (self.grain * noise)[..., None]
            strength = float(np.clip(request.strength, 0.0, 1.0))
            blended = rgb.astype(np.float32) * (1.0 - strength) + filled * strength
            out = np.where(mask[..., None], np.clip(np.rint(blended), 0, 255).astype(np.uint8), rgb)
        if progress is not None:
            progress(1.0)
        return Image.fromarray(out)
