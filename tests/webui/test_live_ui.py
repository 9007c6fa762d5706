"""The WebUI page itself, in headless Chromium (Playwright; Debian's /usr/bin/chromium, nothing downloaded):
the SegFill tab is there, the img2img script runs from the page, and pasting its infotext restores it.

    SD_WEBUI_URL=http://127.0.0.1:7861 .venv/bin/python -m pytest tests/webui/test_live_ui.py -q

Skipped without ``SD_WEBUI_URL``, Playwright or Chromium. Screenshots go to ``artifacts/webui/`` (gitignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
CHROMIUM = os.environ.get("SEGFILL_CHROMIUM", "/usr/bin/chromium")
STEPS = int(os.environ.get("SEGFILL_WEBUI_STEPS", "2"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "webui"

pytestmark = [
    pytest.mark.skipif(not URL, reason="set SD_WEBUI_URL to a running WebUI with SegFill to run these"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(URL + "/")
        page.wait_for_selector("#tab_img2img", state="attached")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield page
        context.close()
        browser.close()


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def test_segfill_tab_is_shown(page):
    button = page.locator("#tabs > .tab-nav button", has_text="SegFill")
    assert button.count() == 1
    button.click()
    page.wait_for_selector("#tab_segfill", state="visible")
    page.screenshot(path=str(ARTIFACTS / "segfill_tab.png"))


def test_script_runs_from_the_page_and_its_infotext_pastes_back(page, tmp_path):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    image_path = tmp_path / "in.png"
    image.save(image_path)

    page.locator("#tabs > .tab-nav button", has_text="img2img").first.click()
    page.set_input_files("#img2img_image input[type=file]", str(image_path))
    page.wait_for_selector("#img2img_image img")
    _set_number(page, "img2img_width", 64)
    _set_number(page, "img2img_height", 64)
    _set_number(page, "img2img_steps", STEPS)

    dropdown = page.locator("#img2img_script_container #script_list input")
    dropdown.click()
    page.locator("#img2img_script_container #script_list ul li", has_text="SegFill outpaint").click()
    page.wait_for_selector("#script_segfill_outpaint_right", state="visible")
    _set_number(page, "script_segfill_outpaint_right", 40)
    _set_number(page, "script_segfill_outpaint_band", 8)
    _set_number(page, "script_segfill_outpaint_feather", 4)
    page.screenshot(path=str(ARTIFACTS / "script_controls.png"), full_page=True)

    page.locator("#img2img_generate").click()
    page.wait_for_function(
        "() => (document.querySelector('#html_info_img2img') || {}).innerText?.includes('SegFill pad right: 40')")
    info = page.locator("#html_info_img2img").first.inner_text()
    assert "Script: SegFill outpaint" in info and "Size: 104x48" in info
    page.wait_for_function("() => (document.querySelector('#img2img_gallery img') || {}).naturalWidth > 0")
    size = page.evaluate("""() => { const img = document.querySelector('#img2img_gallery img');
                                    return img ? [img.naturalWidth, img.naturalHeight] : null; }""")
    assert size == [104, 48]
    page.screenshot(path=str(ARTIFACTS / "script_result.png"), full_page=True)

    # change the controls, then paste the result's infotext back (what PNG Info -> Send to img2img does)
    _set_number(page, "script_segfill_outpaint_right", 8)
    infotext = info.strip()
    prompt = page.locator("#img2img_prompt textarea")
    prompt.fill(infotext)
    page.locator("#img2img_tools #paste").click()
    page.wait_for_function(
        "() => document.querySelector('#script_segfill_outpaint_right input[type=number]').value === '40'")
    assert page.locator("#script_segfill_outpaint_band input[type=number]").input_value() == "8"
    assert page.locator("#img2img_script_container #script_list input").input_value() == "SegFill outpaint"
    page.screenshot(path=str(ARTIFACTS / "pasted.png"), full_page=True)


def test_send_to_img2img_inpaint_fills_inpaint_upload(page, tmp_path):
    from tests.browser.pages import SegFillPage

    image_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(image_path)
    page.locator("#tabs > .tab-nav button", has_text="SegFill").click()
    page.wait_for_selector("#segfill_canvas_root[data-segfill-ready='1']", state="attached")
    app = SegFillPage(page, URL)
    app.upload(image_path)
    app.toolbar("mode", mode="brush")
    app.drag_image((30, 30), (90, 60))
    app.wait_for("p.mask_area > 0")
    app.tab("Inpaint")  # the button sits beside Inpaint in the panel
    page.locator("#segfill_send_inpaint").click()
    # the WebUI switched to img2img -> Inpaint upload, with both boxes holding an image
    page.wait_for_function("""() => {
        const base = document.querySelector('#img_inpaint_base img');
        const mask = document.querySelector('#img_inpaint_mask img');
        const tab = document.querySelector('#tab_img2img');
        return tab && tab.offsetParent !== null && base && mask && base.naturalWidth > 0 && mask.naturalWidth > 0;
    }""")
    sizes = page.evaluate("""() => ['#img_inpaint_base img', '#img_inpaint_mask img'].map(
        s => { const i = document.querySelector(s); return [i.naturalWidth, i.naturalHeight]; })""")
    assert sizes == [[128, 96], [128, 96]]
    assert page.locator("#img_inpaint_base").is_visible() and page.locator("#img_inpaint_mask").is_visible()
    page.screenshot(path=str(ARTIFACTS / "sent_to_inpaint.png"), full_page=True)

    # and the WebUI can inpaint with them: pixels far from the mask come back unchanged
    page.locator("#img2img_script_container #script_list input").click()
    page.locator("#img2img_script_container #script_list ul li", has_text="None").first.click()
    _set_number(page, "img2img_width", 128)
    _set_number(page, "img2img_height", 96)
    _set_number(page, "img2img_steps", STEPS)
    page.locator("#img2img_generate").click()
    page.wait_for_function("() => (document.querySelector('#html_info_img2img') || {}).innerText?.includes('Mask blur')")
    page.wait_for_function("() => (document.querySelector('#img2img_gallery img') || {}).naturalWidth === 128")


def _small_page(page):
    """A second page at 1024×768 (a laptop screen) in the same browser, on the SegFill tab."""
    context = page.context.browser.new_context(viewport={"width": 1024, "height": 768})
    small = context.new_page()
    small.set_default_timeout(120_000)
    small.goto(URL + "/")
    small.wait_for_selector("#tab_img2img", state="attached")
    small.locator("#tabs > .tab-nav button", has_text="SegFill").click()
    small.wait_for_selector("#segfill_canvas_root[data-segfill-ready='1']", state="attached")
    return context, small


def _img2img_settings(page) -> dict:
    return page.evaluate("""() => ({
        width: Number(document.querySelector('#img2img_width input[type=number]').value),
        height: Number(document.querySelector('#img2img_height input[type=number]').value),
        area: (document.querySelector('#img2img_inpaint_full_res input[type=radio]:checked') || {}).value || null,
        label: (document.querySelector('#img_inpaint_mask') || {}).innerText || '',
    })""")


def test_send_to_img2img_inpaint_sets_size_and_inpaint_area(page, tmp_path):
    """Issue 11: the tab's Send also sets img2img's Width/Height at the image's ratio (a 600×400 photo on a
    512 model: 512×344) and "Only masked" for a small mask; a whole-image mask is labelled as such."""
    from segfill.hosts.webui.send_to_img2img import WHOLE_IMAGE_MASK_LABEL
    from tests.browser.pages import SegFillPage

    image_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (400, 600, 3), dtype=np.uint8)).save(image_path)
    context, small = _small_page(page)
    try:
        app = SegFillPage(small, URL)
        app.upload(image_path)
        app.toolbar("mode", mode="brush")
        app.drag_image((280, 190), (320, 210))
        app.wait_for("p.mask_area > 0")
        app.tab("Inpaint")
        small.screenshot(path=str(ARTIFACTS / "tab_1024x768.png"))
        small.locator("#segfill_send_inpaint").click()
        small.wait_for_function("""() => { const t = document.querySelector('#tab_img2img');
            const m = document.querySelector('#img_inpaint_mask img');
            const a = document.querySelector('#img2img_inpaint_full_res input[type=radio]:checked');
            return t && t.offsetParent !== null && m && m.naturalWidth === 600 && a && a.value === 'Only masked'; }""")
        settings = _img2img_settings(small)
        assert (settings["width"], settings["height"], settings["area"]) == (512, 344, "Only masked")
        small.screenshot(path=str(ARTIFACTS / "sent_small_mask.png"))

        small.locator("#tabs > .tab-nav button", has_text="SegFill").click()
        app.menu("reset")
        app.wait_for("p.mask_area === 0")
        app.tab("Mask")
        small.click("#segfill_invert input")
        app.wait_for(f"p.mask_area === {600 * 400}")
        app.tab("Inpaint")
        small.locator("#segfill_send_inpaint").click()
        small.wait_for_function(f"""() => (document.querySelector('#img_inpaint_mask') || {{}}).innerText?.includes(
            {WHOLE_IMAGE_MASK_LABEL!r}) && document.querySelector('#tab_img2img').offsetParent !== null""")
        settings = _img2img_settings(small)
        assert (settings["width"], settings["height"], settings["area"]) == (512, 344, "Whole picture")
        outline = small.evaluate("() => getComputedStyle(document.querySelector('#img_inpaint_mask img')).outlineStyle")
        assert outline == "solid", "the whole-image mask is framed (style.css)"
        small.screenshot(path=str(ARTIFACTS / "sent_whole_mask.png"))
    finally:
        context.close()


def test_select_by_text_in_the_tab_says_what_it_can_do_here(page, tmp_path):
    """Issue 9: the tab's "Select by text" options say which detectors this WebUI's transformers runs (WebUI
    1.10: OWL-ViT only) and, with a detector installed in <webui>/models/detectors, find boxes."""
    import json
    import urllib.request

    from tests.browser.pages import SegFillPage

    with urllib.request.urlopen(URL + "/segfill/v1/detectors", timeout=60) as resp:
        served = json.loads(resp.read())
    families = {f["family"]: f for f in served["families"]}
    image_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 255, (400, 600, 3), dtype=np.uint8)).save(image_path)
    context, small = _small_page(page)
    try:
        app = SegFillPage(small, URL)
        app.upload(image_path)
        small.click("#segfill_canvas_root [data-role='detect-options-button']")
        small.wait_for_selector("#segfill_canvas_root [data-role='detect-options']", state="visible")
        message = small.inner_text("#segfill_canvas_root [data-role='detect-message']")
        usable = [f["title"] for f in served["families"] if f["available"]]
        assert message.startswith("Detectors here: " + ", ".join(usable) + ".")
        for family in served["families"]:
            if not family["available"]:
                assert family["message"] in message  # what to install for it
        if not families["grounding_dino"]["available"]:  # WebUI 1.10.1: transformers 4.30.2
            assert "GroundingDINO needs transformers >= 4.40" in message
            assert small.is_disabled("#segfill_canvas_root [data-role='detect-text-threshold']")
        small.screenshot(path=str(ARTIFACTS / "select_by_text_options.png"))
        if not served["installed"]:
            pytest.skip("no detector installed in the WebUI's models/detectors: only the message was checked")
        small.select_option("#segfill_canvas_root [data-role='detect-detector']", served["installed"][0])
        small.fill("#segfill_canvas_root [data-role='detect-box-threshold']", "0")
        small.click("#segfill_canvas_root [data-role='detect-options-button']")
        small.fill("#segfill_canvas_root [data-role='detect-text']", "a red ball")
        small.press("#segfill_canvas_root [data-role='detect-text']", "Enter")
        app.wait_for("p.text && p.text_boxes.length > 0")
        payload = app.payload()
        assert payload["text"]["detector"] == served["installed"][0] and payload["mask_area"] > 0
        assert len(app.debug()["chips"]) == len(payload["text_boxes"])
        assert small.locator("#segfill_canvas_root .segfill-candidates-box .segfill-candidate").count() == 3
        small.screenshot(path=str(ARTIFACTS / "select_by_text_boxes.png"))
    finally:
        context.close()


def test_hover_and_click_previews_and_the_progress_channel_work_in_the_webui_page(page, tmp_path):
    """Issue 10 in the WebUI's own page (not cross-origin isolated: the decoder runs on one thread): a resting
    pointer draws the mask under it from the browser decoder, a click draws its preview and the server records
    the point, and the page's progress channel answers on the WebUI's server."""
    from tests.browser.pages import SegFillPage

    image_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(8).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(image_path)
    context, small = _small_page(page)
    errors: list[str] = []
    small.on("pageerror", lambda error: errors.append(str(error)))
    try:
        app = SegFillPage(small, URL)
        app.upload(image_path)
        assert small.evaluate("() => window.crossOriginIsolated") is False
        small.wait_for_function("() => { const s = window.segfillLive.status();"
                                " return !!s && s.decoder === 'ready' && s.embedding === 'ready'; }")
        target = app.client_point(200, 120)
        small.mouse.move(target["x"] - 6, target["y"] - 4)
        small.mouse.move(target["x"], target["y"], steps=3)
        small.wait_for_function("() => window.segfillDebugState().hoverMask")
        hovers = small.evaluate("() => window.segfillLive.stats().filter((s) => s.kind === 'hover')")
        assert hovers and hovers[-1]["source"] == "browser" and app.payload()["points"] == []
        small.screenshot(path=str(ARTIFACTS / "hover_preview.png"))
        app.click_image(120, 90)
        clicks = small.evaluate("() => window.segfillLive.stats().filter((s) => s.kind === 'click')")
        payload = app.payload()
        assert clicks and payload["points"] == [[120.5, 90.5, 1]] and payload["mask_area"] > 0
        assert abs(clicks[-1]["area"] - payload["mask_area"]) <= 2  # the preview was the server's mask
        status = small.evaluate("async (url) => (await fetch(url)).json()", payload["tasks_url"])
        assert status == {"running": False}
        assert not errors, errors
    finally:
        context.close()


def test_check_checkpoint_always_says_something(page):
    """Issue 11: with an inpainting checkpoint selected, "Check checkpoint" says so (loaded, or selected and not
    loaded yet on Forge) instead of showing nothing; the script's strength control says img2img's is not used."""
    page.locator("#tabs > .tab-nav button", has_text="img2img").first.click()
    page.locator("#img2img_script_container #script_list input").click()
    page.locator("#img2img_script_container #script_list ul li", has_text="SegFill outpaint").click()
    page.locator("#script_segfill_outpaint_model_status").first.wait_for(state="attached")
    page.locator("#script_segfill_outpaint_check_model").click()
    page.wait_for_function("""() => /is an inpainting model|not loaded yet/.test(
        (document.querySelector('#script_segfill_outpaint_model_status') || {}).innerText || '')""")
    text = page.locator("#script_segfill_outpaint_model_status").first.inner_text()
    assert "tiny-sd2-inpainting" in text and "not an inpainting model" not in text
    label = page.locator("#script_segfill_outpaint_strength").first.inner_text()
    assert "img2img" in label and "not used" in label
    page.locator("#script_segfill_outpaint_group").first.screenshot(path=str(ARTIFACTS / "check_checkpoint.png"))


@pytest.mark.skipif(not os.environ.get("SEGFILL_WEBUI_PLAIN_CHECKPOINT"),
                    reason="set SEGFILL_WEBUI_PLAIN_CHECKPOINT to the title of an installed non-inpainting checkpoint")
def test_script_panel_warns_about_a_plain_checkpoint_and_switches(page):
    import json
    import urllib.request

    def api(method, path, body=None):
        req = urllib.request.Request(URL + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            return json.loads(resp.read())

    previous = api("GET", "/sdapi/v1/options")["sd_model_checkpoint"]
    api("POST", "/sdapi/v1/options", {"sd_model_checkpoint": os.environ["SEGFILL_WEBUI_PLAIN_CHECKPOINT"]})
    try:
        page.locator("#tabs > .tab-nav button", has_text="img2img").first.click()
        page.locator("#img2img_script_container #script_list input").click()
        page.locator("#img2img_script_container #script_list ul li", has_text="SegFill outpaint").click()
        page.locator("#script_segfill_outpaint_check_model").click()
        page.wait_for_function("""() => (document.querySelector('#script_segfill_outpaint_model_status') || {})
                                        .innerText?.includes('not an inpainting model')""")
        chosen = page.locator("#script_segfill_outpaint_inpaint_checkpoint input").input_value()
        assert chosen == previous.split(" [")[0] or chosen == previous
        page.screenshot(path=str(ARTIFACTS / "plain_checkpoint_warning.png"), full_page=True)
        page.locator("#script_segfill_outpaint_switch_model").click()
        page.wait_for_function("""() => !(document.querySelector('#script_segfill_outpaint_model_status') || {})
                                        .innerText?.includes('not an inpainting model')""")
        assert "inpainting" in api("GET", "/sdapi/v1/options")["sd_model_checkpoint"]
    finally:
        api("POST", "/sdapi/v1/options", {"sd_model_checkpoint": previous})


def test_tab_inpaint_and_outpaint_run_on_the_webui(page, tmp_path):
    from tests.browser.pages import SegFillPage

    image_path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(image_path)
    page.locator("#tabs > .tab-nav button", has_text="SegFill").click()
    page.wait_for_selector("#segfill_canvas_root[data-segfill-ready='1']", state="attached")
    app = SegFillPage(page, URL)
    app.upload(image_path)
    app.toolbar("mode", mode="brush")
    app.drag_image((40, 40), (80, 50))
    app.wait_for("p.mask_area > 0")
    for tab, prefix in (("Outpaint", "segfill_outpaint"), ("Inpaint", "segfill")):
        app.tab(tab)
        app.reveal(f"{prefix}_steps", f"{prefix}_sampling")  # "Negative prompt, seed, steps, CFG, strength"
        app.set_number(f"{prefix}_steps", STEPS)

    def result_after(button: str, expected_width: int) -> str:
        """The job's result on the canvas (its size checked), discarded after reading its infotext."""
        page.locator(f"#{button}").click()
        app.wait_for(f"p.result && s.resultLoaded && p.result.width === {expected_width}")
        info = app.payload()["result"]["info"]
        app.toolbar("discard")
        app.wait_for("!p.result")
        return info

    info = result_after("segfill_inpaint", 128)
    assert "SegFill: inpaint" in info and "Model: " in info
    app.tab("Outpaint")
    app.reveal("segfill_pad_right", "segfill_padding")
    app.set_number("segfill_pad_right", 32)
    app.wait_for("p.frame[1] === 32")
    info = result_after("segfill_outpaint", 160)
    assert "SegFill: outpaint" in info and "Size: 160x96" in info
    page.screenshot(path=str(ARTIFACTS / "tab_outpaint.png"), full_page=True)


def test_img2img_batch_tab_outpaints_every_image_of_a_folder(page, tmp_path):
    """Issue 9: img2img -> Batch -> From directory with the "SegFill outpaint" script: one outpaint per input,
    named after it, each at its own input's size plus the padding (the Batch tab is UI-only in 1.10)."""
    import time

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    sizes = {"cat": (64, 48), "dog": (48, 64), "owl": (56, 56)}
    rng = np.random.default_rng(5)
    for stem, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(inputs / f"{stem}.png")

    page.locator("#tabs > .tab-nav button", has_text="img2img").first.click()
    page.locator("#mode_img2img > .tab-nav button", has_text="Batch").click()
    page.locator("#img2img_batch_source > .tab-nav button", has_text="From directory").click()
    page.locator("#img2img_batch_input_dir textarea").fill(str(inputs))
    page.locator("#img2img_batch_output_dir textarea").fill(str(outputs))
    _set_number(page, "img2img_width", 64)
    _set_number(page, "img2img_height", 64)
    _set_number(page, "img2img_steps", STEPS)
    dropdown = page.locator("#img2img_script_container #script_list input")
    dropdown.click()
    page.locator("#img2img_script_container #script_list ul li", has_text="SegFill outpaint").click()
    page.wait_for_selector("#script_segfill_outpaint_right", state="visible")
    _set_number(page, "script_segfill_outpaint_right", 24)
    _set_number(page, "script_segfill_outpaint_band", 8)
    _set_number(page, "script_segfill_outpaint_feather", 4)
    page.screenshot(path=str(ARTIFACTS / "batch_tab.png"), full_page=True)
    page.locator("#img2img_generate").click()

    deadline = time.time() + 600
    while time.time() < deadline and len(list(outputs.glob("*.png"))) < len(sizes):
        time.sleep(0.5)
    page.wait_for_function("() => !document.querySelector('#img2img_interrupt')?.offsetParent", timeout=600_000)
    outputs_made = sorted(outputs.glob("*.png"))
    assert len(outputs_made) == len(sizes), [p.name for p in outputs_made]  # one per input
    # named as the host names its own batch outputs: after the input on 1.10 ("00001-dog" with "Add number to
    # filename"); on Forge only with its "use original name" option, else by seed like its own batch
    import json
    import urllib.request

    with urllib.request.urlopen(URL + "/sdapi/v1/options", timeout=60) as resp:
        by_input_name = json.loads(resp.read()).get("img2img_batch_use_original_name", True)
    for stem, (w, h) in sizes.items():
        [made] = [path for path in outputs_made if Image.open(path).size == (w + 24, h)]
        if by_input_name:
            assert made.stem == stem or made.stem.endswith("-" + stem), made.name
        image = Image.open(made)
        assert "Script: SegFill outpaint" in image.info.get("parameters", "")
        original = np.array(Image.open(inputs / f"{stem}.png").convert("RGB"))
        assert (np.array(image.convert("RGB"))[:, : w - 8] == original[:, : w - 8]).all()
    page.screenshot(path=str(ARTIFACTS / "batch_result.png"), full_page=True)
    page.locator("#mode_img2img > .tab-nav button", has_text="img2img").first.click()
