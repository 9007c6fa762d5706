"""Routes for clicks without the gradio round trip: the browser decoder's files and a lean click route.

Registered by :func:`segfill.api.routes.register_routes` under the same prefix (``/segfill/v1``):

- ``GET /decoder/{model_key}.onnx``: the loaded model's prompt encoder + mask decoder as ONNX
  (:mod:`segfill.sam.onnx_decoder`, exported once and cached per model content); 404 for another model or a
  family whose decoder does not export (SAM-HQ, SAM 2).
- ``GET /embedding/{embedding_key}/{digest}``: one image's embedding from the shared cache, raw little-endian
  bytes (``X-SegFill-Dtype`` float16 or float32, ``X-SegFill-Shape``, ``X-SegFill-Input-Size`` /
  ``X-SegFill-Original-Size`` as ``h,w``). float16 halves the transfer (2 MB for a ViT embedding) and is used
  when, for this model, decoding from the float16-rounded embedding gives the same masks as float32 on a probe
  (:func:`embedding_dtype`); otherwise float32.
- ``POST /click``: the lean server path for families whose decoder does not run in the browser (and for the
  browser before its decoder has loaded): points/box on a cached embedding -> the chosen candidate as a grey
  PNG at display size (or, with ``mask_format: "bits"``, bit-packed: what the tab asks for, no image codec on
  either side). No image upload, no gradio queue, no state: a decoder run and one small answer. The tab's
  state still records the click through its usual event, so history, exports and inpaint are what the server
  computes.
- ``GET /tasks/{channel}``, ``POST /tasks/{channel}/cancel``: the progress of the long job (loading, encoding,
  segment map) a page's own request waits for, and its Cancel (:mod:`segfill.tasks`; the channel id is that
  page's secret). Never behind the model lock: they answer while the job holds it.
- ``GET /web/{name}``: onnxruntime-web's files in ``vendor/onnxruntime-web`` (an allow-list of names; the wasm is
  fetched once and verified by :mod:`segfill.web_runtime`).

The digest in a URL is the image's content hash: it names an embedding, never a file path; model keys are
compared with the loaded model's, never joined into a path either.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections import OrderedDict
from typing import Any, Literal, Optional

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import Field

from segfill.api.models import ApiModel
from segfill.errors import SegFillError
from segfill.web_runtime import VENDOR_DIR

WEB_FILES = {
    "ort.wasm.min.js": "text/javascript",
    "ort-wasm-simd-threaded.mjs": "text/javascript",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
#: long side of the masks the click route and the browser decoder draw (the tab's display size)
DISPLAY_SIDE = 1024


MAX_POINTS = 200


class ClickRequest(ApiModel):
    embedding_key: str = Field(..., max_length=200, description="the model part of the embedding's cache key")
    digest: str = Field(..., max_length=64, description="the image's content hash")
    points: list[list[float]] = Field(default_factory=list, description="[[x, y, label], ...] in image pixels")
    box: Optional[list[float]] = Field(None, description="[x0, y0, x1, y1] in image pixels")  # noqa: UP045
    candidate: Optional[int] = Field(None, ge=0, le=3, description="candidate to draw; default SAM's best")  # noqa: UP045
    previous_points: Optional[list[list[float]]] = Field(  # noqa: UP045 - evaluated by pydantic 1
        None, description="the prompt this click extends (its points), to refine that answer")
    previous_candidate: Optional[int] = Field(None, ge=0, le=3)  # noqa: UP045
    mask_format: Literal["png", "bits"] = Field(
        "png", description="png: `mask` is a grey PNG data URL; bits: `mask_bits` is the mask bit-packed (numpy's "
                           "packbits, row-major, most significant bit first), base64: no image codec either side")


class _RecentLogits:
    """The last few prompts' low-res logits per image, so a refinement click (points appended) feeds the previous
    answer back as SAM's ``mask_input`` exactly like a kept :class:`~segfill.sam.session.SamSession` does."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: np.ndarray) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_fp16_decisions: dict[str, bool] = {}
_fp16_lock = threading.Lock()


def embedding_dtype(loaded: Any, features: Any) -> str:
    """"float16" when decoding from the float16-rounded embedding gives this model the same masks as float32
    (SAM's three candidates for five probe points, thresholded low-res logits, <= 0.1 % pixels differing, score
    change < 0.01), else "float32". Decided once per model and precision (a few decoder runs)."""
    from segfill.sam.session import embedding_key

    key = embedding_key(loaded)
    with _fp16_lock:
        decided = _fp16_decisions.get(key)
    if decided is None:
        decided = _probe_fp16(loaded, features)
        with _fp16_lock:
            _fp16_decisions[key] = decided
    return "float16" if decided else "float32"


def _probe_fp16(loaded: Any, features: Any) -> bool:
    import torch

    model = loaded.model
    rounded = features.to(torch.float16).to(features.dtype)
    side = float(getattr(loaded, "image_size", 1024) or 1024)
    probes = torch.tensor([[0.5, 0.5], [0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) * side
    with torch.inference_mode():
        results = []
        for embedding in (features, rounded):
            coords = probes[:, None, :].to(embedding.device)
            labels = torch.ones((len(probes), 1), dtype=torch.int, device=embedding.device)
            sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            logits, ious = model.mask_decoder(image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
                                              sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                              multimask_output=True)
            results.append((logits > 0, ious))
    (masks_a, ious_a), (masks_b, ious_b) = results
    differing = float((masks_a != masks_b).float().mean())
    return differing <= 0.001 and float((ious_a - ious_b).abs().max()) < 0.01


def _grey_png_data_url(mask: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.view(np.uint8) * np.uint8(255), "L").save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def register_interactive_routes(router: APIRouter, host: Any, gpu: Any) -> None:
    """Add the routes above to ``router`` (``gpu()`` is the routes' model-work lock context)."""
    recent = _RecentLogits()

    def current_model(embedding_key: str | None = None, model_key: str | None = None) -> Any:
        from segfill.sam.session import embedding_key as key_of

        loaded = host.sam.loaded
        if loaded is None or not host.sam.is_current(loaded):
            raise HTTPException(404, "No SAM model is loaded at the moment; click on the image to load it again.")
        if embedding_key is not None and key_of(loaded) != embedding_key:
            raise HTTPException(404, "That image was encoded with another SAM model than the one loaded now.")
        if model_key is not None and loaded.model_key != model_key:
            raise HTTPException(404, "That SAM model is not the one loaded now.")
        return loaded

    @router.get("/decoder/{model_key}.onnx", include_in_schema=False)
    def decoder(model_key: str) -> Any:
        from segfill.sam import onnx_decoder

        loaded = current_model(model_key=model_key)
        if not onnx_decoder.exportable(loaded):
            raise HTTPException(404, f"The {loaded.label} decoder does not run in the browser.")
        try:
            with gpu():
                path = onnx_decoder.export_decoder(loaded)
        except SegFillError as error:
            raise HTTPException(503, str(error)) from None
        return FileResponse(path, media_type="application/octet-stream",
                            headers={"Cache-Control": "private, max-age=31536000, immutable"})

    @router.get("/embedding/{embedding_key}/{digest}", include_in_schema=False)
    def embedding(embedding_key: str, digest: str) -> Response:
        loaded = current_model(embedding_key=embedding_key)
        entry = host.embeddings.get((embedding_key, digest))
        if entry is None or "features" not in entry.tensors:
            raise HTTPException(404, "That image's embedding is no longer cached; click on the image to compute it.")
        features = entry.tensors["features"]
        with gpu():
            dtype = embedding_dtype(loaded, features.to(next(loaded.model.parameters()).device))
        array = features.float().cpu().numpy().astype(np.float16 if dtype == "float16" else np.float32)
        headers = {
            "X-SegFill-Dtype": dtype,
            "X-SegFill-Shape": ",".join(str(v) for v in array.shape),
            "X-SegFill-Input-Size": ",".join(str(int(v)) for v in entry.input_size),
            "X-SegFill-Original-Size": ",".join(str(int(v)) for v in entry.original_size),
            "Cache-Control": "private, max-age=3600",
        }
        return Response(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes(),
                        media_type="application/octet-stream", headers=headers)

    @router.post("/click")
    def click(body: ClickRequest) -> dict[str, Any]:
        from segfill.errors import InputError
        from segfill.sam.session import SamSession, validate_box, validate_points
        from segfill.ui.state import scaled_size

        started = time.perf_counter()
        loaded = current_model(embedding_key=body.embedding_key)
        session = SamSession(loaded, host.embeddings)
        image_key = (body.embedding_key, body.digest)
        if not session.set_cached(image_key):
            raise HTTPException(404, "That image's embedding is no longer cached; click on the image to compute it.")
        try:
            if len(body.points) > MAX_POINTS or len(body.previous_points or ()) > MAX_POINTS:
                raise InputError(f"A click carries at most {MAX_POINTS} points.")
            size = session.image_size
            points = validate_points(body.points, size)
            box = validate_box(body.box, size)
            mask_input = None
            if body.previous_points is not None:
                before = validate_points(body.previous_points, size)
                if len(before) < len(points) and points[: len(before)] == before:
                    previous = recent.get((image_key, before, box))
                    if previous is not None:
                        logits, best = previous
                        index = body.previous_candidate if body.previous_candidate is not None else best
                        if 0 <= index < len(logits):
                            mask_input = logits[index][None]
            with gpu():
                prediction = session.predict(points=points, box=box, mask_input=mask_input)
            count = len(prediction)
            chosen = prediction.best_index if body.candidate is None else body.candidate
            if not 0 <= chosen < count:
                raise InputError(f"Candidate {chosen} does not exist; choose 0 to {count - 1}.")
            recent.put((image_key, points, box), (prediction.low_res_logits, prediction.best_index))
            width, height = scaled_size(prediction.size, DISPLAY_SIDE)
            mask = prediction.mask_at(chosen, (width, height))
        except SegFillError as error:
            from segfill.api.routes import status_for

            raise HTTPException(status_for(error), str(error)) from None
        mask = np.asarray(mask, dtype=bool)
        encoded = ({"mask_bits": base64.b64encode(np.packbits(mask, axis=None).tobytes()).decode("ascii")}
                   if body.mask_format == "bits" else {"mask": _grey_png_data_url(mask)})
        return {
            **encoded,
            "width": width,
            "height": height,
            "scores": [round(float(v), 4) for v in prediction.scores],
            "candidate": int(chosen),
            "best": int(prediction.best_index),
            "area": int(np.count_nonzero(mask)),
            "server_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    @router.get("/tasks/{channel}", include_in_schema=False)
    def task_status(channel: str) -> dict[str, Any]:
        from segfill.tasks import board_of

        if len(channel) > 64:
            raise HTTPException(404, "Unknown progress channel.")
        return board_of(host).status(channel)

    @router.post("/tasks/{channel}/cancel", include_in_schema=False)
    def task_cancel(channel: str) -> dict[str, Any]:
        from segfill.tasks import board_of

        if len(channel) > 64:
            raise HTTPException(404, "Unknown progress channel.")
        return {"cancelled": board_of(host).cancel(channel)}

    @router.get("/web/{name}", include_in_schema=False)
    def web_file(name: str) -> Any:
        media_type = WEB_FILES.get(name)
        if media_type is None or not (VENDOR_DIR / name).is_file():
            raise HTTPException(404, "Unknown file.")
        return FileResponse(VENDOR_DIR / name, media_type=media_type,
                            headers={"Cache-Control": "public, max-age=86400"})
