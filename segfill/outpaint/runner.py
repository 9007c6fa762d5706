"""Public entry points: plan, then execute with a backend.

```
size, tiled = backend_tiling(backend)                                       # (working_size, needs_tiles)
plan = plan_outpaint(image.size, args, working_size=size, tiled=tiled)      # plain data, plan.to_dict()
result = run_outpaint(image, args, backend, progress, should_stop)          # OutpaintResult(image, plan)
result = run_inpaint(image, mask, args, backend, progress, should_stop)     # InpaintResult(image, plan)
image = execute_plan(plan, image, repaint_tile, progress, should_stop)      # any repaint_tile callable
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from segfill.args import InpaintArgs, OutpaintArgs
from segfill.backends.base import InpaintBackend, backend_tiling
from segfill.masks import mask_from_image
from segfill.outpaint.alpha import alpha_from_plan, alpha_of
from segfill.outpaint.executor import (
    Interrupted,
    JobProgress,
    RepaintTile,
    ShouldStop,
    backend_repaint,
    execute_plan,
    to_rgb_array,
)
from segfill.outpaint.plan import InpaintPlan, OutpaintPlan, Plan, plan_inpaint, plan_outpaint

__all__ = [
    "InpaintResult", "Interrupted", "OutpaintResult", "Plan", "OutpaintPlan", "InpaintPlan", "RepaintTile",
    "backend_repaint", "execute_plan", "plan_inpaint", "plan_outpaint", "run_inpaint", "run_outpaint",
    "mask_to_array", "backend_tiling",
]


@dataclass
class OutpaintResult:
    image: Image.Image
    plan: OutpaintPlan


@dataclass
class InpaintResult:
    image: Image.Image
    plan: InpaintPlan
    #: sentences for the user when the backend could not do all that was asked (the image is still complete)
    warnings: list[str] = field(default_factory=list)


#: what the runner says when a backend that continues the surroundings of a mask (OpenCV) gets none
NO_SURROUNDINGS_WARNING = (
    "The mask covers the whole image, so the {name} backend has no surroundings to fill it from and returns a "
    "blurred copy; a diffusion model repaints a whole picture."
)


def run_outpaint(image: Image.Image, args: OutpaintArgs, backend: InpaintBackend,
                 progress: JobProgress | None = None, should_stop: ShouldStop | None = None) -> OutpaintResult:
    """Outpaint ``image`` as ``args`` asks, repainting every planned tile with ``backend``.

    An input with alpha gives an RGBA result: the original keeps its alpha outside the seam band, the new
    area and the regenerated band are opaque (:mod:`segfill.outpaint.alpha`)."""
    alpha = alpha_of(image)
    rgb = to_rgb_array(image)
    size, tiled = backend_tiling(backend)
    plan = plan_outpaint((rgb.shape[1], rgb.shape[0]), args, working_size=size, tiled=tiled)
    out = execute_plan(plan, rgb, backend_repaint(backend), progress, should_stop)
    if alpha is not None:
        out = alpha_from_plan(out, alpha, plan)
    return OutpaintResult(out, plan)


def mask_to_array(mask, size) -> np.ndarray:
    """PIL mask (any mode, white = repaint) or array -> bool (H, W); a size other than ``size`` (w, h) is an
    :class:`~segfill.errors.InputError` naming both sizes."""
    return mask_from_image(mask, size=tuple(size))


def run_inpaint(image: Image.Image, mask, args: InpaintArgs, backend: InpaintBackend,
                progress: JobProgress | None = None, should_stop: ShouldStop | None = None) -> InpaintResult:
    """Inpaint the masked part of ``image`` (mask: PIL, white = repaint, or bool/float array of the image size).

    An input with alpha gives an RGBA result: unmasked pixels keep their alpha, repainted ones (the mask and
    its blend band) become opaque."""
    alpha = alpha_of(image)
    rgb = to_rgb_array(image)
    size = (rgb.shape[1], rgb.shape[0])
    selected = mask_to_array(mask, size)
    working_size, tiled = backend_tiling(backend)
    plan = plan_inpaint(size, selected, args, working_size=working_size, tiled=tiled)
    warnings = []
    if getattr(backend, "needs_surroundings", False) and selected.all():
        warnings.append(NO_SURROUNDINGS_WARNING.format(name=getattr(backend, "name", "inpainting")))
    out = execute_plan(plan, rgb, backend_repaint(backend), progress, should_stop)
    if alpha is not None:
        out = alpha_from_plan(out, alpha, plan)
    return InpaintResult(out, plan, warnings)
