"""A tile's WebUI infotext turned into the whole job's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def patch_infotext(infotext: str, *, seed: int | None = None, size: tuple[int, int] | None = None,
                   params: Mapping[str, Any] | None = None) -> str:
    """A tile's WebUI infotext turned into the whole job's: the job's base seed, the final size, and the
    SegFill parameters that the tile's text does not already carry (each key once)."""
    from segfill.infotext import params_to_text

    text = infotext or ""
    if seed is not None:
        text = re.sub(r"\bSeed: -?\d+", f"Seed: {int(seed)}", text)
    if size is not None:
        text = re.sub(r"\bSize: \d+x\d+", f"Size: {size[0]}x{size[1]}", text)
    last_line = text.rstrip().rsplit("\n", 1)[-1]
    missing = {k: v for k, v in (params or {}).items()
               if not re.search(r"(^|, )" + re.escape(str(k)) + r": ", last_line)}
    if missing:
        extra = params_to_text(missing)
        text = (text.rstrip() + ", " + extra) if text.strip() else extra
    return text
