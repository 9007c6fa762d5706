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
    from segfill.detect.registry import availability_message, detector_status

    statuses = detector_status()
    return {"available": any(s.available for s in statuses), "message": availability_message(),
            "families": [s.name for s in statuses if s.available]}


def _results_parts(state: UserState, payload: dict[str, Any], force: bool) -> None:
    """The result on the canvas (its picture only when it changed) and the gallery (only when it changed)."""
    from segfill.ui.workspace import result_payload, results_payload

    shown = state.pending_result
    payload["result"] = result_payload(state, include_image=force or shown != state.sent_result)
    state.sent_result = shown
    if force or state.sent_results_revision != state.results_revision:
        payload["results"] = results_payload(state)
        state.sent_results_revision = state.results_revision


def build_payload(state: UserState, error: str | None = None, force_image: bool = False) -> dict[str, Any]:
    """Everything the canvas needs to redraw after an event."""
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
    payload["busy"] = state.busy or ""
    payload["notice"] = state.notice or ""
    _results_parts(state, payload, force_image)
    if state.image is None:
        payload.update(width=0, height=0, image=None, mask=None, points=[], box=None, candidates=[], text_boxes=[],
                       text=None)
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
    browser = onnx_decoder.exportable(loaded)
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
