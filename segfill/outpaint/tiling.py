"""Tile planner, per-tile seeds and blend windows.

Tiles are rectangles ``(x0, y0, x1, y1)`` in work-canvas pixels whose width and height are multiples of 8 and
at most the model's working size. The planner lays a grid over each box that needs work (with at least
``overlap`` px shared between neighbours), keeps only the tiles that contain pixels to repaint, and orders them
so that tiles nearest to the known content run first: every later tile then sees what its neighbours
produced (the runner updates the canvas between tiles).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segfill.outpaint.geometry import ALIGN, Rect, round_down, round_up

#: smallest blend weight at a tapered tile edge (never 0, so a pixel covered by one tile keeps its value).
MIN_WEIGHT = 1e-3


@dataclass(frozen=True)
class Tile:
    """One backend call: a rectangle of the work canvas and the seed it runs with."""

    x0: int
    y0: int
    x1: int
    y1: int
    seed: int
    pass_index: int = 0
    index: int = 0
    kind: str = "main"  # "main" or "seam"

    @property
    def rect(self) -> Rect:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def size(self) -> tuple[int, int]:
        return (self.x1 - self.x0, self.y1 - self.y0)

    @property
    def slices(self) -> tuple[slice, slice]:
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    def to_list(self) -> list[int]:
        """``[x0, y0, x1, y1, seed]`` as recorded in the infotext."""
        return [self.x0, self.y0, self.x1, self.y1, self.seed]


def derive_seed(seed: int, pass_index: int, tile_index: int, kind: str = "main") -> int:
    """Deterministic 32-bit tile seed from the job's one seed (BLAKE2b of ``seed/pass/kind/index``).

    Stable across platforms and Python versions; distinct tiles get unrelated seeds.
    """
    digest = hashlib.blake2b(f"{int(seed)}/{pass_index}/{kind}/{tile_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def axis_starts(lo: int, hi: int, tile: int, overlap: int, limit: int, align: int = ALIGN) -> list[int]:
    """Start positions of tiles of length ``tile`` covering ``[lo, hi)`` inside ``[0, limit)``.

    Neighbouring tiles share at least ``overlap`` px; starts are multiples of ``align`` whenever ``limit`` and
    ``tile`` are (the work canvas guarantees that). A span shorter than a tile gets one tile centred on it.
    """
    tile = min(tile, limit)
    lo_a = max(0, round_down(lo, align))
    hi_a = min(limit, round_up(hi, align))
    span = hi_a - lo_a
    if span <= tile:
        start = round_down(lo_a - (tile - span) // 2, align)
        return [min(max(0, start), limit - tile)]
    overlap = max(0, min(overlap, tile // 2, tile - align))
    stride = max(align, tile - overlap)
    n = max(2, math.ceil((span - overlap) / stride))
    while True:
        starts = [lo_a + round_down((span - tile) * i // (n - 1), align) for i in range(n - 1)] + [hi_a - tile]
        if all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False)):
            return sorted(set(starts))
        n += 1


def plan_tiles(region: np.ndarray, boxes: Sequence[Rect], tile_size: tuple[int, int], overlap: int, seed: int,
               pass_index: int = 0, kind: str = "main", order_distance: np.ndarray | None = None,
               origin: tuple[int, int] = (0, 0), canvas_size: tuple[int, int] | None = None,
               order_stride: int = 1, drop_covered: bool = False) -> list[Tile]:
    """Tiles covering every ``True`` pixel of ``region`` that lies inside one of ``boxes``.

    ``region`` (bool) covers the canvas area starting at ``origin`` (default: the whole canvas, whose size is
    ``canvas_size``, default the region's). ``boxes`` and the returned tiles are in canvas pixels.
    ``tile_size`` is ``(w, h)``, multiples of 8, clamped to the canvas. Only tiles containing at least one
    region pixel are kept. Order: ascending mean ``order_distance`` (distance from the known content, in the
    frame of ``region[::order_stride, ::order_stride]``) over the tile's region pixels, then top-to-bottom,
    left-to-right; seeds come from :func:`derive_seed`. With ``drop_covered``, a tile whose region pixels are
    all covered by tiles before it in that order is dropped (it would only regenerate finished content).
    """
    stride = max(1, int(order_stride))
    region_sub = region[::stride, ::stride]
    rh, rw = region.shape
    ox, oy = origin
    cw, ch = canvas_size if canvas_size is not None else (rw + ox, rh + oy)
    tw, th = min(tile_size[0], cw), min(tile_size[1], ch)

    def local(rect: Rect) -> tuple[slice, slice]:
        x0, y0, x1, y1 = rect
        return (slice(min(max(y0 - oy, 0), rh), min(max(y1 - oy, 0), rh)),
                slice(min(max(x0 - ox, 0), rw), min(max(x1 - ox, 0), rw)))

    rects: dict[Rect, float] = {}
    for bx0, by0, bx1, by1 in boxes:
        for y in axis_starts(by0, by1, th, overlap, ch):
            for x in axis_starts(bx0, bx1, tw, overlap, cw):
                rect = (x, y, x + tw, y + th)
                if rect in rects:
                    continue
                sl = local(rect)
                inside = region[sl]
                if not inside.any():
                    continue
                key = 0.0
                if order_distance is not None:
                    ys, xs = sl
                    sub_sl = (slice(-(-ys.start // stride), -(-ys.stop // stride)),
                              slice(-(-xs.start // stride), -(-xs.stop // stride)))
                    sub = region_sub[sub_sl]
                    key = float(order_distance[sub_sl][sub].mean()) if sub.any() else float("inf")
                rects[rect] = key
    ordered = [rect for rect, _ in sorted(rects.items(), key=lambda item: (round(item[1], 3), item[0][1], item[0][0]))]
    if drop_covered:
        covered = np.zeros_like(region)
        kept = []
        for rect in ordered:
            sl = local(rect)
            if (region[sl] & ~covered[sl]).any():
                kept.append(rect)
                covered[sl] |= region[sl]
        ordered = kept
    return [Tile(*rect, seed=derive_seed(seed, pass_index, i, kind), pass_index=pass_index, index=i, kind=kind)
            for i, rect in enumerate(ordered)]


def ramp(distance: np.ndarray, width: float, kind: str = "cosine") -> np.ndarray:
    """1 at distance 0 falling smoothly to 0 at ``width`` (raised cosine, or a Gaussian cut at 3 sigma)."""
    distance = np.asarray(distance, dtype=np.float32)
    if width <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip(distance / np.float32(width), 0.0, 1.0)
    if kind == "cosine":
        out = 0.5 + 0.5 * np.cos(np.pi * t)
    elif kind == "gaussian":
        out = np.exp(-0.5 * (3.0 * t) ** 2)
    else:
        raise ValueError(f"unknown blend window {kind!r}")
    out = out.astype(np.float32)
    out[distance >= width] = 0.0
    return out


def fresh_blend_weights(region: np.ndarray, generated: np.ndarray, width: int, kind: str = "cosine") -> np.ndarray:
    """Blend weights of a tile over content generated before it (float32, same shape as the tile).

    1 on the tile's *fresh* pixels (region, not generated yet); over already generated region pixels a smooth
    ramp from 1 at the fresh boundary down to 0 at ``width`` px, so the new tile cross-fades into its
    neighbours' content; 0 elsewhere. Pixels with weight 0 stay visible as unmasked context for the model.
    """
    fresh = region & ~generated
    if width <= 0 or not (generated & region).any() or not fresh.any():
        return fresh.astype(np.float32)
    distance = cv2.distanceTransform(np.ascontiguousarray(~fresh, dtype=np.uint8), cv2.DIST_L2, cv2.DIST_MASK_3)
    weights = ramp(distance, width, kind)
    weights[~region] = 0.0
    return weights


def taper(length: int, width: int, at_start: bool, at_end: bool, kind: str = "cosine") -> np.ndarray:
    """1-D weights: 1 in the middle, a smooth ramp over ``width`` px at the requested ends (float32)."""
    weights = np.ones(length, dtype=np.float32)
    width = min(int(width), length // 2)
    if width <= 0:
        return weights
    t = (np.arange(width, dtype=np.float32) + 0.5) / width  # (0, 1)
    if kind == "cosine":
        ramp = 0.5 - 0.5 * np.cos(np.pi * t)
    elif kind == "gaussian":
        ramp = np.exp(-0.5 * ((1.0 - t) / (1.0 / 3.0)) ** 2)
    else:
        raise ValueError(f"unknown blend window {kind!r}")
    ramp = np.maximum(ramp, MIN_WEIGHT).astype(np.float32)
    if at_start:
        weights[:width] = ramp
    if at_end:
        weights[length - width:] = ramp[::-1]
    return weights


def blend_window(rect: Rect, canvas_size: tuple[int, int], width: int, kind: str = "cosine") -> np.ndarray:
    """Weights (float32 (h, w)) for blending a tile: tapered on every edge that is not on the canvas border.

    Tile results are accumulated as ``sum(weight * tile) / sum(weight)``, so a pixel that only one tile covers
    keeps that tile's value and overlaps cross-fade smoothly (raised cosine or Gaussian, never a bare ramp).
    """
    x0, y0, x1, y1 = rect
    cw, ch = canvas_size
    wx = taper(x1 - x0, width, at_start=x0 > 0, at_end=x1 < cw, kind=kind)
    wy = taper(y1 - y0, width, at_start=y0 > 0, at_end=y1 < ch, kind=kind)
    return wy[:, None] * wx[None, :]


def coverage_count(tiles: Iterable[Tile], shape: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """How many tiles cover each pixel of the area ``shape`` (H, W) starting at ``origin`` (uint16)."""
    count = np.zeros(shape, dtype=np.uint16)
    ox, oy = origin
    for tile in tiles:
        x0, y0 = max(tile.x0 - ox, 0), max(tile.y0 - oy, 0)
        x1, y1 = min(tile.x1 - ox, shape[1]), min(tile.y1 - oy, shape[0])
        if x1 > x0 and y1 > y0:
            count[y0:y1, x0:x1] += 1
    return count


def union_rect(rects: Iterable[Rect]) -> Rect | None:
    rects = list(rects)
    if not rects:
        return None
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))
