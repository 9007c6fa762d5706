"""Image files the user opens in the tab (dropped on the canvas, picked, pasted): read with SegFill's own messages.

gradio hands the file over as a path in its temporary folder (gradio 4: a ``str``; gradio 3: a temp-file object
with ``orig_name``). Nothing of that path reaches the user: messages name the file as the user called it, and
say in one sentence what is wrong (not an image, damaged, too large), never PIL's own text.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from segfill.errors import InputError

#: formats the tab opens (PIL names)
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
#: 100 megapixels: a 12000×8000 scan; beyond it the browser and SAM's working copies get unreasonable
MAX_PIXELS = 100_000_000
FORMATS_TEXT = "PNG, JPEG, WebP, TIFF, BMP or GIF"


def upload_path_and_name(value: Any) -> tuple[str, str] | None:
    """(server path, the user's file name) of a gradio File value (either gradio), or None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return upload_path_and_name(value[0]) if value else None
    if isinstance(value, dict):  # gradio 4 FileData as a dict
        path = value.get("path") or value.get("name")
        name = value.get("orig_name") or (Path(path).name if path else "")
        return (str(path), str(name)) if path else None
    path = getattr(value, "path", None) or getattr(value, "name", None) or value
    name = getattr(value, "orig_name", None) or Path(str(path)).name
    return str(path), str(name)


def describe(name: str) -> str:
    name = os.path.basename(str(name or "")).strip()
    return f"'{name}'" if name else "The file"


def read_image_file(path: str, name: str = "", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an RGB(A)-capable PIL image, upright (EXIF orientation applied), fully decoded."""
    label = describe(name or path)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise InputError(f"{label} could not be read; please open it again.") from None
    if size == 0:
        raise InputError(f"{label} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=list(FORMATS))
    except Image.DecompressionBombError:
        raise InputError(f"{label} is too large: SegFill opens images up to {max_pixels // 1_000_000} megapixels.") from None
    except Exception:  # PIL raises several types for files it cannot identify
        raise InputError(f"{label} is not an image SegFill can open; use a {FORMATS_TEXT} file.") from None
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(f"{label} is {width}×{height} = {width * height / 1e6:.0f} megapixels; "
                         f"SegFill opens images up to {max_pixels // 1_000_000} megapixels.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            image = ImageOps.exif_transpose(image)
    except Exception:
        raise InputError(f"{label} is damaged or incomplete: it could not be decoded.") from None
    return image
