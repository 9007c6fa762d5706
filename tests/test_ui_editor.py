"""The editor around the mask, without a browser: opening files, results on the canvas (accept keeps history and
the mask), the outpaint frame and its tile plan, detail tiles when zoomed, soft brush, one undo step per slider
drag, presets that leave the user's own values alone, and messages in SegFill's words."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from segfill.ui import actions, workspace
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

    folder = tmp_path_factory.mktemp("editor_models")
    save_tiny_sam(folder / "tiny.pth", seed=0)
    save_tiny_sam(folder / "tiny_b.pth", seed=3)
    # a tiled backend (64-px tiles, like a small diffusion model) so the frame's tile plan has tiles to check
    return StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv", tiled=True, working_size=64),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth", tile_size=64))


@pytest.fixture(scope="module")
def empty_host(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    return StandaloneHost(SamManager([tmp_path_factory.mktemp("no_models")], device="cpu"), create_backend("opencv"))


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(sample_image(WIDTH, HEIGHT), "RGB")


def events(state, host, *items):
    out = cb.on_events(state, json.dumps(list(items)), host)
    return out[0], json.loads(out[1]), out[2:]


def opened(host, image):
    state, payload = cb.on_image(None, image, None, host)
    assert json.loads(payload)["error"] == ""
    return state


def painted(host, image, box=(20, 20, 50, 40)):
    """A state whose mask is the rectangle ``box`` (hard brush)."""
    state = opened(host, image)
    x0, y0, x1, y1 = box
    state.push(st.replace(state.edit, base=st.PackedMask.pack(_rect(box))))
    assert state.final_mask()[y0:y1, x0:x1].all()
    return state


def _rect(box, size=(WIDTH, HEIGHT)):
    mask = np.zeros((size[1], size[0]), bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def _png(url):
    return Image.open(io.BytesIO(decode_data_url(url)))


# -- opening files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content,needle", [
    (b"", "'holiday.png' is empty (0 bytes)."),
    (b"not an image at all", "'holiday.png' is not an image SegFill can open; use a PNG, JPEG, WebP, TIFF, BMP or GIF file."),
])
def test_a_bad_file_is_one_sentence_naming_the_users_file_never_a_server_path(tmp_path, host, content, needle):
    path = tmp_path / "upload-7f3a" / "holiday.png"
    path.parent.mkdir()
    path.write_bytes(content)
    state, payload = cb.on_file(None, str(path), host)
    payload = json.loads(payload)
    assert payload["error"] == needle
    assert "BytesIO" not in payload["error"] and str(tmp_path) not in payload["error"]
    assert payload["width"] == 0 and not payload["busy"]


def test_a_truncated_file_is_damaged_and_the_previous_image_stays(tmp_path, host, image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    broken = tmp_path / "scan.png"
    broken.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    state = painted(host, image)
    area = int(state.final_mask().sum())
    state, payload = cb.on_file(state, str(broken), host)
    payload = json.loads(payload)
    assert payload["error"] == "'scan.png' is damaged or incomplete: it could not be decoded."
    assert payload["width"] == WIDTH and payload["mask_area"] == area, "the work is kept"


def test_gradio3_file_objects_give_the_original_name(tmp_path):
    from segfill.ui.files import upload_path_and_name

    class TempFile:  # gradio 3.41's File value
        name = str(tmp_path / "tmpab12" / "x.png")
        orig_name = "/home/me/Pictures/cat.png"

    assert upload_path_and_name(TempFile()) == (TempFile.name, "/home/me/Pictures/cat.png")
    assert upload_path_and_name(None) is None
    assert upload_path_and_name(str(tmp_path / "a" / "dog.jpg"))[1] == "dog.jpg"


def test_opening_shows_the_photo_first_with_a_busy_note_then_embeds(tmp_path, host, image):
    path = tmp_path / "photo.jpg"
    image.save(path, quality=95)
    state, first = cb.on_file(None, str(path), host)
    first = json.loads(first)
    assert first["width"] == WIDTH and first["image"].startswith("data:image/jpeg")
    assert first["busy"].startswith("Computing SAM's embedding") and first["message"] == f"Opened photo.jpg ({WIDTH}×{HEIGHT})."
    assert state.session is None or not state.session.is_image_set, "the embedding waits for the second step"
    state, second = cb.on_embed(state, None, host)
    second = json.loads(second)
    assert second["busy"] == "" and second["message"].startswith(f"Image {WIDTH}×{HEIGHT} ready")
    assert state.session.is_image_set


def test_exif_orientation_is_applied(tmp_path, host):
    rotated = Image.fromarray(sample_image(40, 20), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    path = tmp_path / "phone.jpg"
    rotated.save(path, exif=exif.tobytes())
    state, payload = cb.on_file(None, str(path), host)
    assert (json.loads(payload)["width"], json.loads(payload)["height"]) == (20, 40)


def test_without_a_sam_model_the_canvas_points_at_the_download_box(tmp_path, empty_host, image):
    path = tmp_path / "photo.png"
    image.save(path)
    state, payload = cb.on_file(None, str(path), empty_host)
    payload = json.loads(payload)
    assert payload["notice"] == st.NO_MODEL_MESSAGE and payload["busy"] == "" and payload["width"] == WIDTH
    assert "'Download a SAM model' box" in st.NO_MODEL_MESSAGE and "installed yet" in st.NO_MODEL_MESSAGE
    state, payload, _ = events(state, empty_host, {"type": "point", "x": 10, "y": 10, "label": 1})
    assert payload["error"] == st.NO_MODEL_MESSAGE
    state, payload, _ = events(state, empty_host, {"type": "stroke", "points": [[10, 10]], "radius": 4})
    assert payload["error"] == "" and payload["mask_area"] > 0, "the brush works without a model"


# -- results on the canvas ------------------------------------------------------------------------------------


def test_inpaint_result_is_shown_then_accepted_with_the_mask_and_undo_goes_back(host, image):
    state = painted(host, image)
    before_key, mask = state.image_revision, state.final_mask().copy()
    state, text, result, _info = actions.on_inpaint(state, "", "", 3, 20, 7, 1.0, host=host)
    payload = json.loads(text)
    assert payload["result"]["kind"] == "inpaint" and payload["result"]["url"].startswith("data:image/jpeg")
    assert (payload["result"]["width"], payload["result"]["height"]) == (WIDTH, HEIGHT)
    assert payload["results"][0]["thumb"].startswith("data:image/jpeg") and "Accept (Enter)" in payload["message"]
    assert state.image_revision == before_key, "showing a result changes nothing yet"

    state, payload, _ = events(state, host, {"type": "accept"})
    assert payload["result"] is None and payload["image_rev"] != before_key and "image" in payload
    assert np.array_equal(state.image, np.asarray(result)), "the result is the image being edited"
    assert np.array_equal(state.final_mask(), mask), "the mask is kept"
    assert payload["can_undo"] and payload["message"].startswith("Editing the inpainted image")

    state, payload, _ = events(state, host, {"type": "undo"})
    assert payload["image_rev"] == before_key and np.array_equal(state.image, np.asarray(image))
    state, payload, _ = events(state, host, {"type": "redo"})
    assert np.array_equal(state.image, np.asarray(result))
    # clicking on the accepted image asks SAM about the new pixels
    state, payload, _ = events(state, host, {"type": "point", "x": 60.5, "y": 36.5, "label": 1})
    assert payload["error"] == "" and state.session.image_size == (WIDTH, HEIGHT)


def test_outpaint_accept_moves_the_mask_with_the_original(host, image):
    state = painted(host, image)
    state, text, result, _ = actions.on_outpaint(state, "", "", 1, 20, 7, 1.0, 16, 24, 8, 0, host=host)
    payload = json.loads(text)
    assert payload["result"]["offset"] == [16, 8] and result.size == (WIDTH + 40, HEIGHT + 8)
    state, payload, _ = events(state, host, {"type": "accept"})
    assert (payload["width"], payload["height"]) == (WIDTH + 40, HEIGHT + 8)
    assert np.array_equal(state.final_mask(), _rect((36, 28, 66, 48), (WIDTH + 40, HEIGHT + 8)))
    assert payload["frame"] == [0, 0, 0, 0], "the frame is used up"


def test_discard_and_the_gallery(host, image):
    state = painted(host, image)
    for seed in (1, 2):
        state, text, *_ = actions.on_inpaint(state, "", "", seed, 20, 7, 1.0, host=host)
    state, payload, _ = events(state, host, {"type": "discard"})
    assert payload["result"] is None and "stays in the results strip" in payload["message"]
    state, payload, _ = events(state, host, {"type": "show_result", "id": 1})
    assert payload["result"]["id"] == 1 and payload["result"]["index"] == 1 and payload["result"]["count"] == 2
    state, payload, _ = events(state, host, {"type": "download", "what": "result"})
    assert payload["download"]["filename"] == "segfill-inpaint-1.png"
    assert _png(payload["download"]["url"]).size == (WIDTH, HEIGHT)
    state, payload, _ = events(state, host, {"type": "show_result", "id": 99})
    assert payload["error"] == "That result is no longer kept; only the last 12 are."
    for seed in range(3, 3 + workspace.MAX_RESULTS):
        actions.on_inpaint(state, "", "", seed, 20, 7, 1.0, host=host)
    assert len(state.results) == workspace.MAX_RESULTS and state.results[0].id == 3


def test_editing_while_a_result_is_shown_puts_it_aside(host, image):
    state = painted(host, image)
    state, text, *_ = actions.on_inpaint(state, "", "", 1, 20, 7, 1.0, host=host)
    assert json.loads(text)["result"]["id"] == 1
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[70, 60]], "radius": 3})
    assert payload["result"] is None and len(state.results) == 1, "the canvas shows what is edited; the result is kept"
    state, payload, _ = events(state, host, {"type": "show_result", "id": 1})
    state, payload, _ = events(state, host, {"type": "undo"})
    assert payload["result"] is None and payload["mask_area"] == int(_rect((20, 20, 50, 40)).sum())


def test_a_job_error_keeps_the_work_and_says_why(host, image):
    state = opened(host, image)
    state, text, result, _ = actions.on_inpaint(state, "", "", 1, 20, 7, 1.0, host=host)
    assert json.loads(text)["error"] == "The mask is empty: select something to inpaint first." and result is None
    state, text, result, _ = actions.on_outpaint(state, "", "", 1, 20, 7, 1.0, 0, 0, 0, 0, host=host)
    assert json.loads(text)["error"].startswith("Choose how far to outpaint: drag the frame's edges")


def test_undo_across_many_accepts_keeps_a_bounded_number_of_images(host, image):
    state = painted(host, image)
    for seed in range(st.MAX_KEPT_IMAGES + 3):
        actions.on_inpaint(state, "", "", seed, 20, 7, 1.0, host=host)
        events(state, host, {"type": "accept"})
    kept = {edit.image_key for edit in state.history}
    assert len(kept) <= st.MAX_KEPT_IMAGES and set(state._images) == kept
    while state.can_undo:
        state.undo()
        assert state.image is not None, "every step that can be undone to still has its image"


# -- the outpaint frame ---------------------------------------------------------------------------------------


def test_frame_from_the_canvas_plans_tiles_and_updates_the_panel(host, image):
    state = opened(host, image)
    out = cb.on_events(state, json.dumps([{"type": "frame", "left": 0, "right": 64, "top": 0, "bottom": 16}]), host)
    state, payload = out[0], json.loads(out[1])
    left, right, top, bottom, aspect = out[-5:]
    assert left is top is cb.NO_CHANGE and (right, bottom) == (64, 16) and aspect == cb.FREE_ASPECT
    plan = payload["frame_plan"]
    assert payload["frame"] == [0, 64, 0, 16] and plan["canvas"] == [WIDTH + 64, HEIGHT + 16]
    from segfill.outpaint.runner import plan_outpaint

    reference = plan_outpaint((WIDTH, HEIGHT), workspace.outpaint_args(host, (0, 64, 0, 16)), working_size=64)
    assert len(plan["tiles"]) == reference.total_tiles and plan["passes"] == len(reference.passes)
    ox, oy = reference.image_rect[:2]
    assert plan["tiles"][0][:4] == [reference.tiles[0].x0 - ox, reference.tiles[0].y0 - oy,
                                    reference.tiles[0].x1 - ox, reference.tiles[0].y1 - oy]
    assert payload["message"].startswith(f"Outpaint to {WIDTH + 64}×{HEIGHT + 16}:")
    # undo restores the frame (and the panel's numbers)
    out = cb.on_events(state, json.dumps([{"type": "undo"}]), host)
    assert json.loads(out[1])["frame"] == [0, 0, 0, 0] and (out[-4], out[-2]) == (0, 0)


def test_the_overlay_plan_follows_undo_and_the_outpaint_preset(host, image):
    from segfill.outpaint.runner import plan_outpaint

    state = opened(host, image)
    events(state, host, {"type": "frame", "left": 0, "right": 112, "top": 0, "bottom": 0})
    state, payload, _ = events(state, host, {"type": "frame", "left": 0, "right": 48, "top": 0, "bottom": 0})
    state, payload, _ = events(state, host, {"type": "undo"})
    assert payload["frame"] == [0, 112, 0, 0] and payload["frame_plan"]["padding"] == [0, 112, 0, 0]
    default = plan_outpaint((WIDTH, HEIGHT), workspace.outpaint_args(host, (0, 112, 0, 0)), working_size=64)
    assert payload["frame_plan"]["passes"] == len(default.passes)
    out = actions.on_preset(state, "Extend a landscape", "outpaint", host=host)
    with_preset = plan_outpaint((WIDTH, HEIGHT), workspace.outpaint_args(host, (0, 112, 0, 0), {"band": 48, "feather": 32}),
                                working_size=64)
    assert len(with_preset.passes) != len(default.passes)
    assert json.loads(out[1])["frame_plan"]["passes"] == len(with_preset.passes), "the job's band, the job's plan"


def test_the_overlay_is_the_plan_the_host_runs(host, image):
    """The standalone host plans with its backend's tiling: an untiled OpenCV backend fills the whole canvas in
    one call, so the overlay shows that one fill, not diffusion-sized tiles the job would never paint."""
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost

    untiled = StandaloneHost(host.sam, create_backend("opencv"), embeddings=host.embeddings, defaults=host.defaults())
    state = opened(untiled, image)
    state, payload, _ = events(state, untiled, {"type": "frame", "left": 0, "right": 112, "top": 0, "bottom": 40})
    assert len(payload["frame_plan"]["tiles"]) == 1 and payload["frame_plan"]["passes"] == 1
    result = untiled.outpaint(__import__("PIL.Image").Image.fromarray(state.image),
                              workspace.outpaint_args(untiled, (0, 112, 0, 40)))
    ran = [tile for one_pass in result.info["plan"]["passes"] for tile in one_pass["tiles"]]
    assert len(ran) == 1 and untiled.backend.calls == 1  # what the overlay showed is what ran
    tiled = opened(host, image)
    tiled, payload, _ = events(tiled, host, {"type": "frame", "left": 0, "right": 112, "top": 0, "bottom": 40})
    assert len(payload["frame_plan"]["tiles"]) > 1


def test_frame_is_clamped_to_the_outpaint_limits(host, image):
    state = opened(host, image)
    state, payload, _ = events(state, host, {"type": "frame", "left": 10_000, "right": 0, "top": 0, "bottom": 0})
    assert payload["frame"][0] == 8 * WIDTH and "stops at 8×" in payload["message"]


def test_aspect_anchor_and_zoom_out_give_the_frame(host, image):
    state = opened(host, image)
    state, _payload, left, right, top, bottom, aspect = actions.on_frame_shape(state, "16:9", "center", host=host)
    from segfill.outpaint.geometry import target_for_aspect

    target = target_for_aspect((WIDTH, HEIGHT), (16, 9))
    assert (WIDTH + left + right, HEIGHT + top + bottom) == target and abs(left - right) <= 1
    state, *_rest, left2, right2, top2, bottom2, _ = actions.on_frame_shape(state, "16:9", "left", host=host)
    assert (left2, right2) == (0, left + right), "the photo moves to the left, the canvas keeps its size"
    state, payload, left, right, top, bottom, aspect = actions.on_frame_shape(state, None, "center", host=host, zoom=2.0)
    assert (WIDTH + left + right, HEIGHT + top + bottom) == (2 * WIDTH, 2 * HEIGHT) and aspect == cb.FREE_ASPECT
    state, payload, *_ = actions.on_frame_numbers(state, 8, 0, 0, 0, host=host)
    assert json.loads(payload)["frame"] == [8, 0, 0, 0]
    state, payload, *_ = actions.on_frame_shape(state, "4:3", "center", host=host)
    assert "already has the aspect ratio 4:3" in json.loads(payload)["message"]


def test_outpaint_uses_the_same_args_as_the_plan(host, image):
    state = opened(host, image)
    actions.on_frame_shape(state, None, "center", host=host, zoom=1.5)
    frame = state.edit.frame
    state, text, result, info = actions.on_outpaint(state, "", "", 4, 20, 7, 1.0, *frame, host=host)
    assert result.size == tuple(json.loads(text)["frame_plan"]["canvas"])


# -- detail when zoomed ---------------------------------------------------------------------------------------


def test_zoomed_view_gets_full_resolution_tiles_of_image_and_mask(host):
    rng = np.random.default_rng(5)
    big = rng.integers(0, 255, (1500, 2600, 3), dtype=np.uint8)  # beyond the 2048-px display copy
    state = opened(host, Image.fromarray(big))
    mask = np.zeros(big.shape[:2], bool)
    mask[700:710, 1200:1203] = True  # a 3-px sliver: lost in the 1024-px display mask
    state.push(st.replace(state.edit, base=st.PackedMask.pack(mask)))
    state, payload, _ = events(state, host, {"type": "view", "x0": 1100, "y0": 650, "x1": 1300, "y1": 750,
                                             "w": 800, "h": 400})
    detail = payload["detail"]
    x0, y0, x1, y1 = detail["rect"]
    assert x0 <= 1100 and y0 <= 650 and x1 >= 1300 and y1 >= 750 and detail["size"] == [x1 - x0, y1 - y0]
    crop = np.asarray(Image.open(io.BytesIO(decode_data_url(detail["image"]))).convert("RGB")).astype(int)
    assert np.abs(crop - big[y0:y1, x0:x1]).mean() < 12, "full-resolution pixels (JPEG q95)"
    tile_mask = np.asarray(_png(detail["mask"])) > 127
    assert np.array_equal(tile_mask, mask[y0:y1, x0:x1]), "the mask tile is exact"
    # the next payload sends only what changed: the mask after an edit, the image not again
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[1250, 700]], "radius": 5})
    assert "image" not in payload["detail"] and "mask" in payload["detail"]
    state, payload, _ = events(state, host, {"type": "view"})
    assert payload["detail"] is None


def test_a_wide_view_is_sent_at_the_screens_resolution(host):
    big = np.zeros((3000, 4000, 3), np.uint8)
    state = opened(host, Image.fromarray(big))
    state, payload, _ = events(state, host, {"type": "view", "x0": 0, "y0": 0, "x1": 2000, "y1": 1500,
                                             "w": 1000, "h": 750})
    rect, size = payload["detail"]["rect"], payload["detail"]["size"]
    assert size[0] == pytest.approx((rect[2] - rect[0]) / 2, abs=2)


# -- brush, controls, presets ---------------------------------------------------------------------------------


def test_soft_brush_fades_out_over_the_refined_mask(host, image):
    state = opened(host, image)
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[48, 36]], "radius": 20, "hardness": 0.5})
    mask = state.final_mask()
    assert mask.dtype == np.float32 and payload["strokes_soft"]
    assert mask[36, 48] == 1.0 and 0 < mask[36, 48 + 15] < 1 and mask[36, 48 + 21] == 0
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[48, 36]], "radius": 4, "hardness": 0.0,
                                             "erase": True})
    assert state.final_mask()[36, 48] == 0.0
    state, payload, _ = events(state, host, {"type": "stroke", "points": [[5, 5]], "radius": 3, "hardness": 2})
    assert payload["error"] == "The brush hardness must be between 0 and 100 %."


def test_a_slider_drag_is_one_undo_step_back_to_the_value_before_it(host, image):
    state = opened(host, image)
    events(state, host, {"type": "stroke", "points": [[40, 30]], "radius": 6})
    area = int(state.final_mask().sum())
    for grow in (1, 2, 3, 5, 8):  # what gradio sends while the thumb is dragged
        cb.on_controls(state, "Add", grow, 0, 0, False, 0, False)
    assert state.edit.refinement.grow == 8
    state, payload, updates = events(state, host, {"type": "undo"})
    assert state.edit.refinement.grow == 0 and payload["mask_area"] == area
    assert updates[1] == 0, "the slider shows the value from before the drag"
    cb.on_controls(state, "Add", 0, 0, 4, False, 0, False)
    cb.on_controls(state, "Add", 3, 0, 4, False, 0, False)
    state.undo()
    assert state.edit.refinement.feather == 4 and state.edit.refinement.grow == 0, "another control is another step"


def test_a_slow_drag_stays_one_step_until_the_release(host, image, monkeypatch):
    state = opened(host, image)
    events(state, host, {"type": "stroke", "points": [[40, 30]], "radius": 6})
    clock = [100.0]
    monkeypatch.setattr(st.time, "monotonic", lambda: clock[0])
    for grow in (1, 2, 4):  # a busy server gets to the drag's changes 5 s apart
        cb.on_controls(state, "Add", grow, 0, 0, False, 0, False)
        clock[0] += 5
    cb.on_release(state, "grow")
    cb.on_controls(state, "Add", 6, 0, 0, False, 0, False)  # a new drag after the release
    state.undo()
    assert state.edit.refinement.grow == 4
    state.undo()
    assert state.edit.refinement.grow == 0


def test_a_preset_sets_the_mask_and_job_controls_and_keeps_the_users_own(host, image):
    state = opened(host, image)
    out = actions.on_preset(state, "Retouch a portrait", "inpaint", takes_prompts=True)
    state, summary = out[0], out[2]
    assert json.loads(out[1])["error"] == ""
    refinement = dict(zip(actions.PRESET_REFINEMENT, out[3:9], strict=True))
    generation = dict(zip(actions.GENERATION_CONTROLS, out[9:], strict=True))
    assert refinement["grow"] == 4 and refinement["feather"] == 24 and refinement["shrink"] is cb.NO_CHANGE
    assert generation["strength"] == pytest.approx(0.55) and generation["prompt"].startswith("natural skin")
    assert generation["seed"] is cb.NO_CHANGE
    assert state.edit.refinement.feather == 24 and summary.startswith("Retouch a portrait: set ")
    assert "strength 0.55" in summary and "feather 24 px" in summary
    # the user's own values stay theirs when another preset comes
    cb.on_controls(state, "Add", 4, 0, 10, False, 0, False)
    cb.on_mark_edited(state, "inpaint.strength")
    out = actions.on_preset(state, "Remove an object", "inpaint", takes_prompts=True)
    refinement = dict(zip(actions.PRESET_REFINEMENT, out[3:9], strict=True))
    generation = dict(zip(actions.GENERATION_CONTROLS, out[9:], strict=True))
    assert refinement["feather"] is cb.NO_CHANGE and refinement["grow"] == 12
    assert generation["strength"] is cb.NO_CHANGE and generation["steps"] == 30
    assert state.edit.refinement.feather == 10 and out[2].endswith("Kept your feather, strength.")
    # one undo takes the preset's mask refinement back
    state.undo()
    assert state.edit.refinement.grow == 4


def test_a_preset_says_nothing_about_controls_the_backend_hides(host, image):
    state = opened(host, image)
    out = actions.on_preset(state, "Remove an object", "inpaint", takes_prompts=False)
    assert "prompt" not in out[2] and "strength" not in out[2] and "pre-fill telea" in out[2]
    assert all(v is cb.NO_CHANGE for v in out[9:])


def test_the_preset_fields_without_a_control_reach_the_job(host, image, monkeypatch):
    state = painted(host, image)
    seen = {}
    original = host.inpaint

    def recording(image_, mask, args, progress=None, provenance=None):
        seen["args"] = args
        return original(image_, mask, args, progress, provenance=provenance)

    monkeypatch.setattr(host, "inpaint", recording)
    actions.on_inpaint(state, "", "", 1, 20, 7, 1.0, host=host, preset="Remove an object")
    assert seen["args"].prefill == "telea" and seen["args"].context == 128 and seen["args"].steps == 20


# -- messages -------------------------------------------------------------------------------------------------


def test_segment_map_messages_do_not_contradict_themselves(host, image):
    from segfill.sam.segment_map import SegmentMap

    state = opened(host, image)
    state.segment_map = SegmentMap.empty((WIDTH, HEIGHT))
    state, payload, _ = events(state, host, {"type": "segment_map"})
    assert payload["message"] == "SAM found no segments in this image; select with clicks, a box or the brush instead."
    state.segment_map = SegmentMap.from_masks([_rect((0, 0, 10, 10))], (WIDTH, HEIGHT))
    state, payload, _ = events(state, host, {"type": "segment_map"})
    assert payload["message"].startswith("Segment map: 1 segment. Click")


def test_switching_the_sam_model_drops_the_selection_and_says_so(host, image):
    state = opened(host, image)
    state, payload, _ = events(state, host, {"type": "point", "x": 40.5, "y": 30.5, "label": 1})
    state, text = cb.on_model_starting(state, "tiny_b.pth")
    assert json.loads(text)["busy"].startswith("Loading SAM model tiny_b.pth")
    state, text = cb.on_model(state, "tiny_b.pth", host)
    payload = json.loads(text)
    assert payload["model"] == "tiny_b.pth" and payload["points"] == [] and payload["busy"] == ""
    assert "cleared; click again" in payload["message"]
    assert state.session.model.path.name == "tiny_b.pth"


def test_the_tab_hides_prompt_controls_for_the_opencv_backend_and_says_why(host):
    from segfill.ui.builder import NO_PROMPTS_NOTE, build_tab, takes_prompts

    tab = build_tab(host)
    blocks = {getattr(b, "elem_id", None): b for b in tab.blocks.values()}
    assert not takes_prompts(host)
    for elem_id in ("segfill_prompt", "segfill_negative_prompt", "segfill_outpaint_prompt"):
        assert blocks[elem_id].visible is False
    assert "segfill_backend_note" in blocks and "OpenCV backend" in NO_PROMPTS_NOTE
    assert "segfill_image" not in blocks and "segfill_result" not in blocks, "one image input: the canvas"


def test_the_first_page_says_no_model_is_installed_yet(empty_host):
    from segfill.ui.builder import build_tab

    tab = build_tab(empty_host)
    html = [b.value for b in tab.blocks.values() if getattr(b, "elem_id", None) == "segfill_canvas_host"][0]
    assert st.NO_MODEL_MESSAGE.replace("'", "&#x27;") in html or st.NO_MODEL_MESSAGE in html
    tabs = [b for b in tab.blocks.values() if getattr(b, "elem_id", None) == "segfill_tabs"][0]
    assert tabs.selected == "model", "the Model tab with the download box is shown first"
