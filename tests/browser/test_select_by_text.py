"""End-to-end: "Select by text" in the tab (issue 9), in headless Chromium on the standalone app with tiny
random-weight detectors installed (``tests/browser/conftest.py``: OWL-ViT on every stack, GroundingDINO where the
installed transformers has it, and a stand-in hub for a first-use download).

Type a text -> boxes drawn with their labels and scores -> drop one -> the mask changes accordingly -> undo
restores it -> a box's own SAM candidates from the strip -> refinement -> a point added afterwards combines.
With random weights the boxes are arbitrary: the thresholds are 0 and every check compares the tab with what the
server says: its payload, and its REST API's ``/segfill/v1/mask`` for the same text (the same models, in the
same process). Screenshots land in artifacts/browser/gradio<N>/<test>/.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.browser.pages import SegFillPage, mask_array

pytestmark = pytest.mark.browser

TEXT = "a red ball"
ROOT = "#segfill_canvas_root"
TITLES = {"owlvit": "OWL-ViT", "grounding_dino": "GroundingDINO"}


def api_mask(url: str, image_path, text: str, detector: str, candidate="best") -> dict:
    """``POST /segfill/v1/mask`` with ``text``: the server's own boxes and per-box masks for the same request."""
    body = {"image": base64.b64encode(image_path.read_bytes()).decode(), "text": text, "detector": detector,
            "box_threshold": 0.0, "candidate": candidate}
    if detector.startswith("tiny-grounding"):
        body["text_threshold"] = 0.0
    request = urllib.request.Request(url + "/segfill/v1/mask", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.loads(response.read())
    reply["arrays"] = [np.asarray(Image.open(io.BytesIO(base64.b64decode(m))).convert("L")) > 127
                       for m in reply["masks"]]
    return reply


def api_points_mask(url: str, image_path, points) -> np.ndarray:
    """``POST /segfill/v1/mask`` with points: SAM's best candidate for them, from the server."""
    body = {"image": base64.b64encode(image_path.read_bytes()).decode(),
            "points": [{"x": x, "y": y, "label": label} for x, y, label in points]}
    request = urllib.request.Request(url + "/segfill/v1/mask", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.loads(response.read())
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(reply["mask"]))).convert("L")) > 127


def union(masks, skip=()) -> np.ndarray:
    kept = [m for i, m in enumerate(masks) if i not in skip]
    return np.logical_or.reduce(kept) if kept else np.zeros_like(masks[0])


def chip_point(app: SegFillPage, index: int, part: str):
    """Page coordinates of a spot on box ``index``'s chip (``part``: "toggle" ✓/✕ or "label") that no chip drawn
    after it covers; None when there is none."""
    chips = app.debug()["chips"]
    order = [c["index"] for c in chips]
    chip = chips[order.index(index)]
    later = chips[order.index(index) + 1:]
    x_from, x_to = (chip["x"] + 2, chip["x"] + chip["toggleW"] - 2) if part == "toggle" else \
        (chip["x"] + chip["toggleW"] + 2, chip["x"] + chip["w"] - 2)
    rect = app.page.evaluate(f"() => {{ const r = document.querySelector('{ROOT} canvas').getBoundingClientRect();"
                             " return {left: r.left, top: r.top}; }")
    for x in np.arange(x_from, x_to, 2.0):
        for y in (chip["y"] + chip["h"] / 2, chip["y"] + 4, chip["y"] + chip["h"] - 4):
            covered = any(c["x"] <= x <= c["x"] + c["w"] and c["y"] <= y <= c["y"] + c["h"] for c in later)
            if not covered:
                return rect["left"] + x, rect["top"] + y
    return None


def click_chip(app: SegFillPage, index: int, part: str) -> None:
    point = chip_point(app, index, part)
    assert point is not None, f"box {index}'s chip is covered"
    before = app.render_count()
    app.page.mouse.click(*point)
    app.wait_render_after(before)


def open_options(app: SegFillPage) -> None:
    app.page.wait_for_selector(f"{ROOT} [data-role='detect-options-button']", state="visible")
    if app.page.is_hidden(f"{ROOT} [data-role='detect-options']"):
        app.page.click(f"{ROOT} [data-role='detect-options-button']")
    app.page.wait_for_selector(f"{ROOT} [data-role='detect-options']", state="visible")


def close_options(app: SegFillPage) -> None:
    app.page.click(f"{ROOT} [data-role='detect-options-button']")
    app.page.wait_for_selector(f"{ROOT} [data-role='detect-options']", state="hidden")


def find(app: SegFillPage, text: str, until: str) -> None:
    app.page.fill(f"{ROOT} [data-role='detect-text']", text)
    app.page.press(f"{ROOT} [data-role='detect-text']", "Enter")
    app.wait_for(until)


@pytest.fixture()
def detectors(detector_assets):
    if detector_assets is None:
        pytest.skip("transformers is not installed: no detector to test with")
    return detector_assets


@pytest.mark.parametrize("family", ["owlvit", "grounding_dino"])
def test_select_by_text_boxes_drop_undo_candidates_refinement_and_a_point(open_app, app_url, browser_assets, detectors,
                                                                          family, artifacts):
    folder = next((name for name, f in detectors.folders.items() if f == family), None)
    if folder is None:
        pytest.skip(f"{TITLES[family]} does not run on this stack's transformers")
    app: SegFillPage = open_app(viewport=(1280, 900))
    app.upload(browser_assets.image_path)

    # the options: what this installation runs, thresholds, the detector
    open_options(app)
    info = app.payload()["detectors"]
    assert app.page.inner_text(f"{ROOT} [data-role='detect-message']") == info["message"]
    if "grounding_dino" not in info["families"]:  # e.g. the WebUI 1.10's transformers 4.30.2
        assert "GroundingDINO needs transformers >= 4.40" in info["message"]
        assert app.page.is_disabled(f"{ROOT} [data-role='detect-text-threshold']")
    offered = app.page.eval_on_selector_all(f"{ROOT} [data-role='detect-detector'] option", "os => os.map(o => o.value)")
    assert offered[0] == "" and folder in offered
    app.page.select_option(f"{ROOT} [data-role='detect-detector']", folder)
    app.page.fill(f"{ROOT} [data-role='detect-box-threshold']", "0")
    if family == "grounding_dino":
        app.page.fill(f"{ROOT} [data-role='detect-text-threshold']", "0")
    app.screenshot(artifacts, "options", full_page=False)
    close_options(app)

    # type a text: the boxes are drawn with their labels and scores, every box kept, the mask their union
    find(app, TEXT, f"p.text && p.text.text === {json.dumps(TEXT)} && p.text_boxes.length > 0")
    payload = app.payload()
    assert payload["error"] == ""
    assert payload["text"]["detector"] == folder and payload["text"]["family"] == family
    assert payload["text"]["box_threshold"] == 0.0
    server = api_mask(app_url, browser_assets.image_path, TEXT, folder)
    boxes = payload["text_boxes"]
    assert [b["box"] for b in boxes] == [[round(v, 2) for v in d["box"]] for d in server["detections"]]
    assert [b["label"] for b in boxes] == [d["label"] for d in server["detections"]]
    assert [b["score"] for b in boxes] == [round(d["score"], 3) for d in server["detections"]]
    assert all(b["kept"] for b in boxes)
    masks = server["arrays"]
    everything = union(masks)
    assert payload["mask_area"] == int(everything.sum())
    np.testing.assert_array_equal(mask_array(app.download("mask")), everything)
    chips = {c["index"]: c for c in app.debug()["chips"]}
    assert sorted(chips) == [b["index"] for b in boxes], "one chip per box"
    for b in boxes:
        assert chips[b["index"]]["text"] == f"{b['label']} {b['score']:.2f}" and chips[b["index"]]["kept"]
    # the box in focus (the best) is drawn on top, in yellow; its three candidates are in the strip
    assert payload["text_focus"] == 0 and app.debug()["chips"][-1]["index"] == 0
    x0, y0, x1, y1 = boxes[0]["box"]
    edge = app.canvas_pixel(x0 - 0.5, (y0 + y1) / 2 - 0.5)
    assert edge[0] > 200 and edge[1] > 170 and edge[2] < 90, f"the focused box's outline is yellow, not {edge}"
    assert app.page.locator(f"{ROOT} .segfill-candidates.segfill-candidates-box .segfill-candidate").count() == 3
    active = app.page.get_attribute(f"{ROOT} .segfill-candidate.active", "data-index")
    assert int(active) == boxes[0]["candidate"]
    app.screenshot(artifacts, "boxes", full_page=False)

    # drop a box whose mask has pixels of its own: the mask is the other boxes' union
    own = [k for k in range(len(masks)) if (masks[k] & ~union(masks, skip=(k,))).any()]
    reachable = [k for k in own if chip_point(app, k, "toggle") is not None]
    assert reachable, "a box with pixels of its own whose chip can be clicked"
    k = reachable[0]
    click_chip(app, k, "toggle")
    app.wait_for(f"p.text_boxes[{k}].kept === false")
    dropped = mask_array(app.download("mask"))
    np.testing.assert_array_equal(dropped, union(masks, skip=(k,)))
    assert dropped.sum() < everything.sum()
    assert not next(c for c in app.debug()["chips"] if c["index"] == k)["kept"]
    app.screenshot(artifacts, "dropped", full_page=False)

    # undo restores it
    app.press("Control+z", until=f"p.text_boxes[{k}].kept === true")
    np.testing.assert_array_equal(mask_array(app.download("mask")), everything)

    # a box's label: its own candidates in the strip; another candidate there changes that box's mask only
    j = next((i for i in range(len(boxes)) if i != 0 and chip_point(app, i, "label") is not None), 0)
    if j != 0:
        click_chip(app, j, "label")
        app.wait_for(f"p.text_focus === {j}")
    current = app.payload()["text_boxes"][j]["candidate"]
    other = (current + 1) % 3
    app.choose_candidate(other)
    app.wait_for(f"p.text_boxes[{j}].candidate === {other}")
    with_other = api_mask(app_url, browser_assets.image_path, TEXT, folder, candidate=other)["arrays"][j]
    chosen = union([with_other if i == j else m for i, m in enumerate(masks)])
    np.testing.assert_array_equal(mask_array(app.download("mask")), chosen)
    assert app.payload()["text_focus"] == j
    app.screenshot(artifacts, "box-candidate", full_page=False)

    # refinement: the union goes through the Mask panel's grow like any selection
    from segfill.masks import grow

    app.tab("Mask")
    app.set_number("segfill_grow", 3)
    app.wait_for(f"p.mask_area > {int(chosen.sum())}")
    np.testing.assert_array_equal(mask_array(app.download("mask")), grow(chosen, 3))
    app.press("Control+z", until=f"p.mask_area === {int(chosen.sum())}")

    # a point added afterwards combines with the kept boxes (combine mode Add), and the strip shows its candidates
    ys, xs = np.nonzero(~chosen)
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    app.toolbar("mode", mode="select")
    app.click_image(x, y)
    app.wait_for("p.points.length === 1")
    payload = app.payload()
    combined = mask_array(app.download("mask"))
    point = api_points_mask(app_url, browser_assets.image_path, payload["points"])
    np.testing.assert_array_equal(combined, chosen | point)  # the boxes' union is kept, the point's mask added
    assert len(payload["text_boxes"]) == len(boxes) and payload["text_focus"] is None
    assert app.page.locator(f"{ROOT} .segfill-candidates.segfill-candidates-box").count() == 0
    assert len(payload["candidates"]) == 3
    app.screenshot(artifacts, "point-added", full_page=False)


def test_a_hub_detectors_first_use_download_shows_a_progress_bar(open_app, browser_assets, detectors, artifacts):
    app: SegFillPage = open_app(viewport=(1024, 768))
    app.upload(browser_assets.image_path)
    open_options(app)
    labels = app.page.eval_on_selector_all(f"{ROOT} [data-role='detect-detector'] option",
                                           "os => os.map(o => [o.value, o.textContent])")
    assert [detectors.hub_id, f"OWL-ViT: {detectors.hub_id} (downloaded on first use)"] in labels
    app.page.select_option(f"{ROOT} [data-role='detect-detector']", detectors.hub_id)
    app.page.fill(f"{ROOT} [data-role='detect-box-threshold']", "0")
    close_options(app)
    app.page.fill(f"{ROOT} [data-role='detect-text']", "a dog")
    app.page.press(f"{ROOT} [data-role='detect-text']", "Enter")
    # gradio's progress bar, over the canvas' bottom bar, says what is downloaded
    app.page.wait_for_function("() => (document.querySelector('#segfill_detect_progress') || {}).innerText"
                               f" && document.querySelector('#segfill_detect_progress').innerText.includes("
                               f"'Downloading {detectors.hub_id}')")
    assert app.visible_in_viewport("#segfill_detect_progress")
    bar = app.page.evaluate("() => { const r = document.querySelector('#segfill_canvas_root .segfill-bottombar')"
                            ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }")
    block = app.page.evaluate("() => { const r = document.querySelector('#segfill_detect_progress')"
                              ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }")
    assert block == pytest.approx(bar, abs=1.5), "over the canvas' bottom bar"
    app.screenshot(artifacts, "downloading", full_page=False)
    app.wait_for(f"p.text && p.text.detector === {json.dumps(detectors.hub_id)}")
    assert app.payload()["text_boxes"], "then the boxes"
    assert "Downloading" not in app.page.inner_text("#segfill_detect_progress")
    # now installed: offered as a folder, not as a download
    open_options(app)
    values = app.page.eval_on_selector_all(f"{ROOT} [data-role='detect-detector'] option", "os => os.map(o => o.value)")
    assert "google--owlvit-base-patch32" in values and detectors.hub_id not in values
    assert app.page.input_value(f"{ROOT} [data-role='detect-detector']") == "google--owlvit-base-patch32", \
        "the detector chosen stays chosen"
    app.screenshot(artifacts, "downloaded", full_page=False)


def test_when_no_detector_can_run_the_box_says_what_to_install(open_app, browser_assets, artifacts):
    app: SegFillPage = open_app(viewport=(1024, 768))
    app.upload(browser_assets.image_path)
    message = ("Select by text needs transformers: GroundingDINO needs the package 'transformers' (pip install "
               "'transformers>=4.40').")
    app.page.evaluate(f"""() => {{
        const p = window.segfillLastPayload();
        p.rev += 1;
        p.detectors = {{available: false, message: {json.dumps(message)}, families: []}};
        window.segfillRender(JSON.stringify(p));
    }}""")
    app.page.wait_for_function("() => document.querySelector('#segfill_canvas_root [data-role=detect-options-button]')"
                               ".textContent === '!'")
    assert app.page.is_disabled(f"{ROOT} [data-role='detect-text']")
    assert app.page.get_attribute(f"{ROOT} [data-role='detect-text']", "title") == message
    open_options(app)
    assert app.page.inner_text(f"{ROOT} [data-role='detect-message']") == message
    assert app.visible_in_viewport(f"{ROOT} [data-role='detect-options']")
    app.screenshot(artifacts, "unavailable", full_page=False)
