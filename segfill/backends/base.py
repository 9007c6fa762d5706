"""The inpainting backend protocol.

The engine plans canvases, masks and tiles; a backend only repaints one tile. The request carries what
``diffusers.StableDiffusionInpaintPipeline`` and the WebUI's ``processing.process_images`` both need, so the
same plan runs on either (and on the model-free OpenCV backend used for previews and tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

#: progress(fraction_done_of_this_tile in [0, 1]); may raise to interrupt (the runner lets it propagate).
ProgressCallback = Callable[[float], None]


@dataclass
class InpaintRequest:
    """One tile to repaint. ``image`` is RGB; ``mask`` is L, white (255) = repaint, black = keep.

    ``image.size == mask.size``; sizes are multiples of 8 when they come from the planner.
    """

    image: Image.Image
    mask: Image.Image
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    guidance: float = 7.5
    strength: float = 1.0


@runtime_checkable
class InpaintBackend(Protocol):
    """Repaints the masked part of a tile. Must return an RGB image of exactly ``request.image.size``.

    A backend declares how it wants the canvas cut (read with :func:`backend_tiling`):

    - ``needs_tiles = True`` (diffusion models, the WebUI's ``process_images``): the model was made for one
      resolution, ``working_size`` (512 for SD2-inpainting-512); the planner cuts the canvas into overlapping
      tiles of that side (or of the job's ``tile_size``), each continuing what its neighbours painted.
    - ``needs_tiles = False`` (OpenCV): any size works, so the whole canvas is repainted in one call and the
      job's ``tile_size``, ``overlap``, ``blend``, ``tile_mode`` and ``max_step`` do not apply. ``working_size``
      is then the largest side one call takes (a memory bound): a bigger canvas is split into tiles of that side.

    A backend without the attribute is treated as needing tiles.
    """

    name: str
    #: native resolution, px (tiled backends), or the largest side of one call (backends without tiles)
    working_size: int
    needs_tiles: bool

    def inpaint(self, request: InpaintRequest, progress: ProgressCallback | None = None) -> Image.Image:
        ...


def backend_tiling(backend) -> tuple[int, bool]:
    """``(working_size, needs_tiles)`` of ``backend`` (``needs_tiles`` defaults to True)."""
    return int(backend.working_size), bool(getattr(backend, "needs_tiles", True))
