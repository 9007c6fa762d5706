"""Base64 image codec for the REST API: bytes in, bounded PIL images out, and back.

An image field is always the *content* of a PNG, JPEG or WebP file, base64-encoded, with or without a
``data:image/...;base64,`` prefix. It is never a file name: a string that is not valid base64 of such a file
is rejected, and nothing is ever opened from the server's disk.

The pixel limit is checked from the file header, before any pixel is decoded, so a small file that
claims a huge canvas (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image

from segfill.errors import InputError

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
INVALID_IMAGE_MESSAGE = "is not a valid PNG/JPEG/WebP base64 string"

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


class ImageTooLargeError(InputError):
    """The image has more pixels than the server accepts (the API answers 413)."""


def strip_data_url(text: str) -> str:
    """``"data:image/png;base64,AAAA"`` -> ``"AAAA"``; other strings unchanged (whitespace removed)."""
    return _WHITESPACE.sub("", _DATA_URL.sub("", text.strip(), count=1))


def decode_image(text: str, max_pixels: int, field: str = "image") -> Image.Image:
    """Decode a base64 PNG/JPEG/WebP into a loaded PIL image (mode as stored).

    Raises :class:`InputError` naming ``field`` when the text is not such a file, and
    :class:`ImageTooLargeError` when ``width * height > max_pixels``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{field} is empty; send a base64 PNG/JPEG/WebP.")
    try:
        data = base64.b64decode(strip_data_url(text), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field} {INVALID_IMAGE_MESSAGE}.") from None
    if not data:
        raise InputError(f"{field} {INVALID_IMAGE_MESSAGE}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{field} is larger than this server accepts ({max_pixels} pixels at most).") from None
    except Exception:  # PIL raises several types for garbage; all mean the same to the client
        raise InputError(f"{field} {INVALID_IMAGE_MESSAGE}.") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError(f"{field} has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{field} is {width}x{height} = {width * height} pixels; this server accepts at most {max_pixels}."
        )
    from segfill.outpaint.alpha import is_high_bit_depth

    high_bit_depth = is_high_bit_depth(image)  # only visible before loading for 16-bit RGB(A) PNGs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Exception:
        raise InputError(f"{field} {INVALID_IMAGE_MESSAGE} (the file is truncated or corrupt).") from None
    if high_bit_depth:
        image.info["segfill_high_bit_depth"] = True
    return image


def encode_png(image: Image.Image) -> str:
    """Base64 of a PNG file holding ``image`` (no data-URL prefix)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def read_image_b64(text: str) -> Image.Image:
    """Decode base64 image content without limits: for tests and Python clients, never for request input."""
    image = Image.open(io.BytesIO(base64.b64decode(strip_data_url(text))))
    image.load()
    return image
