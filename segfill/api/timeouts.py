"""Timeouts on reading request bodies: a client that declares more bytes than it sends must not hold a
connection and its worker forever.

Two layers, both answering ``408`` with one sentence and closing the connection:

- :class:`BodyReadTimeout`, ASGI middleware the standalone server (``segfill serve``) wraps around its whole
  app, gradio's routes included;
- the SegFill routes' own body reader (``segfill.api.routes``), which also guards them inside the WebUI,
  whose app has started before extensions add routes (no middleware can be added then).

The timeout is between two reads (``defaults.REQUEST_BODY_TIMEOUT_S``), like a web server's client body
timeout: a large upload on a slow link keeps going as long as bytes keep arriving.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from segfill import defaults


def body_timeout_message(timeout_s: float) -> str:
    return f"The request body did not arrive in time (nothing for {timeout_s:g} s); send the whole body promptly."


class BodyReadTimeout:
    """ASGI middleware: a request whose body stops arriving for ``timeout_s`` seconds (a body shorter than its
    Content-Length, a stalled upload) is answered 408 and its connection closed, for every route of the
    standalone server (gradio's too), so such a client cannot hold a worker forever. Once the body is
    complete, reads pass through untouched (streaming responses wait for disconnects legitimately)."""

    def __init__(self, app: Any, timeout_s: float = defaults.REQUEST_BODY_TIMEOUT_S) -> None:
        self.app = app
        self.timeout_s = float(timeout_s)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        state = {"body_done": False, "timed_out": False, "started": False}

        async def timed_receive() -> dict:
            if state["body_done"]:
                return await receive()
            if state["timed_out"]:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                state["timed_out"] = True
                return {"type": "http.disconnect"}  # the app stops reading; the 408 is ours to send
            if message.get("type") != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def guarded_send(message: dict) -> None:
            if state["timed_out"]:
                return  # whatever the app answers to the "disconnect" is replaced by the 408
            if message.get("type") == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not state["timed_out"]:
                raise
        if state["timed_out"] and not state["started"]:
            body = json.dumps({"detail": body_timeout_message(self.timeout_s)}).encode()
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})


def limit_body_reads(app: Any, timeout_s: float = defaults.REQUEST_BODY_TIMEOUT_S) -> BodyReadTimeout:
    """``app`` wrapped in :class:`BodyReadTimeout`."""
    return BodyReadTimeout(app, timeout_s)


