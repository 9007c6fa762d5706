"""Pre-fill of the unknown area: what the sampler (or the next tile) sees there before it is generated.

Every method has the signature ``fill(rgb, known, seed) -> rgb``: ``rgb`` is ``uint8 (H, W, 3)``, ``known`` is
``bool (H, W)`` (True = real content), the result equals ``rgb`` on every known pixel.

Default for SD2-inpainting: ``blur_extend`` with mild noise (:data:`DEFAULT_PREFILL`). With strength 1 the
SD2-inpainting UNet starts from pure latent noise, so the pre-fill mainly matters (a) as the *context* a tile
sees where its neighbours are not generated yet, (b) as the VAE-encoded start when strength < 1 and (c) for the
WebUI's "original" masked-content mode. A pull-push extension continues the colours of the border smoothly
into the new area (no streaks as with edge replicate, no mirrored objects as with reflect, no hard grey
boundary that the model tends to keep as a frame); a little noise, scaled to the image's own fine-scale
contrast, keeps the sampler from reproducing a flat blurred wash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import cv2
import numpy as np

from segfill.args import PrefillMethod
from segfill.errors import InputError
from segfill.masks import bounding_box

PREFILL_METHODS: tuple[str, ...] = get_args(PrefillMethod)
DEFAULT_PREFILL = "blur_extend"
#: amplitude of the mild noise added by the default pre-fill, relative to the image's fine-scale contrast.
DEFAULT_PREFILL_NOISE = 0.5

#: cv2.inpaint pre-fills run at most at this side (then upscaled), since Telea/NS cost grows with the area.
INPAINT_PREFILL_MAX_SIDE = 256


def _known_rect(known: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) when ``known`` is exactly one filled axis-aligned rectangle, else None."""
    box = bounding_box(known, align=1)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return box if known[y0:y1, x0:x1].all() else None


def _border_fill(rgb: np.ndarray, known: np.ndarray, mode: str) -> np.ndarray:
    """Pad the known rectangle outward with ``numpy.pad`` ``mode`` ("edge" or "reflect")."""
    rect = _known_rect(known)
    if rect is None:
        return fill_nearest(rgb, known)
    x0, y0, x1, y1 = rect
    h, w = known.shape
    crop = rgb[y0:y1, x0:x1]
    if mode == "reflect" and min(crop.shape[:2]) < 2:
        mode = "edge"
    out = np.pad(crop, ((y0, h - y1), (x0, w - x1), (0, 0)), mode=mode)
    np.copyto(out, rgb, where=known[..., None])
    return out


def fill_nearest(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Every unknown pixel takes the colour of its nearest known pixel (edge replicate for any shape)."""
    from scipy import ndimage

    _, (iy, ix) = ndimage.distance_transform_edt(~known, return_indices=True)
    return rgb[iy, ix]


def fill_edge(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    return _border_fill(rgb, known, "edge")


def fill_reflect(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mirror the known rectangle outward (nearest-colour fill when the known area is not a rectangle)."""
    return _border_fill(rgb, known, "reflect")


#: pull-push runs at most at this side; the result is a smooth colour field, so upscaling it loses nothing.
PULL_PUSH_MAX_SIDE = 512


def pull_push(rgb: np.ndarray, known: np.ndarray, max_side: int = PULL_PUSH_MAX_SIDE) -> np.ndarray:
    """Smooth extension of the known colours into the unknown area (multi-scale "pull-push" interpolation).

    Pull: halve colour×weight and weight repeatedly (area average). Push: from the coarsest level down, every
    pixel keeps its own colour in proportion to its weight and takes the upsampled coarser estimate for the
    rest. Unknown pixels far from the border thus get the colours of larger and larger neighbourhoods. Large
    canvases are processed at ``max_side`` and upscaled. Returns uint8 (H, W, 3); known pixels are not restored.
    """
    h, w = known.shape
    premultiplied = cv2.bitwise_and(rgb, rgb, mask=known.view(np.uint8))
    weight = known.astype(np.float32)
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        small = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        color = cv2.resize(premultiplied, small, interpolation=cv2.INTER_AREA).astype(np.float32)
        weight = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    else:
        color = premultiplied.astype(np.float32)
    levels = [(color, weight)]
    while min(levels[-1][1].shape) > 1:  # Gaussian pull: known weight leaks across block borders
        c, wt = levels[-1]
        levels.append((cv2.pyrDown(c), cv2.pyrDown(wt)))
    c, wt = levels[-1]
    estimate = c / np.maximum(wt, 1e-8)[..., None]
    for c, wt in reversed(levels[:-1]):
        up = cv2.pyrUp(estimate, dstsize=(wt.shape[1], wt.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        share = np.minimum(wt * 4.0, 1.0)[..., None]  # a pixel with a quarter of known weight trusts itself
        own = c / np.maximum(wt, 1e-8)[..., None]
        estimate = own * share + up * (1.0 - share)
    estimate = np.clip(estimate, 0, 255).astype(np.uint8)
    if scale < 1:
        estimate = cv2.resize(estimate, (w, h), interpolation=cv2.INTER_LINEAR)
    return estimate


def fine_contrast(rgb: np.ndarray, known: np.ndarray, max_side: int = 512) -> float:
    """Standard deviation of the known pixels' high-pass (image minus its 5x5 blur), in grey levels.

    Measured on a central crop of at most ``max_side`` of the known pixels' bounding box.
    """
    ys, xs = np.nonzero(known.any(axis=1))[0], np.nonzero(known.any(axis=0))[0]
    if ys.size == 0:
        return 0.0
    cy, cx = (ys[0] + ys[-1]) // 2, (xs[0] + xs[-1]) // 2
    y0, y1 = max(ys[0], cy - max_side // 2), min(ys[-1] + 1, cy + max_side // 2)
    x0, x1 = max(xs[0], cx - max_side // 2), min(xs[-1] + 1, cx + max_side // 2)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    high = grey - cv2.blur(grey, (5, 5))
    sub_known = known[y0:y1, x0:x1]
    inner = cv2.erode(sub_known.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    values = high[inner] if inner.any() else high[sub_known]
    return float(values.std()) if values.size else 0.0


#: the grain is synthesised on a period of this side and tiled (plenty for a pre-fill, and cheap).
GRAIN_PERIOD = 256


def tiled_grain(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    """Seeded Gaussian colour grain (int16 (H, W, 3), std ``sigma``) tiled from a GRAIN_PERIOD square."""
    h, w = shape
    ph, pw = min(h, GRAIN_PERIOD), min(w, GRAIN_PERIOD)
    period = np.rint(np.random.default_rng(seed).standard_normal((ph, pw, 3)) * sigma).astype(np.int16)
    return np.tile(period, (-(-h // ph), -(-w // pw), 1))[:h, :w]


def fill_blur_extend(rgb: np.ndarray, known: np.ndarray, seed: int = 0,
                     noise: float = DEFAULT_PREFILL_NOISE) -> np.ndarray:
    """Pull-push extension plus Gaussian grain of ``noise`` × the image's fine-scale contrast (seeded)."""
    out = pull_push(rgb, known)
    if noise > 0:
        sigma = noise * fine_contrast(rgb, known)
        if sigma > 0:
            out = cv2.add(out, tiled_grain(known.shape, sigma, seed), dtype=cv2.CV_8U)
    return restore_known(out, rgb, known)


def restore_known(out: np.ndarray, rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``out`` with the known pixels of ``rgb`` put back (OpenCV masked copy; much faster than numpy's)."""
    out = np.ascontiguousarray(out)
    return cv2.copyTo(np.ascontiguousarray(rgb), known.view(np.uint8), out)


def _cv2_inpaint(rgb: np.ndarray, known: np.ndarray, flag: int) -> np.ndarray:
    h, w = known.shape
    scale = min(1.0, INPAINT_PREFILL_MAX_SIDE / max(h, w))
    small_size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    small_unknown = cv2.resize((~known).astype(np.uint8) * 255, small_size, interpolation=cv2.INTER_NEAREST)
    if scale < 1:  # a pixel is unknown at low resolution when any of its area is
        small_unknown = cv2.dilate(small_unknown, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(np.ascontiguousarray(small), small_unknown, 5, flag)
    if scale < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return restore_known(filled, rgb, known)


def fill_telea(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    """OpenCV Telea inpainting (at most :data:`INPAINT_PREFILL_MAX_SIDE` px, then upscaled)."""
    return _cv2_inpaint(rgb, known, cv2.INPAINT_TELEA)


def fill_navier_stokes(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    """OpenCV Navier-Stokes inpainting (at most :data:`INPAINT_PREFILL_MAX_SIDE` px, then upscaled)."""
    return _cv2_inpaint(rgb, known, cv2.INPAINT_NS)


#: spectral noise is synthesised on a period of at most this side and tiled (the FFT result is periodic).
NOISE_PERIOD_MAX = 512


def spectral_noise(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    """Seeded noise with the known content's amplitude spectrum and per-channel histogram (uint8, full size).

    White noise is shaped in the Fourier domain by the amplitude spectrum of the known pixels' bounding crop
    (resampled to the noise period, mean removed), each channel is histogram-matched to the known pixels, and
    the periodic result is tiled over the canvas.
    """
    h, w = known.shape
    ph, pw = min(h, NOISE_PERIOD_MAX), min(w, NOISE_PERIOD_MAX)
    x0, y0, x1, y1 = bounding_box(known, align=1)
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    crop = cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    reference = rgb[known]
    if reference.shape[0] > 65536:
        reference = reference[rng.choice(reference.shape[0], 65536, replace=False)]
    period = np.empty((ph, pw, 3), dtype=np.uint8)
    quantiles = np.linspace(0.0, 1.0, 257)
    for ch in range(3):
        amplitude = np.abs(np.fft.rfft2(crop[..., ch] - crop[..., ch].mean()))
        phase = np.fft.rfft2(rng.standard_normal((ph, pw)))
        phase /= np.maximum(np.abs(phase), 1e-12)
        shaped = np.fft.irfft2(amplitude * phase, s=(ph, pw))
        # histogram matching by quantile mapping onto the known pixels' distribution
        src_q = np.quantile(shaped, quantiles)
        ref_q = np.quantile(reference[:, ch].astype(np.float64), quantiles)
        period[..., ch] = np.clip(np.rint(np.interp(shaped, src_q, ref_q)), 0, 255).astype(np.uint8)
    reps = (-(-h // ph), -(-w // pw), 1)
    return np.tile(period, reps)[:h, :w]


def fill_noise(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    out = spectral_noise(rgb, known, seed)
    np.copyto(out, rgb, where=known[..., None])
    return out


def fill_grey(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    out = np.full_like(rgb, 127)
    np.copyto(out, rgb, where=known[..., None])
    return out


def fill_none(rgb: np.ndarray, known: np.ndarray, seed: int = 0) -> np.ndarray:
    """Leave the pixels as they are (black in a fresh outpaint canvas; the original under an inpaint mask)."""
    return rgb.copy()


_METHODS: dict[str, Callable[..., np.ndarray]] = {
    "blur_extend": fill_blur_extend,
    "edge": fill_edge,
    "reflect": fill_reflect,
    "telea": fill_telea,
    "navier_stokes": fill_navier_stokes,
    "noise": fill_noise,
    "grey": fill_grey,
    "none": fill_none,
}


def prefill(rgb: np.ndarray, known: np.ndarray, method: str = DEFAULT_PREFILL, seed: int = 0,
            noise: float = DEFAULT_PREFILL_NOISE) -> np.ndarray:
    """Fill every unknown pixel of ``rgb`` with ``method``; known pixels are returned unchanged."""
    known = np.asarray(known, dtype=bool)
    if method not in _METHODS:
        raise InputError(f"Unknown pre-fill method {method!r}; choose one of {', '.join(PREFILL_METHODS)}.")
    if known.all() or method == "none":
        return rgb.copy()
    if not known.any():
        return fill_grey(rgb, known)
    if method == "blur_extend":
        return fill_blur_extend(rgb, known, seed=seed, noise=noise)
    return _METHODS[method](rgb, known, seed=seed)
