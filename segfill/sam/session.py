"""Click-to-mask sessions: segment-anything's ``SamPredictor`` contract, plus an embedding cache and history.

- :class:`EmbeddingCache` keeps image embeddings keyed by (model, image content), least recently used
  evicted first, bounded by bytes. One cache is created by the host (UI, API, CLI) and shared by all sessions,
  so switching back to an earlier image costs no encoder run.
- :class:`SamSession` is one user's view of one image: ``set_image`` once (free on a cache hit), then many
  cheap ``predict`` calls. Internally it drives a real ``SamPredictor``; the cache only fills in the
  predictor's ``features`` / ``input_size`` / ``original_size``, so SAM's own transforms are used unchanged.
- Undo/redo of selections is :class:`segfill.history.UndoHistory` (the tab keeps whole edits in one).

Coordinates are image pixels ``(x, y)``, origin top-left, in the frame of the image given to ``set_image``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from segfill import defaults
from segfill.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from segfill.sam.loading import LoadedSam

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "CacheStats",
    "CachedEmbedding",
    "EmbeddingCache",
    "Point",
    "MaskUpscale",
    "Prediction",
    "Sam2Predictor",
    "SamSession",
    "image_digest",
    "validate_box",
    "validate_points",
]

DEFAULT_CACHE_BYTES = defaults.EMBEDDING_CACHE_BYTES

Point = tuple[float, float, int]  # (x, y, label) with label 1 = include, 0 = exclude
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)

# Predictor attributes that make up "the image is set". SAM-HQ predictors also keep intermediate features.
_FEATURE_ATTRIBUTES = ("features", "interm_features")


def image_digest(image: np.ndarray) -> str:
    """Content hash of an array (shape, dtype and bytes): equal images give equal digests."""
    array = np.ascontiguousarray(image)
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"{array.shape}|{array.dtype.str}".encode())
    hasher.update(memoryview(array).cast("B"))
    return hasher.hexdigest()


def _tensor_bytes(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return int(value.element_size() * value.nelement())


_CPU = "cpu"


def _to_device(value: Any, device: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    return value if value.device == device else value.to(device)


@dataclass(frozen=True)
class CachedEmbedding:
    """What ``SamPredictor.set_image`` computes: the encoder output and the two sizes SAM's transforms need."""

    # predictor attribute name -> tensor (or list of tensors), kept on the CPU: a few MB per image, copied to the
    # model's device on a hit, so cached embeddings never hold GPU memory while SAM is offloaded for a generation
    tensors: dict[str, Any]
    input_size: tuple[int, int]  # (h, w) after ResizeLongestSide
    original_size: tuple[int, int]  # (h, w) of the image given to set_image

    @property
    def nbytes(self) -> int:
        return sum(_tensor_bytes(value) for value in self.tensors.values())


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0
    max_bytes: int = 0


class EmbeddingCache:
    """Thread-safe LRU cache of image embeddings, bounded by the bytes of the tensors it holds.

    Keys are ``(model_key, image_digest)``. Tensors stay on the device they were computed on (an embedding on
    a GPU is counted the same as one in RAM); a session moves them if the model has moved since. An entry
    larger than ``max_bytes`` is not stored; ``max_bytes=0`` disables caching.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise InputError(f"The embedding cache size must be 0 or more bytes, not {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, CachedEmbedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: Hashable) -> CachedEmbedding | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry

    def put(self, key: Hashable, entry: CachedEmbedding) -> None:
        size = entry.nbytes
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if size > self.max_bytes:
                return
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self._evictions += 1

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def drop_model(self, model_key: str) -> int:
        """Forget every embedding of one model (e.g. when it is unloaded); returns how many were dropped."""
        with self._lock:
            doomed = [key for key in self._entries if isinstance(key, tuple) and key
                      and (key[0] == model_key or str(key[0]).startswith(f"{model_key}@"))]
            for key in doomed:
                self._bytes -= self._entries.pop(key).nbytes
            return len(doomed)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions, len(self._entries), self._bytes, self.max_bytes)


@dataclass(frozen=True)
class MaskUpscale:
    """How SAM turns its 256×256 logits into a mask at the image's size, without the model (an undo history
    must not keep a model alive). ``kind`` "sam": segment-anything's ``postprocess_masks`` (bilinear to the
    encoder's square input, crop the image's part, bilinear to the original size); "sam2": SAM 2's (bilinear
    straight to the original size). Sizes are ``(h, w)``. Exactly the model's own arithmetic, one mask at a time."""

    kind: str
    model_size: int
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    threshold: float = 0.0

    def logits_to_mask(self, logits: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """bool ``(h, w)`` from one ``(256, 256)`` logit map, at ``size`` (h, w; default the original size)."""
        import torch
        import torch.nn.functional as F

        target = tuple(size or self.original_size)
        tensor = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))[None, None]
        with torch.no_grad():
            if self.kind == "sam":
                tensor = F.interpolate(tensor, (self.model_size, self.model_size), mode="bilinear", align_corners=False)
                tensor = tensor[..., : self.input_size[0], : self.input_size[1]]
            tensor = F.interpolate(tensor, target, mode="bilinear", align_corners=False)
            return (tensor[0, 0] > self.threshold).numpy()


class Prediction:
    """SAM's answer to one prompt.

    ``scores`` are SAM's own quality estimate per candidate; ``low_res_logits`` ``(N, 256, 256)`` for official
    models, fed back as ``mask_input`` when the user refines the same selection. N is 3 for multimask output,
    else 1. Masks are bool at the size of the image given to ``set_image``:

    - :meth:`mask` ``(i)``: candidate ``i`` at full size; for an image larger than the model's input it is
      computed on demand from the logits (the last one asked for is kept), never all candidates at once;
    - :meth:`preview` ``(i)`` / ``preview_masks``: the candidates at ``preview_size`` (the encoder's input
      resolution, at most 1024 px a side, or the full size for smaller images): what a click shows first;
    - ``masks``: all candidates at full size, stacked (N full-size masks: avoid it for huge images).
    """

    def __init__(self, masks: np.ndarray | None = None, scores: Any = (), low_res_logits: Any = None, *,
                 upscale: MaskUpscale | None = None, full_logits: np.ndarray | None = None) -> None:
        if masks is None and upscale is None:
            raise ValueError("a Prediction needs its masks, or how to make them from its logits")
        self._masks = None if masks is None else np.asarray(masks, dtype=bool)
        self.scores = np.asarray(scores, dtype=np.float32)
        self.low_res_logits = np.asarray(low_res_logits) if low_res_logits is not None else None
        self.upscale = upscale
        # SAM 2 hands back clamped logits for feeding back; its masks come from the unclamped ones
        self._full_logits = full_logits if full_logits is not None else self.low_res_logits
        self.best_index = int(np.argmax(self.scores))
        self._last_full: tuple[int, np.ndarray] | None = None

    @property
    def is_lazy(self) -> bool:
        """True when masks are made on demand from the logits (every prediction a SamSession makes)."""
        return self._masks is None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the full-size masks."""
        if self._masks is not None:
            return int(self._masks.shape[2]), int(self._masks.shape[1])
        return int(self.upscale.original_size[1]), int(self.upscale.original_size[0])

    @property
    def preview_size(self) -> tuple[int, int]:
        """The encoder's input resolution for this image (at most its size): the size of :meth:`preview`."""
        if self._masks is not None:
            return self.size
        height, width = self.upscale.input_size
        full_w, full_h = self.size
        return (int(width), int(height)) if width * height < full_w * full_h else (full_w, full_h)

    def preview(self, index: int) -> np.ndarray:
        return self.mask_at(index, self.preview_size)

    @property
    def preview_masks(self) -> np.ndarray:
        return np.stack([self.preview(i) for i in range(len(self))])

    def mask(self, index: int) -> np.ndarray:
        """Candidate ``index`` at full size (bool ``(H, W)``)."""
        index = int(index)
        if self._masks is not None:
            return self._masks[index]
        if self._last_full is not None and self._last_full[0] == index:
            return self._last_full[1]
        self._last_full = None  # free the previous one before making the next
        full = self.upscale.logits_to_mask(self._full_logits[index])
        self._last_full = (index, full)
        return full

    def mask_at(self, index: int, size: tuple[int, int]) -> np.ndarray:
        """Candidate ``index`` at ``size`` (width, height), e.g. the display size, made from the logits by SAM's
        own upscaling when the full-size masks are made on demand (no full-size mask in between)."""
        width, height = int(size[0]), int(size[1])
        if (width, height) == self.size:
            return self.mask(index)
        if self._masks is None:
            return self.upscale.logits_to_mask(self._full_logits[int(index)], (height, width))
        return _resize_bool_mask(self._masks[int(index)], (width, height))

    @property
    def masks(self) -> np.ndarray:
        if self._masks is not None:
            return self._masks
        return np.stack([self.upscale.logits_to_mask(self._full_logits[i]) for i in range(len(self))])

    @property
    def best_mask(self) -> np.ndarray:
        return self.mask(self.best_index)

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def _resize_bool_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask at ``size`` (width, height): area average when shrinking, linear when enlarging, then >= 50 %."""
    import cv2

    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    shrinking = size[0] < mask.shape[1]
    grey = cv2.resize(mask.view(np.uint8) * np.uint8(255), tuple(size),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return grey >= 128


@dataclass(frozen=True)
class _Prompt:
    image_key: tuple[str, str]
    points: tuple[Point, ...]
    box: Box | None

    def extends(self, previous: _Prompt) -> bool:
        """True when this prompt is ``previous`` with more points appended (same image, same box)."""
        n = len(previous.points)
        return (
            self.image_key == previous.image_key
            and self.box == previous.box
            and len(self.points) > n
            and self.points[:n] == previous.points
        )


def _make_predictor(loaded: LoadedSam) -> Any:
    family = getattr(loaded, "family", "sam")
    if family == "sam2":
        return Sam2Predictor(loaded.model)
    if family == "sam_hq":
        try:
            from segment_anything_hq import SamPredictor as HQPredictor  # type: ignore[import-not-found]

            return HQPredictor(loaded.model)
        except ImportError:
            pass  # a SAM-HQ model built on segment_anything's Sam interface works with the plain predictor
    from segment_anything import SamPredictor

    return SamPredictor(loaded.model)


def embedding_key(loaded: Any) -> str:
    """The model part of an embedding cache key: ``model_key`` plus the encoder precision in force."""
    key = getattr(loaded, "embedding_key", None)
    return str(key if key is not None else loaded.model_key)


def encode_image(predictor: Any, loaded: Any, rgb: np.ndarray, progress: Any = None, should_stop: Any = None) -> None:
    """``predictor.set_image(rgb)`` with the model's encoder precision (bf16 autocast where chosen,
    ``segfill.sam.precision``); the features are float32 afterwards whatever the encoder ran in.
    ``progress(done_blocks, total_blocks, message)`` / ``should_stop()``: see :mod:`segfill.sam.encoding`."""
    from segfill.sam.encoding import encoding_listener
    from segfill.sam.precision import encoder_autocast, model_precision, to_float32

    precision = model_precision(loaded)
    with encoding_listener(loaded, progress, should_stop), encoder_autocast(precision, getattr(loaded, "device", "cpu")):
        predictor.set_image(rgb)
    if precision == "fp32":
        return
    if isinstance(predictor, Sam2Predictor):
        predictor.inner._features = to_float32(predictor.inner._features)
        return
    for name in _FEATURE_ATTRIBUTES:
        if getattr(predictor, name, None) is not None:
            setattr(predictor, name, to_float32(getattr(predictor, name)))


def _capture(predictor: Any) -> CachedEmbedding:
    if isinstance(predictor, Sam2Predictor):
        return predictor.capture()
    tensors = {name: _to_device(getattr(predictor, name), _CPU) for name in _FEATURE_ATTRIBUTES
               if getattr(predictor, name, None) is not None}
    return CachedEmbedding(tensors, tuple(predictor.input_size), tuple(predictor.original_size))


def _install(predictor: Any, entry: CachedEmbedding) -> None:
    if isinstance(predictor, Sam2Predictor):
        predictor.install(entry)
        return
    predictor.reset_image()
    device = predictor.device
    for name, value in entry.tensors.items():
        setattr(predictor, name, _to_device(value, device))
    predictor.input_size = entry.input_size
    predictor.original_size = entry.original_size
    predictor.is_image_set = True


class Sam2Predictor:
    """SAM 2's ``SAM2ImagePredictor`` behind ``SamPredictor``'s names (``is_image_set``, ``reset_image``, bool
    masks), so :class:`SamSession`, the embedding cache and the mask generator treat both families alike.
    Anything else is the wrapped predictor's (``inner``)."""

    def __init__(self, model: Any) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor  # type: ignore[import-not-found]

        self.inner = SAM2ImagePredictor(model)
        self.model = model

    @property
    def is_image_set(self) -> bool:
        return bool(self.inner._is_image_set)

    @property
    def device(self) -> Any:
        return self.inner.device

    def set_image(self, image: np.ndarray) -> None:
        self.inner.set_image(image)

    def reset_image(self) -> None:
        self.inner.reset_predictor()

    def reset_predictor(self) -> None:
        self.inner.reset_predictor()

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        masks, scores, low_res = self.inner.predict(
            point_coords=point_coords,
            point_labels=point_labels,
            box=box,
            mask_input=mask_input,
            multimask_output=multimask_output,
        )
        return masks > 0.5, scores, low_res  # SAM 2 returns thresholded masks as float 0/1

    def predict_low_res(self, **prompt: Any):
        """``predict`` without upscaling its masks; also returns the unclamped logits SAM 2 makes its masks from:
        (low-res masks, scores, low_res (clamped, for feeding back), unclamped logits)."""
        transforms = self.inner._transforms
        captured: dict[str, Any] = {}

        def keep_low_res(masks: Any, orig_hw: Any) -> Any:
            captured["logits"] = masks.detach()
            return masks

        transforms.postprocess_masks = keep_low_res
        try:
            masks, scores, low_res = self.predict(**prompt)
        finally:
            del transforms.postprocess_masks  # back to the class's method
        logits = captured["logits"]
        logits = logits[0] if logits.dim() == 4 else logits
        return masks, scores, low_res, logits.float().cpu().numpy()

    def capture(self) -> CachedEmbedding:
        inner = self.inner
        resolution = int(getattr(self.model, "image_size", 1024))
        return CachedEmbedding({"_features": _to_device(inner._features, _CPU)}, (resolution, resolution),
                               tuple(inner._orig_hw[0]))

    def install(self, entry: CachedEmbedding) -> None:
        inner = self.inner
        inner.reset_predictor()
        inner._features = _to_device(entry.tensors["_features"], inner.device)
        inner._orig_hw = [tuple(entry.original_size)]
        inner._is_batch = False
        inner._is_image_set = True

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


class SamSession:
    """One user's click-to-mask session on one image at a time; SamPredictor's contract, cached.

    >>> session = SamSession(loaded_sam, cache=shared_cache)
    >>> session.set_image(rgb)                                  # encoder runs once per (image, model)
    >>> first = session.predict(points=[(120, 80, 1)])          # 3 candidates, pick one with choose()
    >>> better = session.predict(points=[(120, 80, 1), (300, 90, 0)])  # previous logits fed back

    Not thread-safe: one session per user. The :class:`EmbeddingCache` may be shared across threads.
    """

    def __init__(self, model: LoadedSam, cache: EmbeddingCache | None = None) -> None:
        self.model = model
        self.cache = cache
        self.predictor = _make_predictor(model)
        self.encoder_calls = 0
        self._image_key: tuple[str, str] | None = None
        self._image_size: tuple[int, int] | None = None  # (width, height)
        self._last_prompt: _Prompt | None = None
        self._last_prediction: Prediction | None = None
        self._chosen_index: int | None = None

    # -- image -------------------------------------------------------------------------------------------
    @property
    def is_image_set(self) -> bool:
        return bool(self.predictor.is_image_set)

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the current image, or None."""
        return self._image_size

    @property
    def image_key(self) -> tuple[str, str] | None:
        """``(model_key, image_digest)`` of the current image, the key used in the embedding cache."""
        return self._image_key

    def set_image(self, image: Any, progress: Any = None, should_stop: Any = None) -> None:
        """Make ``image`` (RGB ``uint8 (H, W, 3)``, or a PIL image) the current image.

        ``progress(done, total, message)`` hears about every encoder block and ``should_stop()`` can cancel
        the encoding between blocks (:class:`~segfill.errors.Cancelled`; the session then has no image).

        The encoder runs only when this (image content, model) pair is neither current nor in the cache.
        Setting the current image again changes nothing (the last prompt can still be refined); another image
        forgets the last prompt, so logits are never fed back across images.
        """
        rgb = _as_rgb_uint8(image)
        key = (embedding_key(self.model), image_digest(rgb))
        if key == self._image_key and self.is_image_set:
            return
        self._forget_prompt()
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            _install(self.predictor, entry)
        else:
            self._image_key = self._image_size = None
            encode_image(self.predictor, self.model, rgb, progress, should_stop)
            self.encoder_calls += 1
            if self.cache is not None:
                self.cache.put(key, _capture(self.predictor))
        self._image_key = key
        self._image_size = (int(rgb.shape[1]), int(rgb.shape[0]))

    def set_cached(self, image_key: tuple[str, str]) -> bool:
        """Make the cached embedding ``image_key`` (``(embedding key, image digest)``) current without the image
        itself (the lean click route knows only the key); False when it is not in the cache or belongs to
        another model or precision."""
        if self.cache is None or image_key[0] != embedding_key(self.model):
            return False
        if image_key == self._image_key and self.is_image_set:
            return True
        entry = self.cache.get(image_key)
        if entry is None:
            return False
        self._forget_prompt()
        _install(self.predictor, entry)
        self._image_key = tuple(image_key)
        self._image_size = (int(entry.original_size[1]), int(entry.original_size[0]))
        return True

    def reset_image(self) -> None:
        self.predictor.reset_image()
        self._image_key = None
        self._image_size = None
        self._forget_prompt()

    def _forget_prompt(self) -> None:
        self._last_prompt = None
        self._last_prediction = None
        self._chosen_index = None

    # -- prompts -----------------------------------------------------------------------------------------
    def predict(
        self,
        points: Sequence[Sequence[float]] = (),
        box: Sequence[float] | None = None,
        multimask: bool | None = None,
        use_previous_logits: bool = True,
        mask_input: np.ndarray | None = None,
    ) -> Prediction:
        """Masks for ``points`` (``(x, y, label)``, label 1 = include, 0 = exclude) and/or ``box`` (x0, y0, x1, y1).

        ``multimask=None`` asks SAM for 3 candidates when the prompt is ambiguous (a single point, no box) and
        for one mask otherwise; pass True/False to force. With ``use_previous_logits`` the low-res logits of
        the candidate last chosen (best by default) are fed back as ``mask_input`` when this prompt is the
        previous one with points appended, as in SAM's interactive tool.
        """
        if not self.is_image_set or self._image_size is None:
            raise InputError("Set an image before asking for a mask.")
        prompt = _Prompt(self._image_key, validate_points(points, self._image_size), validate_box(box, self._image_size))
        if not prompt.points and prompt.box is None:
            raise InputError("Give at least one point or a box to select something.")
        if multimask is None:
            multimask = len(prompt.points) == 1 and prompt.box is None

        previous = self._last_prompt
        if mask_input is not None:  # given by the caller (a stateless route that kept the previous answer)
            mask_input = np.asarray(mask_input, dtype=np.float32).reshape(1, *np.shape(mask_input)[-2:])
        elif use_previous_logits and previous is not None and self._last_prediction is not None and prompt.extends(previous):
            index = self._chosen_index if self._chosen_index is not None else self._last_prediction.best_index
            mask_input = self._last_prediction.low_res_logits[index][None, :, :]

        point_coords = point_labels = None
        if prompt.points:
            point_coords = np.array([(x, y) for x, y, _ in prompt.points], dtype=np.float32)
            point_labels = np.array([label for _, _, label in prompt.points], dtype=np.int32)
        box_array = None if prompt.box is None else np.array(prompt.box, dtype=np.float32)
        prediction = self._predict(point_coords, point_labels, box_array, mask_input, bool(multimask))
        self._last_prompt = prompt
        self._last_prediction = prediction
        self._chosen_index = None
        return prediction

    def _predict(self, point_coords, point_labels, box, mask_input, multimask: bool) -> Prediction:
        """One decoder run; its masks stay SAM's low-res logits until something asks for a mask (:class:`Prediction`),
        so a click costs the decoder plus the one mask drawn, not three full-size upscalings (for an 8000×6000 photo
        those cost more than the decoder; for a 1024-px one about as much)."""
        low_res, scores, logits = self._decode(point_coords=point_coords, point_labels=point_labels, box=box,
                                               mask_input=mask_input, multimask_output=multimask)
        return Prediction(scores=scores, low_res_logits=low_res, upscale=self._mask_upscale(), full_logits=logits)

    def _mask_upscale(self) -> MaskUpscale:
        predictor = self.predictor
        width, height = self._image_size
        model_size = int(getattr(self.model, "image_size", 1024) or 1024)
        threshold = float(getattr(predictor, "mask_threshold", getattr(getattr(predictor, "model", None), "mask_threshold", 0.0)))
        if isinstance(predictor, Sam2Predictor):
            scale = min(1.0, model_size / max(width, height))
            preview_hw = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
            return MaskUpscale("sam2", model_size, preview_hw, (height, width), threshold)
        return MaskUpscale("sam", model_size, tuple(predictor.input_size), tuple(predictor.original_size), threshold)

    def _decode(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        """(low-res logits fed back on refinement, scores, low-res logits the masks are made from) for a prompt in
        image pixels: SamPredictor.predict's arithmetic without its upscaling (SAM 2: its own predict, upscaling
        intercepted; it clamps the logits it hands back, not those it makes masks from)."""
        import torch

        predictor = self.predictor
        if isinstance(predictor, Sam2Predictor):
            _masks, scores, low_res, logits = predictor.predict_low_res(
                point_coords=point_coords, point_labels=point_labels, box=box, mask_input=mask_input,
                multimask_output=multimask_output)
            return low_res, scores, logits
        device = predictor.device
        points = boxes = masks = None
        if point_coords is not None:
            coords = predictor.transform.apply_coords(point_coords, predictor.original_size)
            points = (torch.as_tensor(coords, dtype=torch.float, device=device)[None, :, :],
                      torch.as_tensor(point_labels, dtype=torch.int, device=device)[None, :])
        if box is not None:
            boxes = torch.as_tensor(predictor.transform.apply_boxes(box, predictor.original_size), dtype=torch.float,
                                    device=device)[None, :]
        if mask_input is not None:
            masks = torch.as_tensor(mask_input, dtype=torch.float, device=device)[None, :, :, :]
        model = predictor.model
        extra = {}
        if getattr(predictor, "interm_features", None) is not None:  # SAM-HQ, as its SamPredictor calls it
            extra = {"hq_token_only": False, "interm_embeddings": predictor.interm_features}
        with torch.no_grad():
            sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
            low_res, iou = model.mask_decoder(
                image_embeddings=predictor.features,
                image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask_output,
                **extra,
            )
        logits = low_res[0].detach().float().cpu().numpy()
        return logits, iou[0].detach().float().cpu().numpy(), logits

    @property
    def last_prediction(self) -> Prediction | None:
        return self._last_prediction

    def choose(self, index: int) -> np.ndarray:
        """Pick candidate ``index`` of the last prediction (see :meth:`pick`) and return it at full size."""
        self.pick(index)
        return self._last_prediction.mask(self._chosen_index)

    def pick(self, index: int) -> None:
        """Pick candidate ``index`` of the last prediction; its logits are the ones fed back on refinement.
        Makes no mask (a huge image's full-size candidate is made only when something asks for it)."""
        prediction = self._last_prediction
        if prediction is None:
            raise InputError("There is no prediction to choose a candidate from; click on the image first.")
        if not 0 <= int(index) < len(prediction):
            raise InputError(f"Candidate {index} does not exist; choose 0 to {len(prediction) - 1}.")
        self._chosen_index = int(index)


def validate_points(points: Sequence[Sequence[float]], image_size: tuple[int, int]) -> tuple[Point, ...]:
    """``(x, y)`` or ``(x, y, label)`` points checked against ``image_size`` (width, height) -> ``(x, y, label)``.

    A point must lie on a pixel: ``0 <= x < width`` and ``0 <= y < height``; labels are 1 (include) or 0.
    """
    width, height = image_size
    checked: list[Point] = []
    for point in points:
        if len(point) == 2:
            x, y, label = point[0], point[1], 1
        elif len(point) == 3:
            x, y, label = point
        else:
            raise InputError(f"A point is (x, y) or (x, y, label), not {tuple(point)!r}.")
        x, y = float(x), float(y)
        if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < width and 0 <= y < height):
            raise InputError(f"Point ({_fmt(x)}, {_fmt(y)}) lies outside the {width}×{height} image.")
        if label not in (0, 1, True, False):
            raise InputError(f"Point labels are 1 (include) or 0 (exclude), not {label!r}.")
        checked.append((x, y, int(label)))
    return tuple(checked)


def validate_box(box: Sequence[float] | None, image_size: tuple[int, int]) -> Box | None:
    """A box ``(x0, y0, x1, y1)`` with its corners sorted; None stays None.

    The same rule as for points: a box must lie on the image. Its corners are pixel edges, so every corner
    must satisfy ``0 <= x <= width`` and ``0 <= y <= height`` (a box may end at the far edge); a box reaching
    outside the image, or less than a pixel wide or high, is an :class:`InputError`.
    """
    if box is None:
        return None
    width, height = image_size
    if len(box) != 4:
        raise InputError(f"A box is (x0, y0, x1, y1), not {tuple(box)!r}.")
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InputError("Box coordinates must be finite numbers.")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise InputError(f"Box ({_fmt(x0)}, {_fmt(y0)}, {_fmt(x1)}, {_fmt(y1)}) lies outside the {width}×{height} "
                         f"image; its corners must lie within 0..{width} and 0..{height}.")
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InputError("The box is empty; drag a box at least one pixel wide and high.")
    return (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _as_rgb_uint8(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        from segfill.masks import image_to_rgb

        return image_to_rgb(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"Expected an RGB image as uint8 (H, W, 3), got {image.dtype} {image.shape}.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError("The image is empty.")
    return image
