"""Mask toolkit: conversions from and to PIL, morphology, feathering, bounding boxes.

Pure functions over numpy arrays, OpenCV and scipy underneath. Conventions (see docs/ARCHITECTURE.md):

- A binary mask is ``numpy.ndarray[bool]`` of shape ``(H, W)``; a soft (feathered) mask is ``float32`` in
  ``[0, 1]``. Functions that take a binary mask also accept other dtypes: integers are ``True`` where non-zero,
  floats where ``>= 0.5``.
- Sizes are ``(width, height)`` like PIL, coordinates ``(x, y)`` with the origin top-left.
- Outside the image is *unknown*, neither mask nor background: growing never grows in from the border, and
  shrinking or an inward feather never eats in from the image edge (a mask that reaches the edge stays at full
  strength there, which is what inpainting up to the border needs).
- Distances are exact Euclidean distance transforms (``cv2.distanceTransform`` with ``DIST_MASK_PRECISE``),
  so the cost of grow / shrink / feather does not depend on the radius and a radius of 300 px is as fast as 3.
- Large masks (8000×8000) are handled without float64 copies; work is cropped to the mask's neighbourhood
  where the result cannot change elsewhere.
"""

from __future__ import annotations

import math
import zlib
from enum import Enum
from typing import Any, Union

import cv2
import numpy as np
from PIL import Image
from scipy import special

from segfill.errors import InputError

__all__ = [
    "Box",
    "CombineOp",
    "bounding_box",
    "combine",
    "feather",
    "fill_holes",
    "grow",
    "image_to_rgb",
    "invert",
    "mask_extent",
    "mask_from_image",
    "mask_to_image",
    "pack_mask",
    "refine",
    "remove_small_holes",
    "remove_small_islands",
    "shrink",
    "unpack_mask",
]

Box = tuple[int, int, int, int]
ImageLike = Union[Image.Image, np.ndarray]

FEATHER_METHODS = ("gaussian", "linear")
FEATHER_DIRECTIONS = ("outward", "inward", "centered")
# The gaussian profile spans ±2 sigma over the ramp: sigma = (px + 1) / 4.
_GAUSSIAN_HALF_SPAN_SIGMAS = 2.0
_UINT8_TO_UNIT = np.arange(256, dtype=np.float32) / np.float32(255.0)


# ----------------------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------------------


def _size_text(width: int, height: int) -> str:
    return f"{width}×{height} px"


def _check_not_empty(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"The {what} is empty ({_size_text(width, height)}).")


def _full_scale(values: np.ndarray) -> float:
    """The value that means "fully on" for an array of this dtype and content.

    uint8 -> 255 and uint16 -> 65535 always; other integer and float arrays are judged by their maximum:
    <= 1 (floats only) -> 1, <= 255 -> 255, <= 65535 -> 65535, else the maximum itself. PIL opens 16-bit PNGs
    as mode ``I`` on older Pillow, which is why ``I`` is not simply taken as 32-bit.
    """
    if values.dtype == np.bool_:
        return 1.0
    if values.dtype == np.uint8:
        return 255.0
    if values.dtype == np.uint16:
        return 65535.0
    peak = float(np.nanmax(values)) if values.size else 0.0
    if not math.isfinite(peak):
        raise InputError("The image holds values that are not finite numbers (NaN or infinity).")
    if values.dtype.kind == "f" and peak <= 1.0:
        return 1.0
    if peak <= 255:
        return 255.0
    if peak <= 65535:
        return 65535.0
    return peak


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale one or more channels of any numeric dtype to uint8 using :func:`_full_scale`."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.view(np.uint8) * np.uint8(255)
    full = _full_scale(values)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float32), copy=False)
    if values.dtype.kind in "iuf" and values.dtype != np.uint16 and values.size and values.min() < 0:
        values = np.maximum(values, 0)
    if values.dtype.kind in "iu" and values.dtype.itemsize > 4 or values.dtype == np.uint32:
        values = values.astype(np.float64)  # OpenCV has no 64-bit or unsigned 32-bit integer images
    # convertScaleAbs rounds and saturates to 0..255 without a full-size float copy.
    return cv2.convertScaleAbs(values, alpha=255.0 / full)


def _pil_array(image: Image.Image) -> np.ndarray:
    width, height = image.size
    _check_not_empty(width, height, "image")
    return np.asarray(image)


def image_to_rgb(image: ImageLike) -> np.ndarray:
    """Any PIL image or array -> ``uint8`` ``(H, W, 3)`` RGB.

    RGBA / LA / PA: the alpha channel is dropped (colours are kept as they are, not composited). P goes through
    its palette. 16-bit (``I;16``) is scaled so 65535 -> 255; ``I`` and ``F`` are scaled by what their values
    look like (see :func:`_full_scale`: ``F`` in [0, 1] -> ×255, values up to 255 kept, up to 65535 scaled as
    16 bit). Arrays may be ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (grey + alpha), ``(H, W, 3)`` or
    ``(H, W, 4)`` of bool, any integer or float dtype.
    """
    if isinstance(image, Image.Image):
        if image.mode == "RGB":
            return np.array(_pil_array(image))
        if image.mode in ("RGBA", "RGBX"):
            return np.ascontiguousarray(_pil_array(image)[:, :, :3])
        if image.mode.startswith("I") or image.mode == "F":
            return image_to_rgb(np.array(_pil_array(image)))
        _check_not_empty(*image.size, "image")
        return np.array(image.convert("RGB"))  # 1, L, LA, P, PA, CMYK, YCbCr, LAB, HSV
    array = np.asarray(image)
    height, width = array.shape[:2] if array.ndim >= 2 else (0, 0)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise InputError(f"An image array must be H×W or H×W×1/2/3/4, not of shape {tuple(array.shape)}.")
    _check_not_empty(width, height, "image")
    if array.dtype.kind not in "biuf":
        raise InputError(f"An image array must hold numbers, not {array.dtype}.")
    if array.ndim == 3:
        channels = array.shape[2]
        array = array[:, :, :1] if channels <= 2 else array[:, :, :3]  # drop alpha
    pixels = _to_uint8(np.ascontiguousarray(array))
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(pixels.reshape(height, width, 1), 3, axis=2))
    return np.ascontiguousarray(pixels)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB array (same weights as PIL's ``convert("L")``), keeping uint8/uint16/float32."""
    if rgb.dtype not in (np.uint8, np.uint16, np.float32):
        rgb = rgb.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _mask_plane(image: ImageLike) -> tuple[np.ndarray, float]:
    """Reduce an image to one 2-D plane and the value in it that means "fully masked"."""
    if isinstance(image, Image.Image):
        mode = image.mode
        if mode in ("P", "PA"):
            image, mode = image.convert("RGBA"), "RGBA"  # through the palette; transparency becomes alpha
        elif mode not in ("1", "L", "LA", "RGB", "RGBA", "F") and not mode.startswith("I"):
            image, mode = image.convert("L"), "L"  # CMYK, YCbCr, LAB, HSV, RGBX, La, RGBa, ...
        array = _pil_array(image)
        if mode.startswith("I;16"):
            return array.astype(np.uint16, copy=False), 65535.0
    else:
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
            raise InputError(f"A mask array must be H×W or H×W×1/2/3/4, not of shape {tuple(array.shape)}.")
        _check_not_empty(array.shape[1], array.shape[0], "mask")
        if array.dtype.kind not in "biuf":
            raise InputError(f"A mask array must hold numbers, not {array.dtype}.")
        if array.dtype == np.float16 or array.dtype.kind == "f" and array.dtype.itemsize > 4:
            array = array.astype(np.float32)
    full = _full_scale(array)
    if not isinstance(image, Image.Image) and array.dtype.kind in "iu" and array.size and array.max() <= 1:
        full = 1.0  # a 0/1 integer array from numpy code is a binary mask, not a nearly black picture
    if array.ndim == 2:
        return array, full
    alpha = array[:, :, -1] if array.shape[2] in (2, 4) else None
    if alpha is not None and alpha.min() < full:
        return alpha, full  # transparency painted by the user is the mask
    if array.shape[2] == 2:
        return array[:, :, 0], full
    return _luminance(array[:, :, :3]), full


def mask_from_image(image: ImageLike, size: tuple[int, int] | None = None, soft: bool = False) -> np.ndarray:
    """A mask from any image mode or array, as ``bool`` (on where >= 50 %) or, with ``soft``, ``float32``.

    PIL modes: ``1``; ``L``; ``LA`` and ``RGBA`` (the alpha channel is the mask when any pixel is not fully
    opaque, otherwise the grey level / luminance); ``RGB`` (luminance); ``P`` (through the palette, then as
    ``RGBA``); ``I;16`` (65535 = fully on); ``I`` and ``F`` (judged by their values, see :func:`_full_scale`);
    other modes via ``L``. Arrays: bool, uint8, uint16, other integers and floats, ``(H, W)`` or with 1-4
    channels read like the PIL modes above; an integer array holding only 0 and 1 is binary (1 = on).

    ``size`` is the ``(width, height)`` of the image the mask belongs to; a mask of another size raises
    :class:`InputError` naming both sizes.
    """
    plane, full = _mask_plane(image)
    height, width = plane.shape
    _check_not_empty(width, height, "mask")
    if size is not None:
        expected_w, expected_h = int(size[0]), int(size[1])
        if (width, height) != (expected_w, expected_h):
            raise InputError(
                f"Mask is {_size_text(width, height)} but the image is {_size_text(expected_w, expected_h)}."
            )
    if plane.dtype == np.bool_:
        return plane.astype(np.float32) if soft else np.array(plane)
    if soft:
        if plane.dtype == np.uint8 and full == 255.0:
            return _UINT8_TO_UNIT[plane]  # one table look-up instead of float arithmetic on the whole plane
        values = plane.astype(np.float32)  # always a copy we own
        values *= np.float32(1.0 / full)
        if plane.dtype.kind == "u":
            return values  # already within [0, 1]: full is at least the largest value
        np.nan_to_num(values, copy=False)
        return _clip_unit(values)
    if plane.dtype.kind in "iu":
        return plane >= math.ceil(full / 2)
    return plane >= np.float32(full / 2)  # NaN compares False


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """A mask as a PIL ``L`` image: bool -> 0 / 255, float in [0, 1] -> ``round(255 · m)``, uint8 as it is
    (except an array of only 0 and 1, which is read as binary like bool)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"A mask must be a 2-D array, not of shape {tuple(mask.shape)}.")
    _check_not_empty(mask.shape[1], mask.shape[0], "mask")
    if mask.dtype == np.bool_:
        pixels = mask.view(np.uint8) * np.uint8(255)
    elif mask.dtype.kind in "iu" and mask.max() <= 1:
        pixels = mask.astype(np.uint8) * np.uint8(255)  # 0/1 integers: a binary mask
    elif mask.dtype == np.uint8:
        pixels = mask
    elif mask.dtype.kind == "f":
        values = np.nan_to_num(mask.astype(np.float32), copy=False)
        _clip_unit(values)
        values *= np.float32(255.0)
        pixels = np.rint(values, out=values).astype(np.uint8)
    else:
        pixels = _to_uint8(mask)
    return Image.fromarray(np.ascontiguousarray(pixels), mode="L")


def pack_mask(mask: np.ndarray) -> bytes:
    """A binary mask bit-packed and zlib-compressed, for undo histories: an 8000×6000 selection takes
    kilobytes instead of 48 MB. :func:`unpack_mask` with the mask's shape gives it back exactly."""
    return zlib.compress(np.packbits(_binary(mask), axis=None).tobytes(), 1)


def unpack_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The bool ``(H, W)`` mask :func:`pack_mask` packed; ``shape`` is numpy's ``(height, width)``."""
    bits = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    return np.unpackbits(bits, count=shape[0] * shape[1]).astype(bool).reshape(shape)


# ----------------------------------------------------------------------------------------------------------
# Binary operations
# ----------------------------------------------------------------------------------------------------------


def _binary(mask: Any) -> np.ndarray:
    """``mask`` as a 2-D bool array (no copy when it already is one)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"A mask must be a 2-D array, not of shape {tuple(mask.shape)}.")
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype.kind == "f":
        return mask >= 0.5
    if mask.dtype.kind in "iu":
        return mask != 0
    raise InputError(f"A mask must hold bools or numbers, not {mask.dtype}.")


def _check_radius(px: float, what: str) -> float:
    try:
        value = float(px)
    except (TypeError, ValueError):
        raise InputError(f"The {what} must be a number of pixels, not {px!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"The {what} must be 0 or more pixels, not {px!r}.")
    return value


def _box_of(mask: np.ndarray) -> Box | None:
    """Tight ``(x0, y0, x1, y1)`` box (exclusive ends) of the True pixels, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _padded_slices(box: Box, pad: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    height, width = shape
    return slice(max(0, y0 - pad), min(height, y1 + pad)), slice(max(0, x0 - pad), min(width, x1 + pad))


def _distance_to_zero(nonzero: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (float32) from every True pixel to the nearest False one; False -> 0.

    Pixels outside the array are not False: with no False pixel at all, every distance is huge (~1.8e19).
    """
    return cv2.distanceTransform(nonzero.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _disc_threshold(px: float) -> np.float32:
    """Threshold on float32 distances that keeps exactly the offsets with dx² + dy² <= px².

    Squared pixel distances are integers, so ``d <= px`` equals ``d² <= floor(px²)``; comparing against the
    midpoint to the next integer absorbs float32 rounding of the square root.
    """
    return np.float32(math.sqrt(math.floor(px * px) + 0.5))


def grow(mask: np.ndarray, px: float) -> np.ndarray:
    """Dilate by a disc of radius ``px``: adds every pixel within Euclidean distance ``px`` of the mask.

    A single pixel grown by 3 becomes the digital disc ``{dx² + dy² <= 9}``. ``px`` may be fractional;
    0 returns a copy. The work is cropped to the mask's box padded by ``px``.
    """
    mask = _binary(mask)
    radius = _check_radius(px, "grow radius")
    box = _box_of(mask)
    if radius < 1 or box is None:  # no other pixel centre is closer than 1 px
        return np.array(mask)
    rows, cols = _padded_slices(box, int(math.ceil(radius)) + 1, mask.shape)
    crop = mask[rows, cols]
    distance = _distance_to_zero(~crop)  # distance of background pixels to the mask
    out = np.array(mask)
    out[rows, cols] = distance <= _disc_threshold(radius)
    return out


def shrink(mask: np.ndarray, px: float) -> np.ndarray:
    """Erode by a disc of radius ``px``: removes every mask pixel within ``px`` of a background pixel.

    The exact dual of :func:`grow` (``shrink(m) == ~grow(~m)``). The image border is not background, so a
    mask touching the edge does not shrink away from it.
    """
    mask = _binary(mask)
    radius = _check_radius(px, "shrink radius")
    box = _box_of(mask)
    if radius < 1 or box is None:
        return np.array(mask)
    # Only mask pixels can change, and their nearest background within px lies inside the padded box.
    rows, cols = _padded_slices(box, int(math.ceil(radius)) + 1, mask.shape)
    distance = _distance_to_zero(np.ascontiguousarray(mask[rows, cols]))
    out = np.zeros_like(mask)
    out[rows, cols] = distance > _disc_threshold(radius)
    return out


def invert(mask: np.ndarray) -> np.ndarray:
    """Swap mask and background."""
    return ~_binary(mask)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background region the mask encloses (4-connected background not touching the border).

    Same result as ``scipy.ndimage.binary_fill_holes``, through OpenCV's connected components, which is
    several times faster on large masks.
    """
    return remove_small_holes(mask, math.inf)


def _check_area(min_area: float) -> float:
    try:
        value = float(min_area)
    except (TypeError, ValueError):
        raise InputError(f"The minimum area must be a number of pixels, not {min_area!r}.") from None
    if math.isnan(value) or value < 0:
        raise InputError(f"The minimum area must be 0 or more pixels, not {min_area!r}.")
    return value


def remove_small_islands(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Drop connected mask regions (8-connected) with fewer than ``min_area`` pixels."""
    mask = _binary(mask)
    area = _check_area(min_area)
    box = _box_of(mask)
    if area <= 1 or box is None:
        return np.array(mask)
    rows, cols = _padded_slices(box, 0, mask.shape)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(mask[rows, cols]).view(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= area
    keep[0] = False  # label 0 is the background
    if keep[1:].all():
        return np.array(mask)
    out = np.zeros_like(mask)
    out[rows, cols] = keep[labels]
    return out


def remove_small_holes(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Fill holes (4-connected background regions not touching the border) with fewer than ``min_area`` pixels."""
    mask = _binary(mask)
    area = _check_area(min_area)
    box = _box_of(mask)
    if area <= 1 or box is None:
        return np.array(mask)
    # As in fill_holes: holes lie inside the box, and a 1-px ring keeps the outside in one piece.
    rows, cols = _padded_slices(box, 1, mask.shape)
    crop = mask[rows, cols]
    height, width = crop.shape
    _, labels, stats, _ = cv2.connectedComponentsWithStats((~crop).view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    touches_border = (left == 0) | (top == 0) | (right == width) | (bottom == height)
    fill = (stats[:, cv2.CC_STAT_AREA] < area) & ~touches_border
    fill[0] = False  # label 0 is the mask itself
    out = np.array(mask)
    if fill.any():
        out[rows, cols] |= fill[labels]
    return out


class CombineOp(str, Enum):
    """How a new selection combines with the current mask."""

    ADD = "add"  # union
    SUBTRACT = "subtract"  # current and not new
    INTERSECT = "intersect"  # both
    REPLACE = "replace"  # the new one only

    def __str__(self) -> str:
        return self.value


def combine(current: np.ndarray, new: np.ndarray, op: Union[CombineOp, str]) -> np.ndarray:
    """Combine two masks of the same shape; ``op`` is a :class:`CombineOp` or its value ("add", ...)."""
    try:
        op = CombineOp(op) if not isinstance(op, str) or op in CombineOp._value2member_map_ else CombineOp[op.upper()]
    except (ValueError, KeyError):
        names = ", ".join(o.value for o in CombineOp)
        raise InputError(f"Unknown way to combine masks {op!r}; use one of {names}.") from None
    current, new = _binary(current), _binary(new)
    if current.shape != new.shape:
        (h1, w1), (h2, w2) = current.shape, new.shape
        raise InputError(f"Cannot combine a {_size_text(w1, h1)} mask with a {_size_text(w2, h2)} mask.")
    if op is CombineOp.ADD:
        return current | new
    if op is CombineOp.SUBTRACT:
        return current & ~new
    if op is CombineOp.INTERSECT:
        return current & new
    return np.array(new)


# ----------------------------------------------------------------------------------------------------------
# Feathering
# ----------------------------------------------------------------------------------------------------------


def mask_extent(mask: np.ndarray) -> float:
    """Size of a mask for relative feathering: ``sqrt(w · h)`` of its bounding box (0 when empty).

    The geometric mean of the box sides, so a long thin strip gets a feather that fits its thickness better
    than its length would suggest.
    """
    box = _box_of(_binary(mask))
    if box is None:
        return 0.0
    x0, y0, x1, y1 = box
    return math.sqrt((x1 - x0) * (y1 - y0))


def _gaussian_profile(ramp: np.ndarray) -> np.ndarray:
    """Map a linear ramp in [0, 1] (in place) to the profile of an edge blurred by a Gaussian, ±2 sigma wide,
    rescaled so 0 and 1 map to 0 and 1 (up to float rounding) and the midpoint stays exactly 0.5."""
    scale = np.float32(2.0 * _GAUSSIAN_HALF_SPAN_SIGMAS / math.sqrt(2.0))
    edge = special.erf(_GAUSSIAN_HALF_SPAN_SIGMAS / math.sqrt(2.0))
    ramp -= np.float32(0.5)
    ramp *= scale
    special.erf(ramp, out=ramp)
    ramp *= np.float32(0.5 / edge)
    ramp += np.float32(0.5)
    return _clip_unit(ramp)


def _clip_unit(values: np.ndarray) -> np.ndarray:
    """Clip float32 values to [0, 1] in place (np.maximum / np.minimum are much faster than np.clip)."""
    np.maximum(values, np.float32(0.0), out=values)
    return np.minimum(values, np.float32(1.0), out=values)


def feather(
    mask: np.ndarray,
    px: float,
    method: str = "gaussian",
    direction: str = "outward",
    relative: float | None = None,
) -> np.ndarray:
    """Soften the mask edge into a ramp ``px`` pixels wide; returns ``float32`` in ``[0, 1]``.

    With ``d`` the exact Euclidean distance of a pixel to the other side of the edge (1 for the pixels right
    next to it), the linear ramp is:

    - ``"outward"``: the mask stays exactly 1; outside, ``1 - d / (px + 1)``, so the px pixels next to the mask
      fade out and everything ``px + 1`` or more away stays exactly 0. Nothing inside the mask loses strength.
    - ``"inward"``: outside stays exactly 0; inside, ``d / (px + 1)``, reaching 1 at ``px + 1`` from the
      edge. Nothing outside the mask changes, which is what "never touch pixels outside the mask" needs.
      ``inward(m) == 1 - outward(~m)``.
    - ``"centered"``: the ramp straddles the edge, ``0.5 ± s / (px + 1)`` with ``s`` the distance of the pixel
      centre from the edge (``d - 0.5``); ``centered(m) + centered(~m) == 1``.

    ``method="gaussian"`` keeps the same ramp positions but shapes the values like an edge blurred by a
    Gaussian (sigma = (px + 1) / 4, ±2 sigma across the ramp, rescaled to hit 0 and 1 exactly), so the
    guarantees above hold exactly and the cost does not grow with ``px``. Unlike a blur it does not dim thin
    parts of the mask. The image border is not an edge (a mask touching it stays at full strength there).

    ``relative`` (e.g. 0.05) replaces ``px`` by ``relative · sqrt(w · h)`` of the mask's bounding box (see
    :func:`mask_extent`), so the feather scales with the selected object. ``px == 0`` gives the mask as 0 / 1.
    """
    mask = _binary(mask)
    if method not in FEATHER_METHODS:
        raise InputError(f"Unknown feather method {method!r}; use one of {', '.join(FEATHER_METHODS)}.")
    if direction not in FEATHER_DIRECTIONS:
        raise InputError(f"Unknown feather direction {direction!r}; use one of {', '.join(FEATHER_DIRECTIONS)}.")
    if relative is not None:
        fraction = _check_radius(relative, "relative feather")
        width = fraction * mask_extent(mask)
    else:
        width = _check_radius(px, "feather width")
    box = _box_of(mask)
    if width <= 0 or box is None:
        return mask.astype(np.float32)
    steps = np.float32(width + 1.0)
    # Inward only needs the ring of background right around the box; the others need room for the ramp.
    pad = 1 if direction == "inward" else int(math.ceil(width)) + 2
    rows, cols = _padded_slices(box, pad, mask.shape)
    crop = np.ascontiguousarray(mask[rows, cols])

    if direction == "outward":
        ramp = _distance_to_zero(~crop)  # 0 inside, d outside
        ramp /= -steps
        ramp += np.float32(1.0)
    elif direction == "inward":
        ramp = _distance_to_zero(crop)  # d inside, 0 outside
        ramp /= steps
    else:
        # signed distance of the pixel centre from the edge: d - 0.5 inside, 0.5 - d outside (in place)
        ramp = _distance_to_zero(crop)
        ramp -= np.float32(0.5)
        outside = _distance_to_zero(~crop)
        outside *= np.float32(-1.0)
        outside += np.float32(0.5)
        np.copyto(ramp, outside, where=~crop)
        del outside
        ramp /= steps
        ramp += np.float32(0.5)
    _clip_unit(ramp)
    if method == "gaussian":
        # Only the band strictly inside the ramp changes (usually a thin ring); 0 and 1 stay exact.
        band = ramp > 0.0
        band &= ramp < 1.0
        ramp[band] = _gaussian_profile(ramp[band])
    # Exact guarantees, whatever float rounding did: the mask stays 1 (outward), the outside stays 0 (inward).
    if direction == "outward":
        ramp[crop] = 1.0
    elif direction == "inward":
        ramp[~crop] = 0.0
    out = np.zeros(mask.shape, np.float32)  # every mask pixel lies inside the crop
    out[rows, cols] = ramp
    return out


# ----------------------------------------------------------------------------------------------------------
# Boxes and the fixed refinement pipeline
# ----------------------------------------------------------------------------------------------------------


def _align_span(start: int, end: int, align: int, limit: int) -> tuple[int, int]:
    """Grow ``[start, end)`` symmetrically to a multiple of ``align``, then shift it into ``[0, limit)``.

    When ``limit`` itself is shorter than the aligned length the whole ``[0, limit)`` is returned (unaligned).
    """
    length = end - start
    target = -(-length // align) * align
    if target >= limit:
        return 0, limit
    extra = target - length
    start -= extra // 2
    end = start + target
    if start < 0:
        start, end = 0, target
    if end > limit:
        start, end = limit - target, limit
    return start, end


def bounding_box(
    mask: np.ndarray, pad: int = 0, align: int = 8, image_size: tuple[int, int] | None = None
) -> Box | None:
    """Box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) around the mask, padded and aligned; None when empty.

    Steps: the tight box, padded by ``pad`` on every side, clamped to the image, then widened (about equally on
    both sides) so width and height are multiples of ``align`` — Stable Diffusion works in multiples of 8. A box
    that would stick out of the image is shifted back inside instead of being cut. If the image side itself is
    shorter than the aligned length, that side is the whole image and is not a multiple of ``align``.
    ``image_size`` is ``(width, height)`` and must match the mask (it defaults to the mask's size).
    """
    mask = _binary(mask)
    height, width = mask.shape
    if image_size is not None and (int(image_size[0]), int(image_size[1])) != (width, height):
        raise InputError(
            f"Mask is {_size_text(width, height)} but the image is "
            f"{_size_text(int(image_size[0]), int(image_size[1]))}."
        )
    if int(pad) != pad or pad < 0:
        raise InputError(f"The box padding must be a whole number of pixels, 0 or more, not {pad!r}.")
    if align is None:
        align = 1
    if int(align) != align or align < 1:
        raise InputError(f"The box alignment must be a whole number of pixels, 1 or more, not {align!r}.")
    box = _box_of(mask)
    if box is None:
        return None
    pad, align = int(pad), int(align)
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(width, x1 + pad), min(height, y1 + pad)
    x0, x1 = _align_span(x0, x1, align, width)
    y0, y1 = _align_span(y0, y1, align, height)
    return x0, y0, x1, y1


def refine(mask: np.ndarray, refinement: Any) -> np.ndarray:
    """Apply a :class:`segfill.args.MaskRefinement` in its fixed order:
    fill holes -> remove specks (islands, then holes, smaller than ``remove_specks`` px²) -> grow -> shrink
    -> invert -> feather.

    Returns ``bool`` when no feather is asked for, otherwise ``float32`` in [0, 1]. ``refinement`` may also be a
    plain dict of the same fields.
    """
    from segfill.args import MaskRefinement, parse_args_model

    if not isinstance(refinement, MaskRefinement):
        refinement = parse_args_model(MaskRefinement, dict(refinement or {}))
    out = _binary(mask)
    if refinement.fill_holes:
        out = fill_holes(out)
    if refinement.remove_specks:
        out = remove_small_holes(remove_small_islands(out, refinement.remove_specks), refinement.remove_specks)
    if refinement.grow:
        out = grow(out, refinement.grow)
    if refinement.shrink:
        out = shrink(out, refinement.shrink)
    if refinement.invert:
        out = invert(out)
    if refinement.feather or refinement.feather_relative:
        return feather(
            out,
            refinement.feather,
            method=refinement.feather_method,
            direction=refinement.feather_direction,
            relative=refinement.feather_relative,
        )
    return np.array(out)
