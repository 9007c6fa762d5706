"""Segment map: SAM's automatic mask generator at a bounded working resolution, and queries on the result.

The generator runs on a copy of the image whose long side is at most ``max_side`` (1024 by default, SAM's
own input size, so little is lost). The result is one int32 label image at that working resolution: larger
segments are painted first, smaller ones on top, 0 means "no segment". Queries take full-resolution
coordinates and return full-resolution masks computed one at a time, so an 8000-px photo never holds more than
the working-size labels plus the one mask being asked for.

Where torchvision's compiled ``nms`` cannot run (a CPU-only torchvision with a CUDA torch, a mismatched build:
"Could not run 'torchvision::nms' ..."), the generator gets a plain-torch :func:`batched_nms` instead.
"""

from __future__ import annotations

import colorsys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from segfill import defaults
from segfill.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from segfill.sam.loading import LoadedSam
    from segfill.sam.session import EmbeddingCache

__all__ = [
    "DEFAULT_MAX_SIDE",
    "SegmentInfo",
    "SegmentMap",
    "batched_nms_plain",
    "compute_segment_map",
    "ensure_working_nms",
    "nms_plain",
    "working_size",
]

DEFAULT_MAX_SIDE = defaults.SEGMENT_MAP_MAX_SIDE


@dataclass(frozen=True)
class SegmentInfo:
    """One segment; ``area`` and ``bbox`` (x0, y0, x1, y1, exclusive ends) are in working-resolution pixels."""

    id: int
    area: int
    bbox: tuple[int, int, int, int]
    predicted_iou: float = 0.0
    stability_score: float = 0.0


def working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) so the long side is at most ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


class SegmentMap:
    """Labelled segments of an image at working resolution, queried in full-resolution coordinates.

    ``labels`` is int32 ``(h, w)`` at working resolution (0 = no segment); ``full_size`` is the original
    ``(width, height)``. Masks returned by the queries are bool ``(H, W)`` at the full size.
    """

    def __init__(self, labels: np.ndarray, full_size: tuple[int, int], segments: Sequence[SegmentInfo] = ()) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise InputError(f"A label image is 2-D, not {labels.shape}.")
        self.labels = labels.astype(np.int32, copy=False)
        self.full_size = (int(full_size[0]), int(full_size[1]))
        if not segments:
            segments = _describe(self.labels)
        self.segments: list[SegmentInfo] = list(segments)

    @classmethod
    def from_masks(
        cls,
        masks: Iterable[np.ndarray],
        full_size: tuple[int, int] | None = None,
        predicted_ious: Sequence[float] | None = None,
        stability_scores: Sequence[float] | None = None,
    ) -> SegmentMap:
        """Paint bool masks (all the same working size) into a label image, larger ones first.

        Ids are 1..N in order of decreasing mask area, so the same masks always give the same ids.
        """
        masks = list(masks)
        if not masks:
            raise InputError("A segment map needs at least one mask, or use SegmentMap.empty().")
        shape = masks[0].shape
        areas = [int(np.count_nonzero(m)) for m in masks]
        order = sorted(range(len(masks)), key=lambda i: -areas[i])
        labels = np.zeros(shape, dtype=np.int32)
        for new_id, index in enumerate(order, start=1):
            labels[np.asarray(masks[index], dtype=bool)] = new_id
        ious = [float(predicted_ious[i]) if predicted_ious is not None else 0.0 for i in order]
        stabilities = [float(stability_scores[i]) if stability_scores is not None else 0.0 for i in order]
        full = full_size or (shape[1], shape[0])
        return cls(labels, full, _describe(labels, ious, stabilities))

    @classmethod
    def empty(cls, full_size: tuple[int, int], working: tuple[int, int] | None = None) -> SegmentMap:
        w, h = working or full_size
        return cls(np.zeros((h, w), dtype=np.int32), full_size, [])

    # -- geometry ----------------------------------------------------------------------------------------
    @property
    def working_size(self) -> tuple[int, int]:
        return int(self.labels.shape[1]), int(self.labels.shape[0])

    @property
    def ids(self) -> list[int]:
        return [segment.id for segment in self.segments]

    def __len__(self) -> int:
        return len(self.segments)

    def _to_working(self, x: float, y: float) -> tuple[int, int]:
        from segfill.sam.session import validate_points  # the same check and sentence as a click

        ((x, y, _label),) = validate_points([(x, y)], self.full_size)
        full_w, full_h = self.full_size
        work_w, work_h = self.working_size
        return min(int(x * work_w / full_w), work_w - 1), min(int(y * work_h / full_h), work_h - 1)

    # -- queries -----------------------------------------------------------------------------------------
    def segment_at(self, x: float, y: float) -> int | None:
        """Id of the segment under full-resolution pixel ``(x, y)``, or None where there is none."""
        wx, wy = self._to_working(float(x), float(y))
        label = int(self.labels[wy, wx])
        return label or None

    def mask_of(self, ids: Iterable[int] | int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Union of the given segments as a bool mask at full resolution (or at ``size``, (width, height))."""
        wanted = [int(ids)] if isinstance(ids, (int, np.integer)) else sorted({int(i) for i in ids})
        wanted = [i for i in wanted if i > 0]
        full_w, full_h = size or self.full_size
        if not wanted:
            return np.zeros((full_h, full_w), dtype=bool)
        small = np.isin(self.labels, wanted)
        if self.working_size == (full_w, full_h):
            return small
        # Linear upscaling of 0/255 then a threshold at half gives smooth edges instead of nearest's blocks.
        big = cv2.resize(small.view(np.uint8) * np.uint8(255), (full_w, full_h), interpolation=cv2.INTER_LINEAR)
        return big >= 128

    def segments_touched(self, points: Sequence[Sequence[float]], thickness: float = 1.0) -> set[int]:
        """Ids of the segments a scribble touches: ``points`` is a polyline in full-resolution pixels,
        ``thickness`` the stroke width in full-resolution pixels (a single point is a dot of that width)."""
        stroke = self._rasterize(points, thickness)
        touched = np.unique(self.labels[stroke])
        return {int(i) for i in touched if i > 0}

    def union_touched(self, points: Sequence[Sequence[float]], thickness: float = 1.0) -> np.ndarray:
        """Full-resolution union of every segment the scribble touches."""
        return self.mask_of(self.segments_touched(points, thickness))

    def _rasterize(self, points: Sequence[Sequence[float]], thickness: float) -> np.ndarray:
        if len(points) == 0:
            raise InputError("A scribble needs at least one point.")
        # A stroke may run past the image edge (the pointer left the canvas): clip it rather than refuse it.
        full_w, full_h = self.full_size
        work = np.array(
            [self._to_working(min(max(float(p[0]), 0.0), full_w - 1e-3), min(max(float(p[1]), 0.0), full_h - 1e-3)) for p in points],
            dtype=np.int32,
        )
        scale = self.working_size[0] / self.full_size[0]
        width = max(1, int(round(thickness * scale)))
        canvas = np.zeros(self.labels.shape, dtype=np.uint8)
        if len(work) == 1:
            cv2.circle(canvas, tuple(int(v) for v in work[0]), max(0, width // 2), 1, thickness=-1)
        else:
            cv2.polylines(canvas, [work.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=width)
        return canvas.astype(bool)

    # -- display -----------------------------------------------------------------------------------------
    def color_map(self) -> np.ndarray:
        """RGB uint8 at working resolution: every segment in its own colour (stable per id), black for none."""
        top = int(self.labels.max(initial=0))
        palette = label_palette(top)
        return palette[self.labels]


def label_palette(max_label: int) -> np.ndarray:
    """``(max_label + 1, 3)`` uint8 colours; 0 is black, id ``i`` always gets the same bright colour."""
    palette = np.zeros((max_label + 1, 3), dtype=np.uint8)
    golden = 0.618033988749895
    for label in range(1, max_label + 1):
        hue = (label * golden) % 1.0
        value = 0.95 if label % 2 else 0.75
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, value)
        palette[label] = (int(r * 255), int(g * 255), int(b * 255))
    return palette


def _describe(labels: np.ndarray, ious: Sequence[float] = (), stabilities: Sequence[float] = ()) -> list[SegmentInfo]:
    """Area and box of every label still visible (a segment painted over entirely disappears)."""
    from scipy import ndimage

    areas = np.bincount(labels.ravel(), minlength=1)
    segments = []
    for index, found in enumerate(ndimage.find_objects(labels)):
        if found is None:
            continue
        label = index + 1
        rows, cols = found
        segments.append(
            SegmentInfo(
                id=label,
                area=int(areas[label]),
                bbox=(int(cols.start), int(rows.start), int(cols.stop), int(rows.stop)),
                predicted_iou=float(ious[index]) if index < len(ious) else 0.0,
                stability_score=float(stabilities[index]) if index < len(stabilities) else 0.0,
            )
        )
    return segments


# -- NMS without torchvision's compiled ops --------------------------------------------------------------
def _box_iou(boxes: torch.Tensor) -> torch.Tensor:
    import torch

    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    top_left = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area[:, None] + area[None, :] - inter
    return inter / union.clamp(min=torch.finfo(inter.dtype).tiny)


def nms_plain(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS in plain torch with ``torchvision.ops.nms``'s contract: indices of kept boxes (x0, y0, x1, y1),
    by decreasing score; a box is dropped when its IoU with a kept, higher-scoring box is above the threshold."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    iou = _box_iou(boxes[order].float()).cpu().numpy() > iou_threshold
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[i + 1 :] |= iou[i, i + 1 :]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms_plain(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """``torchvision.ops.batched_nms`` without compiled ops: NMS within each category ``idxs``."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    # torchvision's trick: shift each category's boxes so boxes of different categories never overlap.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms_plain(boxes + offsets[:, None], scores, iou_threshold)


def _compiled_nms_works(device: Any) -> bool:
    import torch

    try:
        from torchvision.ops import boxes as tv_boxes

        probe = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.1]], device=device)
        tv_boxes.nms(probe, torch.tensor([1.0, 0.5], device=device), 0.5)
        return True
    except (RuntimeError, NotImplementedError, ImportError, AttributeError):
        return False


_NMS_PATCH_LOCK = threading.Lock()


def ensure_working_nms(device: Any = "cpu", generator_module: Any = None) -> bool:
    """Give a mask generator module (segment-anything's by default) a plain-torch ``batched_nms`` if
    torchvision's compiled one fails on ``device``. Returns True when the fallback is in use. The patch stays
    for the process: an op that cannot load now will not load later."""
    if generator_module is None:
        from segment_anything import automatic_mask_generator as generator_module

    if generator_module.batched_nms is batched_nms_plain:
        return True
    if _compiled_nms_works(device):
        return False
    with _NMS_PATCH_LOCK:
        generator_module.batched_nms = batched_nms_plain
    return True


def _generator_module(family: str) -> Any:
    """The module holding the automatic mask generator (and its ``batched_nms``) for a model family."""
    if family == "sam2":
        from sam2 import automatic_mask_generator as module  # type: ignore[import-not-found]

        return module
    if family == "sam_hq":
        try:
            from segment_anything_hq import automatic_mask_generator as module  # type: ignore[import-not-found]

            return module
        except ImportError:
            pass
    from segment_anything import automatic_mask_generator as module

    return module


# -- computing a map -------------------------------------------------------------------------------------
def compute_segment_map(
    model: LoadedSam,
    image: Any,
    max_side: int = DEFAULT_MAX_SIDE,
    points_per_side: int = defaults.SEGMENT_MAP_POINTS_PER_SIDE,
    points_per_batch: int = 16,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    box_nms_thresh: float = 0.7,
    min_mask_region_area: int = 0,
    cache: EmbeddingCache | None = None,
) -> SegmentMap:
    """Run SAM's automatic mask generator on ``image`` (RGB uint8 ``(H, W, 3)`` or PIL) at working resolution.

    ``points_per_batch`` bounds the generator's peak memory: each batch holds ``3 × points_per_batch`` float
    masks at working resolution (16 → about 200 MB at 1024×1024). With ``cache``, the working image's
    embedding is shared with :class:`~segfill.sam.session.SamSession` lookups of the same working image.
    """
    from segment_anything.utils.amg import rle_to_mask

    from segfill.sam.session import _as_rgb_uint8

    rgb = _as_rgb_uint8(image)
    if max_side < 64:
        raise InputError(f"The segment-map resolution must be at least 64 px, not {max_side}.")
    if points_per_side < 1 or points_per_batch < 1:
        raise InputError("The segment map needs at least one point per side and per batch.")
    full_size = (int(rgb.shape[1]), int(rgb.shape[0]))
    work_w, work_h = working_size(full_size, max_side)
    working = rgb if (work_w, work_h) == full_size else cv2.resize(rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)

    sam = model.model
    module = _generator_module(getattr(model, "family", "sam"))
    generator_class = module.SAM2AutomaticMaskGenerator if hasattr(module, "SAM2AutomaticMaskGenerator") else module.SamAutomaticMaskGenerator
    ensure_working_nms(getattr(sam, "device", "cpu"), module)
    generator = generator_class(
        sam,
        points_per_side=points_per_side,
        points_per_batch=points_per_batch,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
        box_nms_thresh=box_nms_thresh,
        min_mask_region_area=min_mask_region_area,
        # RLEs are decoded one at a time while painting, instead of N working-size masks at once.
        output_mode="uncompressed_rle",
    )
    if cache is not None:
        generator.predictor = _CachedPredictorAdapter(model, cache)
    records = generator.generate(working)
    del generator
    if not records:
        return SegmentMap.empty(full_size, (work_w, work_h))

    records.sort(key=lambda r: -int(r["area"]))
    labels = np.zeros((work_h, work_w), dtype=np.int32)
    for new_id, record in enumerate(records, start=1):
        labels[rle_to_mask(record["segmentation"])] = new_id
    ious = [float(r["predicted_iou"]) for r in records]
    stabilities = [float(r["stability_score"]) for r in records]
    return SegmentMap(labels, full_size, _describe(labels, ious, stabilities))


class _CachedPredictorAdapter:
    """A SamPredictor stand-in for the mask generator whose ``set_image`` goes through a SamSession (and so
    through the embedding cache); everything else is the session's predictor."""

    def __init__(self, model: LoadedSam, cache: EmbeddingCache) -> None:
        from segfill.sam.session import SamSession

        self._session = SamSession(model, cache)

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        self._session.set_image(image)

    def reset_image(self) -> None:
        self._session.reset_image()

    def reset_predictor(self) -> None:  # SAM 2's generator calls this name
        self._session.reset_image()

    @property
    def encoder_calls(self) -> int:
        return self._session.encoder_calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session.predictor, name)
