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


@pytest.fixture(scope="module")
def glue_webui_url(browser_assets, tmp_path_factory):
    """The tab built by the real scripts/segfill_tab.py on the fakes of modules.* (``fake_webui --mode glue``)."""
    browser_available()
    port = _free_port()
    scratch = tmp_path_factory.mktemp("fake_webui_glue")
    command = [sys.executable, "-m", "tests.browser.fake_webui", "--port", str(port), "--sam-checkpoint",
               str(browser_assets.sam_path), "--mode", "glue", "--scratch", str(scratch)]
    with start_server(command, scratch / "fake-webui-glue.log", port) as url:
        yield url


def img2img_settings(page) -> dict:
    """What img2img shows: Width, Height, the "Inpaint area" chosen, the mask box's label."""
    return page.evaluate("""() => ({
        width: Number(document.querySelector('#img2img_width input[type=number]').value),
        height: Number(document.querySelector('#img2img_height input[type=number]').value),
        area: (document.querySelector('#img2img_inpaint_full_res input[type=radio]:checked') || {}).value || null,
        label: document.querySelector('#img_inpaint_mask').innerText.trim(),
    })""")


def test_send_to_img2img_inpaint_sets_size_inpaint_area_and_a_whole_image_mask_label(chromium, glue_webui_url,
                                                                                       browser_assets, artifacts):
    from segfill.hosts.webui.checkpoints import generation_size
    from segfill.hosts.webui.send_to_img2img import WHOLE_IMAGE_MASK_LABEL

    context = chromium.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        app = SegFillPage(page, glue_webui_url)
        app.open()
        app.upload(browser_assets.photo_path)
        width, height = app.payload()["width"], app.payload()["height"]
        expected = generation_size((width, height), 512)
        assert expected[0] == 512 and expected[1] % 8 == 0 and expected[1] < 512  # a landscape photo
        assert img2img_settings(page)["width"] == 512 and img2img_settings(page)["height"] == 512

        # a small mask: img2img gets the photo's aspect ratio and "Only masked"
        app.toolbar("mode", mode="brush")
        app.drag_image((200, 150), (240, 170))
        assert 0 < app.payload()["mask_area"] < width * height / 10
        app.tab("Inpaint")
        page.click("#segfill_send_inpaint")
        page.wait_for_function("() => window.segfillFakeSwitchedTo === 4")
        page.wait_for_function(f"() => ({READ_IMAGE_JS})('#img_inpaint_mask img') !== null")
        page.wait_for_function("() => document.querySelector('#img2img_inpaint_full_res input[type=radio]:checked')"
                               " && document.querySelector('#img2img_inpaint_full_res input:checked').value === 'Only masked'")
        settings = img2img_settings(page)
        assert (settings["width"], settings["height"]) == expected
        assert settings["label"] == "Mask"
        sent_mask = page.evaluate(READ_IMAGE_JS, "#img_inpaint_mask img")
        assert (sent_mask["width"], sent_mask["height"]) == (width, height)
        assert sent_mask["bright"] == app.payload()["mask_area"]

        # a mask over the whole image: "Whole picture", and the mask box says what it holds
        app.menu("reset")
        app.wait_for("p.mask_area === 0")
        app.tab("Mask")
        app.page.click("#segfill_invert input")
        app.wait_for(f"p.mask_area === {width * height}")
        app.tab("Inpaint")
        page.click("#segfill_send_inpaint")
        page.wait_for_function(f"() => document.querySelector('#img_inpaint_mask').innerText.includes("
                               f"{WHOLE_IMAGE_MASK_LABEL!r})")
        page.wait_for_function(f"() => {{ const m = ({READ_IMAGE_JS})('#img_inpaint_mask img');"
                               f" return m !== null && m.bright === {width * height}; }}")
        settings = img2img_settings(page)
        assert settings["area"] == "Whole picture" and (settings["width"], settings["height"]) == expected
        # white on white would look empty: the mask box has a frame and a dark surround (style.css)
        look = page.evaluate("""() => {
            const img = getComputedStyle(document.querySelector('#img_inpaint_mask img'));
            const box = getComputedStyle(document.querySelector('#img_inpaint_mask'));
            return {outline: img.outlineStyle, outlineColor: img.outlineColor, width: img.outlineWidth,
                    background: box.backgroundColor};
        }""")
        assert look["outline"] == "solid" and look["width"] == "2px" and look["outlineColor"] == "rgb(255, 124, 0)"
        assert look["background"] == "rgb(58, 58, 63)"
        page.click("#tabs button:has-text('img2img')")
        page.wait_for_selector("#img_inpaint_mask img", state="visible")
        page.screenshot(path=str(artifacts / "whole-image-mask-in-img2img.png"))
    finally:
        context.close()
