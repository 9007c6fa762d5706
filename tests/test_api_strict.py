"""The API is strict and bounded (issue 8, section 4), on pydantic 1 (WebUI) and 2 (Forge) alike.

- Values are never coerced: a label of 1.5, ``grow: "3"`` or ``true``, ``candidate: 1.5``, ``multimask:
  "yes"`` are 422s (the rule lives in the shared request base, so every model built on it inherits it).
- At most ``MAX_POINTS`` points per request; a box is four numbers and follows the points' bounds rule.
- A request body shorter than its Content-Length does not hold a worker: the read times out with a 408, on
  a real server socket (``segfill serve``'s app on 127.0.0.1).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fastapi import Request
from PIL import Image

from segfill.api import models as m
from segfill.errors import InputError
from segfill.sam.session import validate_box, validate_points
from tests.test_api import (  # noqa: F401 - test_api's helpers and its shared fixtures (client, host, ...)
    PREFIX,
    b64,
    client,
    detail,
    host,
    lock,
    sam_folder,
    textured,
)

POINT = {"x": 10, "y": 10}


@pytest.mark.parametrize("route, body, field", [
    ("mask", {"points": [{"x": 10, "y": 10, "label": 1.5}]}, "label"),
    ("mask", {"points": [{"x": 10, "y": 10, "label": True}]}, "label"),
    ("mask", {"points": [{"x": 10, "y": 10, "label": "1"}]}, "label"),
    ("mask", {"points": [{"x": "10", "y": 10}]}, "x"),
    ("mask", {"points": [{"x": True, "y": 10}]}, "x"),
    ("mask", {"points": [POINT], "grow": "3"}, "grow"),
    ("mask", {"points": [POINT], "grow": True}, "grow"),
    ("mask", {"points": [POINT], "grow": 2.5}, "grow"),
    ("mask", {"points": [POINT], "candidate": 1.5}, "candidate"),
    ("mask", {"points": [POINT], "candidate": True}, "candidate"),
    ("mask", {"points": [POINT], "candidate": "1"}, "candidate"),
    ("mask", {"points": [POINT], "multimask": "yes"}, "multimask"),
    ("mask", {"points": [POINT], "multimask": 1}, "multimask"),
    ("mask", {"points": [POINT], "fill_holes": "true"}, "fill_holes"),
    ("mask", {"points": [POINT], "feather": "4"}, "feather"),
    ("mask", {"points": [POINT], "model": 3}, "model"),
    ("mask", {"points": {"x": 10, "y": 10}}, "points"),
    ("mask", {"box": ["1", 2, 30, 40]}, "box"),
    ("segment-map", {"points_per_side": 8.0}, "points_per_side"),
    ("segment-map", {"max_side": "512"}, "max_side"),
    ("inpaint", {"mask": "", "seed": "7"}, "seed"),
    ("inpaint", {"mask": "", "steps": 20.0}, "steps"),
    ("inpaint", {"mask": "", "seam_fix": "no"}, "seam_fix"),
    ("outpaint", {"left": "16"}, "left"),
    ("outpaint", {"left": 16, "prompt": 5}, "prompt"),
    ("outpaint", {"left": 16, "color_match": 0}, "color_match"),
])
def test_values_are_never_coerced(client, route, body, field):  # noqa: F811 - pytest fixture
    reply = client.post(f"{PREFIX}/{route}", json={"image": b64(textured()), **body})
    assert reply.status_code == 422, reply.text
    assert field in detail(reply)


def test_strict_values_that_are_right_still_pass(client):  # noqa: F811
    body = {"image": b64(textured()), "points": [{"x": 10, "y": 10.5, "label": 0}, {"x": 30, "y": 20}],
            "grow": 2, "feather": 1, "feather_relative": None, "multimask": False, "candidate": 0, "fill_holes": True}
    reply = client.post(f"{PREFIX}/mask", json=body)
    assert reply.status_code == 200, reply.text
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), "points": [POINT], "candidate": "best",
                                               "box": [0, 0, 96, 72]})
    assert reply.status_code == 200, reply.text


def test_models_built_on_the_shared_base_inherit_strictness():
    import pydantic

    extra = pydantic.create_model("Detect", __base__=m.ApiModel, text=(str, ...), threshold=(float, 0.3),
                                  count=(int, 1), boxes=(list[list[float]], []))
    assert extra(text="a cat", threshold=1, count=2, boxes=[[1, 2, 3, 4.5]]).threshold == 1.0
    for bad in ({"text": 5}, {"text": "x", "threshold": "0.5"}, {"text": "x", "count": 1.5},
                {"text": "x", "boxes": [[1, "2", 3, 4]]}, {"text": "x", "count": False}):
        with pytest.raises(pydantic.ValidationError):
            extra(**bad)

    class Sub(m.ApiModel):
        flag: bool = False

    with pytest.raises(pydantic.ValidationError):
        Sub(flag="yes")


def test_json_type_rules():
    from typing import Literal, Optional, Union  # noqa: UP035 - the typing forms pydantic 1 models use

    assert m.json_type_error(3, float) is None and m.json_type_error(3.5, int) == "an integer"
    assert m.json_type_error(True, int) == "an integer" and m.json_type_error(1, bool) == "true or false"
    assert m.json_type_error(None, Optional[int]) is None  # noqa: UP045
    assert m.json_type_error(None, int | None) is None and m.json_type_error(None, int)
    assert m.json_type_error("best", Union[Literal["best"], int]) is None
    assert m.json_type_error(2, Union[Literal["best"], int]) is None
    assert m.json_type_error("worst", Union[Literal["best"], int]) == 'one of "best" or an integer'
    assert m.json_type_error([1, "x"], list[float]) == "a number at item 1"


def test_points_are_capped_per_request(client, lock):  # noqa: F811
    before = lock.acquired
    points = [{"x": 1 + i % 90, "y": 1 + i % 70} for i in range(m.MAX_POINTS + 1)]
    for route in ("mask", "segment-map"):
        reply = client.post(f"{PREFIX}/{route}", json={"image": b64(textured()), "points": points})
        assert reply.status_code == 422, reply.text
        assert "points" in detail(reply) and str(m.MAX_POINTS) in detail(reply)
    assert lock.acquired == before  # refused before any model work
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), "points": points[: m.MAX_POINTS]})
    assert reply.status_code == 200, reply.text
    assert client.get(f"{PREFIX}/health").json()["max_points"] == m.MAX_POINTS


@pytest.mark.parametrize("box", [[1, 2, 3], [1, 2, 3, 4, 5], [0, 0, 1, 1] * 1000])
def test_a_box_is_four_numbers(client, box):  # noqa: F811
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), "box": box})
    assert reply.status_code == 422 and "box" in detail(reply)


def test_boxes_follow_the_points_bounds_rule(client):  # noqa: F811
    size = (96, 72)
    assert validate_box((0, 0, 96, 72), size) == (0, 0, 96, 72)  # a box may end at the far edges
    for box in ((-1, 0, 50, 50), (10, 10, 97, 50), (10, 10, 50, 73), (90, 60, 120, 90)):
        with pytest.raises(InputError, match="outside the 96×72 image"):
            validate_box(box, size)
        reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), "box": list(box)})
        assert reply.status_code == 422 and "outside" in detail(reply)
    with pytest.raises(InputError, match="outside"):
        validate_points([(96, 10)], size)  # points lie on a pixel: x < width


# ---- slow bodies on a real server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def running_server(host, monkeypatch):  # noqa: F811
    """The standalone server's FastAPI app (routes + body-timeout middleware, no gradio UI) under uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    from segfill.api import register_routes
    from segfill.api.timeouts import limit_body_reads

    app = FastAPI()
    register_routes(app, host, body_timeout_s=1.0)

    @app.post("/echo")  # a plain route (like gradio's): only the middleware guards it
    async def echo(request: Request):
        return {"bytes": len(await request.body())}

    server = uvicorn.Server(uvicorn.Config(limit_body_reads(app, timeout_s=1.0), host="127.0.0.1",
                                           port=_free_port(), log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield server
    server.should_exit = True
    thread.join(timeout=10)


def _send_short_body(port: int, path: str, declared: int, sent: bytes) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode() + sent)
        reply = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            reply += chunk
    return reply, time.monotonic() - started


def test_a_body_shorter_than_its_content_length_times_out(running_server):
    import httpx

    port = running_server.config.port
    reply, took = _send_short_body(port, f"{PREFIX}/mask", 1000, b'{"image": "')
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"did not arrive" in reply and took < 10
    reply, took = _send_short_body(port, "/echo", 1000, b"abc")
    assert reply.startswith(b"HTTP/1.1 408") and took < 10, reply[:200]
    # the worker is free again: normal requests are answered
    assert httpx.get(f"http://127.0.0.1:{port}{PREFIX}/health", timeout=10).status_code == 200
    assert httpx.post(f"http://127.0.0.1:{port}/echo", content=b"x" * 5000, timeout=10).json() == {"bytes": 5000}


def test_the_route_level_timeout_also_guards_hosts_without_the_middleware(host):  # noqa: F811
    """In the WebUI the app is not ours to wrap: the routes themselves time out slow bodies."""
    import uvicorn
    from fastapi import FastAPI

    from segfill.api import register_routes

    app = FastAPI()
    register_routes(app, host, body_timeout_s=1.0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        reply, took = _send_short_body(server.config.port, f"{PREFIX}/inpaint", 5000, b'{"image": "abc')
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert took < 10
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_standalone_app_has_the_body_timeout(host):  # noqa: F811
    from segfill.app import BodyReadTimeout, create_server_app

    app = create_server_app(host)
    assert isinstance(app, BodyReadTimeout) or any(
        getattr(mw, "cls", None) is BodyReadTimeout for mw in getattr(app, "user_middleware", []))


def test_the_image_used_for_boxes_is_the_requested_one(client):  # noqa: F811
    image = Image.new("RGB", (40, 30), (10, 200, 10))
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(image), "box": [0, 0, 40, 30]})
    assert reply.status_code == 200 and reply.json()["width"] == 40
