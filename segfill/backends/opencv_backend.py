"""The model-free backend: OpenCV Telea / Navier-Stokes inpainting.

Deterministic, instant, nothing to download: for quick previews, for tests, and for a first run. It continues
the colours around a hole inward, so it suits removing small things (wires, specks, a passer-by in front of
a plain background) and previewing an outpaint's geometry; it cannot invent content, and a hole without any
surroundings (a mask over the whole image) only comes back blurred. ``strength`` blends the inpainted pixels
over the input (1 = fully inpainted), so a low-strength seam-fix pass softens rather than replaces. Prompts,
seeds, steps and guidance are accepted and ignored (unless ``grain`` is set: then the seed drives a little
Gaussian grain in the repainted area, which makes tile seeds observable).

OpenCV has no native resolution, so by default it needs no tiles: the planner hands it the whole canvas in
one call (``needs_tiles = False``), up to :data:`WHOLE_CANVAS_MAX_SIDE` px per side; only a larger canvas is
split, into tiles of that side. ``tiled=True`` makes it behave like a 512-px diffusion model instead (tiles of
``working_size``), to preview or test the tiled path.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from segfill.backends.base import InpaintRequest, ProgressCallback
from segfill.errors import InputError

METHODS = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS, "ns": cv2.INPAINT_NS}

#: largest canvas side one call takes without tiles. A 4096x4096 canvas is 16.8 megapixels: one call adds
#: about 20 bytes per pixel (~0.35 GB) to the executor's own ~30 bytes per pixel; larger canvases are tiled.
WHOLE_CANVAS_MAX_SIDE = 4096
#: tile side with ``tiled=True`` (the resolution of SD2-inpainting-512)
TILED_WORKING_SIZE = 512


def blur_fill(rgb: np.ndarray) -> np.ndarray:
    """What OpenCV can offer for a hole with no surroundings: the colours there, heavily blurred."""
    h, w = rgb.shape[:2]
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=max(h, w) / 16.0, borderType=cv2.BORDER_REFLECT)


class OpenCVBackend:
    """:class:`~segfill.backends.base.InpaintBackend` on ``cv2.inpaint``."""

    name = "opencv"
    #: it only continues what surrounds a hole (the runner warns when a job leaves it nothing around one)
    needs_surroundings = True

    def __init__(self, method: str = "telea", radius: int = 5, working_size: int | None = None,
                 grain: float = 0.0, tiled: bool = False) -> None:
        if method not in METHODS:
            raise InputError(f"OpenCV inpainting method {method!r} is not one of telea, navier_stokes.")
        if radius < 1:
            raise InputError("The OpenCV inpainting radius must be at least 1 px.")
        self.method = method
        self.radius = int(radius)
        self.needs_tiles = bool(tiled)
        self.working_size = int(working_size or (TILED_WORKING_SIZE if tiled else WHOLE_CANVAS_MAX_SIDE))
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
            if mask.all():  # cv2.inpaint would return the input unchanged: there is nothing to continue
                filled = blur_fill(rgb)
            else:  # what lies under the mask must not matter (OpenCV reads a little of it otherwise)
                holed = np.where(mask[..., None], np.uint8(0), rgb)
                filled = cv2.inpaint(holed, mask.view(np.uint8) * np.uint8(255), self.radius, METHODS[self.method])
            strength = float(np.clip(request.strength, 0.0, 1.0))
            if self.grain > 0 or strength < 1.0:
                mixed = filled.astype(np.float32)
                if self.grain > 0:
                    noise = np.random.default_rng(request.seed).standard_normal(mask.shape, dtype=np.float32)
                    mixed += (self.grain * noise)[..., None]
                mixed = rgb.astype(np.float32) * (1.0 - strength) + mixed * strength
                filled = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
            out = np.where(mask[..., None], filled, rgb)
        if progress is not None:
            progress(1.0)
        return Image.fromarray(out)
