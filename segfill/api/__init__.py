"""SegFill's REST API (``/segfill/v1/...``): FastAPI routes mounted by the WebUI glue and the standalone app.

``register_routes(app, host, queue_lock=None)`` is the one entry point; see :mod:`segfill.api.routes` and
``docs/API.md``. Importing this package needs FastAPI (both the WebUI and Forge ship it); the engine does not.
"""

from segfill.api.routes import (
    API_PREFIX,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_REQUEST_BYTES,
    register_routes,
)

__all__ = ["API_PREFIX", "DEFAULT_MAX_IMAGE_PIXELS", "DEFAULT_MAX_REQUEST_BYTES", "register_routes"]
