"""Colour match of new content to the original, measured on a ring around the seam (not globally).

The statistics are per-channel mean and standard deviation in CIE L*a*b*: on the *original side*, the known
pixels just beyond the overlap band; on the *new side*, the generated pixels just inside the new area. The new
content is shifted and scaled channel-wise so that its ring statistics equal the original's (Reinhard-style
transfer). Only new content is changed; the std ratio is clamped so a nearly flat ring cannot blow up noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: the std scale factor is clamped to [1 / MAX_STD_RATIO, MAX_STD_RATIO].
MAX_STD_RATIO = 2.0
#: at least this many pixels on each side of the seam, or the match is skipped (too little evidence).
MIN_RING_PIXELS = 16


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 or float [0, 255] RGB -> float32 Lab (L in [0, 100]) via OpenCV."""
    return cv2.cvtColor(np.asarray(rgb, dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab -> float32 RGB in [0, 255] (not clipped, not rounded)."""
    return cv2.cvtColor(np.asarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB) * 255.0


@dataclass(frozen=True)
class LabStats:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    count: int


def lab_stats(lab: np.ndarray, where: np.ndarray) -> LabStats:
    values = lab[where]
    if values.size == 0:
        return LabStats((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0)
    return LabStats(tuple(float(v) for v in values.mean(axis=0)), tuple(float(v) for v in values.std(axis=0)),
                    int(values.shape[0]))


def transfer(lab: np.ndarray, source: LabStats, target: LabStats) -> np.ndarray:
    """Map ``lab`` so that values with ``source`` statistics get ``target`` statistics (float32)."""
    mean_s, mean_t = np.float32(source.mean), np.float32(target.mean)
    ratio = np.float32(target.std) / np.maximum(np.float32(source.std), 1e-3)
    ratio = np.clip(ratio, 1.0 / MAX_STD_RATIO, MAX_STD_RATIO).astype(np.float32)
    return (lab - mean_s) * ratio + mean_t


def seam_rings(new_area: np.ndarray, band: int, width: int,
               distance_to_new: np.ndarray, distance_to_known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(original-side ring, new-side ring) as bool masks.

    Original side: known pixels with ``band < d_new <= band + width`` (untouched by the band blend). New side:
    new-area pixels with ``d_known <= width``.
    """
    original_side = (~new_area) & (distance_to_new > band) & (distance_to_new <= band + width)
    new_side = new_area & (distance_to_known <= width)
    return original_side, new_side


def match_new_content(generated: np.ndarray, reference: np.ndarray, original_ring: np.ndarray,
                      new_ring: np.ndarray, apply_to: np.ndarray) -> np.ndarray:
    """Colour-match ``generated`` (float/uint8 RGB) to ``reference`` (the known canvas) on the two rings.

    Returns float32 RGB of the same shape: pixels in ``apply_to`` transformed, the others unchanged. When
    either ring has fewer than :data:`MIN_RING_PIXELS` pixels, nothing is changed.
    """
    generated = np.asarray(generated, dtype=np.float32)
    if original_ring.sum() < MIN_RING_PIXELS or new_ring.sum() < MIN_RING_PIXELS:
        return generated.copy()
    target = lab_stats(rgb_to_lab(reference), original_ring)
    gen_lab = rgb_to_lab(np.clip(generated, 0, 255))
    source = lab_stats(gen_lab, new_ring)
    matched = lab_to_rgb(transfer(gen_lab, source, target))
    out = generated.copy()
    out[apply_to] = matched[apply_to]
    return out
