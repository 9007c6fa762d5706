"""The editor around the mask: results on the canvas, the outpaint frame, full-resolution detail when zoomed.

- **Results.** Every inpaint/outpaint of the session is a :class:`Result` in ``state.results`` (a gallery of the
  last :data:`MAX_RESULTS`); the newest is shown on the canvas (``state.pending_result``) for a before/after
  compare. *Accept* makes it the image to edit: a new undo step whose image is the result, with the shown mask
  kept (moved with the original inside an outpainted canvas), so Ctrl+Z goes back to the image before.
  *Discard* only hides it (it stays in the gallery).
- **Frame.** The outpaint frame is ``Edit.frame`` = padding ``(left, right, top, bottom)`` around the image
  (undoable like any edit). It is set by dragging on the canvas, by the Outpaint panel's numbers, or from an
  aspect preset / anchor / zoom-out factor (:func:`frame_for`); its tile plan (``segfill.outpaint.plan_outpaint``
  with the same :class:`~segfill.args.OutpaintArgs` the job will use) is drawn over the canvas.
- **Detail.** The canvas holds a display copy (2048 px) and a display mask (1024 px). When it is zoomed in past
  them, it reports the visible region (``view`` event) and every payload carries that region of the image and
  the mask at full resolution (or at the screen's resolution when that is less).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from segfill.errors import InputError
from segfill.ui.dataurl import jpeg_data_url, png_data_url

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host
    from segfill.ui.state import UserState

#: results kept per session for the gallery (the oldest go first)
MAX_RESULTS = 12
RESULT_THUMB_SIDE = 120
#: the detail region is widened by this fraction on each side, so small pans need no new tile
DETAIL_MARGIN = 0.15
#: most pixels of one detail crop (the screen rarely shows more)
DETAIL_MAX_PIXELS = 4096 * 4096
FRAME_SIDES = ("left", "right", "top", "bottom")
ZOOM_FACTORS = {"1.5": 1.5, "2": 2.0}


@dataclass
class Result:
    id: int
    image: np.ndarray  # RGB uint8
    kind: str  # "inpaint" | "outpaint"
    infotext: str
    offset: tuple[int, int]  # where the source image's top-left sits in the result
    source_key: int  # the image key it was made from
    source_size: tuple[int, int]
    seed: int | None = None
    created: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])


# -- results ------------------------------------------------------------------------------------------------


def add_result(state: UserState, image: Any, kind: str, infotext: str = "", offset: tuple[int, int] = (0, 0),
               seed: int | None = None) -> Result:
    """Record a generation's image and show it on the canvas for compare / accept / discard."""
    from segfill.masks import image_to_rgb

    rgb = np.ascontiguousarray(image_to_rgb(image))
    source = state.require_image()
    next_id = (state.results[-1].id + 1) if state.results else 1
    result = Result(next_id, rgb, kind, infotext or "", (int(offset[0]), int(offset[1])), state.image_revision,
                    (int(source.shape[1]), int(source.shape[0])), seed, time.time())
    state.results.append(result)
    del state.results[:-MAX_RESULTS]
    state.pending_result = result.id
    state.results_revision += 1
    state.revision += 1
    return result


def find_result(state: UserState, result_id: int | None) -> Result | None:
    for result in state.results:
        if result.id == result_id:
            return result
    return None


def pending(state: UserState) -> Result | None:
    return find_result(state, state.pending_result)


def accept(state: UserState) -> None:
    """The shown result becomes the image being edited (one undo step); the mask moves with the original."""
    from segfill.ui.state import Edit, PackedMask

    result = pending(state)
    if result is None:
        raise InputError("There is no result on the canvas to accept; run Inpaint or Outpaint first.")
    edit = state.edit
    width, height = result.size
    base = np.zeros((height, width), dtype=bool)
    strokes: tuple = ()
    if state.image is not None and state.size == result.source_size:
        raw = state.raw_mask(edit)
        dx, dy = result.offset
        sw, sh = result.source_size
        x0, y0, x1, y1 = max(0, dx), max(0, dy), min(width, dx + sw), min(height, dy + sh)
        if x1 > x0 and y1 > y0:
            base[y0:y1, x0:x1] = raw[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
        strokes = tuple(stroke.shifted(dx, dy) for stroke in edit.strokes if stroke.soft)
    key = state.add_image(result.image)
    state.pending_result = None
    state.push(Edit(base=PackedMask.pack(base) if base.any() else None, strokes=strokes, op=edit.op,
                    refinement=edit.refinement, image_key=key))
    state.pending_result = None
    state.frame_plan = None
    state.viewport = None
    what = "outpainted" if result.kind == "outpaint" else "inpainted"
    state.message = (f"Editing the {what} image ({width}×{height}); the mask is kept. "
                     "Ctrl+Z goes back to the image before.")


def discard(state: UserState) -> None:
    if state.pending_result is None:
        return
    state.pending_result = None
    state.revision += 1
    state.message = "Result put aside; it stays in the results strip below the canvas."


def show(state: UserState, result_id: Any) -> None:
    try:
        wanted = int(result_id)
    except (TypeError, ValueError):
        raise InputError("Choosing a result needs its number.") from None
    if find_result(state, wanted) is None:
        raise InputError("That result is no longer kept; only the last 12 are.")
    state.pending_result = wanted
    state.revision += 1


def result_download(state: UserState) -> Any:
    from segfill.ui.state import Download

    result = pending(state)
    if result is None:
        raise InputError("There is no result on the canvas to download.")
    return Download(f"segfill-{result.kind}-{result.id}.png", png_data_url(Image.fromarray(result.image, "RGB")))


def results_payload(state: UserState) -> list[dict[str, Any]]:
    from segfill.ui.render import display_size

    items = []
    for result in state.results:
        thumb = cv2.resize(result.image, display_size(result.size, RESULT_THUMB_SIDE), interpolation=cv2.INTER_AREA)
        items.append({"id": result.id, "kind": result.kind, "width": result.size[0], "height": result.size[1],
                      "thumb": jpeg_data_url(Image.fromarray(thumb, "RGB"), quality=85)})
    return items


def result_payload(state: UserState, include_image: bool) -> dict[str, Any] | None:
    from segfill.ui.render import IMAGE_DISPLAY_SIDE, display_size

    result = pending(state)
    if result is None:
        return None
    out: dict[str, Any] = {"id": result.id, "kind": result.kind, "width": result.size[0], "height": result.size[1],
                           "offset": list(result.offset), "source": list(result.source_size), "info": result.infotext,
                           "seed": result.seed, "index": [r.id for r in state.results].index(result.id) + 1,
                           "count": len(state.results), "current": result.source_key == state.image_revision}
    if include_image:
        shown = Image.fromarray(result.image, "RGB")
        if max(result.size) > IMAGE_DISPLAY_SIDE:
            shown = shown.resize(display_size(result.size, IMAGE_DISPLAY_SIDE), Image.LANCZOS)
        out["url"] = jpeg_data_url(shown, quality=92)
    return out


# -- outpaint frame -----------------------------------------------------------------------------------------


def clamp_frame(image_size: tuple[int, int], frame: Any) -> tuple[tuple[int, int, int, int], bool]:
    """Padding as four non-negative ints within SegFill's outpaint limits; True when it had to be cut."""
    from segfill.outpaint.geometry import MAX_CANVAS_SIDE, MAX_PADDING_FACTOR

    try:
        left, right, top, bottom = (max(0, int(round(float(v)))) for v in frame)
    except (TypeError, ValueError):
        raise InputError("The outpaint frame needs four numbers of pixels (left, right, top, bottom).") from None
    width, height = image_size
    cut = False
    limits = (MAX_PADDING_FACTOR * width, MAX_PADDING_FACTOR * width, MAX_PADDING_FACTOR * height,
              MAX_PADDING_FACTOR * height)
    values = [left, right, top, bottom]
    for i, limit in enumerate(limits):
        if values[i] > limit:
            values[i], cut = limit, True
    for a, b, side in ((0, 1, width), (2, 3, height)):
        excess = side + values[a] + values[b] - MAX_CANVAS_SIDE
        if excess > 0:
            take = min(values[b], excess)
            values[b] -= take
            values[a] -= excess - take
            cut = True
    return (values[0], values[1], values[2], values[3]), cut


def frame_for(image_size: tuple[int, int], current: tuple[int, int, int, int], aspect: str | None = None,
              anchor: str = "center", zoom: float | None = None) -> tuple[int, int, int, int]:
    """Padding for an aspect preset ("16:9"), a zoom-out factor (1.5 = each side ×1.5) or, with neither, the
    current canvas size with the original moved to ``anchor``."""
    from segfill.outpaint.geometry import padding_for_target, parse_anchor, parse_aspect, target_for_aspect

    width, height = image_size
    if zoom is not None:
        if not 1.0 < float(zoom) <= 8.0:
            raise InputError("Zoom out takes a factor above 1 and at most 8.")
        target = (int(round(width * zoom)), int(round(height * zoom)))
    elif aspect:
        target = target_for_aspect(image_size, parse_aspect(aspect))
    else:
        left, right, top, bottom = current
        target = (width + left + right, height + top + bottom)
    padding = padding_for_target(image_size, target, parse_anchor(anchor or "center"))
    return padding.as_tuple()


def outpaint_args(host: Host, frame: tuple[int, int, int, int], values: dict[str, Any] | None = None) -> Any:
    """The :class:`~segfill.args.OutpaintArgs` of a job over ``frame``: the host's tile defaults, then ``values``."""
    from segfill.args import OutpaintArgs, parse_args_model

    defaults = host.defaults()
    data: dict[str, Any] = {"tile_size": defaults.tile_size, "overlap": defaults.overlap, "feather": defaults.feather}
    data.update(values or {})
    data.update(dict(zip(FRAME_SIDES, frame, strict=True)))
    data.pop("aspect", None)
    data.pop("target_width", None)
    data.pop("target_height", None)
    return parse_args_model(OutpaintArgs, data)


def preset_values(state: UserState) -> dict[str, Any]:
    """The job fields of the Outpaint panel's preset that change the plan (band, feather, pre-fill...)."""
    from segfill.presets import get_preset

    name = state.presets.get("outpaint")
    preset = get_preset(name) if name and name != "None" else None
    return preset.job_args("outpaint") if preset is not None else {}


def plan_frame(state: UserState, host: Host, values: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The tile plan of the current frame for the overlay (image pixels; the original's top-left is 0, 0), from
    the same arguments the job gets (the host's tile defaults and the Outpaint panel's preset)."""
    frame = state.edit.frame
    if state.image is None or not any(frame):
        state.frame_plan = None
        return None
    size = state.size
    values = {**preset_values(state), **(values or {})}
    try:
        args = outpaint_args(host, frame, values)
        planner = getattr(host, "plan_outpaint", None)  # a host that plans differently (e.g. untiled backends)
        if planner is not None:
            plan = planner(size, args)
        else:
            from segfill.outpaint.runner import plan_outpaint

            plan = plan_outpaint(size, args, working_size=host.defaults().tile_size or 512)
    except InputError as exc:
        state.frame_plan = {"padding": list(frame), "canvas": [size[0] + frame[0] + frame[1], size[1] + frame[2] + frame[3]],
                            "tiles": [], "passes": 0, "error": str(exc)}
        return state.frame_plan
    ox, oy = plan.image_rect[0], plan.image_rect[1]
    tiles = [[t.x0 - ox, t.y0 - oy, t.x1 - ox, t.y1 - oy, t.pass_index, 1 if t.kind == "seam" else 0]
             for t in plan.tiles]
    state.frame_plan = {"padding": list(frame), "canvas": list(plan.output_size), "tiles": tiles,
                        "passes": len(plan.passes), "tile_size": list(plan.tile_size), "error": "",
                        "image": state.image_revision}
    return state.frame_plan


def ensure_frame_plan(state: UserState, host: Host) -> None:
    """After undo/redo or an accepted result the frame may differ from the planned one: plan it again."""
    plan = state.frame_plan
    frame = list(state.edit.frame)
    if state.image is None or not any(frame):
        state.frame_plan = None
    elif plan is None or plan.get("padding") != frame or plan.get("image") != state.image_revision:
        plan_frame(state, host)


def set_frame(state: UserState, host: Host, frame: Any, coalesce: str | None = None) -> bool:
    """Make ``frame`` (padding) the current edit's frame; True when it changed."""
    size = state.require_image().shape[1::-1]
    clamped, cut = clamp_frame(size, frame)
    if clamped == state.edit.frame:
        return False
    state.push(replace(state.edit, frame=clamped), coalesce=coalesce)
    plan = plan_frame(state, host)
    if cut:
        state.message = "The frame stops at 8× the image's side and 16384 px in all."
    elif plan is not None and not plan["error"]:
        width, height = plan["canvas"]
        count = len(plan["tiles"])
        state.message = (f"Outpaint to {width}×{height}: {count} tile{'s' if count != 1 else ''} in "
                         f"{plan['passes']} pass{'es' if plan['passes'] != 1 else ''}.")
    return True


# -- detail when zoomed -------------------------------------------------------------------------------------


def set_viewport(state: UserState, event: dict[str, Any]) -> None:
    """``view {x0, y0, x1, y1, w, h}`` (image px, screen px) while zoomed in; ``view {}`` when not."""
    if state.image is None or "x0" not in event:
        state.viewport = None
        return
    try:
        x0, y0, x1, y1, w, h = (float(event[k]) for k in ("x0", "y0", "x1", "y1", "w", "h"))
    except (KeyError, TypeError, ValueError):
        raise InputError("The zoomed view needs numeric x0, y0, x1, y1, w and h.") from None
    width, height = state.size
    x0, x1 = sorted((min(max(x0, 0), width), min(max(x1, 0), width)))
    y0, y1 = sorted((min(max(y0, 0), height), min(max(y1, 0), height)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        state.viewport = None
        return
    state.viewport = (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)),
                      int(min(max(w, 16), 8192)), int(min(max(h, 16), 8192)))


def detail_region(state: UserState) -> tuple[tuple[int, int, int, int], tuple[int, int]] | None:
    """(rect, output size) of the detail crop for the current viewport, or None."""
    if state.viewport is None or state.image is None:
        return None
    x0, y0, x1, y1, sw, sh = state.viewport
    width, height = state.size
    mx, my = (x1 - x0) * DETAIL_MARGIN, (y1 - y0) * DETAIL_MARGIN
    rx0, ry0 = max(0, int(x0 - mx) // 8 * 8), max(0, int(y0 - my) // 8 * 8)
    rx1, ry1 = min(width, -(-int(x1 + mx) // 8) * 8), min(height, -(-int(y1 + my) // 8) * 8)
    rw, rh = rx1 - rx0, ry1 - ry0
    if rw < 1 or rh < 1:
        return None
    # screen px per image px (never more than the image has), and never more than DETAIL_MAX_PIXELS
    scale = min(1.0, max(sw / max(x1 - x0, 1), sh / max(y1 - y0, 1)))
    scale = min(scale, (DETAIL_MAX_PIXELS / (rw * rh)) ** 0.5)
    return (rx0, ry0, rx1, ry1), (max(1, int(round(rw * scale))), max(1, int(round(rh * scale))))


def detail_payload(state: UserState, full_mask: Any, sent: dict[str, Any]) -> dict[str, Any] | None:
    """The detail crops that changed since ``sent`` (updated in place): image JPEG and mask PNG of the region.
    ``full_mask()`` gives the refined mask at full size; it is asked for only when the mask crop must be sent
    (zoomed in past the display copy), so an ordinary click on a huge image makes no full-size mask."""
    from segfill.ui.render import mask_to_grey

    region = detail_region(state)
    if region is None:
        sent.clear()
        return None
    rect, size = region
    x0, y0, x1, y1 = rect
    out: dict[str, Any] = {"rect": list(rect), "size": list(size), "image_rev": state.image_revision}
    image_key = (state.image_revision, rect, size)
    if sent.get("image") != image_key:
        crop = state.image[y0:y1, x0:x1]
        if (crop.shape[1], crop.shape[0]) != size:
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        out["image"] = jpeg_data_url(Image.fromarray(np.ascontiguousarray(crop), "RGB"), quality=95, subsampling=0)
        sent["image"] = image_key
    mask_key = (state.revision, state.image_revision, rect, size)
    if sent.get("mask") != mask_key:
        grey = mask_to_grey(np.ascontiguousarray(full_mask()[y0:y1, x0:x1]), size)
        out["mask"] = png_data_url(Image.fromarray(grey, "L"))
        sent["mask"] = mask_key
    return out


# -- events -------------------------------------------------------------------------------------------------


def apply_event(state: UserState, event: dict[str, Any], host: Host) -> None:
    kind = event.get("type")
    if kind == "accept":
        accept(state)
    elif kind == "discard":
        discard(state)
    elif kind == "show_result":
        show(state, event.get("id"))
    elif kind == "frame":
        state.require_image()
        values = [event.get(side, 0) for side in FRAME_SIDES]
        set_frame(state, host, values, coalesce="frame" if event.get("live") else None)
        if state.frame_plan is None:
            state.message = "Frame cleared: nothing to outpaint."
    elif kind == "view":
        set_viewport(state, event)
    else:  # pragma: no cover - state.WORKSPACE_EVENTS and this function list the same events
        raise InputError(f"Unknown canvas event {kind!r}.")
