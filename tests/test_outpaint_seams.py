"""Denoise / composite masks and the ring colour match against synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segfill.outpaint.color import lab_stats, match_new_content, rgb_to_lab, seam_rings
from segfill.outpaint.seams import build_masks, distance_from, rect_frame_masks


def _frame(h=80, w=100, rect=(20, 15, 80, 65)):
    known = np.zeros((h, w), dtype=bool)
    x0, y0, x1, y1 = rect
    known[y0:y1, x0:x1] = True
    return known


@given(band=st.integers(0, 24), feather=st.integers(0, 24))
@settings(max_examples=40, deadline=None)
def test_mask_properties(band, feather):
    known = _frame()
    new_area = ~known
    masks = build_masks(new_area, band, feather)
    d = distance_from(new_area)
    for m in (masks.denoise, masks.composite):
        assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
        assert (m[new_area] == 1).all()
    # the composite mask never reaches farther than the band: those pixels stay bit-exact
    assert (masks.composite[d >= max(band, 1)] == 0).all() if band else (masks.composite[known] == 0).all()
    # whatever is pasted back has been repainted (hard threshold as backends apply it)
    assert ((masks.denoise >= 0.5) | (masks.composite == 0)).all()
    # both masks fall off monotonically with the distance from the new area
    order = np.argsort(d[known], kind="stable")
    for m in (masks.denoise, masks.composite):
        values = m[known][order]
        assert (np.diff(values) <= 1e-6).all()


def test_feathered_band_is_soft_not_hard():
    masks = build_masks(~_frame(), band=16, feather=12)
    row = masks.composite[40, 20:40]  # from the left edge of the original inward
    assert row[0] == 1.0 and row[-1] == 0.0
    assert len(np.unique(np.round(row, 3))) > 8  # a real ramp


@given(rect=st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(40, 90), st.integers(40, 70)),
       band=st.integers(0, 20), feather=st.integers(0, 20))
@settings(max_examples=40, deadline=None)
def test_rect_frame_masks_equal_the_general_masks(rect, band, feather):
    h, w = 70, 90
    known = np.zeros((h, w), dtype=bool)
    x0, y0, x1, y1 = rect
    known[y0:y1, x0:x1] = True
    new_area, fast = rect_frame_masks((h, w), rect, band, feather)
    slow = build_masks(~known, band, feather)
    assert (new_area == ~known).all()
    assert np.abs(fast.denoise - slow.denoise).max() < 1e-5
    assert np.abs(fast.composite - slow.composite).max() < 1e-5
    assert ((fast.composite == 0) == (slow.composite == 0)).all()


def test_color_match_moves_new_content_to_the_original_on_the_ring():
    rng = np.random.default_rng(0)
    h, w = 64, 128
    new_area = np.zeros((h, w), dtype=bool)
    new_area[:, 64:] = True
    reference = np.zeros((h, w, 3), dtype=np.uint8)
    reference[:, :64] = np.clip(rng.normal((120, 90, 60), 8, size=(h, 64, 3)), 0, 255).astype(np.uint8)
    generated = np.zeros((h, w, 3), dtype=np.float32)
    generated[:, 64:] = np.clip(rng.normal((60, 110, 160), 20, size=(h, 64, 3)), 0, 255)  # a colour cast
    rings = seam_rings(new_area, band=4, width=12, distance_to_new=distance_from(new_area),
                       distance_to_known=distance_from(~new_area))
    assert rings[0].any() and rings[1].any() and not (rings[0] & new_area).any() and (rings[1] <= new_area).all()
    matched = match_new_content(generated, reference, rings[0], rings[1], new_area)
    target = lab_stats(rgb_to_lab(reference), rings[0])
    before = lab_stats(rgb_to_lab(generated), rings[1])
    after = lab_stats(rgb_to_lab(np.clip(matched, 0, 255)), rings[1])
    for c in range(3):
        assert abs(after.mean[c] - target.mean[c]) < abs(before.mean[c] - target.mean[c]) / 4
    # only new content changes
    assert (matched[:, :64] == generated[:, :64]).all()


def test_color_match_skips_when_a_ring_is_empty():
    generated = np.full((10, 10, 3), 50, dtype=np.float32)
    none = np.zeros((10, 10), dtype=bool)
    out = match_new_content(generated, generated.astype(np.uint8), none, ~none, ~none)
    assert (out == generated).all()


@pytest.mark.parametrize("band,feather", [(0, 0), (8, 0), (8, 8), (8, 30)])
def test_zero_and_clamped_feather(band, feather):
    known = _frame()
    masks = build_masks(~known, band, feather)
    assert (masks.composite[known & (distance_from(~known) >= max(band, 1))] == 0).all()
