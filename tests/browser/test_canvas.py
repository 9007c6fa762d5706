"""End-to-end: the standalone app in headless Chromium, driven like a user.

The app runs a tiny random-weight SAM, so its masks are meaningless blobs, but deterministic: each test
asks the same model (loaded here through the same loader) what the mask must be and compares it with what
the browser shows and downloads. Screenshots of every step land in artifacts/browser/gradio<N>/<test>/.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser.pages import SegFillPage, mask_array
from tests.browser.tiny_assets import IMAGE_SIZE

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = IMAGE_SIZE


@pytest.fixture(scope="module")
def reference(browser_assets):
    """The same tiny SAM, loaded here, to compute the masks the app must show."""
    from segfill.sam.loading import load_sam

    return load_sam(browser_assets.sam_path, device="cpu")


def reference_session(reference, image_path):
    from segfill.sam.session import SamSession

    session = SamSession(reference)
    session.set_image(np.asarray(Image.open(image_path).convert("RGB")))
    return session


_PICKED = {}


def pick_click(reference, image_path, avoid=None, strict=True):
    """An image point whose best candidate covers the 5×5 pixels around it, fills 5-60 % of the image, and
    whose three candidates differ, so every step of the flow has something visible to check. Not ``strict``:
    any point whose best mask fills 5-60 % of the image (random weights rarely cover the click everywhere)."""
    key = (str(image_path), avoid, strict)
    if key in _PICKED:
        return _PICKED[key]
    session = reference_session(reference, image_path)
    best = None
    for y in range(12, HEIGHT - 12, 12):
        for x in range(12, WIDTH - 12, 12):
            if avoid is not None and abs(x - avoid[0]) + abs(y - avoid[1]) < 40:
                continue
            prediction = session.predict(points=[(x + 0.5, y + 0.5, 1)], multimask=True)
            mask = prediction.best_mask
            areas = [int(m.sum()) for m in prediction.masks]
            fraction = areas[prediction.best_index] / mask.size
            covered = mask[y - 2:y + 3, x - 2:x + 3].all() and len(set(areas)) == 3
            if (covered or not strict) and 0.05 < fraction < 0.6:
                score = abs(fraction - 0.25)
                if best is None or score < best[0]:
                    best = (score, x, y)
    assert best is not None, "the tiny SAM gave no usable click point on the test image"
    _PICKED[key] = (best[1], best[2])
    return _PICKED[key]


def colour_close(rgba, rgb, tolerance: int = 30) -> bool:
    """Anti-aliasing at a marker's edge shifts its colour a little; another colour differs by far more."""
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(rgba[:3], rgb, strict=True))


def marker_near(app: SegFillPage, x: int, y: int, rgb) -> bool:
    """The marker's fill colour shows a few screen pixels from the click (its centre holds a white cross)."""
    offsets = [(dx, dy) for dx in (-3, -2, 2, 3) for dy in (-3, -2, 2, 3)]
    return any(colour_close(app.canvas_pixel(x, y, dx=dx, dy=dy), rgb, tolerance=12) for dx, dy in offsets)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def far_point_inside(mask: np.ndarray, x: int, y: int, distance: int = 12):
    """A pixel inside ``mask`` at least ``distance`` px from (x, y) (away from the click marker)."""
    ys, xs = np.nonzero(mask)
    far = (np.abs(xs - x) + np.abs(ys - y)) >= distance
    assert far.any()
    index = int(np.flatnonzero(far)[len(np.flatnonzero(far)) // 2])
    return int(xs[index]), int(ys[index])


def test_click_candidates_refine_undo_download(open_app, browser_assets, reference, artifacts):
    app: SegFillPage = open_app()
    app.upload(browser_assets.image_path)
    app.screenshot(artifacts, "uploaded")
    payload = app.payload()
    assert (payload["width"], payload["height"]) == (WIDTH, HEIGHT)
    assert payload["mask_area"] == 0 and payload["error"] == ""

    x, y = pick_click(reference, browser_assets.image_path)
    session = reference_session(reference, browser_assets.image_path)
    expected = session.predict(points=[(x + 0.5, y + 0.5, 1)], multimask=True)
    probe = far_point_inside(expected.best_mask, x, y)
    pixel_before = app.canvas_pixel(*probe)

    # left click -> overlay with SAM's best candidate, three thumbnails with scores
    app.click_image(x, y)
    app.screenshot(artifacts, "left-click")
    payload = app.payload()
    assert payload["error"] == ""
    assert payload["points"] == [[x + 0.5, y + 0.5, 1]]
    assert payload["candidate"] == expected.best_index
    assert len(payload["candidates"]) == 3
    assert [c["score"] for c in payload["candidates"]] == pytest.approx([float(s) for s in expected.scores], abs=2e-3)
    assert abs(payload["mask_area"] - int(expected.best_mask.sum())) <= 0.01 * expected.best_mask.size
    assert app.canvas_pixel(*probe) != pixel_before, "the overlay must tint the selected area"
    assert marker_near(app, x, y, (0, 200, 83)), "a green marker where the user clicked"
    assert app.page.locator("#segfill_canvas_root .segfill-candidate").count() == 3

    mask = mask_array(app.download("mask"))
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[y - 2:y + 3, x - 2:x + 3].all(), "the mask must be set around the click"
    assert iou(mask, expected.best_mask) > 0.98

    # a candidate thumbnail switches the mask
    other = next(i for i in range(3) if i != expected.best_index and int(expected.masks[i].sum()) != int(expected.best_mask.sum()))
    app.choose_candidate(other)
    app.screenshot(artifacts, f"candidate-{other + 1}")
    payload = app.payload()
    assert payload["candidate"] == other
    assert abs(payload["mask_area"] - int(expected.masks[other].sum())) <= 0.01 * mask.size
    assert app.page.locator("#segfill_canvas_root .segfill-candidate.active").get_attribute("data-index") == str(other)
    assert iou(mask_array(app.download("mask")), expected.masks[other]) > 0.98
    session.choose(other)

    # right click adds a negative point; SAM refines the chosen candidate
    ny, nx = 6, 6
    app.click_image(nx, ny, button="right")
    app.screenshot(artifacts, "right-click")
    payload = app.payload()
    assert payload["points"] == [[x + 0.5, y + 0.5, 1], [nx + 0.5, ny + 0.5, 0]]
    assert marker_near(app, nx, ny, (255, 23, 68)), "a red marker for the negative point"
    refined = session.predict(points=[(x + 0.5, y + 0.5, 1), (nx + 0.5, ny + 0.5, 0)])
    area_before_grow = payload["mask_area"]
    assert abs(area_before_grow - int(refined.best_mask.sum())) <= 0.01 * mask.size
    assert app.page.locator("#segfill_canvas_root .segfill-candidate").count() == len(refined)

    # grow is applied live
    app.set_number("segfill_grow", 3)
    app.wait_for(f"p.mask_area > {area_before_grow}")
    app.wait_idle()
    app.screenshot(artifacts, "grow-3")
    grown_area = app.payload()["mask_area"]
    grown = mask_array(app.download("mask"))
    assert int(grown.sum()) == grown_area
    assert grown[refined.best_mask].mean() > 0.99, "growing keeps the selected pixels"

    # Ctrl+Z restores the mask and the slider; Ctrl+Shift+Z brings the growth back (each step waits for the
    # state it expects, never for a fixed time)
    app.press("Control+z", until=f"p.mask_area === {area_before_grow}")
    app.page.wait_for_function("() => document.querySelector('#segfill_grow input[type=number]').value === '0'")
    app.screenshot(artifacts, "undo")
    app.press("Control+Shift+z", until=f"p.mask_area === {grown_area}")
    app.page.wait_for_function("() => document.querySelector('#segfill_grow input[type=number]').value === '3'")
    app.screenshot(artifacts, "redo")

    # downloads: mask PNG and RGBA cut-out at the input's size
    mask_png = app.download("mask")
    assert mask_png.format == "PNG" and mask_png.size == (WIDTH, HEIGHT)
    cutout = app.download("cutout")
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (WIDTH, HEIGHT)
    alpha = np.asarray(cutout)[..., 3] > 127
    assert np.array_equal(alpha, mask_array(mask_png))
    original = np.asarray(Image.open(browser_assets.image_path).convert("RGB"))
    assert np.array_equal(np.asarray(cutout)[..., :3][alpha], original[alpha])

    # Esc clears the current selection (points and candidates), the refinement stays
    app.press("Escape", until="p.points.length === 0 && p.mask_area === 0")
    app.screenshot(artifacts, "escape")
    assert app.payload()["candidates"] == []


def test_two_browser_contexts_keep_separate_state(open_app, browser_assets, reference, artifacts):
    first: SegFillPage = open_app()
    second: SegFillPage = open_app()
    first.upload(browser_assets.image_path)
    x, y = pick_click(reference, browser_assets.image_path)
    session = reference_session(reference, browser_assets.image_path)
    first.click_image(x, y)
    first_area = first.payload()["mask_area"]
    assert first_area > 0
    first.screenshot(artifacts, "first-after-click")

    second.upload(browser_assets.second_image_path)
    payload = second.payload()
    assert payload["points"] == [] and payload["mask_area"] == 0 and not payload["can_undo"]
    sx, sy = pick_click(reference, browser_assets.second_image_path, avoid=(x, y), strict=False)
    second.click_image(sx, sy)
    second.click_image(sx, sy)
    assert second.payload()["points"] == [[sx + 0.5, sy + 0.5, 1]] * 2
    second.screenshot(artifacts, "second-after-clicks")

    # the first user's history and mask are untouched by the second user's clicks
    first.press("Control+z", until="p.points.length === 0 && p.mask_area === 0 && !p.can_undo")
    first.press("Control+Shift+z", until=f"p.points.length === 1 && p.mask_area === {first_area}")
    assert first.payload()["points"] == [[x + 0.5, y + 0.5, 1]]
    expected = session.predict(points=[(x + 0.5, y + 0.5, 1)], multimask=True).best_mask
    assert iou(mask_array(first.download("mask")), expected) > 0.98
    first.screenshot(artifacts, "first-after-undo-redo")
    assert second.payload()["points"] == [[sx + 0.5, sy + 0.5, 1]] * 2


def test_zoom_box_brush_eraser(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1400, 800))
    app.upload(browser_assets.image_path)
    fit_scale = app.page.evaluate("() => window.segfillDebugState().scale")

    # wheel zoom around the cursor, then clicks still land on the right image pixel
    centre = app.client_point(80, 60)
    app.page.mouse.move(centre["x"], centre["y"])
    app.page.mouse.wheel(0, -400)
    app.page.wait_for_function(f"() => window.segfillDebugState().scale > {fit_scale * 1.3}")
    app.click_image(90, 70)
    assert app.payload()["points"] == [[90.5, 70.5, 1]]
    app.screenshot(artifacts, "zoomed-click")

    # drag pans in pan mode: the same image pixel moves on screen
    app.toolbar("mode", mode="pan")
    before = app.client_point(90, 70)
    app.page.mouse.move(before["x"], before["y"])
    app.page.mouse.down()
    app.page.mouse.move(before["x"] - 60, before["y"] - 40, steps=5)
    app.page.mouse.up()
    after = app.client_point(90, 70)
    assert after["x"] == pytest.approx(before["x"] - 60, abs=1) and after["y"] == pytest.approx(before["y"] - 40, abs=1)

    # box selection (Esc first: a box with the old point would be a different prompt)
    app.toolbar("mode", mode="select")
    app.page.keyboard.press("0")  # fit again
    app.press("Escape", until="p.points.length === 0")
    app.drag_image((20, 15), (70, 55))
    payload = app.payload()
    assert payload["box"] == pytest.approx([20, 15, 70, 55], abs=0.6)
    assert payload["points"] == []
    app.screenshot(artifacts, "box")

    # brush adds, eraser removes
    app.press("Escape", until="p.box === null")
    app.toolbar("mode", mode="brush")
    app.drag_image((100, 20), (150, 100))
    painted = app.payload()["mask_area"]
    assert painted > 200
    app.screenshot(artifacts, "brush")
    app.toolbar("mode", mode="eraser")
    app.drag_image((100, 20), (125, 60))
    erased = app.payload()["mask_area"]
    assert 0 < erased < painted
    app.screenshot(artifacts, "eraser")
    app.press("Control+z", until=f"p.mask_area === {painted}")


def test_errors_are_shown_and_keep_the_work(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app()
    # an action without an image is a readable message, not a crash
    app.tab("Inpaint")
    app.page.click("#segfill_inpaint")
    app.wait_for("p.error && p.error.includes('Upload an image')")
    assert "Upload an image" in app.status()

    app.upload(browser_assets.image_path)
    app.page.click("#segfill_inpaint")
    app.wait_for("p.error && p.error.includes('mask is empty')")
    app.screenshot(artifacts, "empty-mask-error")
    assert "mask is empty" in app.status()

    # paint a mask, inpaint it with the OpenCV backend: the result comes onto the canvas, the mask is kept
    app.toolbar("mode", mode="brush")
    app.drag_image((30, 30), (60, 50))
    area = app.payload()["mask_area"]
    app.page.click("#segfill_inpaint")
    app.wait_for("p.result && s.resultLoaded && p.message.includes('Inpaint result 1')")
    app.screenshot(artifacts, "inpainted")
    payload = app.payload()
    assert payload["error"] == "" and payload["mask_area"] == area and payload["width"] == WIDTH
    assert "segfill" in payload["result"]["info"].lower()
    assert (payload["result"]["width"], payload["result"]["height"]) == (WIDTH, HEIGHT)

    # outpaint 64 px to the right: a wider result, the work stays
    app.tab("Outpaint")
    app.reveal("segfill_pad_right", "segfill_padding")
    app.set_number("segfill_pad_right", 64)
    app.wait_for("p.frame[1] === 64 && p.frame_plan")
    app.page.click("#segfill_outpaint")
    app.wait_for("p.result && p.result.kind === 'outpaint' && s.resultLoaded")
    app.screenshot(artifacts, "outpainted")
    result = app.payload()["result"]
    assert (result["width"], result["height"]) == (WIDTH + 64, HEIGHT) and result["offset"] == [0, 0]
    assert app.payload()["mask_area"] == area


def test_segment_map_mode_picks_the_clicked_segment(open_app, browser_assets, artifacts):
    """The segment map is a fixture of the image's own shapes (fixture_app.py): clicking the disc must select
    exactly the disc, a right click removes it again, a scribble over two shapes adds both."""
    from tests.browser.fixture_app import shape_masks

    image = np.asarray(Image.open(browser_assets.image_path).convert("RGB"))
    disc, square, _background = shape_masks(image)
    app: SegFillPage = open_app()
    app.upload(browser_assets.image_path)
    app.toolbar("mode", mode="segments")
    app.wait_for("p.message.startsWith('Segment map: 3 segments')")
    assert app.page.get_attribute("#segfill_canvas_root", "data-segfill-mode") == "segments"
    app.screenshot(artifacts, "segment-map")
    ys, xs = np.nonzero(disc)
    cx, cy = int(xs.mean()), int(ys.mean())
    app.click_image(cx, cy)
    payload = app.payload()
    assert payload["error"] == "" and payload["segments"] == 1 and payload["mask_area"] == int(disc.sum())
    assert np.array_equal(mask_array(app.download("mask")), disc), "the clicked segment, exactly"
    app.screenshot(artifacts, "disc-picked")
    app.click_image(cx, cy, button="right")
    app.wait_for("p.segments === 0 && p.mask_area === 0")
    sy, sx = (int(v.mean()) for v in np.nonzero(square))
    app.drag_image((sx, sy), (cx, cy))
    app.wait_for("p.segments >= 2")
    got = mask_array(app.download("mask"))
    assert got[disc].all() and got[square].all()
