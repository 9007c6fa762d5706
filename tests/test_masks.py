"""Tests for segfill.masks: hand-checked synthetic cases plus hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy import ndimage

from segfill import masks
from segfill.args import MaskRefinement
from segfill.errors import InputError, SegFillError
from segfill.masks import CombineOp

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bool_masks(max_side: int = 24) -> st.SearchStrategy[np.ndarray]:
    shapes = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return shapes.flatmap(lambda shape: arrays(np.bool_, shape))


def disc_offsets(radius: float) -> np.ndarray:
    """The digital disc {dx² + dy² <= r²} as a structuring element, built independently of the code under test."""
    half = int(np.floor(radius))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    return (yy**2 + xx**2) <= radius**2


def square_mask(size: int = 32, x0: int = 8, y0: int = 8, side: int = 12) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


# ----------------------------------------------------------------------------------------------------------
# mask_from_image / mask_to_image / image_to_rgb
# ----------------------------------------------------------------------------------------------------------

REFERENCE = square_mask(16, 4, 3, 6)  # 16×16, a 6×6 square


def _l_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.uint8) * 255, "L")


def _mode_cases() -> dict[str, Image.Image]:
    m = REFERENCE
    grey = m.astype(np.uint8) * 255
    zeros = np.zeros_like(grey)
    full = np.full_like(grey, 255)
    palette_image = Image.fromarray(m.astype(np.uint8), "P")
    palette_image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    # Same colour for both indices; index 0 (outside the mask) is transparent, so only alpha tells them apart.
    transparent_palette = Image.fromarray(m.astype(np.uint8), "P")
    transparent_palette.putpalette([10, 20, 30, 10, 20, 30] + [0] * 762)
    transparent_palette.info["transparency"] = 0
    return {
        "1": _l_image(m).convert("1"),
        "L": _l_image(m),
        "LA alpha": Image.fromarray(np.dstack([full, grey]), "LA"),  # grey ignored, alpha paints the mask
        "LA opaque": Image.fromarray(np.dstack([grey, full]), "LA"),
        "RGB": Image.fromarray(np.dstack([grey, grey, grey]), "RGB"),
        "RGB red": Image.fromarray(np.dstack([grey, zeros, zeros]), "RGB"),  # luma 76 of 255 -> off
        "RGBA alpha": Image.fromarray(np.dstack([zeros, zeros, zeros, grey]), "RGBA"),
        "RGBA opaque": Image.fromarray(np.dstack([grey, grey, grey, full]), "RGBA"),
        "I;16": Image.fromarray(m.astype(np.uint16) * 65535),
        "I 16-bit": Image.fromarray(m.astype(np.int32) * 65535, "I"),
        "I 8-bit": Image.fromarray(m.astype(np.int32) * 255, "I"),
        "F unit": Image.fromarray(m.astype(np.float32), "F"),
        "F 8-bit": Image.fromarray(m.astype(np.float32) * 255, "F"),
        "P": palette_image,
        "P transparency": transparent_palette,
        "CMYK": Image.fromarray(np.dstack([grey, grey, grey]), "RGB").convert("CMYK"),
    }


MODE_CASES = _mode_cases()


@pytest.mark.parametrize("name", sorted(MODE_CASES))
def test_mask_from_image_reads_every_mode(name):
    image = MODE_CASES[name]
    result = masks.mask_from_image(image, size=(16, 16))
    assert result.dtype == np.bool_
    assert result.shape == (16, 16)
    expected = np.zeros_like(REFERENCE) if name == "RGB red" else REFERENCE
    np.testing.assert_array_equal(result, expected)
    soft = masks.mask_from_image(image, soft=True)
    assert soft.dtype == np.float32
    assert 0.0 <= soft.min() and soft.max() <= 1.0
    np.testing.assert_array_equal(soft >= 0.5, expected)


def test_case_modes_are_what_they_claim():
    assert MODE_CASES["I;16"].mode == "I;16"
    assert MODE_CASES["P transparency"].mode == "P"
    assert {MODE_CASES[n].mode for n in ("LA alpha", "RGBA alpha", "F unit", "I 8-bit")} == {"LA", "RGBA", "F", "I"}


def test_rgba_uses_luminance_when_fully_opaque_and_alpha_otherwise():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = 255
    opaque = Image.fromarray(np.dstack([rgb, np.full((2, 2), 255, np.uint8)]), "RGBA")
    np.testing.assert_array_equal(masks.mask_from_image(opaque), [[True, False], [False, False]])
    alpha = np.array([[255, 255], [0, 255]], np.uint8)
    painted = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    np.testing.assert_array_equal(masks.mask_from_image(painted), [[True, True], [False, True]])


def test_soft_values_and_fifty_percent_threshold():
    values = np.array([[0, 64, 127, 128, 255]], np.uint8)
    soft = masks.mask_from_image(Image.fromarray(values, "L"), soft=True)
    np.testing.assert_allclose(soft, values / 255.0, atol=1e-6)
    np.testing.assert_array_equal(masks.mask_from_image(Image.fromarray(values, "L")), [[0, 0, 0, 1, 1]])
    wide = np.array([[0, 32767, 32768, 65535]], np.uint16)
    np.testing.assert_array_equal(masks.mask_from_image(Image.fromarray(wide)), [[0, 0, 1, 1]])
    np.testing.assert_allclose(masks.mask_from_image(Image.fromarray(wide), soft=True), wide / 65535.0, atol=1e-6)


@pytest.mark.parametrize(
    "array",
    [
        REFERENCE,
        REFERENCE.astype(np.uint8) * 255,
        REFERENCE.astype(np.uint8),  # 0/1 integers from numpy code
        REFERENCE.astype(np.int64),
        REFERENCE.astype(np.uint16) * 65535,
        REFERENCE.astype(np.float64),
        REFERENCE.astype(np.float32) * 0.9,
        REFERENCE[:, :, None].astype(np.uint8) * 255,
        np.dstack([REFERENCE.astype(np.uint8) * 255] * 3),
        np.dstack([np.zeros((16, 16, 3), np.uint8), REFERENCE.astype(np.uint8) * 255]),
        np.dstack([np.zeros((16, 16), np.float32), REFERENCE.astype(np.float32)]),
    ],
    ids=["bool", "u8", "u8-01", "i64-01", "u16", "f64", "f32", "hw1", "hw3", "rgba", "la-float"],
)
def test_mask_from_array(array):
    np.testing.assert_array_equal(masks.mask_from_image(array), REFERENCE)


def test_size_mismatch_names_both_sizes():
    image = Image.new("L", (100, 80))
    with pytest.raises(InputError) as info:
        masks.mask_from_image(image, size=(120, 80))
    assert str(info.value) == "Mask is 100×80 px but the image is 120×80 px."
    assert isinstance(info.value, SegFillError)
    with pytest.raises(InputError, match="100×80 px"):
        masks.bounding_box(np.ones((80, 100), bool), image_size=(120, 80))


@pytest.mark.parametrize(
    "bad", [Image.new("L", (0, 5)), np.zeros((0, 4), bool), np.zeros((3, 4, 5)), np.zeros(7), np.array([["a"]])]
)
def test_bad_or_empty_inputs_are_input_errors(bad):
    with pytest.raises(InputError):
        masks.mask_from_image(bad)


def test_image_to_rgb_rejects_empty_and_odd_shapes():
    with pytest.raises(InputError, match="empty"):
        masks.image_to_rgb(Image.new("RGB", (4, 0)))
    with pytest.raises(InputError):
        masks.image_to_rgb(np.zeros((4, 4, 7), np.uint8))


def test_mask_to_image_bool_float_and_uint8():
    image = masks.mask_to_image(np.array([[True, False]]))
    assert image.mode == "L" and image.size == (2, 1)
    assert list(image.getdata()) == [255, 0]
    soft = masks.mask_to_image(np.array([[0.0, 0.5, 0.2, 1.0, 1.7, -1.0]], np.float32))
    assert list(soft.getdata()) == [0, 128, 51, 255, 255, 0]
    assert list(masks.mask_to_image(np.array([[0, 1]], np.uint8)).getdata()) == [0, 255]
    assert list(masks.mask_to_image(np.array([[0, 7, 200]], np.uint8)).getdata()) == [0, 7, 200]
    with pytest.raises(InputError):
        masks.mask_to_image(np.zeros((2, 2, 2), bool))


@FAST
@given(bool_masks())
def test_mask_round_trip_through_every_mode(mask):
    image = masks.mask_to_image(mask)
    for mode in ("1", "L", "LA", "RGB", "RGBA", "I", "F", "P"):
        np.testing.assert_array_equal(masks.mask_from_image(image.convert(mode), size=image.size), mask)
    sixteen = Image.fromarray(mask.astype(np.uint16) * 65535)
    np.testing.assert_array_equal(masks.mask_from_image(sixteen), mask)


def test_image_to_rgb_modes():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(masks.image_to_rgb(Image.fromarray(rgb)), rgb)
    rgba = np.dstack([rgb, np.zeros((5, 7), np.uint8)])  # fully transparent: colours are kept, alpha dropped
    np.testing.assert_array_equal(masks.image_to_rgb(Image.fromarray(rgba, "RGBA")), rgb)
    np.testing.assert_array_equal(masks.image_to_rgb(rgba), rgb)
    grey = rgb[:, :, 0]
    np.testing.assert_array_equal(masks.image_to_rgb(Image.fromarray(grey, "L")), np.dstack([grey] * 3))
    np.testing.assert_array_equal(masks.image_to_rgb(grey), np.dstack([grey] * 3))
    np.testing.assert_array_equal(masks.image_to_rgb(np.dstack([grey, grey])), np.dstack([grey] * 3))
    palette = Image.fromarray(rgb).quantize(16)
    assert palette.mode == "P"
    np.testing.assert_array_equal(masks.image_to_rgb(palette), np.asarray(palette.convert("RGB")))
    bilevel = masks.image_to_rgb(Image.fromarray(grey >= 128).convert("1"))
    np.testing.assert_array_equal(bilevel[:, :, 1], np.where(grey >= 128, 255, 0))


def test_image_to_rgb_scales_wide_modes_to_8_bit():
    levels = np.array([[0, 257, 32896, 65535]], np.uint16)
    for image in (Image.fromarray(levels), Image.fromarray(levels.astype(np.int32), "I")):
        out = masks.image_to_rgb(image)
        assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
        np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    np.testing.assert_array_equal(masks.image_to_rgb(unit)[0, :, 2], [0, 128, 255])
    eight = Image.fromarray(np.array([[0.0, 100.0, 255.0]], np.float32), "F")
    np.testing.assert_array_equal(masks.image_to_rgb(eight)[0, :, 2], [0, 100, 255])
    np.testing.assert_array_equal(masks.image_to_rgb(np.array([[True, False]]))[0, :, 0], [255, 0])
    assert masks.image_to_rgb(Image.new("RGB", (3, 2))).flags.writeable


# ----------------------------------------------------------------------------------------------------------
# grow / shrink
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [1, 2, 2.5, 3, 7])
def test_single_pixel_grows_into_the_digital_disc(radius):
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    grown = masks.grow(mask, radius)
    yy, xx = np.mgrid[:21, :21]
    np.testing.assert_array_equal(grown, (yy - 10) ** 2 + (xx - 10) ** 2 <= radius**2)


def test_grow_by_three_is_the_13_by_13_hand_drawn_disc():
    mask = np.zeros((7, 7), bool)
    mask[3, 3] = True
    expected = np.array(
        [
            [0, 0, 0, 1, 0, 0, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 0, 0, 1, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(masks.grow(mask, 3), expected)


def test_grow_at_the_corner_and_large_radius():
    mask = np.zeros((50, 60), bool)
    mask[0, 0] = True
    grown = masks.grow(mask, 40)
    yy, xx = np.mgrid[:50, :60]
    np.testing.assert_array_equal(grown, yy**2 + xx**2 <= 1600)


def test_shrink_square_and_grow_then_shrink_restores_it():
    square = square_mask(32, 8, 8, 12)
    np.testing.assert_array_equal(masks.shrink(square, 2), square_mask(32, 10, 10, 8))
    np.testing.assert_array_equal(masks.shrink(masks.grow(square, 5), 5), square)
    assert not masks.shrink(square, 6).any()
    np.testing.assert_array_equal(masks.shrink(square, 5.9), square_mask(32, 13, 13, 2))


def test_shrink_does_not_eat_in_from_the_image_border():
    full = np.ones((10, 10), bool)
    np.testing.assert_array_equal(masks.shrink(full, 4), full)
    left = np.zeros((10, 10), bool)
    left[:, :6] = True
    expected = np.zeros((10, 10), bool)
    expected[:, :4] = True
    np.testing.assert_array_equal(masks.shrink(left, 2), expected)


@pytest.mark.parametrize("fn", [masks.grow, masks.shrink])
def test_negative_or_nonsense_radius_is_an_input_error(fn):
    with pytest.raises(InputError):
        fn(np.ones((3, 3), bool), -1)
    with pytest.raises(InputError):
        fn(np.ones((3, 3), bool), "big")


@FAST
@given(bool_masks(), st.floats(0, 6))
def test_grow_and_shrink_match_scipy_with_a_disc(mask, radius):
    disc = disc_offsets(radius)
    grown = masks.grow(mask, radius)
    shrunk = masks.shrink(mask, radius)
    np.testing.assert_array_equal(grown, ndimage.binary_dilation(mask, disc))
    np.testing.assert_array_equal(shrunk, ndimage.binary_erosion(mask, disc, border_value=1))
    assert not (mask & ~grown).any()  # grow is a superset
    assert not (shrunk & ~mask).any()  # shrink is a subset
    np.testing.assert_array_equal(shrunk, ~masks.grow(~mask, radius))


@FAST
@given(bool_masks(), st.integers(0, 4), st.integers(0, 4))
def test_grow_is_monotone_and_additive(mask, a, b):
    np.testing.assert_array_equal(masks.grow(mask, 0), mask)
    np.testing.assert_array_equal(masks.shrink(mask, 0), mask)
    small, large = sorted((a, b))
    assert not (masks.grow(mask, small) & ~masks.grow(mask, large)).any()
    bigger = masks.grow(mask, 1) | mask
    assert not (masks.grow(mask, a) & ~masks.grow(bigger, a)).any()


def test_grow_accepts_uint8_and_float_masks_and_does_not_modify_input():
    mask = np.zeros((9, 9), np.uint8)
    mask[4, 4] = 255
    before = mask.copy()
    assert masks.grow(mask, 1).sum() == 5
    np.testing.assert_array_equal(mask, before)
    assert masks.grow(mask.astype(np.float32) / 255, 1).sum() == 5


# ----------------------------------------------------------------------------------------------------------
# holes, islands, invert, combine
# ----------------------------------------------------------------------------------------------------------


def _disc(size: int, cy: int, cx: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def test_fill_holes_fills_a_ring_but_not_an_open_c():
    disc = _disc(30, 15, 15, 10)
    ring = disc & ~_disc(30, 15, 15, 5)
    np.testing.assert_array_equal(masks.fill_holes(ring), disc)
    opened = ring.copy()
    opened[14:17, 15:] = False  # cut the ring open to the right: no longer a hole
    np.testing.assert_array_equal(masks.fill_holes(opened), opened)
    frame = np.ones((6, 6), bool)
    frame[2:4, 2:4] = False
    np.testing.assert_array_equal(masks.fill_holes(frame), np.ones((6, 6), bool))
    assert not masks.fill_holes(np.zeros((4, 4), bool)).any()


def test_fill_holes_diagonal_gap_does_not_leak():
    # An 8-connected diamond outline encloses its centre: background is 4-connected.
    diamond = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], bool)
    padded = np.pad(diamond, 1)
    filled = masks.fill_holes(padded)
    assert filled[2, 2] and filled.sum() == 5


def test_remove_small_islands_by_area():
    mask = np.zeros((20, 20), bool)
    mask[1, 1] = True  # area 1
    mask[5:7, 5:7] = True  # area 4
    mask[10:13, 10:13] = True  # area 9
    mask[16, 16] = mask[17, 17] = True  # diagonal pair: one 8-connected island of area 2
    kept = masks.remove_small_islands(mask, 5)
    expected = np.zeros_like(mask)
    expected[10:13, 10:13] = True
    np.testing.assert_array_equal(kept, expected)
    two = masks.remove_small_islands(mask, 2)
    assert not two[1, 1] and two[16, 16] and two[17, 17] and two[5, 5]
    four = mask.copy()
    four[1, 1] = four[16, 16] = four[17, 17] = False  # areas 1 and 2 go, 4 and 9 stay
    np.testing.assert_array_equal(masks.remove_small_islands(mask, 4), four)
    np.testing.assert_array_equal(masks.remove_small_islands(mask, 0), mask)
    assert not masks.remove_small_islands(mask, 10).any()


def test_remove_small_holes_by_area_and_not_at_the_border():
    mask = np.ones((20, 20), bool)
    mask[2, 2] = False  # hole of area 1
    mask[5:7, 5:7] = False  # area 4
    mask[10:13, 10:13] = False  # area 9
    mask[0, 15] = False  # touches the border: not a hole
    filled = masks.remove_small_holes(mask, 5)
    expected = np.ones_like(mask)
    expected[10:13, 10:13] = False
    expected[0, 15] = False
    np.testing.assert_array_equal(filled, expected)
    np.testing.assert_array_equal(masks.remove_small_holes(mask, 1), mask)
    np.testing.assert_array_equal(masks.remove_small_holes(mask, 10**9), masks.fill_holes(mask))


def test_remove_small_holes_inside_a_small_object():
    mask = square_mask(20, 4, 4, 5)
    mask[6, 6] = False
    np.testing.assert_array_equal(masks.remove_small_holes(mask, 2), square_mask(20, 4, 4, 5))


@pytest.mark.parametrize("fn", [masks.remove_small_islands, masks.remove_small_holes])
def test_negative_area_is_an_input_error(fn):
    with pytest.raises(InputError):
        fn(np.ones((3, 3), bool), -5)


@FAST
@given(bool_masks(), st.integers(0, 12))
def test_islands_and_holes_properties(mask, area):
    without_islands = masks.remove_small_islands(mask, area)
    assert not (without_islands & ~mask).any()
    labels, count = ndimage.label(without_islands, structure=np.ones((3, 3)))
    assert all(size >= area for size in np.bincount(labels.ravel())[1:])
    without_holes = masks.remove_small_holes(mask, area)
    assert not (mask & ~without_holes).any()
    assert not (without_holes & ~masks.fill_holes(mask)).any()  # only holes are filled


@FAST
@given(bool_masks())
def test_fill_holes_matches_scipy(mask):
    np.testing.assert_array_equal(masks.fill_holes(mask), ndimage.binary_fill_holes(mask))


@FAST
@given(bool_masks())
def test_invert_is_an_involution(mask):
    np.testing.assert_array_equal(masks.invert(mask), ~mask)
    np.testing.assert_array_equal(masks.invert(masks.invert(mask)), mask)
    np.testing.assert_array_equal(masks.fill_holes(masks.fill_holes(mask)), masks.fill_holes(mask))


def test_combine_truth_tables():
    current = np.array([[False, False, True, True]])
    new = np.array([[False, True, False, True]])
    tables = {
        CombineOp.ADD: [False, True, True, True],
        CombineOp.SUBTRACT: [False, False, True, False],
        CombineOp.INTERSECT: [False, False, False, True],
        CombineOp.REPLACE: [False, True, False, True],
    }
    for op, expected in tables.items():
        np.testing.assert_array_equal(masks.combine(current, new, op)[0], expected)
        np.testing.assert_array_equal(masks.combine(current, new, op.value)[0], expected)
        np.testing.assert_array_equal(masks.combine(current, new, op.name)[0], expected)
    assert [op.value for op in CombineOp] == ["add", "subtract", "intersect", "replace"]
    assert CombineOp("add") is CombineOp.ADD and CombineOp.ADD == "add"


def test_combine_errors():
    with pytest.raises(InputError, match="Unknown way to combine"):
        masks.combine(np.ones((2, 2), bool), np.ones((2, 2), bool), "xor")
    with pytest.raises(InputError, match="2×2 px"):
        masks.combine(np.ones((2, 2), bool), np.ones((2, 3), bool), "add")


@FAST
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(*[arrays(np.bool_, (n, n))] * 3)))
def test_combine_laws(abc):
    a, b, c = abc
    add, sub, inter = CombineOp.ADD, CombineOp.SUBTRACT, CombineOp.INTERSECT
    np.testing.assert_array_equal(masks.combine(a, b, add), masks.combine(b, a, add))
    np.testing.assert_array_equal(masks.combine(a, b, inter), masks.combine(b, a, inter))
    np.testing.assert_array_equal(
        masks.combine(masks.combine(a, b, add), c, add), masks.combine(a, masks.combine(b, c, add), add)
    )
    np.testing.assert_array_equal(masks.combine(a, a, add), a)
    assert not masks.combine(a, a, sub).any()
    assert not (masks.combine(a, b, sub) & b).any()
    # a is split exactly into (a - b) and (a ∩ b)
    np.testing.assert_array_equal(masks.combine(masks.combine(a, b, sub), masks.combine(a, b, inter), add), a)
    np.testing.assert_array_equal(masks.combine(a, b, CombineOp.REPLACE), b)



@FAST
@given(st.integers(1, 20).flatmap(lambda h: st.integers(1, 20).flatmap(lambda w: arrays(np.bool_, (h, w)))))
def test_pack_mask_round_trips(mask):
    packed = masks.pack_mask(mask)
    assert isinstance(packed, bytes)
    np.testing.assert_array_equal(masks.unpack_mask(packed, mask.shape), mask)


def test_pack_mask_reads_other_dtypes_like_the_other_mask_functions():
    soft = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(masks.unpack_mask(masks.pack_mask(soft), (1, 4)), [[False, False, True, True]])

# ----------------------------------------------------------------------------------------------------------
# feather
# ----------------------------------------------------------------------------------------------------------


def _distances(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance of outside pixels to the mask, distance of inside pixels to the outside), via scipy."""
    return ndimage.distance_transform_edt(~mask), ndimage.distance_transform_edt(mask)


def test_feather_linear_rows_hand_checked():
    mask = square_mask(16, 5, 5, 6)
    row = lambda direction: masks.feather(mask, 3, "linear", direction)[7]  # noqa: E731
    np.testing.assert_allclose(row("outward"), [0, 0, 0.25, 0.5, 0.75] + [1] * 6 + [0.75, 0.5, 0.25, 0, 0])
    np.testing.assert_allclose(row("inward"), [0] * 5 + [0.25, 0.5, 0.75, 0.75, 0.5, 0.25] + [0] * 5)
    centered = [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1, 1, 1, 0.875, 0.625, 0.375, 0.125, 0, 0]
    np.testing.assert_allclose(masks.feather(square_mask(16, 4, 5, 8), 3, "linear", "centered")[9], centered)


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("px", [1, 4, 9.5])
def test_feather_outward_and_inward_guarantees(method, px):
    mask = _disc(48, 22, 25, 11) | square_mask(48, 30, 30, 10)
    outside_distance, inside_distance = _distances(mask)
    outward = masks.feather(mask, px, method, "outward")
    assert outward.dtype == np.float32 and outward.shape == mask.shape
    assert (outward[mask] == 1.0).all()  # nothing inside loses strength
    assert (outward[outside_distance >= px + 1] == 0.0).all()
    assert (outward[~mask & (outside_distance < px + 1)] > 0).all()
    assert (outward[~mask] < 1).all()
    inward = masks.feather(mask, px, method, "inward")
    assert (inward[~mask] == 0.0).all()  # nothing outside changes
    assert (inward[inside_distance >= px + 1] == 1.0).all()
    assert (inward[mask & (inside_distance < px + 1)] < 1).all()
    assert (inward[mask] > 0).all()
    centered = masks.feather(mask, px, method, "centered")
    assert (centered[mask] > 0.5).all() and (centered[~mask] < 0.5).all()
    for soft in (outward, inward, centered):
        assert soft.min() >= 0.0 and soft.max() <= 1.0


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_feather_dualities(method):
    mask = _disc(40, 20, 18, 9)
    outward_of_inverse = masks.feather(~mask, 5, method, "outward")
    np.testing.assert_allclose(masks.feather(mask, 5, method, "inward"), 1 - outward_of_inverse, atol=1e-6)
    centered_sum = masks.feather(mask, 5, method, "centered") + masks.feather(~mask, 5, method, "centered")
    np.testing.assert_allclose(centered_sum, 1.0, atol=1e-6)


@pytest.mark.parametrize("direction", ["outward", "inward", "centered"])
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_feather_ramp_is_monotone_with_distance(method, direction):
    mask = _disc(64, 32, 32, 14)
    soft = masks.feather(mask, 8, method, direction)
    outside_distance, inside_distance = _distances(mask)
    signed = np.where(mask, inside_distance, -outside_distance).ravel()
    order = np.argsort(signed, kind="stable")
    values, keys = soft.ravel()[order], signed[order]
    # Equal distances give equal values; larger signed distance never gives a smaller value.
    assert (np.diff(values)[np.diff(keys) > 0] >= -1e-6).all()
    assert np.all(np.abs(np.diff(values)[np.diff(keys) == 0]) < 1e-6)


def test_gaussian_profile_keeps_midpoint_and_is_smooth_at_the_ends():
    mask = square_mask(40, 10, 10, 20)
    linear = masks.feather(mask, 7, "linear", "outward")[20]
    gaussian = masks.feather(mask, 7, "gaussian", "outward")[20]
    mid = 30 + 3  # 4 px out of the mask on a 7+1 step ramp: 1 - 4/8
    assert linear[mid] == pytest.approx(0.5) and gaussian[mid] == pytest.approx(0.5, abs=1e-6)
    ramp = slice(30, 37)
    assert (gaussian[ramp][:3] > linear[ramp][:3]).all()  # flatter near the mask, like a blurred edge
    assert (gaussian[ramp][-3:] < linear[ramp][-3:]).all()
    assert (np.diff(gaussian[29:39]) <= 0).all()


def test_feather_zero_relative_and_errors():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 5:45] = True  # 40×10 box: extent sqrt(400) = 20
    np.testing.assert_array_equal(masks.feather(mask, 0), mask.astype(np.float32))
    assert masks.mask_extent(mask) == pytest.approx(20.0)
    np.testing.assert_array_equal(masks.feather(mask, 99, "linear", relative=0.1), masks.feather(mask, 2, "linear"))
    np.testing.assert_array_equal(masks.feather(mask, 5, relative=0.0), mask.astype(np.float32))
    assert not masks.feather(np.zeros((5, 5), bool), 3).any()
    for bad in ({"method": "box"}, {"direction": "sideways"}):
        with pytest.raises(InputError):
            masks.feather(mask, 3, **bad)
    with pytest.raises(InputError):
        masks.feather(mask, -2)
    with pytest.raises(InputError):
        masks.feather(mask, 2, relative=-0.1)


def test_inward_feather_keeps_full_strength_at_the_image_edge():
    mask = np.zeros((20, 20), bool)
    mask[:, :10] = True
    soft = masks.feather(mask, 4, "linear", "inward")
    np.testing.assert_allclose(soft[5, :10], [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert (masks.feather(np.ones((8, 8), bool), 3, "gaussian", "inward") == 1).all()


@FAST
@given(bool_masks(16), st.floats(0, 5), st.sampled_from(["linear", "gaussian"]))
def test_feather_bounds_property(mask, px, method):
    outward = masks.feather(mask, px, method, "outward")
    inward = masks.feather(mask, px, method, "inward")
    centered = masks.feather(mask, px, method, "centered")
    assert (outward >= mask).all() and (inward <= mask).all()
    assert (inward <= centered + 1e-6).all() and (centered <= outward + 1e-6).all()
    for soft in (outward, inward, centered):
        assert soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1


# ----------------------------------------------------------------------------------------------------------
# bounding_box
# ----------------------------------------------------------------------------------------------------------


def test_bounding_box_hand_checked():
    assert masks.bounding_box(np.zeros((10, 10), bool)) is None
    mask = np.zeros((64, 64), bool)
    mask[20:23, 30:35] = True  # 5 wide, 3 high
    assert masks.bounding_box(mask, align=1) == (30, 20, 35, 23)
    assert masks.bounding_box(mask) == (29, 18, 37, 26)  # grown about equally to 8×8
    assert masks.bounding_box(mask, pad=4, align=1) == (26, 16, 39, 27)
    assert masks.bounding_box(mask, pad=4) == (25, 14, 41, 30)  # 13×11 -> 16×16, odd extra to the right/bottom
    assert masks.bounding_box(mask, align=None) == (30, 20, 35, 23)


def test_bounding_box_shifts_inside_instead_of_cutting():
    mask = np.zeros((64, 64), bool)
    mask[0:3, 60:64] = True  # touches the top-right corner
    x0, y0, x1, y1 = masks.bounding_box(mask, pad=2)
    assert (x0, y0, x1, y1) == (56, 0, 64, 8)
    mask = np.zeros((20, 30), bool)
    mask[5, 5] = True
    assert masks.bounding_box(mask, pad=3, align=16) == (0, 0, 16, 16)


def test_bounding_box_on_an_image_smaller_than_the_alignment():
    mask = np.zeros((5, 12), bool)
    mask[2, 3] = True
    assert masks.bounding_box(mask, align=8) == (0, 0, 8, 5)  # height cannot be 8: the whole image height
    assert masks.bounding_box(np.ones((5, 5), bool)) == (0, 0, 5, 5)


def test_bounding_box_errors():
    mask = np.ones((4, 4), bool)
    for kwargs in ({"pad": -1}, {"align": 0}, {"pad": 1.5}, {"image_size": (5, 4)}):
        with pytest.raises(InputError):
            masks.bounding_box(mask, **kwargs)


@FAST
@given(bool_masks(40), st.integers(0, 10), st.sampled_from([1, 4, 8, 16, 64]))
def test_bounding_box_contains_the_mask_and_is_aligned(mask, pad, align):
    box = masks.bounding_box(mask, pad=pad, align=align)
    if not mask.any():
        assert box is None
        return
    height, width = mask.shape
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    ys, xs = np.nonzero(mask)
    assert x0 <= max(0, xs.min() - pad) and x1 >= min(width, xs.max() + 1 + pad)
    assert y0 <= max(0, ys.min() - pad) and y1 >= min(height, ys.max() + 1 + pad)
    assert (x1 - x0) % align == 0 or (x0, x1) == (0, width)
    assert (y1 - y0) % align == 0 or (y0, y1) == (0, height)
    tight = masks.bounding_box(mask, pad=pad, align=1)
    assert (x1 - x0) - (tight[2] - tight[0]) < align and (y1 - y0) - (tight[3] - tight[1]) < align


# ----------------------------------------------------------------------------------------------------------
# refine
# ----------------------------------------------------------------------------------------------------------


def test_refine_default_is_identity_bool():
    mask = _disc(20, 10, 10, 5)
    out = masks.refine(mask, MaskRefinement())
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, mask)
    assert out is not mask


def test_refine_order_grow_before_shrink_closes_a_gap():
    mask = square_mask(30, 4, 4, 10) | square_mask(30, 15, 4, 10)  # a 1-px gap at x = 14
    closed = masks.refine(mask, MaskRefinement(grow=2, shrink=2))
    assert closed[8, 14] and closed.dtype == np.bool_
    np.testing.assert_array_equal(closed, masks.shrink(masks.grow(mask, 2), 2))


def test_refine_fills_removes_specks_then_inverts_and_feathers():
    mask = _disc(40, 20, 20, 10)
    mask[20, 20] = False  # a 1-px hole
    mask[2, 2] = True  # a 1-px speck
    cleaned = masks.refine(mask, {"remove_specks": 3})
    np.testing.assert_array_equal(cleaned, _disc(40, 20, 20, 10))
    ring = _disc(40, 20, 20, 10) & ~_disc(40, 20, 20, 6)
    np.testing.assert_array_equal(masks.refine(ring, {"fill_holes": True, "invert": True}), ~_disc(40, 20, 20, 10))
    soft = masks.refine(ring, MaskRefinement(fill_holes=True, feather=3, feather_method="linear"))
    assert soft.dtype == np.float32
    np.testing.assert_array_equal(soft, masks.feather(_disc(40, 20, 20, 10), 3, "linear", "outward"))
    inward = masks.refine(ring, {"grow": 1, "feather": 2, "feather_direction": "inward"})
    assert (inward[~masks.grow(ring, 1)] == 0).all()


def test_refine_relative_feather_and_bad_arguments():
    mask = square_mask(60, 10, 10, 20)  # extent 20
    soft = masks.refine(mask, {"feather_relative": 0.2, "feather_method": "linear"})
    np.testing.assert_array_equal(soft, masks.feather(mask, 4, "linear"))
    with pytest.raises(InputError):
        masks.refine(mask, {"grow": -1})
    with pytest.raises(InputError):
        masks.refine(mask, {"blur": 3})
