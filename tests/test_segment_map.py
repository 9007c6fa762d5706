"""SegmentMap queries (synthetic label images and a tiny real SAM), bounded working resolution, NMS fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from segment_anything import automatic_mask_generator as amg

from segfill.errors import InputError
from segfill.sam import segment_map as sm
from segfill.sam.segment_map import SegmentMap, batched_nms_plain, compute_segment_map, nms_plain, working_size
from segfill.sam.session import EmbeddingCache
from tests._sam_fixtures import load_tiny, single_torch_thread, textured_image

# Thresholds at zero so the random tiny model's masks are kept instead of filtered as low quality.
LOOSE = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny(tmp_path_factory.mktemp("sam") / "tiny.pth", seed=0)


def _synthetic(full_size=(400, 200)):
    """Working resolution 100×50 of a 400×200 image: background 0, a big segment 1, a small one 2 on top."""
    big = np.zeros((50, 100), bool)
    big[10:40, 10:60] = True
    small = np.zeros((50, 100), bool)
    small[20:30, 20:30] = True
    right = np.zeros((50, 100), bool)
    right[5:45, 70:95] = True
    return SegmentMap.from_masks([small, big, right], full_size=full_size, predicted_ious=[0.9, 0.8, 0.7])


def test_from_masks_paints_larger_segments_first_with_stable_ids():
    segment_map = _synthetic()
    assert segment_map.working_size == (100, 50) and segment_map.full_size == (400, 200)
    assert segment_map.labels.dtype == np.int32
    by_id = {s.id: s for s in segment_map.segments}
    assert by_id[1].area == 30 * 50 - 100 and by_id[1].bbox == (10, 10, 60, 40)  # big, minus the small on top
    assert by_id[2].area == 40 * 25 and by_id[2].bbox == (70, 5, 95, 45)
    assert by_id[3].area == 100 and by_id[3].bbox == (20, 20, 30, 30)
    assert by_id[3].predicted_iou == pytest.approx(0.9)  # scores follow their masks through the re-ordering
    assert segment_map.labels[25, 25] == 3  # smaller painted on top


def test_segment_at_scales_full_resolution_coordinates():
    segment_map = _synthetic()
    assert segment_map.segment_at(100, 100) == 3  # working (25, 25)
    assert segment_map.segment_at(50, 50) == 1  # working (12, 12)
    assert segment_map.segment_at(399.9, 199.9) is None
    assert segment_map.segment_at(300, 100) == 2
    with pytest.raises(InputError, match=r"Point \(400, 10\) lies outside the 400×200 image"):
        segment_map.segment_at(400, 10)


def test_mask_of_returns_full_resolution_masks():
    segment_map = _synthetic()
    mask = segment_map.mask_of(3)
    assert mask.shape == (200, 400) and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (80, 119, 80, 119)  # working 20..29 × 4
    union = segment_map.mask_of([1, 3])
    assert union[100, 100] and union[50, 50] and not union[100, 300]
    np.testing.assert_array_equal(union, segment_map.mask_of([1]) | segment_map.mask_of([3]))
    assert not segment_map.mask_of([]).any() and segment_map.mask_of([]).shape == (200, 400)


def test_scribble_touches_segments_along_its_path():
    segment_map = _synthetic()
    stroke = [(60, 100), (140, 100)]  # crosses segment 1 then into 3
    assert segment_map.segments_touched(stroke) == {1, 3}
    assert segment_map.segments_touched([(300, 100)]) == {2}
    assert segment_map.segments_touched([(2, 2), (6, 6)]) == set()
    assert segment_map.segments_touched([(60, 100), (350, 100)]) == {1, 3, 2}
    union = segment_map.union_touched([(100, 100), (300, 100)])
    np.testing.assert_array_equal(union, segment_map.mask_of([1, 2, 3]))  # from inside 3, through 1, into 2
    # a stroke leaving the canvas is clipped, not refused
    assert segment_map.segments_touched([(300, 100), (900, 100)]) == {2}
    # a thick dot reaches a segment a thin one misses: (60, 100) is 20 px (5 working px) left of segment 3
    assert 3 not in segment_map.segments_touched([(60, 100)], thickness=1)
    assert 3 in segment_map.segments_touched([(60, 100)], thickness=48)
    with pytest.raises(InputError):
        segment_map.segments_touched([])


def test_color_map_has_one_stable_colour_per_segment():
    segment_map = _synthetic()
    colours = segment_map.color_map()
    assert colours.shape == (50, 100, 3) and colours.dtype == np.uint8
    assert (colours[0, 0] == 0).all()
    distinct = {tuple(colours[y, x]) for x, y in [(12, 12), (80, 20), (25, 25)]}
    assert len(distinct) == 3 and (0, 0, 0) not in distinct
    np.testing.assert_array_equal(colours, _synthetic().color_map())


def test_working_size_bounds_the_long_side_and_never_upscales():
    assert working_size((8000, 6000), 1024) == (1024, 768)
    assert working_size((600, 9000), 1024) == (68, 1024)
    assert working_size((640, 480), 1024) == (640, 480)


def test_real_tiny_model_gives_a_labelled_map(tiny):
    image = textured_image(160, 120)
    segment_map = compute_segment_map(tiny, image, **LOOSE)
    assert segment_map.labels.shape == (120, 160) and segment_map.full_size == (160, 120)
    assert len(segment_map) >= 1
    for segment in segment_map.segments:
        assert segment.area == int((segment_map.labels == segment.id).sum()) > 0
    first = segment_map.segments[0]
    x0, y0, x1, y1 = first.bbox
    ys, xs = np.nonzero(segment_map.labels == first.id)
    x, y = int(xs[0]), int(ys[0])
    assert segment_map.segment_at(x, y) == first.id
    assert segment_map.mask_of(first.id)[y, x]


def test_huge_input_is_mapped_at_working_resolution_and_answers_at_full_size(tiny):
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[:, :2000] = (200, 40, 40)
    image[1000:2200, 2400:3600] = (30, 200, 90)
    segment_map = compute_segment_map(tiny, image, max_side=256, **LOOSE)
    assert segment_map.labels.shape == (192, 256)  # only working-size arrays are kept
    assert segment_map.full_size == (4000, 3000)
    held = [v for v in vars(segment_map).values() if isinstance(v, np.ndarray)]
    assert all(array.nbytes <= 192 * 256 * 4 for array in held)
    assert len(segment_map) >= 1
    segment_id = segment_map.segments[0].id
    mask = segment_map.mask_of(segment_id)
    assert mask.shape == (3000, 4000)
    coverage = mask.mean()
    assert coverage == pytest.approx((segment_map.labels == segment_id).mean(), abs=0.01)


def test_embedding_cache_is_shared_with_the_generator(tiny):
    from segfill.sam.session import SamSession

    image = textured_image(160, 120, seed=3)
    cache = EmbeddingCache()
    first = compute_segment_map(tiny, image, cache=cache, **LOOSE)
    assert len(cache) == 1
    session = SamSession(tiny, cache)
    session.set_image(image)  # working size == image size here, so the click session gets it for free
    assert session.encoder_calls == 0
    second = compute_segment_map(tiny, image, cache=cache, **LOOSE)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert cache.stats().hits == 2


def test_bad_parameters_are_input_errors(tiny):
    with pytest.raises(InputError):
        compute_segment_map(tiny, textured_image(), max_side=10)
    with pytest.raises(InputError):
        compute_segment_map(tiny, textured_image(), points_per_side=0)


# -- NMS fallback ----------------------------------------------------------------------------------------
def _random_boxes(n, seed):
    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=generator) * 100
    wh = torch.rand(n, 2, generator=generator) * 40 + 1
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n, generator=generator)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_plain_nms_matches_torchvision(seed, threshold):
    boxes, scores = _random_boxes(200, seed)
    expected = torchvision.ops.nms(boxes, scores, threshold)
    assert torch.equal(nms_plain(boxes, scores, threshold), expected)
    categories = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(seed))
    expected = torchvision.ops.batched_nms(boxes, scores, categories, threshold)
    assert torch.equal(batched_nms_plain(boxes, scores, categories, threshold), expected)


def test_plain_nms_on_nothing():
    empty = torch.zeros((0, 4))
    assert batched_nms_plain(empty, torch.zeros(0), torch.zeros(0), 0.5).shape == (0,)


def test_segment_map_falls_back_when_torchvision_nms_cannot_run(tiny, monkeypatch):
    image = textured_image(160, 120, seed=5)
    expected = compute_segment_map(tiny, image, **LOOSE)
    assert amg.batched_nms is not batched_nms_plain  # compiled op works here: no patch

    def broken_nms(*args, **kwargs):
        raise NotImplementedError("Could not run 'torchvision::nms' with arguments from the 'CPU' backend.")

    monkeypatch.setattr(amg, "batched_nms", amg.batched_nms)  # restored after the test
    monkeypatch.setattr(torchvision.ops.boxes, "nms", broken_nms)
    with pytest.raises(NotImplementedError):  # what users saw before the fallback
        amg.batched_nms(*_random_boxes(3, 0), torch.zeros(3), 0.5)

    assert sm.ensure_working_nms("cpu") is True
    assert amg.batched_nms is batched_nms_plain
    fallback = compute_segment_map(tiny, image, **LOOSE)
    np.testing.assert_array_equal(fallback.labels, expected.labels)
