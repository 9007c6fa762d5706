"""Huge images: a click answers at display size; full-size masks are made only when something needs them.

A tiny random SAM (128-px input) on a 2400×1800 image (display 1024×768) stands in for SAM on an 8000×6000
photo: the same code path, in milliseconds. Every full-size upscale goes through ``MaskUpscale.logits_to_mask``
at the original size, so counting those calls shows what a click costs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segfill.sam.session import MaskUpscale, SamSession
from segfill.ui import callbacks as cb
from segfill.ui import state as st
from segfill.ui.dataurl import decode_data_url
from tests._sam_fixtures import single_torch_thread
from tests.browser.tiny_assets import sample_image

WIDTH, HEIGHT = 2400, 1800


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache
    from tests.tiny_models import save_tiny_sam

    folder = tmp_path_factory.mktemp("huge_models")
    save_tiny_sam(folder / "tiny.pth")
    return StandaloneHost(SamManager([folder], device="cpu", precision="fp32"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"))


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(sample_image(240, 180), "RGB").resize((WIDTH, HEIGHT), Image.BILINEAR)


@pytest.fixture()
def full_size_upscales(monkeypatch):
    """Records the size of every full-size mask made from SAM's logits."""
    made = []
    original = MaskUpscale.logits_to_mask

    def counting(self, logits, size=None):
        if size is None or tuple(size) == tuple(self.original_size):
            made.append(tuple(self.original_size))
        return original(self, logits, size)

    monkeypatch.setattr(MaskUpscale, "logits_to_mask", counting)
    return made


def events(state, host, *items):
    out = cb.on_events(state, json.dumps(list(items)), host)
    return out[0], json.loads(out[1])


def bare_full_masks(host, image, points):
    """segment-anything's own SamPredictor at full size, for the same model and image."""
    from segment_anything import SamPredictor

    predictor = SamPredictor(host.sam.get("tiny.pth").model)
    predictor.set_image(np.asarray(image))
    masks, scores, _ = predictor.predict(point_coords=np.array([p[:2] for p in points], dtype=np.float32),
                                         point_labels=np.array([p[2] for p in points]))
    return masks, scores


def test_a_click_makes_no_full_size_mask_and_the_download_is_sams_own(host, image, full_size_upscales):
    state, _ = cb.on_image(None, image, None, host)
    state, payload = events(state, host, {"type": "point", "x": 1500.5, "y": 900.5, "label": 1})
    assert payload["error"] == ""
    assert full_size_upscales == []  # neither the shown mask, its area nor the thumbnails needed one
    shown = np.asarray(Image.open(__import__("io").BytesIO(decode_data_url(payload["mask"]))).convert("L")) > 127
    assert shown.shape == (768, 1024)
    prediction = state.edit.prediction
    # candidates come back at the encoder's input resolution (1024 px for SAM; 128 for the tiny model)
    assert prediction.is_lazy and prediction.preview_size == (128, 96) and prediction.size == (WIDTH, HEIGHT)

    state, payload = events(state, host, {"type": "candidate", "index": 0})
    assert full_size_upscales == [] and payload["candidate"] == 0
    shown = np.asarray(Image.open(__import__("io").BytesIO(decode_data_url(payload["mask"]))).convert("L")) > 127

    masks, scores = bare_full_masks(host, image, [(1500.5, 900.5, 1)])
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5)
    final = state.final_mask()  # what a download, an inpaint or "send to img2img" uses
    assert full_size_upscales == [(HEIGHT, WIDTH)]  # exactly one full-size mask, the chosen candidate
    np.testing.assert_array_equal(final, masks[0])
    # the display copy is the full-size mask seen at display size
    small = st._resize_bool(final, (1024, 768))
    assert np.logical_and(small, shown).sum() / max(np.logical_or(small, shown).sum(), 1) > 0.97
    assert abs(payload["mask_area"] - int(final.sum())) <= 0.03 * max(int(final.sum()), 1) + 50


def test_refinements_and_strokes_scale_to_the_display_copy(host, image, full_size_upscales):
    state, _ = cb.on_image(None, image, None, host)
    state, _ = events(state, host, {"type": "point", "x": 1500.5, "y": 900.5, "label": 1},
                      {"type": "stroke", "points": [[100, 100], [600, 100]], "radius": 40})
    st.set_controls(state, grow=24)
    shown, area = state.shown_mask()
    assert full_size_upscales == [] and shown.shape == (768, 1024)
    full = state.final_mask()
    small = st._resize_bool(full, (1024, 768))
    assert np.logical_and(small, shown).sum() / np.logical_or(small, shown).sum() > 0.95
    assert shown[int(100 * 768 / HEIGHT), int(350 * 1024 / WIDTH)]  # the stroke, scaled


def test_undo_history_keeps_huge_predictions_small_and_exact(host, image):
    state, _ = cb.on_image(None, image, None, host)
    points = [(300.5 + 250 * i, 400.5 + 100 * (i % 3), 1) for i in range(st.LIVE_PREDICTIONS + 2)]
    first_full = None
    for index, (x, y, label) in enumerate(points):
        state, _ = events(state, host, {"type": "clear"}, {"type": "point", "x": x, "y": y, "label": label})
        if index == 0:
            first_full = [state.edit.prediction.mask(i).copy() for i in range(3)]
    oldest = [edit.prediction for edit in state.history if edit.prediction is not None][0]
    assert isinstance(oldest, st.CompactPrediction) and oldest.is_lazy
    assert oldest._logits[1].__len__() < 3 * 256 * 256 * 4  # compressed logits, no full-size mask kept
    for i in range(3):
        np.testing.assert_array_equal(oldest.mask(i), first_full[i])


def test_session_prediction_upscales_one_candidate_at_a_time(host, image, full_size_upscales):
    session = SamSession(host.sam.get("tiny.pth"))
    session.set_image(np.asarray(image))
    prediction = session.predict(points=[(1500.5, 900.5, 1)])
    assert full_size_upscales == []
    best = prediction.best_mask
    assert prediction.best_mask is best and full_size_upscales == [(HEIGHT, WIDTH)]  # kept, not made again
    masks, _ = bare_full_masks(host, image, [(1500.5, 900.5, 1)])
    np.testing.assert_array_equal(best, masks[prediction.best_index])
