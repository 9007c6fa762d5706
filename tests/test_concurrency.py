"""Many users at once (issue 8, section 5): nobody ever gets another user's mask.

Two browser-style sessions (each its own ``UserState``, driven through the tab's callbacks from their own
threads, as gradio's workers do) and two API clients (their own threads, over HTTP to a real uvicorn server on
127.0.0.1) click on four different images at the same time, sharing one host: one SamManager, one model,
one embedding cache. Every mask each of them gets must be the mask SAM gives for *its* image and click,
computed beforehand one at a time.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from segfill.ui import callbacks as cb
from tests._sam_fixtures import single_torch_thread
from tests.browser.tiny_assets import sample_image
from tests.tiny_models import save_tiny_sam

CLICKS = 6
# four images of different sizes and content: a mix-up shows as a wrong size or a wrong mask
SIZES = {"ui-a": (160, 120), "ui-b": (120, 150), "api-a": (144, 96), "api-b": (100, 100)}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache

    folder = tmp_path_factory.mktemp("models")
    save_tiny_sam(folder / "tiny.pth")
    return StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(1 << 20), defaults=HostDefaults(sam_model="tiny.pth"))


def _images() -> dict[str, np.ndarray]:
    out = {}
    for index, (name, (width, height)) in enumerate(SIZES.items()):
        image = sample_image(width, height, seed=index)
        out[name] = np.ascontiguousarray(np.roll(image, 17 * index, axis=1))
    return out


def _clicks(name: str) -> list[tuple[int, int]]:
    width, height = SIZES[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    return [(int(rng.integers(2, width - 2)), int(rng.integers(2, height - 2))) for _ in range(CLICKS)]


def _reference(host, images) -> dict[tuple[str, int], np.ndarray]:
    """Every (image, click) mask, one at a time, before anything runs concurrently."""
    from segfill.sam.session import SamSession

    model = host.sam.get("tiny.pth")
    expected = {}
    for name, image in images.items():
        for index, (x, y) in enumerate(_clicks(name)):
            session = SamSession(model)  # no shared cache: the reference owes nothing to the code under test
            session.set_image(image)
            expected[(name, index)] = session.predict(points=[(x, y, 1)], use_previous_logits=False).best_mask
    return expected


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(host):
    import uvicorn
    from fastapi import FastAPI

    from segfill.api import register_routes

    app = FastAPI()
    register_routes(app, host)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="error",
                                            lifespan="off"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started
    yield f"http://127.0.0.1:{running.config.port}"
    running.should_exit = True
    thread.join(timeout=10)


def _png_b64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_two_browser_sessions_and_two_api_clients_never_get_each_others_masks(host, server):
    import httpx

    images = _images()
    expected = _reference(host, images)
    for index in range(CLICKS):  # the four images really give different masks for the same click index
        shapes = {expected[(name, index)].shape for name in images}
        assert len(shapes) == len(images)
    host.embeddings.clear()

    start = threading.Barrier(4)
    got: dict[tuple[str, int], np.ndarray] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def browser(name: str) -> None:
        try:
            start.wait(timeout=30)
            state, payload = cb.on_image(None, Image.fromarray(images[name]), None, host)
            assert json.loads(payload)["error"] == "", payload
            for index, (x, y) in enumerate(_clicks(name)):
                events = [{"type": "clear"}, {"type": "point", "x": x, "y": y, "label": 1}]
                state, text, *_ = cb.on_events(state, json.dumps(events), host)
                payload = json.loads(text)
                assert payload["error"] == "", payload["error"]
                assert (payload["width"], payload["height"]) == SIZES[name]
                with lock:
                    got[(name, index)] = state.raw_mask().copy()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(f"{name}: {exc!r}")

    def api_client(name: str) -> None:
        try:
            with httpx.Client(base_url=server, timeout=60) as client:
                start.wait(timeout=30)
                for index, (x, y) in enumerate(_clicks(name)):
                    reply = client.post("/segfill/v1/mask", json={
                        "image": _png_b64(images[name]), "points": [{"x": x, "y": y, "label": 1}]})
                    assert reply.status_code == 200, reply.text
                    body = reply.json()
                    assert (body["width"], body["height"]) == SIZES[name]
                    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"])))) > 127
                    with lock:
                        got[(name, index)] = mask
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=browser, args=(name,)) for name in ("ui-a", "ui-b")]
    threads += [threading.Thread(target=api_client, args=(name,)) for name in ("api-a", "api-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a user was never answered"
    assert errors == []
    assert sorted(got) == sorted(expected)
    for key, mask in got.items():
        assert mask.shape == expected[key].shape, key
        assert np.array_equal(mask, expected[key]), f"{key} got someone else's mask"
    stats = host.embeddings.stats()
    assert stats.misses >= len(images) and stats.hits > 0  # the four users shared one cache
