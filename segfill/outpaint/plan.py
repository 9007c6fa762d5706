"""Plans: the geometry of a job as plain data (canvas, where the original sits, masks, tiles with seeds).

A plan is built from sizes and arguments only (no pixels, except the inpaint mask), can be printed, tested and
saved into the infotext (:meth:`Plan.to_dict`), and is executed by :func:`segfill.outpaint.executor.execute_plan`
with any backend. All rectangles are ``(x0, y0, x1, y1)`` in *work-canvas* pixels (x1/y1 exclusive); the
output is the ``work.output_rect`` crop of the work canvas. Per-pass arrays are stored cropped to the pass's
``bounds`` (the only area that pass reads or writes), so huge canvases stay affordable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import cv2
import numpy as np

from segfill.args import InpaintArgs, OutpaintArgs
from segfill.errors import InputError
from segfill.masks import bounding_box, grow
from segfill.outpaint.geometry import (
    ALIGN,
    Padding,
    Rect,
    WorkCanvas,
    grow_rect,
    offset_rect,
    resolve_padding,
    round_down,
    round_up,
    split_into_passes,
    work_canvas_for,
)
from segfill.outpaint.seams import MaskPair, build_masks, distance_from, rect_distance, rect_frame_masks
from segfill.outpaint.tiling import Tile, coverage_count, plan_tiles, union_rect

DEFAULT_WORKING_SIZE = 512
#: tiles are ordered by the mean distance from the known content, sampled every ORDER_STRIDE px.
ORDER_STRIDE = 4


@dataclass
class PassPlan:
    """One pass: the tiles to repaint (and, optionally, the seam-fix tiles) over one new area."""

    index: int
    bounds: Rect  # work-canvas area this pass reads and writes; every array below has its shape
    tiles: list[Tile]
    seam_tiles: list[Tile]
    new_area: np.ndarray = field(repr=False)  # bool: content to create in this pass
    known: np.ndarray = field(repr=False)  # bool: real content before this pass (the rest gets the pre-fill)
    masks: MaskPair = field(repr=False)
    seam_mask: np.ndarray | None = field(default=None, repr=False)  # float32, 0 where composite is 0
    known_rect: Rect | None = None  # outpaint: the content known before this pass
    target_rect: Rect | None = None  # outpaint: the content known after this pass

    @property
    def origin(self) -> tuple[int, int]:
        return (self.bounds[0], self.bounds[1])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "tiles": [t.to_list() for t in self.tiles]}
        if self.seam_tiles:
            out["seam_tiles"] = [t.to_list() for t in self.seam_tiles]
        if self.known_rect is not None:
            out["known_rect"] = list(self.known_rect)
            out["target_rect"] = list(self.target_rect)
        return out


@dataclass
class Plan:
    """Common part of outpaint and inpaint plans."""

    kind: str
    image_size: tuple[int, int]
    work: WorkCanvas
    image_rect: Rect  # where the input image sits on the work canvas
    tile_size: tuple[int, int]
    passes: list[PassPlan]
    args: Union[OutpaintArgs, InpaintArgs] = field(repr=False)

    @property
    def output_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.work.output_rect
        return (x1 - x0, y1 - y0)

    @property
    def tiles(self) -> list[Tile]:
        return [t for p in self.passes for t in p.tiles + p.seam_tiles]

    @property
    def total_tiles(self) -> int:
        return sum(len(p.tiles) + len(p.seam_tiles) for p in self.passes)

    def full_mask(self, which: str = "composite") -> np.ndarray:
        """``"denoise"``, ``"composite"`` or ``"new_area"`` over the *output* canvas (max over passes)."""
        ww, wh = self.work.size
        full = np.zeros((wh, ww), dtype=bool if which == "new_area" else np.float32)
        for p in self.passes:
            x0, y0, x1, y1 = p.bounds
            part = p.new_area if which == "new_area" else getattr(p.masks, which)
            np.maximum(full[y0:y1, x0:x1], part, out=full[y0:y1, x0:x1])
        ox0, oy0, ox1, oy1 = self.work.output_rect
        return full[oy0:oy1, ox0:ox1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for the infotext (tiles as ``[x0, y0, x1, y1, seed]`` in work-canvas pixels)."""
        a = self.args
        return {
            "kind": self.kind,
            "image_size": list(self.image_size),
            "output_size": list(self.output_size),
            "work_size": list(self.work.size),
            "work_offset": list(self.work.offset),
            "image_rect": list(self.image_rect),
            "tile_size": list(self.tile_size),
            "overlap": a.overlap, "band": a.band, "feather": a.feather, "blend": a.blend,
            "prefill": a.prefill, "seed": a.seed, "seam_fix": a.seam_fix, "color_match": a.color_match,
            "tile_mode": a.tile_mode,
            "tile_count": self.total_tiles,
            "passes": [p.to_dict() for p in self.passes],
        }


@dataclass
class OutpaintPlan(Plan):
    padding: Padding = Padding()

    @property
    def canvas_size(self) -> tuple[int, int]:
        return self.output_size

    @property
    def original_rect(self) -> Rect:
        """Where the original sits in the *output* image."""
        return self.padding.original_rect(self.image_size)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["canvas_size"] = list(self.canvas_size)
        out["original_rect"] = list(self.original_rect)
        out["padding"] = dict(zip(("left", "right", "top", "bottom"), self.padding.as_tuple(), strict=True))
        return out


@dataclass
class InpaintPlan(Plan):
    regions: list[Rect] = field(default_factory=list)  # context boxes around the masked areas

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["regions"] = [list(r) for r in self.regions]
        return out


def resolve_tile_size(tile_size: int | None, working_size: int, tiled: bool = True) -> int:
    """The tile side: the job's ``tile_size``, else the backend's ``working_size``. A backend that needs no
    tiles (``tiled=False``) ignores the job's tile size: its ``working_size`` is the largest side of one call."""
    asked = tile_size if tiled else None
    size = round_down(asked or working_size or DEFAULT_WORKING_SIZE, ALIGN)
    if size < 64:
        raise InputError(f"The tile size must be at least 64 px (got {asked or working_size}).")
    return size


def _rect_mask(shape: tuple[int, int], rect: Rect, origin: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = offset_rect(rect, -origin[0], -origin[1])
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return mask


def _embed(array: np.ndarray, origin: tuple[int, int], bounds: Rect) -> np.ndarray:
    """Place ``array`` (whose top-left is ``origin``) into a zero array covering ``bounds``."""
    bx0, by0, bx1, by1 = bounds
    if (bx0, by0) == tuple(origin) and array.shape[:2] == (by1 - by0, bx1 - bx0):
        return array
    out = np.zeros((by1 - by0, bx1 - bx0) + array.shape[2:], dtype=array.dtype)
    x, y = origin[0] - bx0, origin[1] - by0
    out[y:y + array.shape[0], x:x + array.shape[1]] = array
    return out


def _seam_mask(new_area: np.ndarray, known_distance: np.ndarray, masks: MaskPair, tiles: list[Tile],
               origin: tuple[int, int], width: int) -> np.ndarray:
    """Soft mask over the seams: the original/new boundary (±width/2) and the overlaps between tiles.

    Multiplied by the composite mask, so it never reaches known pixels outside the band.
    """
    region = masks.denoise > 0
    tile_seams = (coverage_count(tiles, region.shape, origin) >= 2) & region
    boundary = (new_area & (known_distance <= width / 2)) | (~new_area & (masks.composite > 0))
    seam = (tile_seams | boundary).astype(np.float32)
    sigma = max(width / 6.0, 0.5)
    soft = np.maximum(cv2.GaussianBlur(seam, (0, 0), sigma), seam) if seam.any() else seam
    soft = soft * masks.composite
    soft[soft < 1.0 / 255.0] = 0.0
    return soft.astype(np.float32)


def _finish_pass(index: int, args, work: WorkCanvas, tile_wh: tuple[int, int], origin: tuple[int, int],
                 new_area: np.ndarray, known: np.ndarray, masks: MaskPair, boxes: list[Rect],
                 order_distance: np.ndarray | None = None, **rects: Any) -> PassPlan | None:
    """Plan the tiles (and seam tiles) of one pass given its masks over the area starting at ``origin``.

    ``order_distance``: distance from the known content sampled every :data:`ORDER_STRIDE` px (computed here
    when not given).
    """
    region = masks.denoise > 0
    if not region.any():
        return None
    if order_distance is None:
        order_distance = distance_from(known)[::ORDER_STRIDE, ::ORDER_STRIDE]
    tiles = plan_tiles(region, boxes, tile_wh, args.overlap, args.seed, index, "main", order_distance,
                       origin=origin, canvas_size=work.size, order_stride=ORDER_STRIDE,
                       drop_covered=args.tile_mode == "continue")
    seam_tiles: list[Tile] = []
    seam = None
    if args.seam_fix:
        seam = _seam_mask(new_area, distance_from(known), masks, tiles, origin, args.seam_fix_width)
        seam_region = seam > 0
        box = bounding_box(seam_region, align=1)
        if box is not None:
            seam_tiles = plan_tiles(seam_region, [offset_rect(box, *origin)], tile_wh, args.overlap, args.seed,
                                    index, "seam", order_distance, origin=origin, canvas_size=work.size,
                                    order_stride=ORDER_STRIDE)
    h, w = region.shape
    area = (origin[0], origin[1], origin[0] + w, origin[1] + h)
    bounds = union_rect([area] + [t.rect for t in tiles + seam_tiles])
    return PassPlan(
        index=index, bounds=bounds, tiles=tiles, seam_tiles=seam_tiles,
        new_area=_embed(new_area, origin, bounds), known=_embed(known, origin, bounds),
        masks=MaskPair(_embed(masks.denoise, origin, bounds), _embed(masks.composite, origin, bounds)),
        seam_mask=None if seam is None else _embed(seam, origin, bounds), **rects)


def outpaint_padding(image_size: tuple[int, int], args: OutpaintArgs) -> Padding:
    """The padding ``args`` asks for around an image of ``image_size`` (w, h), checked (InputError); cheap, so
    a caller can learn the result size before any planning."""
    target = (args.target_width, args.target_height) if args.target_width is not None else None
    return resolve_padding(image_size, left=args.left, right=args.right, top=args.top, bottom=args.bottom,
                           aspect=args.aspect, target_size=target, anchor=args.anchor)


def plan_outpaint(image_size: tuple[int, int], args: OutpaintArgs,
                  working_size: int = DEFAULT_WORKING_SIZE, tiled: bool = True) -> OutpaintPlan:
    """Plan an outpaint of an image of ``image_size`` (w, h): canvas, passes, masks and tiles with seeds.

    ``working_size`` is the backend's native resolution, used when ``args.tile_size`` is not set. With
    ``tiled=False`` (a backend that takes any size, :func:`segfill.backends.base.backend_tiling`) the whole
    canvas is one tile in one pass as long as its sides are at most ``working_size``; ``tile_size`` and
    ``max_step`` are then ignored. Raises :class:`InputError` for zero padding, padding beyond the limits, or a
    band as wide as a pass step.
    """
    padding = outpaint_padding(image_size, args)
    work = work_canvas_for(padding.canvas_size(image_size), padding)
    image_rect = offset_rect(padding.original_rect(image_size), *work.offset)
    tile = resolve_tile_size(args.tile_size, working_size, tiled)
    tile_wh = (min(tile, work.size[0]), min(tile, work.size[1]))
    if tiled:
        max_step = args.max_step or max(tile // 2, args.band + ALIGN)
    elif max(work.size) <= tile:  # the whole canvas in one call: one pass
        max_step = max(work.size + (args.band + ALIGN,))
    else:  # beyond one call's memory bound: passes as for tiles of that side
        max_step = max(tile // 2, args.band + ALIGN)
    if args.band >= max_step:
        raise InputError(f"The band ({args.band} px) must be narrower than the step per pass ({max_step} px).")

    passes: list[PassPlan] = []
    known_rect = image_rect
    for index, step in enumerate(split_into_passes(padding, max_step)):
        target_rect = grow_rect(known_rect, step)
        tx0, ty0, tx1, ty1 = target_rect
        shape = (ty1 - ty0, tx1 - tx0)
        local_known = offset_rect(known_rect, -tx0, -ty0)
        new_area, masks = rect_frame_masks(shape, local_known, args.band, args.feather)
        region_box = bounding_box(masks.denoise > 0, align=1)
        plan = _finish_pass(index, args, work, tile_wh, (tx0, ty0), new_area, ~new_area, masks,
                            [offset_rect(region_box, tx0, ty0)], rect_distance(shape, local_known, ORDER_STRIDE),
                            known_rect=known_rect, target_rect=target_rect)
        if plan is not None:
            passes.append(plan)
        known_rect = target_rect
    return OutpaintPlan(kind="outpaint", image_size=tuple(image_size), work=work, image_rect=image_rect,
                        tile_size=tile_wh, passes=passes, args=args, padding=padding)


def _context_boxes(region: np.ndarray, context: int, size: tuple[int, int]) -> list[Rect]:
    """Bounding boxes of the masked areas grown by ``context`` px (areas closer than that are merged)."""
    grown = grow(region, context).view(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for x, y, w, h, _area in stats[1:count]:
        boxes.append((max(0, round_down(int(x))), max(0, round_down(int(y))),
                      min(size[0], round_up(int(x + w))), min(size[1], round_up(int(y + h)))))
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def plan_inpaint(image_size: tuple[int, int], mask: np.ndarray, args: InpaintArgs,
                 working_size: int = DEFAULT_WORKING_SIZE, tiled: bool = True) -> InpaintPlan:
    """Plan a (large-image) inpaint: crops around the masked areas with ``args.context`` px of surroundings,
    tiles over the masked pixels only (one tile per crop when it fits, a grid when it is larger).

    ``mask`` is bool or float (>= 0.5 = repaint), shape ``(h, w)`` of the image. With ``tiled=False`` the
    whole image is one tile (up to ``working_size`` per side) and ``tile_size`` is ignored. A tile lying
    entirely inside the mask is repainted like any other (it has no unmasked context of its own).
    """
    w, h = image_size
    mask = np.asarray(mask)
    if mask.shape[:2] != (h, w):
        raise InputError(f"The mask is {mask.shape[1]}x{mask.shape[0]} px but the image is {w}x{h} px.")
    selected = mask >= 0.5 if mask.dtype != bool else mask
    if not selected.any():
        raise InputError("The mask is empty: nothing to inpaint.")
    work = WorkCanvas(size=(round_up(w), round_up(h)), output_rect=(0, 0, w, h))
    tile = resolve_tile_size(args.tile_size, working_size, tiled)
    tile_wh = (min(tile, work.size[0]), min(tile, work.size[1]))
    new_area = np.zeros((work.size[1], work.size[0]), dtype=bool)
    new_area[:h, :w] = selected
    inside = _rect_mask(new_area.shape, (0, 0, w, h), (0, 0))
    masks = build_masks(new_area, args.band, args.feather)
    masks = MaskPair(masks.denoise * inside, masks.composite * inside)
    boxes = _context_boxes(masks.denoise > 0, args.context, work.size)
    known = inside & ~new_area
    plan = _finish_pass(0, args, work, tile_wh, (0, 0), new_area, known, masks, boxes)
    return InpaintPlan(kind="inpaint", image_size=(w, h), work=work, image_rect=(0, 0, w, h), tile_size=tile_wh,
                       passes=[plan] if plan is not None else [], args=args, regions=boxes)
