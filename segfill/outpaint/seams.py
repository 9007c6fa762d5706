"""The two masks of every outpaint / inpaint pass, both functions of one distance map.

Let ``d`` be the Euclidean distance (px) of a pixel from the *new area* (0 inside it). With ``band`` the
overlap band that is regenerated inside the known content and ``feather`` the width of the soft edges:

* **denoise mask** (what the model repaints): 1 for ``d <= band``, then a raised-cosine fall-off to 0 at
  ``d = band + feather``. Backends that need a hard mask threshold it at 0.5 (``d <= band + feather/2``), so
  the repainted area always contains the whole composite area.
* **composite mask** (how much of the repainted content is pasted back): 1 for ``d <= band - feather``, then a
  raised-cosine fall-off to exactly 0 at ``d = band``. It never reaches farther than the band: every known
  pixel with ``d >= band`` is kept bit-exact. ``feather`` is clamped to ``band`` here.

With ``band = 0`` the composite mask is the new area itself (a hard edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class MaskPair:
    denoise: np.ndarray  # float32 (H, W) in [0, 1]
    composite: np.ndarray  # float32 (H, W) in [0, 1]; exactly 0 where the known content must stay bit-exact


def distance_from(region: np.ndarray) -> np.ndarray:
    """Euclidean distance (float32) of every pixel to the nearest ``True`` pixel of ``region`` (0 inside).

    An empty region gives ``inf`` everywhere.
    """
    region = np.asarray(region, dtype=bool)
    if not region.any():
        return np.full(region.shape, np.inf, dtype=np.float32)
    outside = np.ascontiguousarray(~region, dtype=np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # OpenCV returns e.g. 7.0000005 for 7 (and not always the same last bit); distances are square roots of
    # integers, so rounding to 1e-4 makes thresholds at whole distances exact and repeatable
    return np.round(distance, 4, out=distance)


def cosine_falloff(distance: np.ndarray, start: float, end: float) -> np.ndarray:
    """1 for ``distance <= start``, 0 for ``distance >= end``, a raised cosine in between (float32)."""
    distance = np.asarray(distance, dtype=np.float32)
    out = (distance <= start).astype(np.float32)
    if end > start:
        ramp = (distance > start) & (distance < end)
        t = (distance[ramp] - np.float32(start)) / np.float32(end - start)
        out[ramp] = 0.5 + 0.5 * np.cos(np.pi * t)
    return out


def composite_mask_from_distance(distance: np.ndarray, band: int, feather: int) -> np.ndarray:
    feather = min(max(int(feather), 0), max(int(band), 0))
    band = max(int(band), 0)
    if band == 0:
        return (distance <= 0).astype(np.float32)
    if feather == 0:
        return (distance < band).astype(np.float32)
    return cosine_falloff(distance, band - feather, band)


def denoise_mask_from_distance(distance: np.ndarray, band: int, feather: int) -> np.ndarray:
    band = max(int(band), 0)
    return cosine_falloff(distance, band, band + max(int(feather), 0))


def masks_from_distance(distance: np.ndarray, band: int, feather: int) -> MaskPair:
    """Denoise and composite masks from the distance to the new area (any shape: 1-D profiles work too)."""
    return MaskPair(denoise=denoise_mask_from_distance(distance, band, feather),
                    composite=composite_mask_from_distance(distance, band, feather))


def build_masks(new_area: np.ndarray, band: int, feather: int) -> MaskPair:
    """Denoise and composite masks for ``new_area`` (bool, True = content to create); see the module doc."""
    return masks_from_distance(distance_from(new_area), band, feather)


def rect_frame_masks(shape: tuple[int, int], inner: tuple[int, int, int, int], band: int,
                     feather: int) -> tuple[np.ndarray, MaskPair]:
    """Exact masks when the known content is the rectangle ``inner`` = (x0, y0, x1, y1) of an area of ``shape``
    (H, W) and the new area is everything else (an outpaint pass). Returns ``(new_area, masks)``.

    Only padded sides count as new area. Both masks are decreasing functions of a distance that is the minimum
    of per-axis distances, so ``f(min(dx, dy)) = max(f(dx), f(dy))``: two 1-D profiles and one outer maximum
    instead of a full distance transform.
    """
    h, w = shape
    x0, y0, x1, y1 = inner

    def profile(length: int, lo: int, hi: int) -> np.ndarray:
        pos = np.arange(length, dtype=np.float32)
        d = np.full(length, np.inf, dtype=np.float32)
        if lo > 0:  # new area before lo: nearest new pixel is lo - 1
            d = np.minimum(d, pos - (lo - 1))
        if hi < length:  # new area from hi on
            d = np.minimum(d, hi - pos)
        d[:lo] = 0
        d[hi:] = 0
        return d

    dx, dy = profile(w, x0, x1), profile(h, y0, y1)
    new_area = (dy[:, None] <= 0) | (dx[None, :] <= 0)
    mx, my = masks_from_distance(dx, band, feather), masks_from_distance(dy, band, feather)
    masks = MaskPair(denoise=np.maximum(my.denoise[:, None], mx.denoise[None, :]),
                     composite=np.maximum(my.composite[:, None], mx.composite[None, :]))
    return new_area, masks


def rect_distance(shape: tuple[int, int], rect: tuple[int, int, int, int], stride: int = 1) -> np.ndarray:
    """Euclidean distance (float32) of the pixels of an area of ``shape`` to the rectangle ``rect`` (0 inside),
    sampled every ``stride`` px (the result has the shape of ``array[::stride, ::stride]``)."""
    h, w = shape
    x0, y0, x1, y1 = rect
    xs, ys = np.arange(0, w, stride, dtype=np.float32), np.arange(0, h, stride, dtype=np.float32)
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0)
    return np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)


def hard_mask(soft: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The binary mask a backend sees for a soft mask (``>= threshold``)."""
    return np.asarray(soft) >= threshold


def ring(region: np.ndarray, inner: float, outer: float, distance: np.ndarray | None = None) -> np.ndarray:
    """Pixels whose distance from ``region`` lies in ``(inner, outer]`` (bool)."""
    d = distance_from(region) if distance is None else distance
    return (d > inner) & (d <= outer)
