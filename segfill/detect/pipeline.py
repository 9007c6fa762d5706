"""Boxes -> masks: SAM answers each detected box (its candidates, as for a click); the union is the selection.

SAM 3 detections carry their own mask; those are used as they are (one candidate, SAM 3's score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segfill.errors import InputError


class NoDetectionError(InputError):
    """The detector found nothing above the threshold (CLI: one line, non-zero exit; API: 422)."""


def predict_boxes(session: Any, detections: Sequence[Any], multimask: bool = True) -> list[Any]:
    """One SAM :class:`~segfill.sam.session.Prediction` per detection, in the detections' order."""
    from segfill.sam.session import Prediction

    predictions = []
    for detection in detections:
        if detection.mask is not None:
            mask = np.asarray(detection.mask, dtype=bool)[None]
            predictions.append(Prediction(masks=mask, scores=np.array([detection.score], np.float32),
                                          low_res_logits=np.zeros((1, 1, 1), np.float32)))
        else:
            predictions.append(session.predict(box=detection.box, multimask=multimask, use_previous_logits=False))
    return predictions


def chosen_index(prediction: Any, candidate: int | None) -> int:
    """``candidate`` (None = SAM's best) clamped to what the prediction has (SAM 3 gives one)."""
    if candidate is None or len(prediction) == 1:
        return int(prediction.best_index) if candidate is None else 0
    if not 0 <= int(candidate) < len(prediction):
        raise InputError(f"Candidate {candidate} does not exist; choose best or 0 to {len(prediction) - 1}.")
    return int(candidate)


def union_of(predictions: Sequence[Any], indexes: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """The union of each prediction's chosen candidate; bool (H, W) of ``size`` = (width, height)."""
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    for prediction, index in zip(predictions, indexes, strict=True):
        mask |= np.asarray(prediction.masks[index], dtype=bool)
    return mask


def require_detections(result: Any) -> None:
    if not len(result):
        threshold = f"box threshold {result.box_threshold:g}"
        if result.text_threshold is not None:
            threshold += f", text threshold {result.text_threshold:g}"
        raise NoDetectionError(f"The detector found nothing for {result.text!r} above the {threshold}; "
                               "lower the thresholds or describe it differently.")
