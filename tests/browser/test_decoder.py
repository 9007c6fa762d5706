"""The browser decoder (javascript/segfill_decoder.js + onnxruntime-web) in headless Chromium, in the standalone
app's own page: its masks for the same points are the server's (SamSession with the same tiny model), and the
lean click route's are too."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.tiny_assets import IMAGE_SIZE

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = IMAGE_SIZE

PREDICT = """async ([points, box, options]) => {
    const info = window.segfillLastPayload().sam;
    const opt = Object.assign({wait: true}, options || {});
    if (opt.previousPoints) {
        opt.previous = window.__segfillPrevious;
    }
    const result = await window.SegFillDecoder.predict(info, points, box, opt);
    window.__segfillPrevious = result;
    return {mask: Array.from(result.mask), width: result.width, height: result.height, scores: result.scores,
            candidate: result.candidate, source: result.source,
            status: window.SegFillDecoder.status(info)};
}"""


@pytest.fixture(scope="module")
def reference(browser_assets):
    from segfill.sam.loading import load_sam

    return load_sam(browser_assets.sam_path, device="cpu")


def _session(reference, image_path):
    from PIL import Image

    from segfill.sam.session import SamSession

    session = SamSession(reference)
    session.set_image(np.asarray(Image.open(image_path).convert("RGB")))
    return session


def _mask(result) -> np.ndarray:
    return np.asarray(result["mask"], dtype=np.uint8).reshape(result["height"], result["width"]) > 127


def test_browser_decoder_masks_equal_the_servers(open_app, browser_assets, reference):
    app = open_app()
    app.upload(browser_assets.image_path)
    info = app.payload()["sam"]
    assert info["decoder_url"] and info["display"] == [WIDTH, HEIGHT]
    assert app.page.evaluate("async () => window.SegFillDecoder.prepare(window.segfillLastPayload().sam)") is True

    session = _session(reference, browser_assets.image_path)
    point = [WIDTH * 0.62, HEIGHT * 0.5, 1]
    expected = session.predict(points=[tuple(point)])
    browser = app.page.evaluate(PREDICT, [[point], None, {}])
    assert browser["source"] == "browser" and browser["status"]["decoder"] == "ready"
    assert browser["candidate"] == expected.best_index
    np.testing.assert_allclose(browser["scores"], expected.scores, atol=2e-3)
    differing = int((_mask(browser) != expected.best_mask).sum())
    assert differing <= 2, f"{differing} of {WIDTH * HEIGHT} pixels differ"  # only logits right at 0, if any

    server = app.page.evaluate(PREDICT, [[point], None, {"server": True}])
    assert server["source"] == "server"
    np.testing.assert_array_equal(_mask(server), expected.best_mask)

    # a refinement: points appended feed the previous answer back, in the browser as in the session
    browser = app.page.evaluate(PREDICT, [[point], None, {}])
    second = [WIDTH * 0.2, HEIGHT * 0.8, 0]
    refined = session.predict(points=[tuple(point), tuple(second)])
    browser = app.page.evaluate(PREDICT, [[point, second], None, {"previousPoints": True}])
    assert int((_mask(browser) != refined.best_mask).sum()) <= 2

    box = [10, 8, 120, 100]
    boxed = session.predict(box=tuple(box), use_previous_logits=False)
    browser = app.page.evaluate(PREDICT, [[], box, {}])
    assert int((_mask(browser) != boxed.best_mask).sum()) <= 2
