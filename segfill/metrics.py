"""Seam metrics: is a seam visible in an image, along a given band?

Definitions (``image`` RGB uint8, ``band`` bool mask of the seam band, e.g. a few px either side of the
boundary between original and new content or between tiles):

* ``delta_e_mean``: mean CIEDE2000 colour difference between pixel pairs ``step`` px apart, horizontally and
  vertically, with both pixels in the band. A seam inside the band is a colour step between such pairs.
* ``delta_e_reference``: the same statistic over pairs with both pixels outside the band (or in the given
  reference area): how much colour changes over ``step`` px elsewhere in this image. ``delta_e_ratio = delta_e_mean / delta_e_reference``.
* ``gradient_band`` / ``gradient_typical``: mean Sobel (3x3) gradient magnitude of CIE L* over the band and over
  the rest of the image; ``gradient_jump_ratio = gradient_band / gradient_typical``. About 1: the band looks
  like the rest; well above 1: an edge runs along the band (a visible seam); well below 1: the band is
  smoother than the image (a blurred seam).

Lab conversion and CIEDE2000 use scikit-image on (at most ``max_pairs``, seeded) sampled pairs; gradients use
OpenCV on the whole image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from segfill.errors import InputError
from segfill.masks import image_to_rgb
from segfill.outpaint.color import rgb_to_lab

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class SeamMetrics:
    delta_e_mean: float
    delta_e_reference: float
    delta_e_ratio: float
    gradient_band: float
    gradient_typical: float
    gradient_jump_ratio: float
    band_pixels: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _pairs(band: np.ndarray, step: int, inside: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices (a, b) of pixel pairs ``step`` apart (right and down), both in (or both outside) ``band``."""
    h, w = band.shape
    sel = band if inside else ~band
    idx = np.arange(h * w).reshape(h, w)
    right = sel[:, :-step] & sel[:, step:]
    down = sel[:-step, :] & sel[step:, :]
    a = np.concatenate([idx[:, :-step][right], idx[:-step, :][down]])
    b = np.concatenate([idx[:, step:][right], idx[step:, :][down]])
    return a, b


def _mean_delta_e(flat_rgb: np.ndarray, a: np.ndarray, b: np.ndarray, max_pairs: int, seed: int) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    if a.size == 0:
        return float("nan")
    if a.size > max_pairs:
        pick = np.random.default_rng(seed).choice(a.size, max_pairs, replace=False)
        a, b = a[pick], b[pick]
    lab_a = rgb2lab(flat_rgb[a].reshape(-1, 1, 3))
    lab_b = rgb2lab(flat_rgb[b].reshape(-1, 1, 3))
    return float(np.mean(deltaE_ciede2000(lab_a, lab_b)))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of CIE L* (float32 (H, W))."""
    lightness = rgb_to_lab(image)[..., 0]
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def seam_metrics(image, band_mask: np.ndarray, step: int = 2, max_pairs: int = 100_000, seed: int = 0,
                 reference_mask: np.ndarray | None = None) -> SeamMetrics:
    """Metrics of the seam band ``band_mask`` in ``image`` (PIL or uint8 RGB array); see the module doc.

    ``reference_mask`` (bool) narrows "the rest of the image" used for the reference ΔE and the typical gradient
    (e.g. to the generated area only, when judging seams between tiles); it never includes the band itself.
    """
    rgb = image_to_rgb(image)
    band = np.asarray(band_mask, dtype=bool)
    if band.shape != rgb.shape[:2]:
        raise InputError(f"The band mask is {band.shape[1]}x{band.shape[0]} px but the image is "
                         f"{rgb.shape[1]}x{rgb.shape[0]} px.")
    if not band.any() or band.all():
        raise InputError("The seam band must contain some pixels of the image, but not all of them.")
    rest = ~band if reference_mask is None else (np.asarray(reference_mask, dtype=bool) & ~band)
    if not rest.any():
        raise InputError("The reference area of the seam metrics is empty.")
    flat = rgb.reshape(-1, 3)
    de_band = _mean_delta_e(flat, *_pairs(band, step, True), max_pairs, seed)
    de_ref = _mean_delta_e(flat, *_pairs(rest, step, True), max_pairs, seed)
    grad = gradient_magnitude(rgb)
    g_band = float(grad[band].mean())
    g_typ = float(grad[rest].mean())
    return SeamMetrics(
        delta_e_mean=de_band, delta_e_reference=de_ref,
        delta_e_ratio=de_band / de_ref if de_ref > 0 else float("inf"),
        gradient_band=g_band, gradient_typical=g_typ,
        gradient_jump_ratio=g_band / g_typ if g_typ > 0 else float("inf"),
        band_pixels=int(band.sum()))


def rect_edge_band(shape: tuple[int, int], rect: Rect, half_width: int) -> np.ndarray:
    """Pixels within ``half_width`` px of the *inner* edges of ``rect`` (edges on the image border excluded).

    For an outpaint: the seam between the original (``rect`` in output pixels) and the new content.
    """
    h, w = shape
    x0, y0, x1, y1 = rect
    band = np.zeros((h, w), dtype=bool)
    r = half_width
    ys, ye = max(y0 - r, 0), min(y1 + r, h)
    xs, xe = max(x0 - r, 0), min(x1 + r, w)
    if x0 > 0:
        band[ys:ye, max(x0 - r, 0):x0 + r] = True
    if x1 < w:
        band[ys:ye, max(x1 - r, 0):min(x1 + r, w)] = True
    if y0 > 0:
        band[max(y0 - r, 0):y0 + r, xs:xe] = True
    if y1 < h:
        band[max(y1 - r, 0):min(y1 + r, h), xs:xe] = True
    return band


def lines_band(shape: tuple[int, int], xs: Iterable[int] = (), ys: Iterable[int] = (), half_width: int = 2,
               within: np.ndarray | None = None) -> np.ndarray:
    """Pixels within ``half_width`` of the vertical lines ``x = xs`` and horizontal lines ``y = ys``,
    optionally restricted to ``within`` (bool)."""
    h, w = shape
    band = np.zeros((h, w), dtype=bool)
    for x in xs:
        band[:, max(x - half_width, 0):min(x + half_width, w)] = True
    for y in ys:
        band[max(y - half_width, 0):min(y + half_width, h), :] = True
    return band & within if within is not None else band
