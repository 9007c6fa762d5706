"""The tab's callbacks as plain functions (no browser): a real SamManager on a tiny random SAM, the OpenCV backend."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from segfill.errors import SegFillError
from segfill.ui import callbacks as cb
from segfill.ui import state as st
from segfill.ui.dataurl import decode_data_url
from tests.browser.tiny_assets import sample_image

WIDTH, HEIGHT = 96, 72


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache
    from tests.tiny_models import save_tiny_sam

    folder = tmp_path_factory.mktemp("ui_models")
    save_tiny_sam(folder / "tiny.pth")
    return StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"))


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(sample_image(WIDTH, HEIGHT), "RGB")


def events(state, host, *items):
    out = cb.on_events(state, json.dumps(list(items)), host)
    return out[0], json.loads(out[1]), out[2:]


def loaded(host, image):
    state, payload = cb.on_image(None, image, None, host)
    assert json.loads(payload)["error"] == ""
    return state


def reference_prediction(host, image, points):
    from segfill.sam.session import SamSession

    session = SamSession(host.sam.get("tiny.pth"), host.embeddings)
    session.set_image(np.asarray(image))
    return session.predict(points=points)


def test_upload_sends_the_image_once_and_click_gives_sams_mask(host, image):
    state, text = cb.on_image(None, image, None, host)
    payload = json.loads(text)
    assert (payload["width"], payload["height"]) == (WIDTH, HEIGHT)
    assert Image.open(__import__("io").BytesIO(decode_data_url(payload["image"]))).size == (WIDTH, HEIGHT)
    assert payload["mask"] is None and payload["mask_area"] == 0

    state, payload, _ = events(state, host, {"type": "point", "x": 40.5, "y": 30.5, "label": 1})
    expected = reference_prediction(host, image, [(40.5, 30.5, 1)])
    assert payload["error"] == ""
    assert "image" not in payload, "the image is sent only when it changed"
    assert payload["mask_area"] == int(expected.best_mask.sum())
    assert payload["candidate"] == expected.best_index
    assert [c["score"] for c in payload["candidates"]] == pytest.approx(expected.scores.tolist(), abs=1e-3)
    thumb = Image.open(__import__("io").BytesIO(decode_data_url(payload["candidates"][0]["url"])))
    assert max(thumb.size) <= 96
    assert np.array_equal(state.final_mask(), expected.best_mask)

    # a browser that lost the image asks for it again
    state, payload, _ = events(state, host, {"type": "noop", "need_image": True})
    assert "image" in payload


def test_two_states_never_share_clicks(host, image):
    first, second = loaded(host, image), loaded(host, image)
    first, payload, _ = events(first, host, {"type": "point", "x": 10, "y": 10, "label": 1})
    assert len(payload["points"]) == 1
    second, payload, _ = events(second, host, {"type": "point", "x": 80, "y": 60, "label": 0})
    assert payload["points"] == [[80, 60, 0]]
    assert [p[:2] for p in first.edit.points] == [(10.0, 10.0)]
    assert first.session is not second.session
    assert first.session.model is second.session.model, "the model itself is shared"


def test_a_kept_session_follows_sam_offload_and_unload_without_re_encoding(host, image):
    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "point", "x": 30, "y": 30, "label": 1})
    before = state.session
    misses = host.embeddings.stats().misses
    for release in (host.sam.offload_to_cpu, host.sam.unload):
        release()
        state, payload, _ = events(state, host, {"type": "point", "x": 50, "y": 40, "label": 1})
        assert payload["error"] == ""
        assert state.session is not before and host.sam.is_current(state.session.model)
        before = state.session
    assert host.embeddings.stats().misses == misses, "the image embedding comes from the cache"


def test_gradio_state_copies_keep_the_same_object(host, image):
    state = loaded(host, image)
    assert copy.deepcopy(state) is state and copy.copy(state) is state


def test_candidate_undo_redo_and_refinement_controls(host, image):
    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "point", "x": 40.5, "y": 30.5, "label": 1})
    prediction = state.edit.prediction
    other = (prediction.best_index + 1) % 3
    state, payload, _ = events(state, host, {"type": "candidate", "index": other})
    assert payload["candidate"] == other
    assert np.array_equal(state.raw_mask(), prediction.masks[other])
    area = payload["mask_area"]
    # the seeded tiny SAM gives this candidate as a partial mask, so growing it must add pixels
    assert 0.05 * WIDTH * HEIGHT < area < 0.95 * WIDTH * HEIGHT, area

    state, text = cb.on_controls(state, "Add", 2, 0, 0, False, 0, False)
    grown = json.loads(text)["mask_area"]
    from segfill.masks import grow

    assert grown == int(grow(prediction.masks[other], 2).sum()) > area
    # undo restores the mask and tells the controls their old value
    state, payload, updates = events(state, host, {"type": "undo"})
    assert payload["mask_area"] == area
    assert list(updates[:7]) == [cb.NO_CHANGE, 0, cb.NO_CHANGE, cb.NO_CHANGE, cb.NO_CHANGE, cb.NO_CHANGE, cb.NO_CHANGE]
    # the slider echoing that value back is not a new step
    depth = state.history.depth
    state, _ = cb.on_controls(state, "Add", 0, 0, 0, False, 0, False)
    assert state.history.depth == depth and state.can_redo
    state, payload, updates = events(state, host, {"type": "redo"})
    assert payload["mask_area"] == grown and updates[1] == 2
    # undo twice more: back to the best candidate, then to nothing (no decoder run needed)
    state, payload, _ = events(state, host, {"type": "undo"}, {"type": "undo"})
    assert payload["candidate"] == prediction.best_index
    state, payload, _ = events(state, host, {"type": "undo"})
    assert payload["mask_area"] == 0 and payload["points"] == [] and not payload["can_undo"]


def test_refinements_feather_invert_fill(host, image):
    state = loaded(host, image)
    state, _, _ = events(state, host, {"type": "stroke", "points": [[20, 20], [50, 20]], "radius": 6})
    hard = state.final_mask().copy()
    state, text = cb.on_controls(state, "Add", 0, 0, 4, False, 0, True)
    soft = state.final_mask()
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    assert soft[20, 35] < 0.5 and soft[60, 80] > 0.5, "inverted"
    assert json.loads(text)["mask"].startswith("data:image/png")
    assert hard[20, 35] and not hard[60, 80]


def test_combine_ops_commit_brush_and_eraser(host, image):
    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[10, 10], [60, 10]], "radius": 5})
    painted = state.raw_mask().copy()
    assert painted[10, 30] and not painted[40, 30]
    state, payload, _ = events(state, host, {"type": "commit"})
    assert payload["mask_area"] == int(painted.sum()) and payload["points"] == []

    state, _ = cb.on_controls(state, "Subtract", 0, 0, 0, False, 0, False)
    state, payload, _ = events(state, host, {"type": "point", "x": 30, "y": 10, "label": 1})
    from segfill.masks import CombineOp, combine

    selection = state.selection_mask()
    assert np.array_equal(state.raw_mask(), combine(painted, selection, CombineOp.SUBTRACT))
    state, _ = cb.on_controls(state, "Intersect", 0, 0, 0, False, 0, False)
    assert np.array_equal(state.raw_mask(), painted & selection)

    # Esc drops the selection but keeps the committed mask
    state, payload, _ = events(state, host, {"type": "clear"})
    assert np.array_equal(state.raw_mask(), painted)
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[30, 10]], "radius": 4, "erase": True})
    assert not state.raw_mask()[10, 30] and state.raw_mask()[10, 55]
    state, payload, _ = events(state, host, {"type": "reset"})
    assert payload["mask_area"] == 0


def test_box_prompt(host, image):
    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "box", "x0": 60, "y0": 50, "x1": 20, "y1": 10})
    assert payload["box"] == [20, 10, 60, 50] and payload["error"] == ""
    from segfill.sam.session import SamSession

    session = SamSession(host.sam.get("tiny.pth"), host.embeddings)
    session.set_image(np.asarray(image))
    assert np.array_equal(state.raw_mask(), session.predict(box=(20, 10, 60, 50)).best_mask)


def test_segment_map_clicks_and_scribbles(host, image):
    from segfill.sam.segment_map import SegmentMap

    state = loaded(host, image)
    left = np.zeros((HEIGHT, WIDTH), bool)
    left[:, :40] = True
    top_right = np.zeros((HEIGHT, WIDTH), bool)
    top_right[:30, 50:] = True
    state.segment_map = SegmentMap.from_masks([left, top_right], (WIDTH, HEIGHT))
    state, payload, _ = events(state, host, {"type": "segment", "points": [[10, 60]]})
    assert np.array_equal(state.raw_mask(), left) and payload["segments"] == 1
    assert "segment_map" in payload, "the colour map is sent once"
    state, payload, _ = events(state, host, {"type": "segment", "points": [[45, 10], [70, 10]]})
    assert np.array_equal(state.raw_mask(), left | top_right) and "segment_map" not in payload
    state, payload, _ = events(state, host, {"type": "segment", "points": [[10, 60]], "remove": True})
    assert np.array_equal(state.raw_mask(), top_right)
    # a browser that lost its copy asks again: the same map is resent, the generator does not run again
    known = state.segment_map
    state, payload, _ = events(state, host, {"type": "segment_map"})
    assert state.segment_map is known and "segment_map" in payload
    assert payload["message"].startswith("Segment map: 2 segments")


def test_errors_are_messages_and_keep_the_state(host, image):
    state, text = cb.on_image(None, None, None, host)
    state, payload, _ = events(state, host, {"type": "point", "x": 1, "y": 1})
    assert payload["error"] == "Upload an image first."

    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "point", "x": 20, "y": 20, "label": 1})
    before = state.edit
    for bad in ({"type": "point", "x": 500, "y": 20}, {"type": "candidate", "index": 7}, {"type": "warp"},
                {"type": "box", "x0": 5, "y0": 5, "x1": 5, "y1": 9},
                # malformed events (a script talking to the endpoint) are user errors too, not bugs
                {"type": "point", "x": "left", "y": 20}, {"type": "box", "x0": "nan", "y0": 0, "x1": 9, "y1": 9},
                {"type": "candidate", "index": "two"}, {"type": "stroke", "points": [[1]], "radius": 4},
                {"type": "stroke", "points": [[1, 2]], "radius": "big"}, {"type": "segment", "points": 5}):
        state, payload, _ = events(state, host, bad)
        assert payload["error"] and state.edit is before
        assert "Something went wrong" not in payload["error"], bad
        assert payload["points"] == [[20, 20, 1]] and payload["mask_area"] == int(before.prediction.best_mask.sum())
    state, text = cb.on_events(state, "{not json", host)[:2]
    assert "unreadable" in json.loads(text)["error"]
    state, text = cb.on_controls(state, "Add", -3, 0, 0, False, 0, False)
    assert "grow" in json.loads(text)["error"] and state.edit is before


def test_downloads_are_full_size_pngs(host, image):
    state = loaded(host, image)
    state, _, _ = events(state, host, {"type": "stroke", "points": [[30, 30]], "radius": 10})
    state, payload, _ = events(state, host, {"type": "download", "what": "mask"})
    mask = Image.open(__import__("io").BytesIO(decode_data_url(payload["download"]["url"])))
    assert mask.format == "PNG" and mask.size == (WIDTH, HEIGHT) and mask.mode == "L"
    assert np.array_equal(np.asarray(mask) > 127, state.final_mask())
    state, payload, _ = events(state, host, {"type": "download", "what": "cutout"})
    cutout = Image.open(__import__("io").BytesIO(decode_data_url(payload["download"]["url"])))
    assert cutout.mode == "RGBA" and cutout.size == (WIDTH, HEIGHT)
    assert np.array_equal(np.asarray(cutout)[..., 3], np.asarray(mask))
    state, payload, _ = events(state, host, {"type": "noop"})
    assert "download" not in payload, "a download is delivered once"


def test_inpaint_and_outpaint_through_the_host(host, image):
    from segfill.ui import actions

    state = loaded(host, image)
    state, text, result, info = actions.on_inpaint(state, "", "", 1, 20, 7, 1.0, host=host)
    assert "mask is empty" in json.loads(text)["error"] and result is None

    state, _, _ = events(state, host, {"type": "stroke", "points": [[30, 30], [50, 40]], "radius": 6})
    edit = state.edit
    state, text, result, info = actions.on_inpaint(state, "a wall", "", 5, 20, 7, 1.0, host=host)
    assert json.loads(text)["error"] == "" and result.size == (WIDTH, HEIGHT)
    assert "opencv" in info.lower()
    from segfill.args import InpaintArgs
    from segfill.outpaint.seams import distance_from

    painted = st.paint_strokes(np.zeros((HEIGHT, WIDTH), bool), edit.strokes)
    changed = np.any(np.asarray(result) != np.asarray(image), axis=-1)
    assert changed[painted].mean() > 0.9
    # the documented guarantee: beyond the band (8 px) around the mask, every pixel is the input's, bit-exact
    beyond_band = distance_from(painted) >= InpaintArgs().band
    assert beyond_band.sum() > 0.5 * beyond_band.size and not changed[beyond_band].any()
    assert state.edit is edit, "a generation does not touch the mask"

    state, text, result, info = actions.on_outpaint(state, "", "", 5, 20, 7, 1.0, 0, 32, 0, 16, host=host)
    assert json.loads(text)["error"] == "" and result.size == (WIDTH + 32, HEIGHT + 16)
    state, text, result, info = actions.on_outpaint(state, "", "", 5, 20, 7, 1.0, 0, 0, 0, 0, host=host)
    assert json.loads(text)["error"].startswith("Choose how far to outpaint")


def test_send_payload_carries_image_and_mask(host, image):
    state = loaded(host, image)
    state, _, _ = events(state, host, {"type": "stroke", "points": [[30, 30]], "radius": 5})
    state, text, data = cb.send_payload(state)
    data = json.loads(data)
    sent_image = Image.open(__import__("io").BytesIO(decode_data_url(data["image"])))
    sent_mask = Image.open(__import__("io").BytesIO(decode_data_url(data["mask"])))
    assert sent_image.size == sent_mask.size == (WIDTH, HEIGHT)
    assert np.array_equal(np.asarray(sent_image.convert("RGB")), np.asarray(image))
    assert np.array_equal(np.asarray(sent_mask) > 127, state.final_mask())


def test_model_download_reports_progress_and_checksum(tmp_path, monkeypatch):
    import hashlib

    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam import registry
    from segfill.sam.manager import SamManager
    from segfill.ui.builder import download_model_progress
    from tests.tiny_models import save_tiny_sam

    source = save_tiny_sam(tmp_path / "source" / "tiny_download.pth")
    data = source.read_bytes()
    good = registry.ModelSpec(name="tiny_test", family="sam", arch="vit_custom", filename="tiny_download.pth",
                              url=source.as_uri(), size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                              package="segment-anything")
    bad = registry.ModelSpec(name="tiny_bad", family="sam", arch="vit_custom", filename="tiny_bad.pth",
                             url=source.as_uri(), size_bytes=len(data), sha256="0" * 64, package="segment-anything")
    monkeypatch.setitem(registry.KNOWN_MODELS, "tiny_test", good)
    monkeypatch.setitem(registry.KNOWN_MODELS, "tiny_bad", bad)
    models = tmp_path / "models"
    host = StandaloneHost(SamManager([models], device="cpu"), create_backend("opencv"))

    steps = list(download_model_progress(host, "tiny_test"))
    assert any("<progress" in step for step in steps[:-1])
    assert "SHA-256 verified" in steps[-1] and 'value="100"' in steps[-1]
    assert (models / "tiny_download.pth").read_bytes() == data
    assert "tiny_download.pth" in st.model_names(host)

    steps = list(download_model_progress(host, "tiny_bad"))
    assert "Download failed" in steps[-1] and "SHA-256" in steps[-1]
    assert not (models / "tiny_bad.pth").exists() and not (models / "tiny_bad.pth.part").exists()
    assert "Choose a model" in list(download_model_progress(host, None))[-1]


def test_download_of_a_sam2_model_installs_sam2_without_touching_torch(tmp_path, monkeypatch):
    """Picking a SAM 2.1 model is what installs ``sam2`` (through the torch-safe installer), never before."""
    import torch

    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam import registry, sam2_install
    from segfill.sam.manager import SamManager
    from segfill.ui import builder

    source = tmp_path / "sam2_like.pt"  # shaped like SAM 2.1 Hiera-T: downloads are checked to be SAM models
    trunk = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(()).expand(96, 3, 7, 7)}
    trunk.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.zeros(96) for i in range(12)})
    torch.save({"model": trunk}, source)
    weights = source.read_bytes()
    spec = registry.ModelSpec(name="tiny_sam2", family="sam2", arch="hiera_t", filename="sam2_like.pt",
                              url=source.as_uri(), size_bytes=len(weights), sha256=hashlib.sha256(weights).hexdigest(),
                              package="sam2")
    monkeypatch.setitem(registry.KNOWN_MODELS, "tiny_sam2", spec)
    installs = []
    monkeypatch.setattr(sam2_install, "sam2_status",
                        lambda smoke_test=False: sam2_install.Sam2Status(False, None, None, "not installed"))
    monkeypatch.setattr(sam2_install, "install_sam2", lambda **kw: installs.append(kw) or sam2_install.Sam2Status(
        True, None, "1.1.0", "The 'sam2' package is installed."))
    host = StandaloneHost(SamManager([tmp_path / "models"], device="cpu"), create_backend("opencv"))

    steps = list(builder.download_model_progress(host, "tiny_sam2"))
    assert len(installs) == 1
    assert "Installing the sam2 package" in steps[-2] and "is installed" in steps[-1]

    def failing_install(**kw):
        raise SegFillError("Installing the sam2 package failed (no network); SAM 2.1 models stay unavailable.")

    monkeypatch.setattr(sam2_install, "install_sam2", failing_install)
    steps = list(builder.download_model_progress(host, "tiny_sam2"))
    assert "segfill-error" in steps[-1] and "stay unavailable" in steps[-1]


def test_send_images_for_captured_components(host, image):
    state = loaded(host, image)
    state, _, _ = events(state, host, {"type": "stroke", "points": [[20, 20]], "radius": 5})
    state, text, sent_image, sent_mask = cb.send_images(state)
    assert json.loads(text)["error"] == ""
    assert sent_image.size == sent_mask.size == (WIDTH, HEIGHT) and sent_mask.mode == "L"
    assert np.array_equal(np.asarray(sent_mask) > 127, state.final_mask())
    empty, text, sent_image, sent_mask = cb.send_images(None)
    assert json.loads(text)["error"] == "Upload an image first." and sent_image is None and sent_mask is None


def test_old_sam_answers_are_packed_and_undo_still_restores_them(host, image):
    state = loaded(host, image)
    masks = []
    for index in range(st.LIVE_PREDICTIONS + 3):
        state, payload, _ = events(state, host, {"type": "point", "x": 5 + 9 * index, "y": 30, "label": index % 2})
        masks.append(state.raw_mask().copy())
    kinds = [type(edit.prediction).__name__ for edit in list(state.history)[1:]]
    assert kinds.count("CompactPrediction") == 3 and kinds[-st.LIVE_PREDICTIONS:] == ["Prediction"] * st.LIVE_PREDICTIONS
    for expected in reversed(masks[:-1]):
        state, payload, _ = events(state, host, {"type": "undo"})
        assert np.array_equal(state.raw_mask(), expected)
        assert payload["mask_area"] == int(expected.sum())


def test_candidate_thumbnails_are_sent_once_per_answer(host, image):
    state = loaded(host, image)
    state, payload, _ = events(state, host, {"type": "point", "x": 40.5, "y": 30.5, "label": 1})
    assert all("url" in c for c in payload["candidates"]) and not payload.get("candidates_same")
    state, payload, _ = events(state, host, {"type": "candidate", "index": 0})
    assert payload["candidates_same"] and [c["index"] for c in payload["candidates"]] == [0, 1, 2]
    assert all("url" not in c for c in payload["candidates"]) and payload["candidate"] == 0
    state, payload, _ = events(state, host, {"type": "point", "x": 10.5, "y": 10.5, "label": 0})
    assert not payload.get("candidates_same") and all("url" in c for c in payload["candidates"])
    state, text = cb.on_image(state, image, None, host)
    state, payload, _ = events(state, host, {"type": "point", "x": 40.5, "y": 30.5, "label": 1})
    assert all("url" in c for c in payload["candidates"])
