"""Outpaint geometry: exact sizes, anchors, aspect presets, limits, passes, the 8-aligned work canvas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segfill.errors import InputError
from segfill.outpaint.geometry import (
    ANCHORS,
    ASPECT_PRESETS,
    MAX_CANVAS_SIDE,
    Padding,
    grow_rect,
    parse_anchor,
    parse_aspect,
    resolve_padding,
    split_into_passes,
    target_for_aspect,
    work_canvas_for,
)

sizes = st.tuples(st.integers(1, 700), st.integers(1, 700))


@given(size=sizes, pad=st.tuples(*[st.integers(0, 300)] * 4))
@settings(max_examples=80, deadline=None)
def test_per_side_padding_gives_exact_canvas(size, pad):
    if not any(pad):
        with pytest.raises(InputError):
            resolve_padding(size, left=pad[0], right=pad[1], top=pad[2], bottom=pad[3])
        return
    if any(p > 8 * s for p, s in zip(pad, (size[0], size[0], size[1], size[1]), strict=True)):
        with pytest.raises(InputError):
            resolve_padding(size, left=pad[0], right=pad[1], top=pad[2], bottom=pad[3])
        return
    padding = resolve_padding(size, left=pad[0], right=pad[1], top=pad[2], bottom=pad[3])
    assert padding.canvas_size(size) == (size[0] + pad[0] + pad[1], size[1] + pad[2] + pad[3])
    x0, y0, x1, y1 = padding.original_rect(size)
    assert (x1 - x0, y1 - y0) == size and (x0, y0) == (pad[0], pad[2])


@given(size=sizes, aspect=st.sampled_from(sorted(ASPECT_PRESETS)), anchor=st.sampled_from(sorted(ANCHORS)))
@settings(max_examples=80, deadline=None)
def test_aspect_and_anchor(size, aspect, anchor):
    aw, ah = ASPECT_PRESETS[aspect]
    target = target_for_aspect(size, (aw, ah))
    assert target[0] >= size[0] and target[1] >= size[1]
    # the canvas has the aspect up to one pixel of rounding, and one side is the image's
    assert target[0] == size[0] or target[1] == size[1]
    assert abs(target[0] * ah - target[1] * aw) <= max(aw, ah)
    fx, fy = ANCHORS[anchor]
    extra_w, extra_h = target[0] - size[0], target[1] - size[1]
    left, top = round(extra_w * fx), round(extra_h * fy)
    sides = ((left, size[0]), (extra_w - left, size[0]), (top, size[1]), (extra_h - top, size[1]))
    if target == size or any(pad > 8 * side for pad, side in sides):
        with pytest.raises(InputError):
            resolve_padding(size, aspect=aspect, anchor=anchor)
        return
    padding = resolve_padding(size, aspect=aspect, anchor=anchor)
    assert padding.canvas_size(size) == target
    assert padding.left == left and padding.top == top
    if fx == 0:
        assert padding.left == 0
    if fx == 1:
        assert padding.right == 0


def test_target_size_and_fraction_anchor():
    padding = resolve_padding((100, 50), target_size=(200, 150), anchor="0.25,1")
    assert padding == Padding(left=25, right=75, top=100, bottom=0)
    with pytest.raises(InputError, match="smaller than the image"):
        resolve_padding((100, 50), target_size=(90, 150))


@pytest.mark.parametrize("text,expected", [("16:9", (16, 9)), ("9:16", (9, 16)), ("3x2", (3, 2)), ("1.5", (3, 2)),
                                           ("2.39:1", (239, 100))])
def test_parse_aspect(text, expected):
    assert parse_aspect(text) == expected


@pytest.mark.parametrize("bad", ["wide", "0:1", "-1:2", "100:1", ""])
def test_parse_aspect_rejects(bad):
    with pytest.raises(InputError):
        parse_aspect(bad)


def test_parse_anchor():
    assert parse_anchor("Top Left") == (0.0, 0.0)
    assert parse_anchor("centre") == (0.5, 0.5)
    assert parse_anchor("0.2,0.9") == (0.2, 0.9)
    for bad in ("middle-ish", "2,0", "0.5"):
        with pytest.raises(InputError):
            parse_anchor(bad)


def test_limits_are_one_sentence_errors():
    with pytest.raises(InputError, match="zero"):
        resolve_padding((64, 64))
    with pytest.raises(InputError, match="more than 8x"):
        resolve_padding((64, 64), left=64 * 8 + 1)
    with pytest.raises(InputError, match=str(MAX_CANVAS_SIDE)):
        resolve_padding((4000, 4000), left=13000)
    with pytest.raises(InputError, match="not several"):
        resolve_padding((64, 64), left=8, aspect="16:9")
    with pytest.raises(InputError, match="negative"):
        Padding(left=-1)


@given(pad=st.tuples(*[st.integers(0, 2000)] * 4), step=st.integers(16, 600))
@settings(max_examples=80, deadline=None)
def test_passes_sum_to_padding_and_respect_step(pad, step):
    passes = split_into_passes(Padding(*pad), step)
    for side in range(4):
        assert sum(p.as_tuple()[side] for p in passes) == pad[side]
    assert all(max(p.as_tuple()) <= step for p in passes)
    assert len(passes) == (max(-(-v // step) for v in pad) if any(pad) else 0)
    # every side that grows at all grows from the first pass on (so a later band never reaches the original)
    for side in range(4):
        if pad[side]:
            assert passes[0].as_tuple()[side] > 0


@given(size=sizes, pad=st.tuples(*[st.integers(0, 300)] * 4))
@settings(max_examples=80, deadline=None)
def test_work_canvas_is_aligned_and_contains_output(size, pad):
    padding = Padding(*pad)
    canvas = padding.canvas_size(size)
    work = work_canvas_for(canvas, padding)
    assert work.size[0] % 8 == 0 and work.size[1] % 8 == 0
    assert 0 <= work.size[0] - canvas[0] < 8 and 0 <= work.size[1] - canvas[1] < 8
    x0, y0, x1, y1 = work.output_rect
    assert (x1 - x0, y1 - y0) == canvas and x0 >= 0 and y0 >= 0 and x1 <= work.size[0] and y1 <= work.size[1]
    # the extra never sits next to the original on a side that is not padded while the opposite one is
    if padding.left > 0 and padding.right == 0:
        assert x1 == work.size[0]


def test_grow_rect():
    assert grow_rect((10, 20, 30, 40), Padding(1, 2, 3, 4)) == (9, 17, 32, 44)
