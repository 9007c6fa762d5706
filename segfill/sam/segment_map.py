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
from segfill.progress import ProgressCallback, ShouldStop, check, report

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
    points_per_batch: int = defaults.SEGMENT_MAP_POINTS_PER_BATCH,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    box_nms_thresh: float = 0.7,
    min_mask_region_area: int = 0,
    cache: EmbeddingCache | None = None,
    progress: ProgressCallback | None = None,
    should_stop: ShouldStop | None = None,
    stability_score_offset: float = 1.0,
) -> SegmentMap:
    """SAM's automatic mask generation on ``image`` (RGB uint8 ``(H, W, 3)`` or PIL) at working resolution.

    The same grid of ``points_per_side``² single-point prompts, three candidates each, the same filters
    (predicted IoU, stability score with SAM's offset, box NMS) and thresholds as segment-anything's
    ``SamAutomaticMaskGenerator`` (one crop layer), but decided on SAM's 256×256 logits: only masks that pass
    every filter are upscaled, one at a time, to the working size and painted. The generator instead upscales
    all 3 × ``points_per_batch`` candidates of every batch to the working size and run-length encodes them, which
    costs more than the decoder itself on a CPU (``benchmarks/segment_map.py``).

    The embedding comes from ``cache`` when the working image was encoded before (a click on an image no
    larger than the working size shares it). ``progress(done, total, message)`` is called after the encoder and
    every batch of prompts; ``should_stop()`` is checked before each and raises :class:`~segfill.errors.Cancelled`.
    ``points_per_batch`` bounds the decoder's memory (16: about 200 MB for a ViT model).
    """
    import torch

    from segfill.sam.session import MaskUpscale, Sam2Predictor, SamSession, _as_rgb_uint8

    rgb = _as_rgb_uint8(image)
    if max_side < 64:
        raise InputError(f"The segment-map resolution must be at least 64 px, not {max_side}.")
    if points_per_side < 1 or points_per_batch < 1:
        raise InputError("The segment map needs at least one point per side and per batch.")
    full_size = (int(rgb.shape[1]), int(rgb.shape[0]))
    work_w, work_h = working_size(full_size, max_side)
    working = rgb if (work_w, work_h) == full_size else cv2.resize(rgb, (work_w, work_h), interpolation=cv2.INTER_AREA)

    grid = _point_grid(points_per_side) * np.array([work_w, work_h], dtype=np.float64)
    total = len(grid)
    check(should_stop, "the segment map", 0, total)
    session = SamSession(model, cache)
    report(progress, 0, total, "Encoding the image for the segment map…")
    session.set_image(working)
    check(should_stop, "the segment map", 0, total)
    predictor = session.predictor
    is_sam2 = isinstance(predictor, Sam2Predictor)
    module = _generator_module(getattr(model, "family", "sam"))
    ensure_working_nms(getattr(model.model, "device", "cpu"), module)
    model_size = int(getattr(model, "image_size", 1024) or 1024)
    if is_sam2:
        upscale = MaskUpscale("sam2", model_size, (work_h, work_w), (work_h, work_w))
        input_h = input_w = model_size
    else:
        input_h, input_w = (int(v) for v in predictor.input_size)
        upscale = MaskUpscale("sam", model_size, (input_h, input_w), (work_h, work_w))
    valid_hw = to_work = None

    kept_logits: list[torch.Tensor] = []
    kept_ious: list[torch.Tensor] = []
    kept_stability: list[torch.Tensor] = []
    kept_boxes: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, total, points_per_batch):
            check(should_stop, "the segment map", start, total)
            points = grid[start:start + points_per_batch]
            logits, ious = _decode_points(predictor, points, (work_h, work_w), is_sam2)
            if valid_hw is None:
                # the logits (256² for official models) cover the encoder's square input; SAM pads the image to
                # that square, so only the image's share of them counts (SAM 2 stretches: all of it)
                side = int(logits.shape[-1])
                valid_hw = (max(1, -(-input_h * side // model_size)), max(1, -(-input_w * side // model_size)))
                to_work = torch.tensor([work_w / valid_hw[1], work_h / valid_hw[0]] * 2)
            logits = logits.flatten(0, 1).float()
            ious = ious.flatten(0, 1).float()
            keep = ious > pred_iou_thresh if pred_iou_thresh > 0 else torch.ones_like(ious, dtype=torch.bool)
            logits, ious = logits[keep], ious[keep]
            inside = logits[:, : valid_hw[0], : valid_hw[1]]
            stability = _stability_score(inside, stability_score_offset)
            if stability_score_thresh > 0:
                keep = stability >= stability_score_thresh
                logits, inside, ious, stability = logits[keep], inside[keep], ious[keep], stability[keep]
            boxes = _mask_boxes(inside > 0)
            nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            kept_logits.append(logits[nonempty])
            kept_ious.append(ious[nonempty])
            kept_stability.append(stability[nonempty])
            kept_boxes.append(boxes[nonempty].float() * to_work)
            report(progress, min(start + points_per_batch, total), total,
                   f"Segment map: {min(start + points_per_batch, total)} of {total} points…")
    logits = torch.cat(kept_logits)
    if len(logits) == 0:
        return SegmentMap.empty(full_size, (work_w, work_h))
    ious, stability, boxes = torch.cat(kept_ious), torch.cat(kept_stability), torch.cat(kept_boxes)
    keep = module.batched_nms(boxes, ious, torch.zeros(len(boxes)), iou_threshold=box_nms_thresh)
    check(should_stop, "the segment map", total, total)

    masks, areas, kept = [], [], []
    for index in keep.tolist():
        mask = upscale.logits_to_mask(logits[index].numpy())  # SAM's own upscaling, one mask at a time
        if min_mask_region_area > 0:
            from segfill.masks import remove_small_holes, remove_small_islands

            mask = remove_small_islands(remove_small_holes(mask, min_mask_region_area), min_mask_region_area)
        area = int(np.count_nonzero(mask))
        if area == 0:
            continue
        masks.append(np.packbits(mask))  # painted below, larger first; packed meanwhile (1 bit a pixel)
        areas.append(area)
        kept.append(index)
    if not masks:
        return SegmentMap.empty(full_size, (work_w, work_h))
    order = sorted(range(len(masks)), key=lambda i: -areas[i])
    labels = np.zeros((work_h, work_w), dtype=np.int32)
    for new_id, i in enumerate(order, start=1):
        labels[np.unpackbits(masks[i], count=work_w * work_h).reshape(work_h, work_w).view(bool)] = new_id
    ious_kept = [float(ious[kept[i]]) for i in order]
    stabilities = [float(stability[kept[i]]) for i in order]
    return SegmentMap(labels, full_size, _describe(labels, ious_kept, stabilities))


def _point_grid(points_per_side: int) -> np.ndarray:
    """SAM's grid: ``n``² points at the centres of an ``n``×``n`` tiling of [0, 1]² (x, y)."""
    offset = 1 / (2 * points_per_side)
    side = np.linspace(offset, 1 - offset, points_per_side)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=-1)


def _decode_points(predictor: Any, points: np.ndarray, image_hw: tuple[int, int], is_sam2: bool):
    """(low-res logits (B, 3, 256, 256), predicted IoUs (B, 3)) for one positive point per prompt, no upscaling."""
    import torch

    labels = torch.ones((len(points), 1), dtype=torch.int)
    if is_sam2:
        inner = predictor.inner
        model = inner.model
        coords = inner._transforms.transform_coords(torch.as_tensor(points, dtype=torch.float32, device=inner.device),
                                                    normalize=True, orig_hw=image_hw)[:, None, :]
        sparse, dense = model.sam_prompt_encoder(points=(coords, labels.to(inner.device)), boxes=None, masks=None)
        high_res = [level[0].unsqueeze(0) for level in inner._features["high_res_feats"]]
        logits, ious, _, _ = model.sam_mask_decoder(
            image_embeddings=inner._features["image_embed"][0].unsqueeze(0),
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=True,
            high_res_features=high_res,
        )
        return logits.cpu(), ious.cpu()
    model = predictor.model
    coords = torch.as_tensor(predictor.transform.apply_coords(points, image_hw), dtype=torch.float32,
                             device=predictor.device)[:, None, :]
    sparse, dense = model.prompt_encoder(points=(coords, labels.to(predictor.device)), boxes=None, masks=None)
    extra = {}
    if getattr(predictor, "interm_features", None) is not None:  # SAM-HQ
        extra = {"hq_token_only": False, "interm_embeddings": predictor.interm_features}
    logits, ious = model.mask_decoder(
        image_embeddings=predictor.features,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
        **extra,
    )
    return logits.cpu(), ious.cpu()


def _stability_score(logits: torch.Tensor, offset: float, threshold: float = 0.0) -> torch.Tensor:
    """SAM's stability score: IoU of the masks thresholded at ``threshold ± offset`` (on the given logits)."""
    import torch

    intersections = (logits > (threshold + offset)).sum(dim=(-1, -2), dtype=torch.int32)
    unions = (logits > (threshold - offset)).sum(dim=(-1, -2), dtype=torch.int32)
    return intersections.float() / unions.clamp(min=1).float()


def _mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) with exclusive ends of each bool mask (N, h, w); an empty mask gives (0, 0, 0, 0)."""
    import torch

    if masks.numel() == 0:
        return torch.zeros((0, 4), dtype=torch.int64)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    h, w = masks.shape[-2:]
    arange_h = torch.arange(h)
    arange_w = torch.arange(w)
    y0 = torch.where(rows, arange_h, h).min(dim=1).values
    y1 = torch.where(rows, arange_h + 1, 0).max(dim=1).values
    x0 = torch.where(cols, arange_w, w).min(dim=1).values
    x1 = torch.where(cols, arange_w + 1, 0).max(dim=1).values
    empty = ~rows.any(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    boxes[empty] = 0
    return boxes
