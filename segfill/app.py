"""The standalone SegFill app: the WebUI tab's UI on its own FastAPI server, plus the REST API.

``python -m segfill serve`` calls :func:`serve`. The page loads the same ``javascript/*.js`` and
``style.css`` the WebUI injects into its own page: gradio 4 takes them through ``Blocks(head=, css=)``;
gradio 3.41 has no ``head=``, so there the index page's HTML gets the scripts added before ``</head>`` (the
same way the WebUI does it), only in this process.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from segfill import defaults
from segfill.api.timeouts import BodyReadTimeout, limit_body_reads
from segfill.ui.compat import GRADIO4, blocks_kwargs, queue_kwargs

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host

__all__ = ["BodyReadTimeout", "build_app", "create_server_app", "limit_body_reads", "serve"]

EXTENSION_ROOT = Path(__file__).resolve().parent.parent
JAVASCRIPT_DIR = EXTENSION_ROOT / "javascript"
STYLE_CSS = EXTENSION_ROOT / "style.css"
TITLE = "SegFill"


def javascript_source() -> str:
    """All of ``javascript/*.js`` in name order (the WebUI's order)."""
    return "\n;\n".join(path.read_text(encoding="utf-8") for path in sorted(JAVASCRIPT_DIR.glob("*.js")))


def script_tags() -> str:
    # "</script" cannot appear inside an inline script; our files never contain it, but be safe.
    source = javascript_source().replace("</script", "<\\/script")
    return f'<script type="text/javascript">\n{source}\n</script>\n'


def css_source() -> str:
    return STYLE_CSS.read_text(encoding="utf-8") if STYLE_CSS.exists() else ""


_ORIGINAL_TEMPLATE_RESPONSE: Any = None


def _inject_scripts_gradio3(head_html: str) -> None:
    """gradio 3.41: add ``head_html`` to every page gradio renders (idempotent)."""
    global _ORIGINAL_TEMPLATE_RESPONSE
    import gradio.routes

    templates = gradio.routes.templates
    if _ORIGINAL_TEMPLATE_RESPONSE is None:
        _ORIGINAL_TEMPLATE_RESPONSE = templates.TemplateResponse
    original = _ORIGINAL_TEMPLATE_RESPONSE

    def template_response(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        response.body = response.body.replace(b"</head>", head_html.encode("utf-8") + b"</head>", 1)
        response.init_headers()
        return response

    templates.TemplateResponse = template_response


def build_app(host: Host) -> gr.Blocks:
    """The standalone page: the tab's contents with SegFill's JS and CSS."""
    from segfill.ui.builder import build_tab_contents

    head = script_tags()
    with gr.Blocks(**blocks_kwargs(css=css_source(), head=head, title=TITLE)) as demo:
        gr.HTML(f'<h2 id="segfill_title">{TITLE}</h2>', elem_id="segfill_header")
        build_tab_contents(host)
    if not GRADIO4:
        _inject_scripts_gradio3(head)
    demo.queue(**queue_kwargs(4))
    return demo


class CrossOriginIsolation:
    """ASGI middleware: every response says ``Cross-Origin-Opener-Policy: same-origin`` and
    ``Cross-Origin-Embedder-Policy: require-corp``, so the standalone page is cross-origin isolated and
    onnxruntime-web may run the browser decoder on several threads (``javascript/segfill_decoder.js``). The page
    loads only its own server's files and data URLs, which such a page may. (Inside the WebUI the page is the
    WebUI's; there the decoder runs on one thread.)"""

    HEADERS = [(b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp")]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def isolated_send(message: dict) -> None:
            if message.get("type") == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [header for header in self.HEADERS if header[0] not in names]
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        await self.app(scope, receive, isolated_send)


def create_server_app(host: Host, body_timeout_s: float = defaults.REQUEST_BODY_TIMEOUT_S) -> Any:
    """FastAPI app holding the REST API (``/segfill/v1/...``) and, at ``/``, the gradio UI; every request body
    is read with a timeout (:class:`BodyReadTimeout`)."""
    from fastapi import FastAPI

    from segfill.api.routes import register_routes

    app = FastAPI(title=TITLE)
    app.add_middleware(BodyReadTimeout, timeout_s=body_timeout_s)
    app.add_middleware(CrossOriginIsolation)
    register_routes(app, host, body_timeout_s=body_timeout_s)
    demo = build_app(host)
    return gr.mount_gradio_app(app, demo, path="/")


def _ensure_browser_runtime() -> None:
    """Fetch onnxruntime-web's wasm once (segfill.web_runtime) if it is missing; the app runs without it."""
    from segfill.web_runtime import WebRuntimeError, ensure_web_runtime, runtime_ready

    if runtime_ready():
        return
    print("SegFill: fetching onnxruntime-web for the browser decoder (once, about 33 MB)…", flush=True)
    try:
        ensure_web_runtime()
    except WebRuntimeError as exc:
        print(f"SegFill: {exc} Clicks and hovers are previewed through the server instead.", flush=True)


def serve(host: Host, server_name: str = "127.0.0.1", port: int = 7870, log_level: str = "warning",
          ready_message: str | None = None, sock: socket.socket | None = None) -> None:
    """Run the standalone app until interrupted, on ``sock`` (a listening socket, see
    :func:`segfill.ui.cli.bind_socket`) or on a socket bound here to ``server_name:port``. The address is
    printed once the server answers (with ``port=0``, the port the system chose)."""
    import uvicorn

    _ensure_browser_runtime()
    if sock is None:
        from segfill.ui.cli import bind_socket

        sock = bind_socket(server_name, port)
    bound_port = sock.getsockname()[1]
    try:
        app = create_server_app(host)
        shown = f"[{server_name}]" if ":" in server_name else server_name
        message = ready_message or f"SegFill running on http://{shown}:{bound_port}/"

        class Server(uvicorn.Server):
            async def startup(self, sockets=None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    print(message, flush=True)

        Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()
