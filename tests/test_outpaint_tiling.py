"""Tile planner and plans: coverage, alignment, no wasted tiles, order, seeds, blend windows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segfill.args import InpaintArgs, OutpaintArgs
from segfill.errors import InputError
from segfill.outpaint.plan import plan_inpaint, plan_outpaint
from segfill.outpaint.tiling import axis_starts, blend_window, derive_seed, plan_tiles, taper


@given(lo=st.integers(0, 900), length=st.integers(1, 900), tile=st.sampled_from([64, 128, 512]),
       overlap=st.integers(0, 300), extra=st.integers(0, 400))
@settings(max_examples=150, deadline=None)
def test_axis_starts_cover_the_span_inside_the_canvas(lo, length, tile, overlap, extra):
    limit = -(-(lo + length + extra) // 8) * 8
    hi = lo + length
    starts = axis_starts(lo, hi, tile, overlap, limit)
    t = min(tile, limit)
    covered = np.zeros(limit, dtype=bool)
    for s in starts:
        assert 0 <= s and s + t <= limit and s % 8 == 0
        covered[s:s + t] = True
    assert covered[lo:hi].all()
    effective = min(overlap, t // 2, t - 8)
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a <= t - effective  # neighbours share at least the overlap


geometry = st.fixed_dictionaries({
    "size": st.tuples(st.integers(8, 300), st.integers(8, 300)),
    "pad": st.tuples(*[st.integers(0, 260)] * 4),
    "tile": st.sampled_from([64, 96, 128]),
    "overlap": st.integers(0, 48),
    "band": st.integers(0, 20),
    "feather": st.integers(0, 20),
})


def _plan(g, **extra):
    if not any(g["pad"]) or any(p > 8 * s for p, s in zip(g["pad"], (g["size"][0],) * 2 + (g["size"][1],) * 2, strict=True)):
        return None
    left, right, top, bottom = g["pad"]
    args = OutpaintArgs(left=left, right=right, top=top, bottom=bottom, tile_size=g["tile"], overlap=g["overlap"],
                        band=g["band"], feather=g["feather"], **extra)
    return plan_outpaint(g["size"], args)


@given(g=geometry)
@settings(max_examples=60, deadline=None)
def test_outpaint_plan_properties(g):
    plan = _plan(g)
    if plan is None:
        return
    ww, wh = plan.work.size
    assert ww % 8 == 0 and wh % 8 == 0
    assert plan.output_size == (g["size"][0] + g["pad"][0] + g["pad"][1], g["size"][1] + g["pad"][2] + g["pad"][3])
    new_area_total = np.zeros((wh, ww), dtype=bool)
    for p in plan.passes:
        bx0, by0, bx1, by1 = p.bounds
        covered = np.zeros((by1 - by0, bx1 - bx0), dtype=bool)
        for t in p.tiles:
            w, h = t.size
            # sizes: multiples of 8, at most the working size, inside the work canvas
            assert w % 8 == 0 and h % 8 == 0 and w <= g["tile"] and h <= g["tile"]
            assert 0 <= t.x0 and 0 <= t.y0 and t.x1 <= ww and t.y1 <= wh
            local = (slice(t.y0 - by0, t.y1 - by0), slice(t.x0 - bx0, t.x1 - bx0))
            # no tile lies wholly in untouched content: every tile has something to denoise
            assert (p.masks.denoise[local] > 0).any()
            covered[local] = True
        # every pixel to denoise (the new area and its band) is covered by at least one tile
        assert covered[p.masks.denoise > 0].all()
        assert covered[p.new_area].all()
        new_area_total[by0:by1, bx0:bx1] |= p.new_area
    # the union of the passes' new areas is exactly the output minus the original
    x0, y0, x1, y1 = plan.work.output_rect
    expected = np.zeros((wh, ww), dtype=bool)
    expected[y0:y1, x0:x1] = True
    ix0, iy0, ix1, iy1 = plan.image_rect
    expected[iy0:iy1, ix0:ix1] = False
    assert (new_area_total == expected).all()


@given(g=geometry)
@settings(max_examples=30, deadline=None)
def test_plan_is_deterministic_and_json(g):
    plan = _plan(g)
    if plan is None:
        return
    again = _plan(g)
    assert plan.to_dict() == again.to_dict()
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["tile_count"] == plan.total_tiles == sum(len(p["tiles"]) for p in data["passes"])
    seeds = [t.seed for t in plan.tiles]
    assert len(set(seeds)) == len(seeds)  # one job seed, distinct derived tile seeds
    for t in plan.tiles:
        assert t.seed == derive_seed(0, t.pass_index, t.index, t.kind)


def test_multi_pass_extends_by_at_most_the_step_and_keeps_context():
    args = OutpaintArgs(left=700, right=30, tile_size=128, overlap=16, band=8, feather=4, max_step=64)
    plan = plan_outpaint((100, 80), args)
    assert len(plan.passes) == 11  # ceil(700 / 64)
    previous = plan.image_rect
    for p in plan.passes:
        assert p.known_rect == previous
        assert previous[0] - p.target_rect[0] <= 64
        previous = p.target_rect
        for t in p.tiles:
            # each tile sees known content: it overlaps the rectangle known before the pass
            kx0, ky0, kx1, ky1 = p.known_rect
            assert min(t.x1, kx1) - max(t.x0, kx0) > 0 and min(t.y1, ky1) - max(t.y0, ky0) > 0
    assert plan.passes[-1].target_rect == plan.work.output_rect


def test_band_must_be_narrower_than_the_step():
    with pytest.raises(InputError, match="narrower"):
        plan_outpaint((64, 64), OutpaintArgs(left=200, band=40, max_step=32))


def test_tiles_start_next_to_the_original_and_corners_come_last():
    plan = plan_outpaint((256, 256), OutpaintArgs(left=128, right=128, top=128, bottom=128, tile_size=128,
                                                  overlap=32, band=8, feather=8))
    assert len(plan.passes) == 2
    for p in plan.passes:
        x0, y0, x1, y1 = p.known_rect

        def is_corner(t, x0=x0, y0=y0, x1=x1, y1=y1):
            cx, cy = (t.x0 + t.x1) / 2, (t.y0 + t.y1) / 2
            return (cx <= x0 or cx >= x1) and (cy <= y0 or cy >= y1)

        corners = [i for i, t in enumerate(p.tiles) if is_corner(t)]
        sides = [i for i, t in enumerate(p.tiles) if not is_corner(t)]
        assert len(corners) == 4 and sides and max(sides) < min(corners)


def test_plan_tiles_only_where_the_region_is():
    region = np.zeros((256, 256), dtype=bool)
    region[10:20, 10:20] = True
    region[200:210, 230:240] = True
    for boxes, most in (([(0, 0, 256, 256)], 4), ([(10, 10, 20, 20), (230, 200, 240, 210)], 2)):
        tiles = plan_tiles(region, boxes, (64, 64), 16, seed=5)
        covered = np.zeros_like(region)
        for t in tiles:
            assert region[t.slices].any()
            covered[t.slices] = True
        assert covered[region].all()
        assert len(tiles) <= most


def test_inpaint_plan_crops_around_the_mask_and_tiles_large_crops():
    mask = np.zeros((1000, 1200), dtype=bool)
    mask[100:140, 100:150] = True  # small: one tile with context
    mask[500:900, 300:1100] = True  # larger than the tile: a grid over the masked pixels only
    plan = plan_inpaint((1200, 1000), mask, InpaintArgs(tile_size=256, overlap=32, band=8, feather=8, context=32))
    assert len(plan.regions) == 2
    small = [t for t in plan.tiles if t.y1 <= 400]
    assert len(small) == 1 and small[0].size == (256, 256)
    p = plan.passes[0]
    covered = np.zeros(p.masks.denoise.shape, dtype=bool)
    for t in plan.tiles:
        assert (p.masks.denoise[t.slices] > 0).any()
        covered[t.slices] = True
    assert covered[p.masks.denoise > 0].all()
    assert len(plan.tiles) < (1200 // 224 + 1) * (1000 // 224 + 1)  # not the whole image


def test_inpaint_plan_errors():
    with pytest.raises(InputError, match="empty"):
        plan_inpaint((64, 64), np.zeros((64, 64), bool), InpaintArgs())
    with pytest.raises(InputError, match="64x32"):
        plan_inpaint((64, 64), np.ones((32, 64), bool), InpaintArgs())


@pytest.mark.parametrize("kind", ["cosine", "gaussian"])
def test_taper_is_smooth_positive_and_symmetric(kind):
    w = taper(128, 32, True, True, kind)
    assert w.min() > 0 and w.max() == 1.0
    assert np.allclose(w, w[::-1])
    ramp = w[:32]
    assert (np.diff(ramp) > 0).all()
    if kind == "cosine":  # zero slope at both ends of the ramp, unlike a linear ramp
        assert ramp[1] - ramp[0] < (ramp[16] - ramp[15]) / 4


def test_blend_window_tapers_only_inner_edges():
    win = blend_window((0, 0, 64, 64), (128, 128), 16)
    assert win[0, 0] == 1.0 and win[0, 63] < 0.05 and win[63, 0] < 0.05
    win = blend_window((64, 64, 128, 128), (128, 128), 16)
    assert win[63, 63] == 1.0 and win[0, 0] < 0.01


def test_fresh_blend_weights_cross_fade_into_generated_content():
    from segfill.outpaint.tiling import fresh_blend_weights

    region = np.ones((32, 64), dtype=bool)
    generated = np.zeros((32, 64), dtype=bool)
    generated[:, :32] = True  # the left half came from an earlier tile
    w = fresh_blend_weights(region, generated, 8, "cosine")
    assert (w[:, 32:] == 1).all()  # fresh pixels: this tile's result
    assert (w[:, :24] == 0).all()  # deep in the neighbour's content: untouched, visible as context
    row = w[0, 22:34]
    assert (np.diff(row) >= 0).all() and 0 < row[5] < 1  # a smooth ramp across the band
    assert (fresh_blend_weights(region, np.zeros_like(region), 8) == 1).all()
    assert (fresh_blend_weights(region, generated, 0) == ~generated).all()


def test_tiles_adding_nothing_new_are_dropped():
    region = np.zeros((128, 128), dtype=bool)
    region[:, :40] = True
    boxes = [(0, 0, 128, 128)]
    kept = plan_tiles(region, boxes, (64, 64), 48, seed=0, drop_covered=True)
    every = plan_tiles(region, boxes, (64, 64), 48, seed=0)
    assert len(kept) < len(every)
    covered = np.zeros_like(region)
    for t in kept:
        covered[t.slices] = True
    assert covered[region].all()
