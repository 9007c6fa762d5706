"""Execute a plan: pre-fill, repaint tile by tile (the canvas updated between tiles), blend, paste back.

The executor never knows which backend runs: it calls ``repaint_tile(request, tile_progress)`` for every tile.
A backend's ``inpaint`` is one such callable (:func:`backend_repaint`); the WebUI glue passes a function that
copies ``p``, sets ``init_images``/``image_mask``/``width``/``height``/``seed`` from the request and calls
``process_images`` (it may ignore ``tile_progress``).

Order and blending. Tiles run in the plan's order (next to the known content first). A tile repaints its
*fresh* pixels (to denoise, not produced by an earlier tile of the pass) plus a band of ``overlap / 2`` px
into its neighbours' results; everything else in the tile is unmasked context, so the model continues what
is already there. Its result is laid over the earlier ones with weight 1 on fresh pixels and a smooth
(cosine or Gaussian) ramp across the band. The visible canvas is ``known·(1 − c) + generated·c`` with ``c``
the composite mask, updated after every tile. Seam-fix tiles (low strength) are averaged with smooth windows.
Wherever ``c == 0`` the pass's input pixels are copied back verbatim at the end, so the original outside the
band is bit-exact whatever a backend returns. With ``tile_mode="independent"`` every tile instead repaints
its whole share from the known content and overlapping results are averaged with smooth windows.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from segfill.backends.base import InpaintBackend, InpaintRequest, ProgressCallback
from segfill.errors import InputError, SegFillError
from segfill.masks import image_to_rgb
from segfill.outpaint.color import match_new_content, seam_rings
from segfill.outpaint.plan import PassPlan, Plan
from segfill.outpaint.prefill import prefill
from segfill.outpaint.seams import distance_from
from segfill.outpaint.tiling import Tile, blend_window, derive_seed, fresh_blend_weights

#: repaint_tile(request, tile_progress) -> RGB image of request.image.size
RepaintTile = Callable[[InpaintRequest, ProgressCallback | None], Image.Image]
#: progress(done_tiles: float, total_tiles: int, message: str)
JobProgress = Callable[[float, int, str], None]
ShouldStop = Callable[[], bool]


class Interrupted(SegFillError):
    """Stopped between tiles because ``should_stop()`` said so; ``partial`` is the output so far."""

    def __init__(self, done: int, total: int, partial: Image.Image) -> None:
        super().__init__(f"Stopped by the user after {done} of {total} tiles.")
        self.done = done
        self.total = total
        self.partial = partial


def backend_repaint(backend: InpaintBackend) -> RepaintTile:
    """Adapt a backend to the executor's ``repaint_tile`` callable."""
    return lambda request, tile_progress=None: backend.inpaint(request, progress=tile_progress)


def to_rgb_array(image) -> np.ndarray:
    """PIL image (any mode) or array -> uint8 (H, W, 3) (:func:`segfill.masks.image_to_rgb`)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return image_to_rgb(image)


def initial_canvas(plan: Plan, rgb: np.ndarray) -> np.ndarray:
    """The work canvas before any pass: the image at ``plan.image_rect``; elsewhere zeros (outpaint) or the
    image's edge replicated (inpaint's rounding to 8)."""
    ww, wh = plan.work.size
    x0, y0, x1, y1 = plan.image_rect
    if plan.kind == "inpaint":
        return np.pad(rgb, ((y0, wh - y1), (x0, ww - x1), (0, 0)), mode="edge")
    canvas = np.zeros((wh, ww, 3), dtype=np.uint8)
    canvas[y0:y1, x0:x1] = rgb
    return canvas


class _Job:
    """Mutable state of one execution: the canvas, the tile counter and the callbacks."""

    def __init__(self, plan: Plan, canvas: np.ndarray, repaint_tile: RepaintTile,
                 progress: JobProgress | None, should_stop: ShouldStop | None) -> None:
        self.plan = plan
        self.canvas = canvas
        self.repaint_tile = repaint_tile
        self.progress = progress
        self.should_stop = should_stop
        self.done = 0
        self.total = plan.total_tiles
        self.view: np.ndarray | None = None  # the running pass's working copy of its area
        self.view_origin = (0, 0)

    def output(self) -> Image.Image:
        canvas = self.canvas
        if self.view is not None:  # a pass is running on its own copy of its area
            canvas = canvas.copy()
            vx, vy = self.view_origin
            canvas[vy:vy + self.view.shape[0], vx:vx + self.view.shape[1]] = self.view
        x0, y0, x1, y1 = self.plan.work.output_rect
        return Image.fromarray(np.ascontiguousarray(canvas[y0:y1, x0:x1]))

    def repaint(self, tile: Tile, image: np.ndarray, mask_u8: np.ndarray, strength: float, message: str) -> np.ndarray:
        if self.should_stop is not None and self.should_stop():
            raise Interrupted(self.done, self.total, self.output())
        args = self.plan.args
        request = InpaintRequest(
            image=Image.fromarray(np.ascontiguousarray(image)),
            mask=Image.fromarray(np.ascontiguousarray(mask_u8), mode="L"),
            prompt=args.prompt, negative_prompt=args.negative_prompt, seed=tile.seed, steps=args.steps,
            guidance=args.guidance, strength=strength)
        done = self.done

        def tile_progress(fraction: float) -> None:
            if self.progress is not None:
                self.progress(done + min(max(float(fraction), 0.0), 1.0), self.total, message)

        result = self.repaint_tile(request, tile_progress)
        if result.size != request.image.size:
            raise SegFillError(f"The backend returned a {result.size[0]}x{result.size[1]} tile for a "
                               f"{request.image.size[0]}x{request.image.size[1]} request.")
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, message)
        return np.asarray(result.convert("RGB"), dtype=np.uint8)


def _local(tile: Tile, origin) -> tuple:
    return (slice(tile.y0 - origin[1], tile.y1 - origin[1]), slice(tile.x0 - origin[0], tile.x1 - origin[0]))


def _mask_u8(mask: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], rounded and saturated (OpenCV, fast on large canvases)."""
    return cv2.convertScaleAbs(mask, alpha=255.0)


class _Layer:
    """Normalised weighted accumulation of tile results: ``image = sum(w·tile) / sum(w)`` per pixel.

    Kept as the running mean (uint8) plus the weight sum; ``cv2.blendLinear`` folds each new tile in.
    """

    def __init__(self, shape) -> None:
        self.image = np.zeros(shape, dtype=np.uint8)
        self.weight = np.zeros(shape[:2], dtype=np.float32)

    def add(self, sl, result: np.ndarray, weight: np.ndarray) -> None:
        self.image[sl] = cv2.blendLinear(self.image[sl], result, self.weight[sl], weight)
        self.weight[sl] += weight

    def covered(self, sl=(slice(None), slice(None))) -> np.ndarray:
        return self.weight[sl] > 0


def _mix(base: np.ndarray, generated: np.ndarray, alpha: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``base·(1 − alpha) + generated·alpha`` where covered, ``base`` elsewhere (uint8, rounded)."""
    a = alpha * covered
    return cv2.blendLinear(base, generated, 1.0 - a, a)


def _margin(plan: Plan, bounds) -> np.ndarray | None:
    """Pixels of ``bounds`` outside the output (the work canvas rounds the output up to a multiple of 8), or
    None when there are none. Tiles repaint them instead of showing them as context: they are cropped off at
    the end, and as context they would be a second border to continue from (OpenCV fills from it too)."""
    bx0, by0, bx1, by1 = bounds
    ox0, oy0, ox1, oy1 = plan.work.output_rect
    if bx0 >= ox0 and by0 >= oy0 and bx1 <= ox1 and by1 <= oy1:
        return None
    inside = np.zeros((by1 - by0, bx1 - bx0), dtype=bool)
    inside[max(oy0 - by0, 0):max(oy1 - by0, 0), max(ox0 - bx0, 0):max(ox1 - bx0, 0)] = True
    return ~inside


def _run_pass(job: _Job, p: PassPlan, pass_count: int) -> None:
    args = job.plan.args
    canvas_size = job.plan.work.size
    bx0, by0, bx1, by1 = p.bounds
    # a contiguous working copy of the pass's area (written back at the end), so OpenCV can work in place
    view = prefill(job.canvas[by0:by1, bx0:bx1], p.known, args.prefill,
                   seed=derive_seed(args.seed, p.index, 0, "prefill"), noise=args.prefill_noise)
    job.canvas[by0:by1, bx0:bx1] = view
    job.view, job.view_origin = view, (bx0, by0)
    base = view.copy()
    composite = p.masks.composite
    denoise_u8 = _mask_u8(p.masks.denoise)
    region = denoise_u8 > 0
    margin = _margin(job.plan, p.bounds)
    request_u8 = denoise_u8 if margin is None else np.where(margin, np.uint8(255), denoise_u8)
    generated = np.zeros(region.shape, dtype=bool)  # region pixels some tile of this pass has produced
    layer = np.zeros(view.shape, dtype=np.uint8)  # what the tiles produced, before the composite with `base`
    blend_width = args.overlap // 2  # the other half of the overlap stays unmasked context

    independent = _Layer(view.shape) if args.tile_mode == "independent" else None

    for i, tile in enumerate(p.tiles):
        sl = _local(tile, p.origin)
        message = f"pass {p.index + 1}/{pass_count}, tile {i + 1}/{len(p.tiles)}"
        if independent is not None:  # whole share repainted, overlaps averaged with smooth windows
            result = job.repaint(tile, view[sl], request_u8[sl], args.strength, message)
            weight = blend_window(tile.rect, canvas_size, args.overlap, args.blend) * region[sl]
            independent.add(sl, result, weight)
            layer[sl] = independent.image[sl]
            generated[sl] = independent.covered(sl)
        else:  # fresh pixels plus a cross-fade band; the neighbours' results stay unmasked context
            weight = fresh_blend_weights(region[sl], generated[sl], blend_width, args.blend)
            repaint = weight > 0
            mask_u8 = np.where(repaint, denoise_u8[sl], 0).astype(np.uint8)
            if margin is not None:
                mask_u8[margin[sl]] = 255
            result = job.repaint(tile, view[sl], mask_u8, args.strength, message)
            layer[sl] = cv2.blendLinear(layer[sl], result, 1.0 - weight, weight)
            generated[sl] |= repaint
        view[sl] = _mix(base[sl], layer[sl], composite[sl], generated[sl])

    if args.color_match and generated.any():
        original_ring, new_ring = seam_rings(p.new_area, args.band, args.color_ring,
                                             distance_from(p.new_area), distance_from(p.known))
        matched = match_new_content(layer, base, original_ring, new_ring & generated, generated & (composite > 0))
        layer = np.clip(np.rint(matched), 0, 255).astype(np.uint8)
        view[:] = _mix(base, layer, composite, generated)

    if p.seam_tiles:
        before = view.copy()
        seam_u8 = _mask_u8(p.seam_mask)
        seam_layer = _Layer(view.shape)
        for i, tile in enumerate(p.seam_tiles):
            sl = _local(tile, p.origin)
            message = f"pass {p.index + 1}/{pass_count}, seam fix {i + 1}/{len(p.seam_tiles)}"
            result = job.repaint(tile, view[sl], seam_u8[sl], args.seam_fix_strength, message)
            weight = blend_window(tile.rect, canvas_size, args.overlap, args.blend) * (seam_u8[sl] > 0)
            seam_layer.add(sl, result, weight)
            view[sl] = _mix(before[sl], seam_layer.image[sl], p.seam_mask[sl], seam_layer.covered(sl))

    # the guarantee: outside the composite mask, the pass's input (original or earlier passes) is untouched
    view = cv2.copyTo(base, (composite <= 0).view(np.uint8), view)
    job.canvas[by0:by1, bx0:bx1] = view
    job.view = None


def execute_plan(plan: Plan, image, repaint_tile: RepaintTile, progress: JobProgress | None = None,
                 should_stop: ShouldStop | None = None) -> Image.Image:
    """Run ``plan`` on ``image`` (PIL or uint8 array of ``plan.image_size``); returns the output image (RGB).

    ``repaint_tile(request, tile_progress)`` repaints one tile; ``progress(done, total, message)`` is called
    during and after every tile; ``should_stop()`` is checked before every tile and raises :class:`Interrupted`
    (carrying the partial result) when it returns True.
    """
    rgb = to_rgb_array(image)
    if (rgb.shape[1], rgb.shape[0]) != tuple(plan.image_size):
        raise InputError(f"The image is {rgb.shape[1]}x{rgb.shape[0]} px but the plan was made for "
                         f"{plan.image_size[0]}x{plan.image_size[1]} px.")
    job = _Job(plan, initial_canvas(plan, rgb), repaint_tile, progress, should_stop)
    for p in plan.passes:
        _run_pass(job, p, len(plan.passes))
    return job.output()
