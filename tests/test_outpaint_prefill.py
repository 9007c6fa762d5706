"""Pre-fill methods against synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from segfill.errors import InputError
from segfill.outpaint.prefill import PREFILL_METHODS, fine_contrast, prefill, pull_push, spectral_noise


def _canvas(h=96, w=128, rect=(32, 24, 96, 72), seed=0):
    rng = np.random.default_rng(seed)
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    known = np.zeros((h, w), dtype=bool)
    x0, y0, x1, y1 = rect
    known[y0:y1, x0:x1] = True
    rgb[known] = rng.integers(0, 256, size=(int(known.sum()), 3), dtype=np.uint8)
    return rgb, known


@pytest.mark.parametrize("method", PREFILL_METHODS)
def test_known_pixels_are_untouched(method):
    rgb, known = _canvas()
    out = prefill(rgb, known, method, seed=3)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out[known] == rgb[known]).all()


def test_edge_replicates_the_border_and_reflect_mirrors():
    rgb, known = _canvas()
    edge = prefill(rgb, known, "edge")
    assert (edge[10, 32:96] == rgb[24, 32:96]).all()  # above the rectangle: its top row
    assert (edge[50, 0] == rgb[50, 32]).all()  # left: its left column
    assert (edge[0, 0] == rgb[24, 32]).all()  # corner: its corner
    reflect = prefill(rgb, known, "reflect")
    assert (reflect[50, 31] == rgb[50, 33]).all() and (reflect[50, 28] == rgb[50, 36]).all()


def test_edge_on_a_non_rectangular_known_area_takes_the_nearest_colour():
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    known = np.zeros((40, 40), dtype=bool)
    known[:, :10] = True
    rgb[:, :10] = (200, 10, 10)
    known[35:, 30:] = True
    rgb[35:, 30:] = (10, 10, 200)
    out = prefill(rgb, known, "edge")
    assert tuple(out[5, 12]) == (200, 10, 10)
    assert tuple(out[33, 38]) == (10, 10, 200)


def test_blur_extend_continues_colours_smoothly():
    h, w = 64, 192
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    known = np.zeros((h, w), dtype=bool)
    known[:, 64:128] = True
    rgb[:, 64:128] = (255, 0, 0)
    rgb[:32, 64:128] = (0, 0, 255)  # top half blue, bottom half red
    out = prefill(rgb, known, "blur_extend", noise=0.0)
    # right next to the border the colours continue, without a hard black/grey frame
    assert out[5, 62, 2] > 220 and out[58, 62, 0] > 220
    # going outward they fade smoothly towards a blend of both (no jumps between neighbours)
    far = out[:, :32].astype(int)
    assert np.abs(np.diff(far, axis=0)).max() <= 4
    assert np.abs(np.diff(out[:, :60].astype(int), axis=1)).max() <= 16
    for row in (5, 58):
        assert far[row, 0, 0] > 40 and far[row, 0, 2] > 40


def test_blur_extend_of_a_constant_image_is_constant_and_noise_is_seeded():
    rgb = np.full((50, 70, 3), 90, dtype=np.uint8)
    known = np.zeros((50, 70), dtype=bool)
    known[10:40, 20:50] = True
    flat = prefill(rgb, known, "blur_extend", noise=0.5)
    # a flat image has no fine contrast, so no grain either (±1: the first pull level is area-averaged in uint8)
    assert np.abs(flat.astype(int) - 90).max() <= 1
    rgb2, known2 = _canvas()
    a = prefill(rgb2, known2, "blur_extend", seed=1, noise=1.0)
    b = prefill(rgb2, known2, "blur_extend", seed=1, noise=1.0)
    c = prefill(rgb2, known2, "blur_extend", seed=2, noise=1.0)
    assert (a == b).all() and (a != c).any()
    assert fine_contrast(rgb2, known2) > 20


def test_pull_push_keeps_known_colours_at_full_resolution():
    rgb, known = _canvas(h=64, w=64, rect=(16, 16, 48, 48))
    est = pull_push(rgb, known, max_side=1024)
    assert np.abs(est[known].astype(int) - rgb[known].astype(int)).max() <= 1


def test_spectral_noise_matches_histogram_and_is_seeded():
    rng = np.random.default_rng(0)
    rgb = np.zeros((128, 128, 3), dtype=np.uint8)
    known = np.zeros((128, 128), dtype=bool)
    known[32:96, 32:96] = True
    # a known area with a strong horizontal stripe pattern and a narrow colour range
    stripes = ((np.arange(64) // 4) % 2 * 60 + 100).astype(np.uint8)
    rgb[32:96, 32:96] = stripes[:, None, None] + rng.integers(0, 5, size=(64, 64, 3), dtype=np.uint8)
    noise = spectral_noise(rgb, known, seed=4)
    assert (noise == spectral_noise(rgb, known, seed=4)).all()
    assert (noise != spectral_noise(rgb, known, seed=5)).any()
    # histogram matched: the noise stays in the known range and has a similar mean
    assert noise.min() >= 95 and noise.max() <= 170
    assert abs(float(noise.mean()) - float(rgb[known].mean())) < 5
    # spectrum: variation along y (the stripes' direction) dominates variation along x
    grey = noise.astype(float).mean(axis=2)
    assert np.abs(np.diff(grey, axis=0)).mean() > 1.5 * np.abs(np.diff(grey, axis=1)).mean()


def test_grey_none_and_opencv_methods():
    rgb, known = _canvas()
    assert (prefill(rgb, known, "grey")[~known] == 127).all()
    assert (prefill(rgb, known, "none") == rgb).all()
    const = np.full_like(rgb, 0)
    const[known] = (30, 140, 220)
    for method in ("telea", "navier_stokes"):
        out = prefill(const, known, method)
        # OpenCV's Telea overshoots a constant by a few levels; the colour is still the known one
        assert np.abs(out.astype(int) - np.array([30, 140, 220])).max() <= 8


def test_unknown_method_is_an_input_error():
    rgb, known = _canvas()
    with pytest.raises(InputError, match="pre-fill"):
        prefill(rgb, known, "magic")
