"""Tests against a running WebUI (1.10.x or Forge) with SegFill installed, the way sd-webui-controlnet tests
its API: plain HTTP to the server named by ``SD_WEBUI_URL``; skipped when it is not set.

    SD_WEBUI_URL=http://127.0.0.1:7861 .venv/bin/python -m pytest tests/webui -q

The server must run with ``--api`` and have a checkpoint loaded; ``SEGFILL_WEBUI_STEPS`` (default 2) keeps
CPU runs short. The checks: the script is listed, an outpaint through ``/sdapi/v1/img2img`` returns the
requested size with the original pixels intact and its parameters in the infotext, SegFill's own routes
answer, and the SegFill tab is part of the page. See docs/WEBUI.md for setting up a local WebUI.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
STEPS = int(os.environ.get("SEGFILL_WEBUI_STEPS", "2"))
TIMEOUT = float(os.environ.get("SEGFILL_WEBUI_TIMEOUT", "600"))
#: the server's console log (optional): the error tests then also check what the console got
LOG = os.environ.get("SEGFILL_WEBUI_LOG", "")

pytestmark = pytest.mark.skipif(not URL, reason="set SD_WEBUI_URL to a running WebUI with SegFill to run these")


def _request(method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw = err.read()
        status = err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def _b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _image(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64.split(",", 1)[-1]))).convert("RGB")


def _picture(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(7)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    noise = rng.integers(-20, 20, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def test_script_is_listed_for_img2img_only():
    status, scripts = _request("GET", "/sdapi/v1/scripts")
    assert status == 200
    assert "segfill outpaint" in scripts["img2img"]
    assert "segfill outpaint" not in scripts["txt2img"]


def test_script_has_one_argument():
    status, infos = _request("GET", "/sdapi/v1/script-info")
    assert status == 200
    [info] = [s for s in infos if s["name"] == "segfill outpaint" and s["is_img2img"]]
    assert len(info["args"]) == 1
    # the hidden argument's default: the panel's controls at their defaults (the settings' overlap/feather)
    _, options = _request("GET", "/sdapi/v1/options")
    overlap, feather = options.get("segfill_overlap", 64), options.get("segfill_feather", 24)
    assert json.loads(info["args"][0]["value"]) == {
        "anchor": "center", "band": 32, "bottom": 0, "color_match": False, "feather": feather, "left": 0,
        "overlap": overlap, "prefill": "blur_extend", "right": 0, "seam_fix": False, "strength": 1.0, "top": 0}


def test_outpaint_through_img2img_keeps_original_pixels():
    image = _picture(64, 48)
    body = {
        "init_images": [_b64(image)],
        "prompt": "a landscape",
        "steps": STEPS,
        "width": 64,
        "height": 64,
        "seed": 1234,
        "sampler_name": "Euler",
        "script_name": "SegFill outpaint",
        "script_args": [{"right": 40, "bottom": 16, "prefill": "edge", "overlap": 16, "band": 8, "feather": 4}],
    }
    status, result = _request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, result
    out = _image(result["images"][0])
    assert out.size == (104, 64)
    # outside the seam band (8 px into the original) the original is untouched, bit for bit
    assert (np.array(out)[:40, :56] == np.array(image)[:40, :56]).all()
    info = json.loads(result["info"])
    text = info["infotexts"][0]
    assert "SegFill pad right: 40" in text and "SegFill pad bottom: 16" in text
    assert "Script: SegFill outpaint" in text and "Size: 104x64" in text and "Seed: 1234" in text
    assert text.count("SegFill pad right") == 1 and text.count("Script: ") == 1


#: tqdm progress bars and the WebUI's sampler notice, which every generation prints
PROGRESS_LINE = re.compile(r"\d+it \[|it/s\]|s/it\]|%\||Sampler Scheduler autocorrection")


class _Console:
    """Lines the server printed while the block ran (only with SEGFILL_WEBUI_LOG; else ``lines`` is None)."""

    def __enter__(self):
        self.start = os.path.getsize(LOG) if LOG else 0
        self.lines = None
        return self

    def __exit__(self, *exc):
        if LOG:
            time.sleep(0.5)  # let the server flush
            with open(LOG, "rb") as fh:
                fh.seek(self.start)
                text = fh.read().decode("utf-8", "replace")
            self.lines = [line for line in text.splitlines() if line.strip() and not PROGRESS_LINE.search(line)]


@pytest.mark.parametrize("script_args, words", [
    ([{"rigth": 40}], "rigth"),
    (["{not json"], "not valid JSON"),
    ([{"right": 8}, {"left": 8}], "one argument"),  # the WebUI would silently drop the second object
    ([], "Nothing to outpaint"),  # no argument: all defaults, which add nothing (not the next script's value)
])
def test_bad_script_argument_is_a_4xx_with_one_sentence_and_one_console_line(script_args, words):
    body = {"init_images": [_b64(_picture(32, 32))], "steps": 1, "width": 64, "height": 64,
            "script_name": "SegFill outpaint", "script_args": script_args}
    with _Console() as console:
        status, result = _request("POST", "/sdapi/v1/img2img", body)
    assert status == 422, result
    # 1.10 answers through its own handler ({"error", "detail", "errors"}); Forge's app answers {"detail"} alone
    assert words.lower() in result["detail"].lower() and result.get("errors", result["detail"]) == result["detail"]
    assert result["detail"].count(". ") == 0 and "\n" not in result["detail"]  # one sentence
    if console.lines is not None:
        assert console.lines == [f"SegFill outpaint: {result['detail']}"]


def test_segfill_route_errors_are_4xx_without_a_traceback():
    bad = [("/segfill/v1/inpaint", {"image": "abc", "mask": "abc"}),
           ("/segfill/v1/outpaint", {"image": _b64(_picture(32, 32))}),
           ("/segfill/v1/mask", {"image": _b64(_picture(32, 32)), "points": [{"x": 99, "y": 1, "label": 1}]})]
    for path, body in bad:
        with _Console() as console:
            status, result = _request("POST", path, body)
        assert 400 <= status < 500 and isinstance(result["detail"], str) and result["detail"], (path, result)
        if console.lines is not None:
            assert not any("Traceback" in line for line in console.lines), console.lines


def test_segfill_routes_answer():
    status, health = _request("GET", "/segfill/v1/health")
    assert status == 200 and health["host"] in ("webui", "forge")
    status, models = _request("GET", "/segfill/v1/models")
    assert status == 200 and "models" in models


def test_segfill_inpaint_route_runs_on_the_webui():
    image = _picture(128, 96)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (48, 32, 80, 64))
    body = {"image": _b64(image), "mask": _b64(mask), "prompt": "a ball", "steps": STEPS, "seed": 5, "feather": 8}
    status, result = _request("POST", "/segfill/v1/inpaint", body)
    assert status == 200, result
    out = np.array(_image(result["image"]))
    assert out.shape == (96, 128, 3)
    changed = np.abs(out.astype(int) - np.array(image).astype(int)).max(axis=2) > 0
    assert changed[32:64, 48:80].mean() > 0.5  # the masked square was repainted
    far = np.ones_like(changed)
    far[32 - 8:64 + 8, 48 - 8:80 + 8] = False  # beyond the feather the original is bit-exact
    assert not changed[far].any()
    assert "SegFill: inpaint" in result["infotext"]


def test_segfill_tab_is_on_the_page():
    status, config = _request("GET", "/config")
    assert status == 200
    blob = json.dumps(config)
    assert '"segfill"' in blob or "tab_segfill" in blob
    assert '"SegFill"' in blob


def test_outpaint_result_carries_its_parameters_for_png_info():
    body = {"init_images": [_b64(_picture(64, 48))], "steps": STEPS, "width": 64, "height": 64, "seed": 99,
            "script_name": "SegFill outpaint",
            "script_args": [{"left": 24, "prefill": "reflect", "color_match": True, "band": 8, "feather": 4}]}
    status, result = _request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, result
    status, info = _request("POST", "/sdapi/v1/png-info", {"image": "data:image/png;base64," + result["images"][0]})
    assert status == 200
    text = info["info"]
    assert "Script: SegFill outpaint" in text and "SegFill pad left: 24" in text
    assert "SegFill pre-fill: reflect" in text and "SegFill colour match: True" in text
    # what "Send to img2img" reads: the WebUI's own parser finds every SegFill key
    assert info["parameters"]["SegFill pad left"] in ("24", 24)
    assert info["parameters"]["Script"] == "SegFill outpaint"


def test_settings_section_is_registered():
    status, options = _request("GET", "/sdapi/v1/options")
    assert status == 200
    if "segfill_sam_device" not in options:
        pytest.skip("this WebUI does not list extension settings in /sdapi/v1/options (Forge, --nowebui)")
    assert options["segfill_sam_unload_policy"] in ("never", "before_generation", "idle")


def _post_in_background(body: dict) -> tuple[object, dict]:
    import threading

    result: dict = {}

    def post() -> None:
        result["status"], result["body"] = _request("POST", "/sdapi/v1/img2img", body)

    worker = threading.Thread(target=post)
    worker.start()
    return worker, result


def _wait_for(condition, budget: float = 300) -> dict:
    """Poll /sdapi/v1/progress until ``condition(state)``; returns the last state."""
    deadline = time.time() + budget
    state: dict = {}
    while time.time() < deadline:
        _, progress = _request("GET", "/sdapi/v1/progress?skip_current_image=true")
        state = progress["state"]
        if condition(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"the job never reached the expected state; last: {state}")


def test_progress_counts_tiles_and_interrupt_stops_the_job():
    body = {"init_images": [_b64(_picture(64, 64))], "steps": max(STEPS, 8), "width": 64, "height": 64,
            "seed": 3, "script_name": "SegFill outpaint",
            "script_args": [{"right": 448, "max_step": 64, "overlap": 8, "band": 8, "feather": 4}]}
    worker, result = _post_in_background(body)
    state = _wait_for(lambda s: s["job_count"] >= 7 and s["job_no"] >= 2)  # one job per tile, 7 passes
    total = int(state["job_count"])
    _request("POST", "/sdapi/v1/interrupt")
    worker.join(300)
    assert not worker.is_alive() and result["status"] == 200, result
    images = result["body"]["images"]
    assert len(images) == 1, (len(images), json.loads(result["body"]["info"]).get("infotexts"))
    assert _image(images[0]).size == (512, 64)  # what was finished, at the requested size
    [text] = json.loads(result["body"]["info"])["infotexts"]
    stopped = re.search(r"SegFill stopped: after (\d+) of (\d+) tiles", text)
    assert stopped, text  # the job really stopped early: not every tile ran
    assert 2 <= int(stopped.group(1)) < int(stopped.group(2)) == total


@pytest.mark.skipif(not os.environ.get("SEGFILL_WEBUI_PLAIN_CHECKPOINT"),
                    reason="set SEGFILL_WEBUI_PLAIN_CHECKPOINT to the title of an installed non-inpainting checkpoint")
def test_plain_checkpoint_is_reported_not_silently_used():
    plain = os.environ["SEGFILL_WEBUI_PLAIN_CHECKPOINT"]
    _, options = _request("GET", "/sdapi/v1/options")
    previous = options["sd_model_checkpoint"]
    try:
        status, _ = _request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": plain})
        assert status == 200
        status, models = _request("GET", "/segfill/v1/models")
        assert status == 200
        warning = models.get("inpaint_warning") or ""
        # names the plain checkpoint, says what it is, and lists the installed inpainting one to switch to
        assert "not an inpainting model" in warning
        assert warning.index(plain.rsplit(".", 1)[0]) < warning.index("not an inpainting model")
        alternatives = warning.split("Installed inpainting checkpoints:", 1)[1]
        assert previous.split(" [")[0] in alternatives and plain not in alternatives
    finally:
        _request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": previous})
    status, models = _request("GET", "/segfill/v1/models")
    assert models.get("inpaint_warning") is None


def test_click_to_mask_when_a_sam_model_is_installed():
    status, models = _request("GET", "/segfill/v1/models")
    if not models.get("models"):
        pytest.skip("no SAM model in the WebUI's models/sam (or the SegFill model folders setting)")
    image = _picture(64, 48)
    body = {"image": _b64(image), "points": [{"x": 20, "y": 30, "label": 1}]}
    status, result = _request("POST", "/segfill/v1/mask", body)
    assert status == 200, result
    assert (result["width"], result["height"]) == (64, 48)
    assert len(result["masks"]) == len(result["scores"]) >= 1
    assert _image(result["mask"]).size == (64, 48)


def test_segfill_outpaint_route_runs_on_the_webui():
    image = _picture(64, 48)
    body = {"image": _b64(image), "prompt": "sea", "steps": STEPS, "seed": 8, "left": 16, "top": 8,
            "band": 8, "feather": 4, "tile_size": 64, "overlap": 16}
    status, result = _request("POST", "/segfill/v1/outpaint", body)
    assert status == 200, result
    out = np.array(_image(result["image"]))
    assert out.shape == (56, 80, 3)
    assert (out[8 + 8:, 16 + 8:] == np.array(image)[8:, 8:]).all()  # original beyond the band, bit-exact
    assert "SegFill: outpaint" in result["infotext"] and "Size: 80x56" in result["infotext"]
    assert result["info"].get("tiles", 0) >= 1 and result["info"].get("host") in ("webui", "forge")


def test_batch_count_outpaints_each_image_with_its_own_seed():
    body = {"init_images": [_b64(_picture(64, 48))], "steps": STEPS, "width": 64, "height": 64, "seed": 500,
            "n_iter": 2, "script_name": "SegFill outpaint",
            "script_args": [{"top": 16, "band": 8, "feather": 4, "overlap": 16}]}
    status, result = _request("POST", "/sdapi/v1/img2img", body)
    assert status == 200, result
    assert [_image(b).size for b in result["images"]] == [(64, 64), (64, 64)]
    infotexts = json.loads(result["info"])["infotexts"]
    assert "Seed: 500" in infotexts[0] and "Seed: 501" in infotexts[1]


def test_skip_ends_the_current_tile_and_the_job_goes_on():
    body = {"init_images": [_b64(_picture(64, 64))], "steps": max(STEPS, 12), "width": 64, "height": 64,
            "seed": 4, "script_name": "SegFill outpaint",
            "script_args": [{"right": 192, "max_step": 64, "overlap": 8, "band": 8, "feather": 4}]}
    status, reference = _request("POST", "/sdapi/v1/img2img", body)  # the same job, not skipped
    assert status == 200, reference

    worker, result = _post_in_background(body)
    state = _wait_for(lambda s: s["job_count"] > 1 and s["job_no"] >= 1 and s["sampling_step"] >= 1)
    skipped_tile = int(state["job_no"])
    _request("POST", "/sdapi/v1/skip")
    worker.join(300)
    assert not worker.is_alive() and result["status"] == 200, result
    [image] = result["body"]["images"]
    [text] = json.loads(result["body"]["info"])["infotexts"]
    assert "SegFill stopped" not in text and "Seed: 4" in text  # every tile ran: skip is not interrupt
    out, ref = np.array(_image(image)), np.array(_image(reference["images"][0]))
    assert out.shape == ref.shape == (64, 256, 3)
    assert (out != ref).any(), "skip changed nothing: the skipped tile did not end early"
    assert skipped_tile < int(state["job_count"])
    # the tiles after the skipped one still ran: the last columns are generated, not the pre-fill left as is
    assert (out[:, -32:] != out[:, -33:-32]).any()


def test_tab_inpaint_keeps_the_aspect_ratio_and_records_the_size_produced():
    image = _picture(600, 400)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (250, 150, 350, 250))
    body = {"image": _b64(image), "mask": _b64(mask), "prompt": "a ball", "steps": STEPS, "seed": 6}
    status, result = _request("POST", "/segfill/v1/inpaint", body)
    assert status == 200, result
    assert (result["width"], result["height"]) == (600, 400)
    assert result["info"]["render_size"] == [512, 344]  # the ratio kept (was 512x400), multiples of 8
    assert "Size: 600x400" in result["infotext"]
    assert "SegFill tile size" not in result["infotext"] and "SegFill feather" not in result["infotext"]


def test_tab_outpaint_renders_tiles_at_the_model_size_not_the_image_side():
    image = _picture(600, 96)
    body = {"image": _b64(image), "prompt": "sea", "steps": STEPS, "seed": 9, "right": 128, "band": 8, "feather": 4}
    status, result = _request("POST", "/segfill/v1/outpaint", body)
    assert status == 200, result
    assert (result["width"], result["height"]) == (728, 96)
    tiles = [tile for plan_pass in result["plan"]["passes"] for tile in plan_pass["tiles"]]
    assert tiles and all(x1 - x0 <= 512 and y1 - y0 <= 512 for x0, y0, x1, y1, *_ in tiles)
    assert "SegFill tile size" not in result["infotext"]  # 512 is the default: not listed
    out = np.array(_image(result["image"]))
    assert (out[:, : 600 - 8] == np.array(image)[:, : 600 - 8]).all()
