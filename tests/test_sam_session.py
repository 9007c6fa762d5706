"""SamSession and EmbeddingCache with a tiny random SAM loaded through the real loader."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from segfill.errors import InputError
from segfill.sam.session import CachedEmbedding, EmbeddingCache, SamSession, image_digest
from tests._sam_fixtures import load_tiny, single_torch_thread, textured_image


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny(tmp_path_factory.mktemp("sam") / "tiny_a.pth", seed=0)


@pytest.fixture(scope="module")
def tiny_other(tmp_path_factory):
    return load_tiny(tmp_path_factory.mktemp("sam") / "tiny_b.pth", seed=1)


@pytest.fixture(scope="module")
def image_a():
    return textured_image(160, 120, seed=0)


@pytest.fixture(scope="module")
def image_b():
    return textured_image(96, 144, seed=1)


class PredictSpy:
    """Wraps a session's decoder call (``SamSession._decode``: SamPredictor.predict's inputs, in image pixels)
    and records the keyword arguments of every call."""

    def __init__(self, session):
        self.calls = []
        self._predict = session._decode
        session._decode = self

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._predict(**kwargs)


# -- encoder calls and the cache -------------------------------------------------------------------------
def test_same_image_twice_runs_the_encoder_once(tiny, image_a):
    session = SamSession(tiny, EmbeddingCache())
    session.set_image(image_a)
    session.set_image(image_a.copy())  # same content, another array
    assert session.encoder_calls == 1
    assert session.is_image_set
    assert session.image_size == (160, 120)


def test_switching_images_and_back_is_free_with_a_cache(tiny, image_a, image_b):
    cache = EmbeddingCache()
    session = SamSession(tiny, cache)
    session.set_image(image_a)
    first = session.predict(points=[(50, 40, 1)])
    session.set_image(image_b)
    session.set_image(image_a)
    assert session.encoder_calls == 2
    assert cache.stats().hits == 1
    again = session.predict(points=[(50, 40, 1)])
    np.testing.assert_array_equal(again.masks, first.masks)
    np.testing.assert_allclose(again.scores, first.scores, rtol=1e-6)

    # a second user's session on the same cache starts for free too
    other_user = SamSession(tiny, cache)
    other_user.set_image(image_b)
    assert other_user.encoder_calls == 0


def test_without_a_cache_switching_back_reruns_the_encoder(tiny, image_a, image_b):
    session = SamSession(tiny)
    session.set_image(image_a)
    session.set_image(image_b)
    session.set_image(image_a)
    assert session.encoder_calls == 3


def test_another_model_gets_its_own_embedding(tiny, tiny_other, image_a):
    assert tiny.model_key != tiny_other.model_key
    cache = EmbeddingCache()
    first = SamSession(tiny, cache)
    first.set_image(image_a)
    second = SamSession(tiny_other, cache)
    second.set_image(image_a)
    assert (first.encoder_calls, second.encoder_calls) == (1, 1)
    assert len(cache) == 2
    assert not torch.equal(first.predictor.features, second.predictor.features)


def test_cached_embedding_predicts_exactly_like_a_bare_predictor(tiny, image_a):
    cache = EmbeddingCache()
    SamSession(tiny, cache).set_image(image_a)
    session = SamSession(tiny, cache)
    session.set_image(image_a)
    assert session.encoder_calls == 0

    bare = SamPredictor(tiny.model)
    bare.set_image(image_a)
    masks, scores, logits = bare.predict(
        point_coords=np.array([[30.0, 70.0], [120.0, 20.0]]), point_labels=np.array([1, 0]), multimask_output=True
    )
    ours = session.predict(points=[(30, 70, 1), (120, 20, 0)], multimask=True)
    np.testing.assert_array_equal(ours.masks, masks)
    np.testing.assert_allclose(ours.scores, scores, rtol=1e-5)
    np.testing.assert_allclose(ours.low_res_logits, logits, rtol=1e-5, atol=1e-5)


def _entry(nbytes: int) -> CachedEmbedding:
    return CachedEmbedding({"features": torch.zeros(nbytes // 4, dtype=torch.float32)}, (8, 8), (8, 8))


def test_cache_evicts_least_recently_used_by_bytes():
    cache = EmbeddingCache(max_bytes=1000)
    for name in "abc":
        cache.put(("m", name), _entry(400))  # 3 x 400 > 1000: "a" goes
    assert ("m", "a") not in cache and ("m", "b") in cache and ("m", "c") in cache
    assert cache.nbytes == 800

    assert cache.get(("m", "b")) is not None  # b is now the most recent, so c goes next
    cache.put(("m", "d"), _entry(400))
    assert ("m", "c") not in cache and ("m", "b") in cache and ("m", "d") in cache

    cache.put(("m", "huge"), _entry(2000))  # larger than the whole cache: not stored, nothing evicted
    assert ("m", "huge") not in cache and len(cache) == 2

    cache.put(("m", "b"), _entry(100))  # replacing an entry re-counts its bytes
    assert cache.nbytes == 500
    stats = cache.stats()
    assert (stats.hits, stats.evictions, stats.entries, stats.bytes, stats.max_bytes) == (1, 2, 2, 500, 1000)
    assert cache.get(("m", "zzz")) is None and cache.stats().misses == 1

    assert cache.drop_model("m") == 2 and cache.nbytes == 0


def test_a_cache_sized_for_one_embedding_forgets_the_earlier_image(tiny, image_a, image_b):
    probe = SamSession(tiny, EmbeddingCache())
    probe.set_image(image_a)
    one_embedding = probe.cache.nbytes
    assert one_embedding == probe.predictor.features.element_size() * probe.predictor.features.nelement()

    session = SamSession(tiny, EmbeddingCache(max_bytes=one_embedding))
    session.set_image(image_a)
    session.set_image(image_b)
    session.set_image(image_a)
    assert session.encoder_calls == 3
    assert session.cache.stats().evictions == 2


def test_cache_is_consistent_under_concurrent_use():
    cache = EmbeddingCache(max_bytes=4000)

    def worker(offset):
        for i in range(200):
            cache.put(("m", offset, i % 17), _entry(400))
            cache.get(("m", offset, (i * 7) % 17))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 10 and cache.nbytes == 4000


def test_image_digest_depends_on_content_and_shape():
    a = np.zeros((4, 6, 3), np.uint8)
    assert image_digest(a) == image_digest(a.copy())
    assert image_digest(a) != image_digest(a.reshape(6, 4, 3))
    b = a.copy()
    b[3, 5, 2] = 1
    assert image_digest(a) != image_digest(b)
    assert image_digest(np.asfortranarray(b)) == image_digest(b)


# -- prompts ---------------------------------------------------------------------------------------------
def test_single_click_gives_three_candidates_best_is_argmax(tiny, image_a):
    session = SamSession(tiny)
    session.set_image(image_a)
    prediction = session.predict(points=[(80, 60, 1)])
    assert prediction.masks.shape == (3, 120, 160) and prediction.masks.dtype == bool
    assert prediction.scores.shape == (3,) and prediction.scores.dtype == np.float32
    assert prediction.best_index == int(np.argmax(prediction.scores))
    np.testing.assert_array_equal(prediction.best_mask, prediction.masks[prediction.best_index])
    assert prediction.low_res_logits.shape[0] == 3
    for index in range(3):
        np.testing.assert_array_equal(session.choose(index), prediction.masks[index])
    with pytest.raises(InputError, match="Candidate 3 does not exist"):
        session.choose(3)


def test_points_labels_and_box_reach_the_predictor(tiny, image_a):
    session = SamSession(tiny)
    session.set_image(image_a)
    spy = PredictSpy(session)
    prediction = session.predict(points=[(10, 20, 1), (30.5, 40, 0), (50, 60)], box=(100, 90, 5, 8))
    call = spy.calls[-1]
    np.testing.assert_array_equal(call["point_coords"], [[10, 20], [30.5, 40], [50, 60]])
    np.testing.assert_array_equal(call["point_labels"], [1, 0, 1])
    np.testing.assert_array_equal(call["box"], [5, 8, 100, 90])  # corners sorted
    # masks are made from the logits on demand: the preview at the tiny model's 128-px input, full size when asked
    assert prediction.is_lazy and prediction.preview_size == (128, 96) and prediction.size == (160, 120)
    assert call["multimask_output"] is False  # several points + box: unambiguous, one mask
    assert call["mask_input"] is None
    assert len(prediction) == 1

    session.predict(box=(0, 0, 60, 50))
    assert spy.calls[-1]["point_coords"] is None and spy.calls[-1]["multimask_output"] is False
    session.predict(points=[(10, 20, 1), (30, 40, 1)], multimask=True)
    assert spy.calls[-1]["multimask_output"] is True


def test_previous_logits_are_fed_back_only_when_points_are_appended(tiny, image_a, image_b):
    session = SamSession(tiny, EmbeddingCache())
    session.set_image(image_a)
    spy = PredictSpy(session)

    first = session.predict(points=[(40, 40, 1)])
    assert spy.calls[-1]["mask_input"] is None
    second = session.predict(points=[(40, 40, 1), (120, 30, 0)])
    fed = spy.calls[-1]["mask_input"]
    np.testing.assert_array_equal(fed, first.low_res_logits[first.best_index][None])

    session.choose(0)  # the user picked a candidate: its logits are the ones refined
    session.predict(points=[(40, 40, 1), (120, 30, 0), (60, 100, 1)])
    np.testing.assert_array_equal(spy.calls[-1]["mask_input"], second.low_res_logits[0][None])

    session.predict(points=[(41, 40, 1), (120, 30, 0), (60, 100, 1), (5, 5, 0)])  # first point moved
    assert spy.calls[-1]["mask_input"] is None
    session.predict(points=[(41, 40, 1), (120, 30, 0), (60, 100, 1), (5, 5, 0), (6, 6, 0)], use_previous_logits=False)
    assert spy.calls[-1]["mask_input"] is None
    session.predict(points=[(41, 40, 1)], box=(0, 0, 100, 100))
    session.predict(points=[(41, 40, 1), (50, 50, 1)], box=(0, 0, 90, 100))  # box changed
    assert spy.calls[-1]["mask_input"] is None

    session.predict(points=[(40, 40, 1)])
    session.set_image(image_a.copy())  # the same image again changes nothing
    session.predict(points=[(40, 40, 1), (120, 30, 0)])
    assert spy.calls[-1]["mask_input"] is not None
    session.set_image(image_b)  # another image: never feed logits across images
    session.set_image(image_a)
    session.predict(points=[(40, 40, 1), (120, 30, 0)])
    assert spy.calls[-1]["mask_input"] is None


def test_prompt_errors_are_input_errors_with_one_sentence(tiny, image_a):
    session = SamSession(tiny)
    with pytest.raises(InputError, match="Set an image"):
        session.predict(points=[(1, 1, 1)])
    session.set_image(image_a)
    with pytest.raises(InputError) as outside:
        session.predict(points=[(10, 10, 1), (160, 50, 1)])
    assert str(outside.value) == "Point (160, 50) lies outside the 160×120 image."
    with pytest.raises(InputError, match=r"Point \(-0.5, 3\) lies outside"):
        session.predict(points=[(-0.5, 3, 1)])
    with pytest.raises(InputError, match="at least one point or a box"):
        session.predict(points=[])
    with pytest.raises(InputError, match="labels are 1"):
        session.predict(points=[(1, 1, 2)])
    with pytest.raises(InputError, match="outside the 160×120 image"):
        session.predict(box=(200, 200, 300, 300))
    with pytest.raises(InputError, match="box is empty"):
        session.predict(box=(10, 10, 10, 50))
    with pytest.raises(InputError, match="no prediction"):
        SamSession(tiny).choose(0)
    with pytest.raises(InputError, match="uint8"):
        session.set_image(image_a.astype(np.float32))


def test_reset_image_forgets_the_image(tiny, image_a):
    session = SamSession(tiny)
    session.set_image(image_a)
    session.reset_image()
    assert not session.is_image_set and session.image_size is None
    with pytest.raises(InputError):
        session.predict(points=[(1, 1, 1)])


# -- SAM 2 (optional package) ----------------------------------------------------------------------------
def _sam2_importable() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory):
    from sam2.build_sam import build_sam2

    from segfill.sam.loading import load_sam

    torch.manual_seed(0)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu", mode="eval")
    path = tmp_path_factory.mktemp("sam2") / "sam2_hiera_t_random.pt"
    torch.save({"model": model.state_dict()}, path)
    return load_sam(path, precision="fp32")  # compared bit for bit with SAM 2's own (fp32) predictor


@pytest.mark.slow
@pytest.mark.skipif(not _sam2_importable(), reason="the optional sam2 package is not installed")
def test_sam2_session_caches_and_matches_its_own_predictor(tiny_sam2, image_a, image_b):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    assert tiny_sam2.family == "sam2"
    cache = EmbeddingCache()
    session = SamSession(tiny_sam2, cache)
    session.set_image(image_a)
    first = session.predict(points=[(50, 40, 1)])
    session.set_image(image_b)
    session.set_image(image_a)
    assert session.encoder_calls == 2
    again = session.predict(points=[(50, 40, 1)])
    np.testing.assert_array_equal(again.masks, first.masks)
    assert first.masks.dtype == bool and first.masks.shape == (3, 120, 160)

    bare = SAM2ImagePredictor(tiny_sam2.model)
    bare.set_image(image_a)
    masks, scores, _ = bare.predict(point_coords=np.array([[50.0, 40.0]]), point_labels=np.array([1]))
    np.testing.assert_array_equal(first.masks, masks > 0.5)
    np.testing.assert_allclose(first.scores, scores, rtol=1e-5)

    spy = PredictSpy(session)
    session.predict(points=[(50, 40, 1), (10, 100, 0)])
    np.testing.assert_array_equal(spy.calls[-1]["mask_input"], again.low_res_logits[again.best_index][None])


@pytest.mark.slow
@pytest.mark.skipif(not _sam2_importable(), reason="the optional sam2 package is not installed")
def test_sam2_segment_map(tiny_sam2, image_a):
    from segfill.sam.segment_map import compute_segment_map

    cache = EmbeddingCache()
    segment_map = compute_segment_map(tiny_sam2, image_a, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, cache=cache)
    assert segment_map.labels.shape == (120, 160) and len(cache) == 1
    session = SamSession(tiny_sam2, cache)
    session.set_image(image_a)
    assert session.encoder_calls == 0




@pytest.mark.slow
@pytest.mark.skipif(not _sam2_importable(), reason="the optional sam2 package is not installed")
def test_sam2_on_an_image_larger_than_its_input_makes_full_size_masks_on_demand(tiny_sam2):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from tests._sam_fixtures import textured_image

    image = textured_image(1200, 900, seed=4)
    session = SamSession(tiny_sam2)
    session.set_image(image)
    prediction = session.predict(points=[(700, 450, 1)])
    assert prediction.is_lazy and prediction.preview_size == (1024, 768) and prediction.size == (1200, 900)
    bare = SAM2ImagePredictor(tiny_sam2.model)
    bare.set_image(image)
    masks, scores, _ = bare.predict(point_coords=np.array([[700.0, 450.0]]), point_labels=np.array([1]))
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5)
    for index in range(3):
        np.testing.assert_array_equal(prediction.mask(index), masks[index] > 0.5)
