"""What the browser canvas draws: a small JSON payload built from a :class:`~segfill.ui.state.UserState`.

The canvas (``javascript/segfill.js``) composes the overlay itself (tint, outline, mask view, cut-out view)
from one grey PNG of the mask at display resolution, so a click costs one small PNG, not a full-size
composite. The image itself is sent only when it changed; candidate thumbnails only when SAM answered anew.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
from PIL import Image

from segfill.ui.dataurl import jpeg_data_url, png_data_url
from segfill.ui.state import MASK_DISPLAY_SIDE, UserState, scaled_size
from segfill.ui.workspace import detail_payload

__all__ = ["MASK_DISPLAY_SIDE", "build_payload", "candidate_thumbnails", "display_size", "mask_display_url", "mask_to_grey"]
#: long side of the image shown in the canvas (zoom beyond it shows the pixels of this copy)
IMAGE_DISPLAY_SIDE = 2048
THUMB_SIDE = 96
TINT_RGB = np.array([30, 144, 255], dtype=np.float32)


display_size = scaled_size  # (width, height) scaled down (never up) so the long side is at most max_side


def mask_to_grey(mask: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 (H, W) 0..255 from a bool or float mask, resized (area average) to ``size`` when given."""
    grey = (mask.astype(np.uint8) * 255) if mask.dtype == bool else np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8)
    if size is not None and (grey.shape[1], grey.shape[0]) != tuple(size):
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def mask_display_url(mask: np.ndarray) -> str:
    height, width = mask.shape[:2]
    grey = mask_to_grey(mask, display_size((width, height), MASK_DISPLAY_SIDE))
    return png_data_url(Image.fromarray(grey, "L"))


def _image_thumb(state: UserState) -> np.ndarray:
    cached = state.thumb_base
    if cached is not None and cached[0] == state.image_revision:
        return cached[1]
    image = state.require_image()
    size = display_size((image.shape[1], image.shape[0]), THUMB_SIDE)
    thumb = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    state.thumb_base = (state.image_revision, thumb)
    return thumb


def candidate_thumbnails(state: UserState) -> list[dict[str, Any]]:
    """One small tinted thumbnail per SAM candidate, with SAM's score; cached per prediction."""
    prediction = state.edit.prediction
    if prediction is None:
        return []
    cached = state.thumb_cache
    if cached is not None and cached[0] is prediction:
        return cached[1]
    base = _image_thumb(state).astype(np.float32)
    size = (base.shape[1], base.shape[0])
    thumbs = []
    for index, score in enumerate(prediction.scores):
        mask = prediction.mask_at(index, size)  # made at thumbnail size from SAM's logits: no full-size mask
        alpha = (mask_to_grey(np.asarray(mask, dtype=bool), size).astype(np.float32) / 255.0)[..., None] * 0.6
        tinted = np.clip(base * (1 - alpha) + TINT_RGB * alpha, 0, 255).astype(np.uint8)
        thumbs.append({"index": index, "score": round(float(score), 3), "url": png_data_url(Image.fromarray(tinted, "RGB"))})
    state.thumb_cache = (prediction, thumbs)
    return thumbs


def text_boxes_payload(edit: Any) -> list[dict[str, Any]]:
    """The detected boxes to draw (image pixels), each with its label, the detector's score, whether it is kept,
    and SAM's candidates for it (chosen index and scores)."""
    return [{"index": index, "box": [round(float(v), 2) for v in box.box], "label": box.label,
             "score": round(float(box.score), 3), "kept": box.kept, "candidate": box.candidate_index,
             "sam_scores": [round(float(s), 3) for s in box.prediction.scores]}
            for index, box in enumerate(edit.text_boxes)]


#: a detected box's candidate thumbnails show the box and this share of its size around it
TEXT_THUMB_MARGIN = 0.15
#: the long side of the mask a box's thumbnails are cut from (bounds the work for a small box on a huge image)
TEXT_THUMB_MASK_SIDE = 4096


def text_focus_index(state: UserState) -> int | None:
    """The detected box whose candidates the strip shows, or None (no boxes, or the strip shows a click's)."""
    focus = state.text_focus
    boxes = state.edit.text_boxes
    return focus if focus is not None and 0 <= focus < len(boxes) else None


def text_box_thumbnails(state: UserState, index: int) -> list[dict[str, Any]]:
    """One thumbnail per SAM candidate of detected box ``index``: the box and a margin around it, the candidate
    tinted, with SAM's score; cached per box prediction."""
    text_box = state.edit.text_boxes[index]
    prediction = text_box.prediction
    cached = state.text_thumb_cache
    if cached is not None and cached[0] is prediction:
        return cached[1]
    image = state.require_image()
    height, width = image.shape[:2]
    x0, y0, x1, y1 = text_box.box
    margin = TEXT_THUMB_MARGIN * max(x1 - x0, y1 - y0) + 2
    cx0, cy0 = max(0, int(np.floor(x0 - margin))), max(0, int(np.floor(y0 - margin)))
    cx1, cy1 = min(width, int(np.ceil(x1 + margin))), min(height, int(np.ceil(y1 + margin)))
    cx1, cy1 = max(cx1, cx0 + 1), max(cy1, cy0 + 1)
    scale = THUMB_SIDE / max(cx1 - cx0, cy1 - cy0)  # small boxes are shown larger
    thumb_size = (max(1, round((cx1 - cx0) * scale)), max(1, round((cy1 - cy0) * scale)))
    crop = image[cy0:cy1, cx0:cx1]
    base = cv2.resize(crop, thumb_size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    base = base.astype(np.float32)
    mask_scale = min(scale, TEXT_THUMB_MASK_SIDE / max(width, height))
    mask_size = (max(1, round(width * mask_scale)), max(1, round(height * mask_scale)))
    region = (slice(int(cy0 * mask_scale), max(int(cy0 * mask_scale) + 1, round(cy1 * mask_scale))),
              slice(int(cx0 * mask_scale), max(int(cx0 * mask_scale) + 1, round(cx1 * mask_scale))))
    thumbs = []
    for candidate, score in enumerate(prediction.scores):
        mask = np.asarray(prediction.mask_at(candidate, mask_size), dtype=bool)[region]
        grey = cv2.resize(mask.astype(np.uint8) * 255, thumb_size, interpolation=cv2.INTER_LINEAR)
        alpha = (grey.astype(np.float32) / 255.0)[..., None] * 0.6
        tinted = np.clip(base * (1 - alpha) + TINT_RGB * alpha, 0, 255).astype(np.uint8)
        thumbs.append({"index": candidate, "score": round(float(score), 3),
                       "url": png_data_url(Image.fromarray(tinted, "RGB"))})
    state.text_thumb_cache = (prediction, thumbs)
    return thumbs


def text_candidates_parts(state: UserState, payload: dict[str, Any], force: bool) -> None:
    """``text_focus`` and the focused box's candidate thumbnails (left out, ``text_candidates_same``, while they
    are the ones the browser already has)."""
    focus = text_focus_index(state)
    payload["text_focus"] = focus
    if focus is None:
        payload["text_candidates"] = []
        return
    thumbs = text_box_thumbnails(state, focus)
    shown = state.edit.text_boxes[focus].prediction
    if not force and state.sent_text_thumbs_of is shown:
        payload["text_candidates"] = [{"index": t["index"], "score": t["score"]} for t in thumbs]
        payload["text_candidates_same"] = True
    else:
        payload["text_candidates"] = thumbs
    state.sent_text_thumbs_of = shown


def detector_choices(host: Any) -> list[dict[str, Any]] | None:
    """What the "Select by text" options offer: Automatic, the installed detectors this transformers runs, and
    each runnable family's default hub id not installed yet (downloaded on first use); None without detectors."""
    from segfill.detect.download import folder_name
    from segfill.detect.registry import FAMILIES

    try:
        manager = getattr(host, "detectors", None)
    except Exception:  # a host that cannot build its detector manager: the box offers Automatic only
        manager = None
    if manager is None:
        return None
    runnable = set(detector_help()["families"])
    choices: list[dict[str, Any]] = [{"value": "", "label": "Automatic", "family": None}]
    try:
        installed = [entry for entry in manager.list_installed() if entry.family in runnable]
    except OSError:  # an unreadable models folder: offer what can be downloaded
        installed = []
    for entry in installed:
        choices.append({"value": entry.name, "label": f"{entry.name} ({FAMILIES[entry.family].title})",
                        "family": entry.family})
    names = {entry.name for entry in installed}
    for family in FAMILIES.values():
        if family.name in runnable and folder_name(family.default_model) not in names:
            choices.append({"value": family.default_model, "label": f"{family.title}: {family.default_model} "
                            "(downloaded on first use)", "family": family.name})
    return choices


def text_query_payload(edit: Any) -> dict[str, Any] | None:
    query = edit.text
    if query is None:
        return None
    return {"text": query.text, "detector": query.detector, "family": query.family,
            "box_threshold": query.box_threshold, "text_threshold": query.text_threshold}


@functools.lru_cache(maxsize=1)
def detector_help() -> dict[str, Any]:
    """For the "Select by text" box: whether a detector can run here, and a line saying what works and what to
    install (computed once: the installed transformers does not change while the process runs)."""
    from segfill.defaults import DETECT_TEXT_THRESHOLD
    from segfill.detect.registry import availability_message, detector_status

    statuses = detector_status()
    usable = [s.family for s in statuses if s.available]
    return {"available": bool(usable), "message": availability_message(), "families": [f.name for f in usable],
            # what an empty threshold field means, per family (the text threshold is GroundingDINO's only)
            "box_thresholds": {f.name: f.box_threshold for f in usable},
            "titles": {f.name: f.title for f in usable},
            "text_threshold": DETECT_TEXT_THRESHOLD,
            "text_threshold_families": [f.name for f in usable if f.uses_text_threshold]}


def _results_parts(state: UserState, payload: dict[str, Any], force: bool) -> None:
    """The result on the canvas (its picture only when it changed) and the gallery (only when it changed)."""
    from segfill.ui.workspace import result_payload, results_payload

    shown = state.pending_result
    payload["result"] = result_payload(state, include_image=force or shown != state.sent_result)
    state.sent_result = shown
    if force or state.sent_results_revision != state.results_revision:
        payload["results"] = results_payload(state)
        state.sent_results_revision = state.results_revision


def build_payload(state: UserState, error: str | None = None, force_image: bool = False,
                  host: Any = None) -> dict[str, Any]:
    """Everything the canvas needs to redraw after an event (with ``host``: the detectors to choose from)."""
    edit = state.edit
    payload: dict[str, Any] = {
        "rev": state.revision,
        "image_rev": state.image_revision,
        "error": error or "",
        "message": state.message or "",
        "op": edit.op,
        "can_undo": state.can_undo,
        "can_redo": state.can_redo,
        "model": state.model_name or "",
        "timings": {key: round(value, 2) for key, value in state.timings.items()},
        "detectors": detector_help(),
    }
    if host is not None:
        choices = detector_choices(host)
        if choices is not None:
            payload["detectors"] = dict(payload["detectors"], choices=choices)
    payload["busy"] = state.busy or ""
    payload["notice"] = state.notice or ""
    # the page polls this channel while it waits for a long job, and cancels it there (segfill.tasks)
    payload["tasks_url"] = f"{API_PREFIX}/tasks/{state.channel}"
    _results_parts(state, payload, force_image)
    if state.image is None:
        payload.update(width=0, height=0, image=None, mask=None, points=[], box=None, candidates=[], text_boxes=[],
                       text=None, text_focus=None, text_candidates=[])
        state.sent_image_revision = state.image_revision
        return payload
    height, width = state.image.shape[:2]
    payload["width"], payload["height"] = width, height
    if force_image or state.sent_image_revision != state.image_revision:
        shown = Image.fromarray(state.image, "RGB")
        if max(width, height) > IMAGE_DISPLAY_SIDE:
            shown = shown.resize(display_size((width, height), IMAGE_DISPLAY_SIDE), Image.LANCZOS)
        payload["image"] = jpeg_data_url(shown)
        state.sent_image_revision = state.image_revision
    shown_mask, area = state.shown_mask()  # display size: a huge image's click makes no full-size mask
    payload["mask"] = mask_display_url(shown_mask) if area or shown_mask.dtype != bool else None
    payload["mask_area"] = area
    payload["points"] = [[round(x, 2), round(y, 2), int(label)] for x, y, label in edit.points]
    payload["box"] = list(edit.box) if edit.box is not None else None
    thumbs = candidate_thumbnails(state)
    shown = state.edit.prediction
    if thumbs and not force_image and state.sent_thumbs_of is shown:
        payload["candidates"] = [{"index": t["index"], "score": t["score"]} for t in thumbs]
        payload["candidates_same"] = True
    else:
        payload["candidates"] = thumbs
    state.sent_thumbs_of = shown
    payload["candidate"] = edit.candidate_index
    payload["segments"] = len(edit.segment_ids)
    payload["text_boxes"] = text_boxes_payload(edit)
    payload["text"] = text_query_payload(edit)
    text_candidates_parts(state, payload, force_image)
    if state.segment_map is not None and state.sent_segment_revision != state.segment_map_revision:
        payload["segment_map"] = png_data_url(Image.fromarray(state.segment_map.color_map(), "RGB"))
        state.sent_segment_revision = state.segment_map_revision
    interactive = interactive_info(state)
    if interactive is not None:
        payload["sam"] = interactive
    from segfill.ui.state import encoding_report

    report = encoding_report(state)
    if report is not None:  # a background encoding of this image: the canvas shows a bar and polls (noop)
        payload["encoding"] = {"done": report.done, "total": report.total, "message": report.message,
                               "fraction": report.fraction, "eta_s": None if report.eta_s is None else round(report.eta_s, 1)}
    payload["frame"] = list(edit.frame)
    payload["frame_plan"] = state.frame_plan if any(edit.frame) else None
    payload["detail"] = detail_payload(state, state.final_mask, state.sent_detail)
    payload["strokes_soft"] = any(stroke.soft for stroke in edit.strokes)
    if state.pending_download is not None:
        payload["download"] = {"filename": state.pending_download.filename, "url": state.pending_download.data_url}
        state.pending_download = None
    return payload


#: where the REST API's routes live (the browser decoder fetches its files and embeddings there)
API_PREFIX = "/segfill/v1"


def interactive_info(state: UserState) -> dict[str, Any] | None:
    """What ``javascript/segfill_decoder.js`` needs to answer hovers and clicks itself (or through the lean click
    route), for the current image's embedding; None until the embedding exists. Sent with every payload (small)."""
    session = state.session
    if session is None or not session.is_image_set or session.image_key is None or state.image is None:
        return None
    from segfill.sam import onnx_decoder

    loaded = session.model
    embedding_key, digest = session.image_key
    height, width = state.image.shape[:2]
    shown = scaled_size((width, height), MASK_DISPLAY_SIDE)
    from segfill.web_runtime import runtime_ready

    browser = onnx_decoder.exportable(loaded) and runtime_ready()  # else the lean route answers previews
    return {
        "model_key": loaded.model_key,
        "family": loaded.family,
        "embedding_key": embedding_key,
        "digest": digest,
        "image_size": int(getattr(loaded, "image_size", 1024)),
        "display": [shown[0], shown[1]],
        "decoder_url": f"{API_PREFIX}/decoder/{loaded.model_key}.onnx" if browser else None,
        "embedding_url": f"{API_PREFIX}/embedding/{embedding_key}/{digest}" if browser else None,
        "click_url": f"{API_PREFIX}/click",
        "web_url": f"{API_PREFIX}/web/",
    }
