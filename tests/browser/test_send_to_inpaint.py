"""End-to-end: "Send to img2img inpaint" fills the WebUI's Inpaint upload boxes, through both hand-off paths.

The WebUI itself is not running here (tests/webui/ covers a live one); ``fake_webui.py`` serves the SegFill tab
next to two image boxes with the WebUI's elem_ids, and records the ``switch_to_img2img_tab`` call.
"""

from __future__ import annotations

import sys

import pytest

from tests.browser.conftest import STEP_TIMEOUT_MS, _free_port, browser_available, start_server
from tests.browser.pages import SegFillPage
from tests.browser.tiny_assets import IMAGE_SIZE

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = IMAGE_SIZE

# Reads an <img> back through a canvas: its size and how many pixels are bright.
READ_IMAGE_JS = """(selector) => {
    const img = document.querySelector(selector);
    if (!img || !img.complete || !img.naturalWidth) { return null; }
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let bright = 0;
    for (let i = 0; i < d.length; i += 4) { if (d[i] > 127) { bright++; } }
    return {width: c.width, height: c.height, bright: bright};
}"""


@pytest.fixture(scope="module", params=["python", "browser"])
def fake_webui_url(request, browser_assets, tmp_path_factory):
    browser_available()
    port = _free_port()
    command = [sys.executable, "-m", "tests.browser.fake_webui", "--port", str(port),
               "--sam-checkpoint", str(browser_assets.sam_path), "--mode", request.param]
    log = tmp_path_factory.mktemp("fake_webui") / f"fake-webui-{request.param}.log"
    with start_server(command, log, port) as url:
        yield url


def test_send_to_img2img_inpaint_fills_image_and_mask(chromium, fake_webui_url, browser_assets, artifacts):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        app = SegFillPage(page, fake_webui_url)
        app.open()
        app.upload(browser_assets.image_path)
        app.toolbar("mode", mode="brush")
        app.drag_image((30, 30), (90, 70))
        area = app.payload()["mask_area"]
        assert area > 100
        app.tab("Inpaint")  # the button sits beside Inpaint
        page.click("#segfill_send_inpaint")
        page.wait_for_function("() => window.segfillFakeSwitchedTo === 4")
        page.wait_for_function(f"() => ({READ_IMAGE_JS})('#img_inpaint_base img') !== null"
                               f" && ({READ_IMAGE_JS})('#img_inpaint_mask img') !== null")
        app.screenshot(artifacts, "sent")
        sent_image = page.evaluate(READ_IMAGE_JS, "#img_inpaint_base img")
        sent_mask = page.evaluate(READ_IMAGE_JS, "#img_inpaint_mask img")
        assert (sent_image["width"], sent_image["height"]) == (WIDTH, HEIGHT)
        assert (sent_mask["width"], sent_mask["height"]) == (WIDTH, HEIGHT)
        assert sent_mask["bright"] == area, "the mask that arrives is the one on the canvas"
        assert "Sent image and mask" in app.payload()["message"]
        assert app.payload()["mask_area"] == area, "sending keeps the user's mask"

        # a second send replaces what is there
        app.drag_image((100, 20), (140, 100))
        bigger = app.payload()["mask_area"]
        page.click("#segfill_send_inpaint")
        page.wait_for_function(f"() => {{ const m = ({READ_IMAGE_JS})('#img_inpaint_mask img');"
                               f" return m !== null && m.bright === {bigger}; }}")
        app.screenshot(artifacts, "sent-again")
    finally:
        context.close()
