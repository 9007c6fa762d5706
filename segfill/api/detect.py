"""``POST /segfill/v1/detect``, ``GET /segfill/v1/detectors`` and the text part of ``/mask``.

A detector is named by family (``grounding_dino``, ``owlvit``, ``owlv2``, ``sam3``), by a hub id SegFill knows,
or by the name of a folder installed in the host's detector folders (``DetectorManager.resolve_name``): never
by a server path. A known hub id not downloaded yet is downloaded once, during the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segfill import defaults
from segfill.api import models as m
from segfill.errors import InputError, SegFillError


def host_detectors(host: Any) -> Any:
    from segfill.detect.loading import DetectorUnavailableError

    detectors = getattr(host, "detectors", None)
    if detectors is None:
        raise DetectorUnavailableError("This server has no text detectors.")
    return detectors


def resolve_detector(host: Any, requested: str | None) -> str:
    """The source to load for a request's ``detector`` (see ``DetectorManager.choose``)."""
    return host_detectors(host).choose(requested)


def run_detection(host: Any, rgb: Any, text: str, detector: str | None, box_threshold: float | None,
                  text_threshold: float | None, max_boxes: int = defaults.DETECT_MAX_BOXES) -> Any:
    """Detect on ``rgb``; the caller holds the model lock. Thresholds are checked before anything loads."""
    from segfill.detect.detector import check_threshold, detect, split_phrases

    split_phrases(text)
    check_threshold(box_threshold, "box threshold")
    check_threshold(text_threshold, "text threshold")
    if not 1 <= int(max_boxes) <= defaults.DETECT_MAX_BOXES * 5:
        raise InputError(f"max_boxes must be between 1 and {defaults.DETECT_MAX_BOXES * 5}.")
    loaded = host_detectors(host).get(resolve_detector(host, detector))
    return detect(loaded, rgb, text, box_threshold, text_threshold, max_boxes=int(max_boxes))


def detection_reply(result: Any) -> dict[str, Any]:
    detections = [d.to_dict() for d in result.detections]
    return {"boxes": [d["box"] for d in detections], "labels": [d["label"] for d in detections],
            "scores": [d["score"] for d in detections], "detections": detections, "detector": result.detector,
            "family": result.family, "box_threshold": result.box_threshold, "text_threshold": result.text_threshold,
            "width": result.image_size[0], "height": result.image_size[1]}


def register_detect_routes(router: Any, host: Any, gpu: Callable[[], Any], decode: Callable[[str, str], Any],
                           http_errors: Callable[[], Any]) -> None:
    @router.get("/detectors", response_model=m.DetectorsResponse)
    def detectors() -> dict[str, Any]:
        """Which detector families this server's transformers can run (and what to install for the others),
        the detector folders installed, and the default."""
        from segfill.detect.registry import detector_status

        with http_errors():
            entries = host_detectors(host).list_installed()
            try:
                default = resolve_detector(host, None)
            except SegFillError:  # nothing usable here: the families say what to install
                default = None
            default = next((e.name for e in entries if str(e.path) == default), default)  # a name, never a path
            return {"families": [{"family": s.name, "title": s.family.title, "available": s.available,
                                  "message": s.message, "default_model": s.family.default_model}
                                 for s in detector_status()],
                    "installed": [e.name for e in entries], "default": default}

    @router.post("/detect", response_model=m.DetectResponse)
    def detect(body: m.DetectRequest) -> dict[str, Any]:
        """Open-vocabulary detection: the boxes (image pixels), labels and scores a detector finds for `text`.

        Thresholds left out use the detector's default; none found is an empty answer, not an error.
        """
        from segfill.masks import image_to_rgb

        with http_errors():
            rgb = image_to_rgb(decode(body.image, "image"))
            with gpu():
                result = run_detection(host, rgb, body.text, body.detector, body.box_threshold, body.text_threshold,
                                       body.max_boxes)
            return detection_reply(result)


def text_mask_reply(host: Any, body: Any, rgb: Any, gpu: Callable[[], Any], refinement: Any,
                    mask_png: Callable[[Any], str], model_name: str) -> dict[str, Any]:
    """``/mask`` with ``text``: SAM answers every detected box; ``mask`` is the union of the chosen candidates."""
    from segfill.detect.pipeline import chosen_index, predict_boxes, require_detections, union_of
    from segfill.masks import refine
    from segfill.sam.session import SamSession

    if body.points or body.box is not None:
        raise InputError("Select by text or by points/box, not both in one request.")
    height, width = rgb.shape[:2]
    candidate = None if body.candidate == "best" else int(body.candidate)
    with gpu():
        result = run_detection(host, rgb, body.text, body.detector, body.box_threshold, body.text_threshold)
        require_detections(result)
        session = SamSession(host.sam.get(model_name), host.embeddings)
        session.set_image(rgb)
        predictions = predict_boxes(session, result.detections, multimask=body.multimask)
    chosen = [chosen_index(p, candidate) for p in predictions]
    union = union_of(predictions, chosen, (width, height))
    return {"masks": [mask_png(p.masks[i]) for p, i in zip(predictions, chosen, strict=True)],
            "scores": [float(p.scores[i]) for p, i in zip(predictions, chosen, strict=True)],
            "chosen": -1, "mask": mask_png(refine(union, refinement)), "width": width, "height": height,
            "model": model_name, "detections": [d.to_dict() for d in result.detections]}
