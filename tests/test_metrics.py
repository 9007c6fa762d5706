"""Seam metrics see a seam where there is one and not where there is none."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from segfill.errors import InputError
from segfill.metrics import lines_band, rect_edge_band, seam_metrics


def _texture(h=128, w=128, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.normal(128, 40, size=(h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5), 0, 255).astype(np.uint8)


def test_a_hard_colour_step_is_a_seam_a_seamless_image_is_not():
    image = _texture()
    band = lines_band(image.shape[:2], xs=[64], half_width=3)
    clean = seam_metrics(image, band)
    stepped = image.copy()
    stepped[:, 64:] = np.clip(stepped[:, 64:].astype(int) + (70, 40, 60), 0, 255)
    seam = seam_metrics(stepped, band)
    assert 0.7 < clean.gradient_jump_ratio < 1.4
    assert 0.7 < clean.delta_e_ratio < 1.4
    assert seam.gradient_jump_ratio > 1.5 * clean.gradient_jump_ratio
    assert seam.delta_e_ratio > 1.3 * clean.delta_e_ratio
    assert seam.band_pixels == 128 * 6


def test_a_blurred_band_reads_below_one():
    import cv2

    image = data.astronaut()
    band = rect_edge_band(image.shape[:2], (128, 128, 384, 384), 6)
    blurred = image.copy()
    blurred[band] = cv2.GaussianBlur(image, (0, 0), 6)[band]
    assert seam_metrics(blurred, band).gradient_jump_ratio < 0.6 * seam_metrics(image, band).gradient_jump_ratio


def test_rect_edge_band_skips_border_edges():
    band = rect_edge_band((100, 100), (0, 20, 60, 100), 4)
    # the inner edges: x = 60 (right) and y = 20 (top), 4 px either side
    assert band[50, 56:64].all() and not band[50, 54:56].any() and not band[50, 64:66].any()
    assert band[16:24, 30].all() and not band[14:16, 30].any() and not band[24:26, 30].any()
    # the left edge (x = 0) and the bottom edge (y = 100) lie on the image border: no band along them
    assert not band[24:, :56].any()
    assert not band[:, 64:].any() and not band[:16].any()


def test_bad_bands():
    image = _texture(32, 32)
    with pytest.raises(InputError):
        seam_metrics(image, np.zeros((32, 32), bool))
    with pytest.raises(InputError):
        seam_metrics(image, np.ones((16, 32), bool))
