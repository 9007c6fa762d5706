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
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
STEPS = int(os.environ.get("SEGFILL_WEBUI_STEPS", "2"))
TIMEOUT = float(os.environ.get("SEGFILL_WEBUI_TIMEOUT", "600"))

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
    assert json.loads(info["args"][0]["value"]) == {} or isinstance(json.loads(info["args"][0]["value"]), dict)


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


def test_bad_script_argument_is_reported_not_ignored():
    body = {"init_images": [_b64(_picture(32, 32))], "steps": 1, "width": 64, "height": 64,
            "script_name": "SegFill outpaint", "script_args": [{"rigth": 40}]}
    status, result = _request("POST", "/sdapi/v1/img2img", body)
    assert status >= 400
    assert "rigth" in json.dumps(result)


def test_segfill_routes_answer():
    status, health = _request("GET", "/segfill/v1/health")
    assert status == 200 and health["host"] in ("webui", "forge")
    status, models = _request("GET", "/segfill/v1/models")
    assert status == 200 and "models" in models


def test_segfill_inpaint_route_runs_on_the_webui():
    image = _picture(64, 64)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    body = {"image": _b64(image), "mask": _b64(mask), "prompt": "a ball", "steps": STEPS, "seed": 5}
    status, result = _request("POST", "/segfill/v1/inpaint", body)
    assert status == 200, result
    out = _image(result["image"])
    assert out.size == (64, 64)
    assert (np.array(out)[:8] == np.array(image)[:8]).all()  # far from the mask: untouched


def test_segfill_tab_is_on_the_page():
    status, config = _request("GET", "/config")
    assert status == 200
    blob = json.dumps(config)
    assert '"segfill"' in blob or "tab_segfill" in blob
    assert '"SegFill"' in blob
