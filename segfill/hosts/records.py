"""What a host writes beside a result of the tab or the API: the input, the mask, and a manifest line.

The standalone host saves the result itself (into ``serve --output-dir``); the WebUI host lets the WebUI's
``save_image`` save it (its folder, name pattern and format) and records beside whatever path that returned.
Either way the input is kept as ``<stem>.input.png`` and the mask as ``<stem>.mask.png``, so the entry's
``job`` is a complete recipe that ``python -m segfill replay`` can rerun (standalone backends).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from segfill.provenance import Manifest, file_sha256, job_key, now_iso, pixels_sha256

_name_lock = threading.Lock()


def next_output_path(folder: Path, mode: str) -> Path:
    """``<folder>/segfill-<mode>-00001.png``: the first free number (under a lock, so two requests never share)."""
    for number in itertools.count(1):
        candidate = folder / f"segfill-{mode}-{number:05d}.png"
        if not candidate.exists():
            return candidate
    raise AssertionError("unreachable")


def save_output(folder: Path, mode: str, image: Image.Image, infotext: str) -> Path:
    from PIL.PngImagePlugin import PngInfo

    from segfill.fileio import save_image

    folder.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", infotext)
    with _name_lock:
        path = next_output_path(folder, mode)
        save_image(image, path, pnginfo=info)
    return path


def record_result(output: Path, mode: str, source: str, input_image: Image.Image, mask: Image.Image | None,
                  args: Any, backend: dict[str, Any], seconds: float, infotext: str = "",
                  selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save the input and mask beside ``output`` (an already saved result) and append its manifest entry."""
    import numpy as np

    from segfill.fileio import save_image

    output = Path(output).resolve()
    stem = output.with_suffix("")
    rgb = np.asarray(input_image.convert("RGB"))
    input_path = save_image(Image.fromarray(rgb, "RGB"), stem.with_name(stem.name + ".input.png"))
    job: dict[str, Any] = {"mode": mode, "image": str(input_path), "output": str(output),
                           "args": args.dict(), "backend": backend}
    entry: dict[str, Any] = {"time": now_iso(), "source": source, "mode": mode, "status": "ok", "error": None}
    if mask is not None:
        mask_path = save_image(mask.convert("L"), stem.with_name(stem.name + ".mask.png"))
        job["mask"] = {"file": str(mask_path)}
        entry["mask_file"] = str(mask_path)
    with Image.open(output) as written:
        size = written.size
    entry.update(job_key=job_key(job), job=job,
                 input={"path": str(input_path), "sha256": file_sha256(input_path), "pixels_sha256": pixels_sha256(rgb),
                        "width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
                 selection=selection or {}, args=args.dict(), seed=args.seed, backend=backend,
                 output={"path": str(output), "sha256": file_sha256(output), "width": size[0], "height": size[1]},
                 seconds=round(seconds, 3), infotext=infotext)
    return Manifest(output.parent).append(entry)
