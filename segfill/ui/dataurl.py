"""Images as ``data:`` URLs for the browser (payloads, downloads, send-to-img2img). No SegFill imports, so
state and rendering both use it without importing each other."""

from __future__ import annotations

import base64
import io

from PIL import Image


def png_data_url(image: Image.Image, compress_level: int = 1) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def jpeg_data_url(image: Image.Image, quality: int = 90, subsampling: int = -1) -> str:
    """``subsampling=0`` keeps full colour resolution (4:4:4), for detail tiles; -1 is PIL's default."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_data_url(url: str) -> bytes:
    """Bytes of a ``data:...;base64,`` URL (used by tests and the send-to-img2img path)."""
    return base64.b64decode(url.split(",", 1)[1])
