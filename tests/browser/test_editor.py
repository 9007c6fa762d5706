"""End-to-end: the tab as an editor (issue 11), in headless Chromium on the standalone app and a stand-in WebUI page.

Layout at 1024×768, opening files (errors in SegFill's words and colour, the photo shown while SAM embeds),
results on the canvas (before/after, accept with history, discard, gallery), the outpaint frame (drag, aspect,
zoom out, tile plan), presets, full-resolution detail when zoomed, brush and keyboard, mask colour, one undo
step per slider drag, switching the SAM model, the page without a model, and the extension points other
scripts use. Every wait is for a state. Screenshots land in artifacts/browser/gradio<N>/<test>/.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import _free_port, browser_available, start_server
from tests.browser.pages import SegFillPage, mask_array
from tests.browser.tiny_assets import IMAGE_SIZE, SLOW_WIDTH, STRIPES

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = IMAGE_SIZE
ERROR_RGB = "rgb(229, 72, 77)"


@pytest.fixture(scope="module")
def webui_layout_url(browser_assets, tmp_path_factory):
    """The tab inside a page laid out like the WebUI's (quicksettings, a row of tabs)."""
    browser_available()
    port = _free_port()
    command = [sys.executable, "-m", "tests.browser.fake_webui", "--port", str(port), "--sam-checkpoint",
               str(browser_assets.sam_path), "--mode", "python", "--layout", "webui"]
    with start_server(command, tmp_path_factory.mktemp("fake_webui_layout") / "fake-webui-layout.log", port) as url:
        yield url


def close(a, b, tolerance=24) -> bool:
    return all(abs(int(x) - int(y)) <= tolerance for x, y in zip(a[:3], b[:3], strict=True))


def paint(app: SegFillPage, start, end, size: int | None = None) -> int:
    app.toolbar("mode", mode="brush")
    if size is not None:
        app.page.evaluate(f"""() => {{ const r = document.querySelector('#segfill_canvas_root [data-role=brush-size]');
                                       r.value = '{size}'; r.dispatchEvent(new Event('input')); }}""")
    app.drag_image(start, end)
    return app.payload()["mask_area"]


# -- layout ---------------------------------------------------------------------------------------------------


def test_layout_at_1024x768_keeps_the_main_actions_in_view(open_app, webui_layout_url, browser_assets, artifacts):
    for url, where in ((None, "standalone"), (webui_layout_url, "webui")):
        app: SegFillPage = open_app(viewport=(1024, 768), url=url)
        app.upload(browser_assets.photo_path)
        app.click_image(300, 200)  # SAM's candidates appear under the canvas
        app.screenshot(artifacts, f"{where}-mask-tab", full_page=False)
        for selector in ("#segfill_canvas_root .segfill-stage", "#segfill_canvas_root .segfill-topbar",
                         "#segfill_canvas_root .segfill-bottombar", "#segfill_canvas_root .segfill-candidate",
                         "#segfill_canvas_root [data-mode='frame']", "#segfill_canvas_root [data-action='fit']",
                         "#segfill_canvas_root [data-action='undo']", "#segfill_canvas_root [data-action='help']",
                         "#segfill_canvas_root [data-role='detect-text']",
                         "#segfill_canvas_root [data-role='detect-options-button']",
                         "#segfill_canvas_root [data-action='detect']",
                         "#segfill_op", "#segfill_grow", "#segfill_invert"):
            assert app.visible_in_viewport(selector), f"{where}: {selector} must be in view without scrolling"
        heights = app.page.evaluate("""() => ({
            topbar: document.querySelector('#segfill_canvas_root .segfill-topbar').getBoundingClientRect().height,
            stage: document.querySelector('#segfill_canvas_root .segfill-stage').getBoundingClientRect().height})""")
        assert heights["topbar"] < 48, f"{where}: the toolbar is one row, not {heights['topbar']} px"
        assert heights["stage"] >= 300, f"{where}: the canvas is the page's centre"
        app.tab("Inpaint")
        assert app.visible_in_viewport("#segfill_inpaint") and app.visible_in_viewport("#segfill_preset")
        if where == "webui":
            assert app.visible_in_viewport("#segfill_send_inpaint")
        if where == "webui":
            assert app.visible_in_viewport("#segfill_prompt"), "the WebUI's checkpoint takes a prompt"
        app.tab("Outpaint")
        for selector in ("#segfill_outpaint", "#segfill_aspect", "#segfill_anchor", "#segfill_zoom_2",
                         "#segfill_padding") + (("#segfill_outpaint_prompt",) if where == "webui" else ()):
            assert app.visible_in_viewport(selector), f"{where}: {selector}"
        app.screenshot(artifacts, f"{where}-outpaint-tab", full_page=False)
        app.tab("Inpaint")
        paint(app, (200, 150), (260, 200))
        app.page.click("#segfill_inpaint")
        app.wait_for("p.result && s.resultLoaded")
        assert app.page.evaluate("() => window.scrollY") == 0, "Inpaint does not scroll the canvas away"
        assert app.visible_in_viewport("#segfill_canvas_root [data-action='accept']")
        assert app.visible_in_viewport("#segfill_canvas_root .segfill-stage")
        app.screenshot(artifacts, f"{where}-result", full_page=False)


# -- opening images -------------------------------------------------------------------------------------------


def test_a_bad_file_is_a_sentence_in_segfill_colours(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1024, 768))
    empty = app.page.inner_text("#segfill_canvas_root [data-role='empty']")
    assert "Drop an image here" in empty and "paste" in empty
    # through the canvas' own file input, the one its Open button and drop use
    app.page.set_input_files("#segfill_canvas_root input[data-role='file']", str(browser_assets.bad_file_path))
    app.wait_for("p.error")
    text = app.status()
    assert text == "'holiday.jpg' is not an image SegFill can open; use a PNG, JPEG, WebP, TIFF, BMP or GIF file."
    assert "BytesIO" not in text and "/tmp" not in text and "gradio" not in text
    colour = app.page.evaluate("() => getComputedStyle(document.querySelector('#segfill_canvas_root [data-role=status]')).color")
    assert colour == ERROR_RGB
    app.screenshot(artifacts, "bad-file", full_page=False)
    # a good file afterwards opens normally
    app.page.set_input_files("#segfill_canvas_root input[data-role='file']", str(browser_assets.image_path))
    app.wait_for("p.width > 0 && !p.error && !p.busy")
    assert app.payload()["message"].startswith(f"Image {WIDTH}×{HEIGHT} ready")


def test_the_photo_and_a_busy_note_show_while_sam_embeds(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1024, 768))
    app.open_file(browser_assets.slow_image_path)  # the fixture app embeds this one slowly
    app.page.wait_for_function("() => { const p = window.segfillLastPayload(); return p.width > 0 && p.busy; }")
    app.page.wait_for_function("() => !document.querySelector('#segfill_canvas_root [data-role=busy]').hidden")
    app.screenshot(artifacts, "embedding", full_page=False)
    busy = app.page.inner_text("#segfill_canvas_root [data-role='busy']")
    assert busy.startswith("Computing SAM's embedding") or busy.startswith("Encoding the image")
    # then the encoder's own progress: the step, a bar, and a Cancel button (tests/browser/test_live.py cancels)
    app.page.wait_for_function("() => { const b = document.querySelector('#segfill_canvas_root [data-role=busy]');"
                               " return b.innerText.includes('Encoding the image: block')"
                               " && !b.querySelector('progress').hidden; }")
    assert app.page.is_visible("#segfill_canvas_root [data-role='busy-cancel']")
    assert app.page.is_disabled("#segfill_canvas_root [data-action='undo']")
    assert app.page.is_disabled("#segfill_canvas_root [data-action='redo']")
    assert not app.page.is_visible("#segfill_canvas_root [data-role='empty']"), "not 'Upload an image to start'"
    original = np.asarray(Image.open(browser_assets.slow_image_path).convert("RGB"))
    y, x = 60, int(SLOW_WIDTH * 0.62)  # inside the yellow disc
    assert close(app.canvas_pixel(x, y), original[y, x], 40), "the photo is on the canvas"
    app.wait_for("!p.busy && p.message.includes('ready')")
    assert app.page.is_hidden("#segfill_canvas_root [data-role='busy']")
    app.click_image(x, y)
    assert not app.page.is_disabled("#segfill_canvas_root [data-action='undo']")


# -- results on the canvas ------------------------------------------------------------------------------------


def test_result_compare_accept_with_history_discard_and_gallery(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    original = np.asarray(Image.open(browser_assets.image_path).convert("RGB"))
    area = paint(app, (20, 60), (140, 60), size=24)
    first_rev = app.payload()["image_rev"]
    app.tab("Inpaint")
    app.page.click("#segfill_inpaint")
    app.wait_for("p.result && s.resultLoaded")
    result = np.asarray(app.download("result").convert("RGB"))
    assert result.shape == original.shape
    changed = np.abs(result.astype(int) - original.astype(int)).sum(-1) > 60
    ys, xs = np.nonzero(changed[:, : WIDTH // 2])
    left = (int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))  # a repainted pixel left of the divider
    ys, xs = np.nonzero(changed[:, WIDTH // 2 + 4:])
    right = (int(xs[len(xs) // 2]) + WIDTH // 2 + 4, int(ys[len(ys) // 2]))
    app.screenshot(artifacts, "split")
    assert app.debug()["compare"] == "split"
    def shows(point, picture) -> bool:
        """The canvas shows ``picture``'s pixel there (nearer to it than to the other picture's)."""
        other = result if picture is original else original
        got = np.asarray(app.canvas_pixel(*point)[:3], int)
        return np.abs(got - picture[point[1], point[0]]).sum() < np.abs(got - other[point[1], point[0]]).sum()

    assert shows(left, original), "left of the divider: before"
    assert shows(right, result), "right of the divider: after"
    app.toolbar("compare", compare="before")
    assert shows(right, original)
    app.toolbar("compare", compare="after")
    assert shows(left, result)
    app.screenshot(artifacts, "after")
    # the divider follows a drag
    app.toolbar("compare", compare="split")
    a, b = app.client_point(WIDTH / 2, HEIGHT / 2), app.client_point(WIDTH - 2, HEIGHT / 2)
    app.page.mouse.move(a["x"], a["y"])
    app.page.mouse.down()
    app.page.mouse.move(b["x"], b["y"], steps=5)
    app.page.mouse.up()
    assert app.debug()["split"] > 0.95
    assert shows(right, original)

    # Accept (Enter): the result is the image being edited, the mask is kept, Ctrl+Z goes back
    app.press("Enter", until=f"!p.result && p.image_rev !== {first_rev}")
    accepted_rev = app.payload()["image_rev"]
    assert app.payload()["mask_area"] == area and app.payload()["message"].startswith("Editing the inpainted image")
    app.toolbar("view", view="cutout")  # the mask overlay aside: the pixels under it are the result's
    assert shows(left, result)
    app.screenshot(artifacts, "accepted")
    app.press("Control+z", until=f"p.image_rev === {first_rev}")
    assert shows(left, original)
    app.toolbar("view", view="overlay")
    app.press("Control+Shift+z", until=f"p.image_rev === {accepted_rev}")
    # Discard (Esc) puts a result aside; the gallery brings it back
    app.page.click("#segfill_inpaint")
    app.wait_for("p.result && p.result.id === 2 && s.resultLoaded")
    app.press("Escape", until="!p.result")
    assert app.page.locator("#segfill_canvas_root .segfill-thumb").count() == 2
    app.page.click("#segfill_canvas_root .segfill-thumb[data-result='1']")
    app.wait_for("p.result && p.result.id === 1 && s.resultLoaded")
    assert app.page.get_attribute("#segfill_canvas_root .segfill-thumb.active", "data-result") == "1"
    app.screenshot(artifacts, "gallery")


# -- the outpaint frame ---------------------------------------------------------------------------------------


def test_outpaint_frame_drag_aspect_zoom_and_accept(open_app, browser_assets, artifacts):
    from segfill.outpaint.geometry import target_for_aspect

    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    paint(app, (30, 30), (60, 50))
    area = app.payload()["mask_area"]
    app.tab("Outpaint")
    app.page.wait_for_function("() => window.segfillDebugState().mode === 'frame'")
    # drag the right edge outwards by ~64 image px
    a = app.client_point(WIDTH, HEIGHT / 2)
    b = app.client_point(WIDTH + 64, HEIGHT / 2)
    before = app.render_count()
    app.page.mouse.move(a["x"], a["y"])
    app.page.mouse.down()
    app.page.mouse.move(b["x"], b["y"], steps=6)
    app.page.mouse.up()
    app.wait_render_after(before)
    app.wait_for("p.frame_plan && p.frame_plan.tiles.length > 0")
    frame = app.payload()["frame"]
    assert frame[0] == frame[2] == frame[3] == 0 and 56 <= frame[1] <= 72 and frame[1] % 8 == 0
    app.page.wait_for_function(f"() => document.querySelector('#segfill_pad_right input').value === '{frame[1]}'")
    assert app.payload()["message"].startswith(f"Outpaint to {WIDTH + frame[1]}×{HEIGHT}:")
    app.screenshot(artifacts, "frame-dragged")
    new_area = app.canvas_pixel(WIDTH + frame[1] / 2, HEIGHT / 2)
    assert close(new_area, (58, 58, 58), 20) or close(new_area, (74, 74, 74), 20), "the new area is shown (checkerboard)"
    # an aspect preset, the anchor, zoom out
    app.choose("segfill_aspect", "16:9")
    tw, th = target_for_aspect((WIDTH, HEIGHT), (16, 9))
    app.wait_for(f"p.frame[0] + p.frame[1] === {tw - WIDTH} && p.frame[2] + p.frame[3] === {th - HEIGHT}")
    app.choose("segfill_anchor", "left")
    app.wait_for(f"p.frame[0] === 0 && p.frame[1] === {tw - WIDTH}")
    app.page.click("#segfill_zoom_2")
    app.wait_for(f"p.frame[0] + p.frame[1] === {WIDTH} && p.frame[2] + p.frame[3] === {HEIGHT}")
    assert app.page.input_value("#segfill_aspect input") == "Free"
    app.screenshot(artifacts, "zoom-out-2")
    plan = app.payload()["frame_plan"]
    assert plan["canvas"] == [2 * WIDTH, 2 * HEIGHT] and plan["tiles"]
    app.page.click("#segfill_outpaint")
    app.wait_for("p.result && p.result.kind === 'outpaint' && s.resultLoaded")
    result = app.payload()["result"]
    assert (result["width"], result["height"]) == (2 * WIDTH, 2 * HEIGHT)
    app.screenshot(artifacts, "outpainted")
    app.toolbar("accept")
    app.wait_for(f"!p.result && p.width === {2 * WIDTH}")
    assert app.payload()["mask_area"] == area and app.payload()["frame"] == [0, 0, 0, 0]
    app.screenshot(artifacts, "accepted")


# -- presets --------------------------------------------------------------------------------------------------


def test_presets_show_what_they_set_and_keep_the_users_values(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    paint(app, (40, 40), (80, 60))
    app.tab("Inpaint")
    app.choose("segfill_preset", "Retouch a portrait")
    app.page.wait_for_function("() => document.querySelector('#segfill_preset_summary').innerText.includes('Retouch a portrait: set')")
    summary = app.page.inner_text("#segfill_preset_summary")
    assert "grow 4 px" in summary and "feather 24 px" in summary
    assert "prompt" not in summary, "the OpenCV backend has no prompt: the preset does not claim to set one"
    app.wait_for("p.message.startsWith('Retouch a portrait')")
    app.screenshot(artifacts, "preset")
    app.tab("Mask")
    assert app.number("segfill_grow") == 4 and app.number("segfill_feather") == 24
    app.set_number("segfill_feather", 10)
    app.page.wait_for_function("() => document.querySelector('#segfill_feather input[type=number]').value === '10'")
    app.wait_idle()
    app.tab("Inpaint")
    app.choose("segfill_preset", "Remove an object")
    app.page.wait_for_function("() => document.querySelector('#segfill_preset_summary').innerText.includes('Kept your feather')")
    app.wait_idle()
    app.tab("Mask")
    assert app.number("segfill_grow") == 12 and app.number("segfill_feather") == 10
    app.tab("Outpaint")
    app.choose("segfill_outpaint_preset", "Extend a landscape")
    app.page.wait_for_function("() => document.querySelector('#segfill_outpaint_preset_summary').innerText.includes('colour match')")


# -- detail when zoomed ---------------------------------------------------------------------------------------


def test_zoomed_in_shows_full_resolution_image_and_mask(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.big_image_path)
    x0, y0, x1, y1 = STRIPES
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    centre = app.client_point(cx, cy)
    app.page.mouse.move(centre["x"], centre["y"])
    for _ in range(12):
        app.page.mouse.wheel(0, -400)
        if app.debug()["scale"] >= 5:
            break
    app.page.wait_for_function("() => window.segfillDebugState().scale >= 5")
    app.page.mouse.move(2, 2)  # off the canvas: no hover preview drawn over the pixels read below
    app.wait_for(f"!s.hoverMask && s.detail && s.detail.image && s.detail.rect[0] <= {cx} && s.detail.rect[2] >= {cx}")
    row = [app.canvas_pixel(x, cy)[0] for x in range(cx - 4, cx + 4)]
    assert all((v > 200) == ((x % 2) == 0) and (v > 200 or v < 55) for v, x in zip(row, range(cx - 4, cx + 4), strict=True)), \
        f"1-px stripes resolved at full resolution, got {row}"
    app.screenshot(artifacts, "detail", full_page=False)
    # a 3-px wide stroke stays 3 px wide: the mask tile is full resolution too
    app.toolbar("mode", mode="brush")
    app.page.evaluate("""() => { const r = document.querySelector('#segfill_canvas_root [data-role=brush-size]');
                                 r.value = '3'; r.dispatchEvent(new Event('input')); }""")
    app.drag_image((cx - 20, cy + 10), (cx + 20, cy + 10))
    app.wait_for("s.detail && s.detail.mask")
    inside = app.canvas_pixel(cx, cy + 10)
    outside = app.canvas_pixel(cx, cy + 14)
    assert inside[2] > inside[0] + 30, f"the stroke is tinted, got {inside}"
    assert abs(outside[0] - outside[2]) < 40, f"4 px away is not, got {outside}"
    app.screenshot(artifacts, "detail-mask", full_page=False)


# -- brush, keyboard, mask style, sliders ---------------------------------------------------------------------


def test_brush_cursor_size_keys_hardness_and_help(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    app.toolbar("mode", mode="brush")
    start = app.debug()["brushSize"]
    app.press("]", until="true")
    bigger = app.debug()["brushSize"]
    assert bigger > start
    app.press("[", until="true")
    assert app.debug()["brushSize"] < bigger
    # the size cursor: a ring of the brush's radius around the pointer
    centre = app.client_point(80, 60)
    app.page.mouse.move(centre["x"], centre["y"])
    radius = app.debug()["brushSize"] * app.debug()["scale"] / 2
    ring = app.screen_pixel(centre["x"] + radius, centre["y"])
    assert ring[0] > 200 and ring[1] > 200 and ring[2] > 200, f"white ring at the brush radius, got {ring}"
    app.screenshot(artifacts, "cursor", full_page=False)
    # Shift+[ softens the brush; a soft stroke gives a soft mask
    for _ in range(10):
        app.page.keyboard.press("Shift+BracketLeft")
    assert app.debug()["hardness"] == 0
    app.drag_image((30, 60), (130, 60))
    assert app.payload()["strokes_soft"]
    values = np.asarray(app.download("mask").convert("L"))
    assert ((values > 10) & (values < 245)).sum() > 50, "a soft edge, not 0/255 only"
    # ? opens the shortcuts, Esc closes them
    app.press("?", until="true")
    app.page.wait_for_selector("#segfill_canvas_root [data-role='help']", state="visible")
    assert "brush size smaller / larger" in app.page.inner_text("#segfill_canvas_root [data-role='help']")
    app.screenshot(artifacts, "help", full_page=False)
    app.press("Escape", until="true")
    app.page.wait_for_selector("#segfill_canvas_root [data-role='help']", state="hidden")


def test_mask_colour_and_opacity(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    original = np.asarray(Image.open(browser_assets.image_path).convert("RGB"))
    paint(app, (20, 100), (60, 100), size=16)
    blue = app.canvas_pixel(40, 100)
    app.toolbar("mask-style")
    app.page.click("#segfill_canvas_root [data-color='#ff2d55']")
    red = app.canvas_pixel(40, 100)
    assert red[0] > blue[0] + 40 and blue[2] > red[2] + 40, (blue, red)
    app.page.evaluate("""() => { const r = document.querySelector('#segfill_canvas_root [data-role=mask-opacity]');
                                 r.value = '0'; r.dispatchEvent(new Event('input')); }""")
    assert close(app.canvas_pixel(40, 100), original[100, 40], 30), "opacity 0 shows the photo under the mask"
    app.page.evaluate("""() => { const r = document.querySelector('#segfill_canvas_root [data-role=mask-opacity]');
                                 r.value = '45'; r.dispatchEvent(new Event('input')); }""")
    app.screenshot(artifacts, "red-mask", full_page=False)


def test_undo_after_a_slider_drag_restores_the_value_before_the_drag(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    area = paint(app, (40, 60), (100, 60), size=10)
    slider = app.page.locator("#segfill_grow input[type=range]")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    app.page.mouse.move(box["x"] + 2, y)
    app.page.mouse.down()
    app.page.mouse.move(box["x"] + box["width"] * 0.12, y, steps=12)
    app.page.mouse.up()
    app.page.wait_for_function("() => Number(document.querySelector('#segfill_grow input[type=number]').value) >= 10")
    app.wait_for(f"p.mask_area > {area}")
    app.press("Control+z", until=f"p.mask_area === {area}")
    app.page.wait_for_function("() => document.querySelector('#segfill_grow input[type=number]').value === '0'")
    assert app.payload()["can_undo"], "the stroke is still there to undo"


# -- SAM models -----------------------------------------------------------------------------------------------


def test_switching_the_sam_model_in_the_tab(open_app, browser_assets, artifacts):
    from segfill.sam.loading import load_sam
    from segfill.sam.session import SamSession

    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    app.click_image(100, 60)
    assert app.payload()["model"] == "tiny_sam.pth"
    app.tab("Model")
    app.choose("segfill_model", "tiny_sam_b.pth")
    app.wait_for("p.model === 'tiny_sam_b.pth' && p.points.length === 0")
    assert "cleared; click again" in app.payload()["message"]
    app.click_image(100, 60)
    session = SamSession(load_sam(browser_assets.second_sam_path, device="cpu"))
    session.set_image(np.asarray(Image.open(browser_assets.image_path).convert("RGB")))
    expected = session.predict(points=[(100.5, 60.5, 1)]).best_mask
    got = mask_array(app.download("mask"))
    union = np.logical_or(got, expected).sum()
    assert union == 0 or np.logical_and(got, expected).sum() / union > 0.98, "the second model's mask"
    app.screenshot(artifacts, "second-model")


def test_without_a_sam_model_the_page_says_so_and_points_at_the_download_box(open_app, no_model_app_url,
                                                                             browser_assets, artifacts):
    from segfill.ui.state import NO_MODEL_MESSAGE

    app: SegFillPage = open_app(viewport=(1024, 768), url=no_model_app_url)
    notice = app.page.inner_text("#segfill_canvas_root [data-role='notice']")
    assert notice == NO_MODEL_MESSAGE and "installed yet" in notice and "'Download a SAM model' box" in notice
    assert app.visible_in_viewport("#segfill_download_button"), "the Model tab with the download box comes first"
    app.screenshot(artifacts, "no-model", full_page=False)
    app.upload(browser_assets.image_path)
    app.toolbar("mode", mode="select")
    app.click_image(50, 50)
    assert app.status() == NO_MODEL_MESSAGE
    colour = app.page.evaluate("() => getComputedStyle(document.querySelector('#segfill_canvas_root [data-role=status]')).color")
    assert colour == ERROR_RGB
    assert paint(app, (20, 20), (60, 40)) > 0, "the brush works without a model"


# -- extension points -----------------------------------------------------------------------------------------


def test_extension_points_preview_provider_busy_and_detections(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    # a preview provider (what the in-browser decoder registers): a mask of the left half
    app.page.evaluate(f"""() => {{
        window.seen = [];
        window.segfillCanvas.setPreviewProvider(info => {{
            window.seen.push(info);
            const w = {WIDTH}, h = {HEIGHT}, data = new Uint8Array(w * h);
            for (let y = 0; y < h; y++) {{ for (let x = 0; x < w / 2; x++) {{ data[y * w + x] = 255; }} }}
            return Promise.resolve({{data: data, width: w, height: h}});
        }});
    }}""")
    point = app.client_point(30, 60)
    app.page.mouse.move(point["x"], point["y"])
    app.page.mouse.move(point["x"] + 2, point["y"] + 1)
    app.page.wait_for_function("() => window.segfillDebugState().hoverMask")
    hover = app.page.evaluate("() => window.seen.filter(i => i.kind === 'hover').pop()")
    assert abs(hover["x"] - 32) < 3 and hover["width"] == WIDTH and hover["points"] == []
    app.click_image(30, 60)
    click = app.page.evaluate("() => window.seen.filter(i => i.kind === 'click').pop()")
    assert click["points"] == [[30.5, 60.5, 1]], "the click's prompt, including the new point"
    # showMask: a mask the server did not send, until the next answer
    app.page.evaluate("() => window.segfillCanvas.setPreviewProvider(null)")
    app.press("Escape", until="p.mask_area === 0")
    photo = app.canvas_pixel(20, 20)
    app.page.evaluate(f"""() => {{ const w = {WIDTH}, h = {HEIGHT}, d = new Uint8Array(w * h).fill(255);
                                   window.segfillCanvas.showMask({{data: d, width: w, height: h}}); }}""")
    assert app.debug()["provisional"] and app.canvas_pixel(20, 20) != photo
    # busy: a plugin's note and progress on the canvas
    app.page.evaluate("() => window.segfillCanvas.busy('decoder', {text: 'Loading the decoder…', progress: 0.4})")
    app.page.wait_for_selector("#segfill_canvas_root [data-role='busy']", state="visible")
    assert app.page.inner_text("#segfill_canvas_root [data-role='busy']") == "Loading the decoder…"
    assert app.page.evaluate("() => document.querySelector('#segfill_canvas_root [data-role=busy-progress]').value") == 0.4
    app.screenshot(artifacts, "plugin-busy", full_page=False)
    app.page.evaluate("() => window.segfillCanvas.busy('decoder', null)")
    app.page.wait_for_selector("#segfill_canvas_root [data-role='busy']", state="hidden")
    # Select by text (the Python side's payload: text_boxes, detectors): boxes with labels and scores, a label
    # toggles keep / drop, the text box sends detect
    # the server's payload carries `detectors` (segfill.ui.render.detector_help), so the box is there; its state
    # follows what the payload says can run
    app.page.wait_for_selector("#segfill_canvas_root [data-role='detect']", state="visible")
    served = app.page.evaluate("() => window.segfillLastPayload().detectors")
    assert app.page.is_disabled("#segfill_canvas_root [data-role='detect-text']") == (not served["available"])
    app.page.evaluate("""() => {
        window.sent = [];
        window.segfillCanvas.on('event', e => window.sent.push(e));
        const p = window.segfillLastPayload();
        p.text_boxes = [{index: 0, box: [10, 20, 70, 90], label: 'cat', score: 0.87, kept: true}];
        p.detectors = {available: true, message: 'OWL-ViT is installed.'};
        window.segfillRender(JSON.stringify(p));
    }""")
    app.page.wait_for_selector("#segfill_canvas_root [data-role='detect']", state="visible")
    app.screenshot(artifacts, "text-boxes", full_page=False)
    chip = app.client_point(12, 20)
    app.page.mouse.click(chip["x"] + 4, chip["y"] - 10)
    app.page.fill("#segfill_canvas_root [data-role='detect-text']", "cat")
    app.page.press("#segfill_canvas_root [data-role='detect-text']", "Enter")
    sent = app.page.evaluate("() => window.sent.filter(e => ['keep', 'drop', 'detect'].includes(e.type))")
    assert sent == [{"type": "drop", "index": 0}, {"type": "detect", "text": "cat"}]
