"""SegFill's REST API: ``/segfill/v1/...`` routes on any FastAPI app, for any :class:`~segfill.hosts.base.Host`.

The WebUI glue calls ``register_routes(app, webui_host, queue_lock=modules.call_queue.queue_lock)`` from
``on_app_started``; the standalone app calls ``register_routes(app, standalone_host)``. The routes are the
same; only the host differs.

Rules every route follows:

- Routes are plain ``def``: FastAPI runs them in its thread pool, so decoding, SAM and generation never block
  the event loop. Work on the model (loading a SAM, encoding, predicting, generating) runs under
  ``queue_lock`` — the WebUI's generation lock — so an API call never races a generation from the UI.
  The WebUI's lock is not re-entrant: a host that takes it too must share a re-entrant wrapper with the
  routes (``segfill.hosts.webui`` passes its ``ThreadReentrantLock`` as ``queue_lock``).
- Images arrive as base64 file content and are size-checked from the header before decoding (413 beyond
  ``max_image_pixels``); whole bodies beyond ``max_request_bytes`` are refused before they are read (413).
- Nothing a client sends is ever used as a server path: a model is chosen by name from the list of installed
  models (unknown -> 404), an image is decoded from memory.
- Errors: malformed JSON / wrong types -> 422 (FastAPI), an image that does not decode -> 400, out-of-range or
  inconsistent values -> 422, unknown model -> 404, too large -> 413; ``detail`` is one sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from PIL import Image

import segfill
from segfill import defaults
from segfill.api import models as m
from segfill.api.codec import ImageTooLargeError, decode_image, encode_png
from segfill.api.timeouts import body_timeout_message
from segfill.errors import InputError, MissingDependencyError, ModelError, SegFillError

API_PREFIX = "/segfill/v1"
#: 64 megapixels: an 8K×8K canvas; larger inputs are refused with 413 before their pixels are decoded.
DEFAULT_MAX_IMAGE_PIXELS = 64 * 1024 * 1024
#: 256 MiB of JSON: two base64 images of the largest accepted size, in PNG, fit.
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024 * 1024

__all__ = [
    "API_PREFIX",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "ImageDecodeError",
    "UnknownModelError",
    "register_routes",
]


class UnknownModelError(InputError):
    """A model name that is not installed (the API answers 404)."""


class ImageDecodeError(InputError):
    """An image field that is not base64 of a PNG/JPEG/WebP file (the API answers 400)."""


# -- errors ---------------------------------------------------------------------------------------------


def status_for(error: SegFillError) -> int:
    """HTTP status for a SegFill error raised while serving a request."""
    from segfill.detect.loading import DetectorUnavailableError
    from segfill.detect.manager import UnknownDetectorError

    if isinstance(error, ImageTooLargeError):
        return 413
    if isinstance(error, (UnknownModelError, UnknownDetectorError)):
        return 404
    if isinstance(error, DetectorUnavailableError):
        return 503
    if isinstance(error, ImageDecodeError):
        return 400
    if isinstance(error, MissingDependencyError):
        return 503
    if isinstance(error, (InputError, ModelError)):
        return 422
    return 400


@contextlib.contextmanager
def _http_errors() -> Iterator[None]:
    """Turn SegFill's user-facing errors into HTTP errors whose ``detail`` is the error's sentence."""
    try:
        yield
    except SegFillError as error:
        raise HTTPException(status_code=status_for(error), detail=str(error)) from None


def _decode(text: str, field: str, max_pixels: int) -> Image.Image:
    try:
        return decode_image(text, max_pixels, field=field)
    except ImageTooLargeError:
        raise
    except InputError as error:
        raise ImageDecodeError(str(error)) from None


# -- request size ----------------------------------------------------------------------------------------


def _limited_route_class(max_request_bytes: int, body_timeout_s: float) -> type:
    """An APIRoute that refuses bodies over ``max_request_bytes`` before reading them into memory, and answers
    408 when the body stops arriving for ``body_timeout_s`` (a body shorter than its Content-Length).

    Done per route rather than as middleware because the WebUI's app has already started when extensions
    add their routes, and Starlette refuses new middleware then.
    """

    class LimitedBodyRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def limited_handler(request: Request) -> Any:
                if request.method in ("POST", "PUT", "PATCH"):
                    too_large = JSONResponse(
                        status_code=413,
                        content={"detail": f"The request body is larger than this server accepts ({max_request_bytes} bytes)."},
                    )
                    declared = request.headers.get("content-length")
                    if declared is not None:
                        try:
                            if int(declared) > max_request_bytes:
                                return too_large
                        except ValueError:
                            return JSONResponse(status_code=400, content={"detail": "Invalid Content-Length header."})
                    body = bytearray()
                    chunks = request.stream().__aiter__()
                    while True:
                        try:
                            chunk = await asyncio.wait_for(chunks.__anext__(), body_timeout_s)
                        except StopAsyncIteration:
                            break
                        except asyncio.TimeoutError:
                            return JSONResponse(status_code=408, headers={"Connection": "close"},
                                                content={"detail": body_timeout_message(body_timeout_s)})
                        body += chunk
                        if len(body) > max_request_bytes:
                            return too_large
                    request._body = bytes(body)  # what request.body() returns from now on
                return await handler(request)

            return limited_handler

    return LimitedBodyRoute


# -- models ----------------------------------------------------------------------------------------------


def _model_entries(host: Any) -> list[dict[str, Any]]:
    """Installed SAM models as plain dicts with at least ``name``, from ``host.sam.list_models()``."""
    entries = []
    for item in host.sam.list_models():
        if isinstance(item, str):
            entries.append({"name": item})
            continue
        if isinstance(item, dict):
            entries.append(dict(item))
            continue
        entry = {"name": str(item.name)}
        for key in ("arch", "family", "size_bytes"):
            value = getattr(item, key, None)
            if value is None and getattr(item, "spec", None) is not None:
                value = getattr(item.spec, key, None)
            entry[key] = value
        entries.append(entry)
    return entries


def _default_model(host: Any, names: list[str]) -> str | None:
    preferred = host.defaults().sam_model
    if preferred in names:
        return preferred
    return names[0] if names else None


def _resolve_model(host: Any, requested: str | None) -> str:
    """The installed file name to load: ``requested`` if it is installed (or a registry name of an installed
    file), else the default. Only names the manager lists can come out, so a request never names a path."""
    names = [entry["name"] for entry in _model_entries(host)]
    if requested is None or requested == "":
        name = _default_model(host, names)
        if name is None:
            raise UnknownModelError("No SAM model is installed; download one first (python -m segfill download).")
        return name
    if requested in names:
        return requested
    installed = ", ".join(names) if names else "none"
    resolve_name = getattr(host.sam, "resolve_name", None)
    if resolve_name is not None:  # registry names such as "sam_vit_b" map to an installed file
        from segfill.sam.registry import NotSamCheckpoint, UnsafeCheckpoint

        try:
            return str(resolve_name(requested).name)
        except (UnsafeCheckpoint, NotSamCheckpoint):
            raise  # a file of that name is there but SegFill will not load it: its sentence, as a 422
        except SegFillError as error:
            if "not installed" in str(error):
                raise UnknownModelError(f"{str(error).rstrip('.')}; installed: {installed}.") from None
    raise UnknownModelError(f"Unknown SAM model {requested!r}; installed: {installed}.")


# -- helpers ---------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON data (tuples -> lists, unknown objects -> str) so a host's info dict never breaks a reply."""
    return json.loads(json.dumps(value, default=str))


def _refinement_args(body: m.MaskRequest) -> Any:
    from segfill.args import MaskRefinement, parse_args_model

    return parse_args_model(MaskRefinement, {name: getattr(body, name) for name in m.REFINEMENT_FIELD_NAMES})


def _mask_png(mask: np.ndarray) -> str:
    from segfill.masks import mask_to_image

    return encode_png(mask_to_image(mask))


def _lock_context(lock: Any) -> Callable[[], AbstractContextManager[Any]]:
    if lock is None:
        lock = threading.Lock()  # standalone: still one model job at a time

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        with lock:
            yield

    return hold


# -- registration ----------------------------------------------------------------------------------------


def register_routes(
    app: FastAPI,
    host: Any,
    *,
    queue_lock: Any = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    prefix: str = API_PREFIX,
    body_timeout_s: float = defaults.REQUEST_BODY_TIMEOUT_S,
) -> APIRouter:
    """Add SegFill's routes under ``prefix`` to ``app`` and return the router.

    ``host`` implements :class:`segfill.hosts.base.Host`. ``queue_lock`` (a ``threading.Lock``-like object; the
    WebUI's ``modules.call_queue.queue_lock``) is held around every model job; without one, a private lock
    serializes them. ``max_image_pixels`` bounds each decoded image, ``max_request_bytes`` each request body;
    a body that stops arriving for ``body_timeout_s`` seconds is answered 408.
    """
    if max_image_pixels < 1 or max_request_bytes < 1 or body_timeout_s <= 0:
        raise ValueError("max_image_pixels, max_request_bytes and body_timeout_s must be positive")
    gpu = _lock_context(queue_lock)
    router = APIRouter(prefix=prefix, tags=["SegFill"], route_class=_limited_route_class(max_request_bytes, body_timeout_s))

    def decode(text: str, field: str) -> Image.Image:
        return _decode(text, field, max_image_pixels)

    @router.get("/health", response_model=m.HealthResponse)
    def health() -> dict[str, Any]:
        """Version, host kind and the size limits this server applies."""
        return {
            "status": "ok",
            "version": segfill.__version__,
            "host": host.name,
            "api": "v1",
            "max_image_pixels": max_image_pixels,
            "max_request_bytes": max_request_bytes,
            "max_points": m.MAX_POINTS,
        }

    @router.get("/presets", response_model=m.PresetsResponse)
    def list_presets() -> dict[str, Any]:
        """Presets for common jobs (pass a `name` as `preset` to /inpaint or /outpaint) and what each sets."""
        from segfill.presets import PRESETS

        return {"presets": [{"name": p.name, "title": p.title, "description": p.description, "kinds": list(p.kinds),
                             "refinement": dict(p.refinement), "args": dict(p.args)} for p in PRESETS.values()]}

    @router.get("/models", response_model=m.ModelsResponse)
    def list_models() -> dict[str, Any]:
        """Installed SAM models (pass a `name` as `model` to /mask and /segment-map) and the default one."""
        with _http_errors():
            entries = _model_entries(host)
            names = [entry["name"] for entry in entries]
            return {
                "models": [_jsonable(entry) for entry in entries],
                "default": _default_model(host, names),
                "host": host.name,
                "inpaint_warning": host.model_warning(),
            }

    @router.post("/mask", response_model=m.MaskResponse)
    def mask(body: m.MaskRequest) -> dict[str, Any]:
        """Click-to-mask with Segment Anything.

        Send the image, clicks (`points`, image pixels, label 1 = include / 0 = exclude) and/or a `box`
        `[x0, y0, x1, y1]`, or a `text` (with `detector` and thresholds): then SAM answers every box the detector
        finds, `masks` holds each box's chosen candidate, `detections` the boxes, and `mask` their union refined. Returns every candidate mask with SAM's score, the index `chosen` (`candidate`:
        "best" or an index) and `mask`: the chosen candidate after grow / shrink / fill holes / remove specks /
        invert / feather. Repeating a request on the same image reuses the cached image embedding.
        """
        from segfill.masks import image_to_rgb, refine
        from segfill.sam.session import SamSession, validate_box, validate_points

        with _http_errors():
            refinement = _refinement_args(body)
            if body.text is not None:
                from segfill.api.detect import text_mask_reply

                rgb = image_to_rgb(decode(body.image, "image"))
                return text_mask_reply(host, body, rgb, gpu, refinement, _mask_png, _resolve_model(host, body.model))
            if not body.points and body.box is None:
                raise InputError("Give at least one point or a box (or a text) to select something.")
            if isinstance(body.candidate, int) and not body.multimask and body.candidate != 0:
                raise InputError(f"Candidate {body.candidate} does not exist: with multimask false there is only candidate 0.")
            rgb = image_to_rgb(decode(body.image, "image"))
            height, width = rgb.shape[:2]
            # checked before the model is loaded and the image encoded (predict checks again, cheaply)
            points = validate_points([(p.x, p.y, p.label) for p in body.points], (width, height))
            validate_box(body.box, (width, height))
            name = _resolve_model(host, body.model)
            with gpu():
                session = SamSession(host.sam.get(name), host.embeddings)
                session.set_image(rgb)
                prediction = session.predict(
                    points=points,
                    box=body.box,
                    multimask=body.multimask,
                    use_previous_logits=False,
                )
            count = len(prediction.scores)
            if body.candidate == "best":
                chosen = prediction.best_index
            elif not 0 <= int(body.candidate) < count:
                raise InputError(f"Candidate {body.candidate} does not exist; choose \"best\" or 0 to {count - 1}.")
            else:
                chosen = int(body.candidate)
            refined = refine(prediction.mask(chosen), refinement)
            return {
                # one full-size candidate at a time (an 8000×6000 image's three float upscales never coexist)
                "masks": [_mask_png(prediction.mask(index)) for index in range(count)],
                "scores": [float(score) for score in prediction.scores],
                "chosen": chosen,
                "mask": _mask_png(refined),
                "width": width,
                "height": height,
                "model": name,
            }

    @router.post("/segment-map", response_model=m.SegmentMapResponse)
    def segment_map(body: m.SegmentMapRequest) -> dict[str, Any]:
        """Automatic segmentation of the whole image (SAM's mask generator at working resolution).

        Returns the label image (16-bit PNG, value = segment id, 0 = none), a colour-coded preview and the
        segment count. With `points`, also the ids they touch and the union of those segments as a full-size
        mask.
        """
        from segfill.args import parse_args_model
        from segfill.masks import image_to_rgb
        from segfill.sam.segment_map import compute_segment_map
        from segfill.sam.session import validate_points

        with _http_errors():
            args = parse_args_model(m.SegmentMapArgs, {key: getattr(body, key) for key in m.SEGMENT_MAP_FIELD_NAMES})
            rgb = image_to_rgb(decode(body.image, "image"))
            height, width = rgb.shape[:2]
            points = [(p.x, p.y) for p in body.points]
            validate_points(points, (width, height))
            name = _resolve_model(host, body.model)
            with gpu():
                segments = compute_segment_map(
                    host.sam.get(name),
                    rgb,
                    max_side=args.max_side,
                    points_per_side=args.points_per_side,
                    pred_iou_thresh=args.pred_iou_thresh,
                    stability_score_thresh=args.stability_score_thresh,
                    cache=host.embeddings,
                )
            labels = np.clip(segments.labels, 0, 65535).astype(np.uint16)
            work_w, work_h = segments.working_size
            touched: list[int] = []
            union = None
            if points:
                touched = sorted(int(i) for i in segments.segments_touched(points))
                union = _mask_png(segments.union_touched(points))
            return {
                "labels": encode_png(Image.fromarray(labels, mode="I;16")),
                "color_map": encode_png(Image.fromarray(segments.color_map(), mode="RGB")),
                "segment_count": len(segments),
                "working_width": work_w,
                "working_height": work_h,
                "width": width,
                "height": height,
                "touched": touched,
                "mask": union,
                "model": name,
            }

    @router.post("/inpaint", response_model=m.GenerationResponse)
    def inpaint(body: m.InpaintRequest) -> dict[str, Any]:
        """Repaint the white part of `mask` (same size as `image`); everything else stays bit-exact.

        Runs on the host's inpainting model (the WebUI's checkpoint, or the standalone backend).
        """
        from segfill.masks import mask_from_image, mask_to_image

        with _http_errors():
            args = m.to_inpaint_args(body)
            source = _Source(decode(body.image, "image"))
            height, width = source.rgb.shape[:2]
            soft_mask = mask_from_image(decode(body.mask, "mask"), size=(width, height), soft=True)
            if body.preset:  # the preset's mask refinement (grow, feather, invert...) on the mask sent
                soft_mask = m.preset_mask(body.preset, soft_mask)
            if not (soft_mask >= 0.5).any():
                raise InputError("The mask is empty; paint (white) the area to repaint.")
            with gpu():
                result = host.inpaint(source.image, mask_to_image(soft_mask), args, provenance={"source": "api"})
            return _generation_reply(result, source, (0, 0))

    @router.post("/outpaint", response_model=m.GenerationResponse)
    def outpaint(body: m.OutpaintRequest) -> dict[str, Any]:
        """Extend the image: `padding` per side, or an `aspect` ratio with an `anchor`; the original pixels
        are kept bit-exact and the new area is generated in overlapping tiles."""
        from segfill.outpaint.plan import outpaint_padding

        with _http_errors():
            args = m.to_outpaint_args(body)
            source = _Source(decode(body.image, "image"))
            size = source.image.size
            padding = outpaint_padding(size, args)
            canvas = padding.canvas_size(size)
            if canvas[0] * canvas[1] > max_image_pixels:
                raise InputError(
                    f"The result would be {canvas[0]}x{canvas[1]} pixels, more than this server produces "
                    f"({max_image_pixels} pixels); use less padding."
                )
            with gpu():
                result = host.outpaint(source.image, args, provenance={"source": "api"})
            return _generation_reply(result, source, tuple(padding.original_rect(size)[:2]))

    from segfill.api.detect import register_detect_routes

    register_detect_routes(router, host, gpu, decode, _http_errors)
    from segfill.api.interactive import register_interactive_routes

    register_interactive_routes(router, host, gpu)  # browser decoder files, embeddings, the lean click route
    app.include_router(router)
    app.openapi_schema = None  # the app may have served /openapi.json already; let /docs show the new routes
    return router


class _Source:
    """A decoded input image: its RGB pixels, its alpha (or None), and the image handed to the host (RGBA when
    there is alpha: SegFill's runner keeps it exactly; hosts that work in RGB get it back from
    :func:`_generation_reply`)."""

    def __init__(self, decoded: Image.Image) -> None:
        from segfill.masks import image_to_rgb
        from segfill.outpaint.alpha import alpha_of, is_high_bit_depth, rgba_image

        self.rgb = image_to_rgb(decoded)
        self.alpha = alpha_of(decoded)
        self.high_bit_depth = is_high_bit_depth(decoded)
        self.image = Image.fromarray(self.rgb) if self.alpha is None else rgba_image(self.rgb, self.alpha)


def _generation_reply(result: Any, source: _Source | None = None, placed_at: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    from segfill.outpaint.alpha import HIGH_BIT_DEPTH_NOTE, alpha_from_pixels

    if not result.images:
        raise SegFillError("The generation produced no image (was it interrupted?).")
    image = result.images[0]
    if source is not None and source.alpha is not None:
        if image.mode != "RGBA":  # a host that repainted in RGB: pixels it left alone keep their alpha
            image = alpha_from_pixels(image, source.rgb, source.alpha, placed_at)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    info = _jsonable(dict(result.info or {}))
    plan = info.pop("plan", {}) if isinstance(info.get("plan"), dict) else {}
    if source is not None and source.high_bit_depth:
        info["notes"] = [*info.get("notes", []), HIGH_BIT_DEPTH_NOTE]
    return {
        "image": encode_png(image),
        "infotext": result.infotext or "",
        "width": image.width,
        "height": image.height,
        "plan": plan,
        "info": info,
    }
