"""Instant feedback in the real tab (issue 10): the mask under the resting pointer before any click, the clicked
mask drawn before the server's answer (from the browser's decoder, or the lean click route where it cannot
run), the server's mask for the record afterwards; and the first embedding's progress bar with a Cancel that
keeps the photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser.pages import SegFillPage
from tests.browser.tiny_assets import IMAGE_SIZE

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = IMAGE_SIZE
ROOT = "#segfill_canvas_root"
DECODER_READY = ("() => { const s = window.segfillLive && window.segfillLive.status();"
                 " return !!s && s.decoder === 'ready' && s.embedding === 'ready'; }")


def _previews(app: SegFillPage) -> list[dict]:
    return app.page.evaluate("() => window.segfillLive.stats()")


def _rest_on(app: SegFillPage, x: float, y: float) -> None:
    point = app.client_point(x, y)
    app.page.mouse.move(point["x"] - 6, point["y"] - 4)
    app.page.mouse.move(point["x"], point["y"], steps=3)


def test_hover_shows_the_mask_under_the_pointer_from_the_browser_decoder(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    app.page.wait_for_function(DECODER_READY)  # decoder once per model, embedding once per image
    assert app.payload()["points"] == []
    x, y = WIDTH * 0.62, HEIGHT * 0.5
    _rest_on(app, x, y)
    app.page.wait_for_function("() => window.segfillDebugState().hoverMask")
    hovers = [p for p in _previews(app) if p["kind"] == "hover"]
    assert hovers and hovers[-1]["source"] == "browser"  # answered in the page, no request to the server
    app.screenshot(artifacts, "hover-preview", full_page=False)
    assert app.payload()["points"] == []  # a hover commits nothing
    # moving off the picture clears the preview
    app.page.mouse.move(2, 2)
    app.page.wait_for_function("() => !window.segfillDebugState().hoverMask")


def test_a_click_draws_the_browsers_mask_first_and_the_server_records_it(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)
    app.page.wait_for_function(DECODER_READY)
    app.page.evaluate("() => window.segfillLive.clearStats()")
    x, y = WIDTH * 0.62, HEIGHT * 0.5
    app.click_image(x, y)
    clicks = [p for p in _previews(app) if p["kind"] == "click"]
    assert clicks and clicks[-1]["source"] == "browser"
    payload = app.payload()
    assert payload["points"] == [[round(x + 0.5, 2), round(y + 0.5, 2), 1]]  # the server has the click
    assert payload["mask_area"] > 0 and not app.debug()["provisional"]  # and its mask replaced the preview
    # the preview was the server's mask: the decoder in the page and SAM in the server agree
    assert abs(clicks[-1]["area"] - payload["mask_area"]) <= 2, (clicks[-1], payload["mask_area"])
    # a second click refines the first (its logits fed back), in the page as on the server
    app.click_image(WIDTH * 0.2, HEIGHT * 0.8, button="right")
    clicks = [p for p in _previews(app) if p["kind"] == "click"]
    assert len(clicks) == 2 and clicks[-1]["source"] == "browser"
    assert len(app.payload()["points"]) == 2


def test_without_the_browser_decoder_clicks_preview_through_the_lean_route(open_app, browser_assets):
    app: SegFillPage = open_app(viewport=(1280, 900))
    # as for SAM 2 / SAM-HQ, whose decoders do not export: the decoder file is not there
    app.page.route("**/segfill/v1/decoder/**", lambda route: route.fulfill(status=404, body="no decoder"))
    app.upload(browser_assets.image_path)
    app.page.evaluate("() => window.segfillLive.clearStats()")
    _rest_on(app, WIDTH * 0.3, HEIGHT * 0.3)  # a hover never waits for a decoder that is not there
    app.page.wait_for_timeout(400)
    assert not [p for p in _previews(app) if p["kind"] == "hover"]
    app.click_image(WIDTH * 0.62, HEIGHT * 0.5)
    clicks = [p for p in _previews(app) if p["kind"] == "click"]
    assert clicks and clicks[-1]["source"] == "server"  # POST /segfill/v1/click, not the gradio event
    assert app.payload()["mask_area"] > 0 and len(app.payload()["points"]) == 1


def test_the_first_embedding_shows_progress_and_cancel_keeps_the_photo(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1024, 768))
    app.open_file(browser_assets.slow_image_path)  # the fixture app encodes this one slowly, block by block
    app.page.wait_for_function(
        "() => { const b = document.querySelector('#segfill_canvas_root [data-role=busy]');"
        " return !b.hidden && b.innerText.includes('Encoding the image') && !b.querySelector('progress').hidden"
        " && !b.querySelector('[data-role=busy-cancel]').hidden; }")
    text = app.page.inner_text(f"{ROOT} [data-role='busy']")
    assert "%" in text or "left" in text, text  # a fraction or an estimate, not a bare spinner
    app.screenshot(artifacts, "encoding-progress", full_page=False)
    app.page.click(f"{ROOT} [data-role='busy-cancel']")
    app.wait_for("p.message.includes('was cancelled')")
    payload = app.payload()
    assert payload["message"].startswith("Encoding the image was cancelled. Nothing was changed")
    assert payload["error"] == "" and payload["width"] > 0 and "sam" not in payload
    assert app.page.is_hidden(f"{ROOT} [data-role='busy']")
    app.screenshot(artifacts, "encoding-cancelled", full_page=False)
    original = np.asarray(Image.open(browser_assets.slow_image_path).convert("RGB"))
    assert payload["width"] == original.shape[1]  # the photo stays on the canvas
    # the next click encodes again (with its progress) and selects
    point = app.client_point(original.shape[1] * 0.62, 60)
    app.page.mouse.click(point["x"], point["y"])
    app.wait_for("p.points.length === 1 && p.mask_area > 0")
