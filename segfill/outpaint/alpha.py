"""Transparency and bit depth across a repaint: nothing a user made is silently dropped.

The engine repaints RGB. An input with alpha (RGBA, LA, PA, or a palette / grey / RGB image with a
transparent colour) gets its alpha back on the result: pixels that cannot have changed keep theirs, and
repainted or outpainted pixels become opaque, blended by the composite mask across the soft seam band
(``alpha = a·(1 − c) + 255·c``). Which pixels changed comes from the plan's composite mask when SegFill's
runner did the work (:func:`alpha_from_plan`), and from comparing the result with the original when a host
did it by its own means (:func:`alpha_from_pixels`; the pixels outside its mask are bit-exact, so they keep
their alpha). 16-bit inputs are reduced to 8 bits by the engine: :func:`is_high_bit_depth` tells the CLI
and the API to say so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

#: one line for the CLI (stderr) and the API (``info["notes"]``)
HIGH_BIT_DEPTH_NOTE = "The input has more than 8 bits per channel; the result has 8 bits per channel."
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def alpha_of(image: Any) -> np.ndarray | None:
    """The alpha channel (uint8 ``(H, W)``) of a PIL image that has one, else None (arrays have none)."""
    if not isinstance(image, Image.Image):
        return None
    if image.mode in ALPHA_MODES:
        return np.asarray((image.convert("RGBA") if image.mode in ("PA", "RGBa", "La") else image).getchannel("A"))
    if "transparency" in image.info and image.mode in ("P", "L", "RGB"):
        return np.asarray(image.convert("RGBA").getchannel("A"))
    return None


def is_high_bit_depth(image: Any) -> bool:
    """True for 16-bit (or 32-bit) images; call it before ``image.load()`` to catch 16-bit RGB(A) PNGs, which
    Pillow opens as 8-bit modes (their raw mode, e.g. ``RGB;16B``, is only visible until loaded)."""
    if not isinstance(image, Image.Image):
        return False
    if image.mode in _HIGH_BIT_MODES or image.info.get("segfill_high_bit_depth"):
        return True
    return any(";16" in str(tile[3]) for tile in (getattr(image, "tile", None) or []) if len(tile) > 3)


def with_alpha(result: Image.Image, alpha: np.ndarray, changed: np.ndarray, placed_at: tuple[int, int] = (0, 0)
               ) -> Image.Image:
    """``result`` as RGBA: the input's ``alpha`` where the input sits (``placed_at``, result px), opaque
    elsewhere, blended to opaque by ``changed`` (bool or float in [0, 1], the result's size)."""
    width, height = result.size
    out = np.full((height, width), 255.0, dtype=np.float32)
    x0, y0 = placed_at
    h, w = alpha.shape
    out[y0:y0 + h, x0:x0 + w] = alpha
    c = np.clip(np.asarray(changed, dtype=np.float32), 0.0, 1.0)
    blended = np.rint(out * (1.0 - c) + 255.0 * c).astype(np.uint8)
    rgba = result.convert("RGB")
    rgba.putalpha(Image.fromarray(blended, mode="L"))
    return rgba


def alpha_from_plan(result: Image.Image, alpha: np.ndarray, plan: Any) -> Image.Image:
    """Alpha for a result of SegFill's runner: the plan's composite mask says exactly which pixels changed."""
    placed_at = tuple(plan.original_rect[:2]) if hasattr(plan, "original_rect") else (0, 0)
    return with_alpha(result, alpha, plan.full_mask("composite"), placed_at)


def alpha_from_pixels(result: Image.Image, original_rgb: np.ndarray, alpha: np.ndarray,
                      placed_at: tuple[int, int] = (0, 0)) -> Image.Image:
    """Alpha for a result made by a host's own pipeline: pixels equal to the original keep their alpha, new
    and changed ones are opaque."""
    rgb = np.asarray(result.convert("RGB"))
    changed = np.ones(rgb.shape[:2], dtype=bool)
    x0, y0 = placed_at
    h, w = original_rgb.shape[:2]
    region = rgb[y0:y0 + h, x0:x0 + w]
    changed[y0:y0 + h, x0:x0 + w] = np.any(region != original_rgb[:region.shape[0], :region.shape[1]], axis=-1)
    return with_alpha(result, alpha, changed, placed_at)


def rgba_image(rgb: np.ndarray, alpha: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    image.putalpha(Image.fromarray(np.ascontiguousarray(alpha), mode="L"))
    return image
