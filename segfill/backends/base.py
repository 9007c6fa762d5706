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
    """Repaints the masked part of a tile. Must return an RGB image of exactly ``request.image.size``."""

    name: str
    #: native working resolution (e.g. 512 for SD2-inpainting-512); the planner sizes tiles from it.
    working_size: int

    def inpaint(self, request: InpaintRequest, progress: ProgressCallback | None = None) -> Image.Image:
        ...
