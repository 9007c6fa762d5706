"""Text -> boxes -> SAM masks -> inpaint on a real photo, timed step by step, with a picture of each step.

    python benchmarks/text_pipeline.py [--family owlvit|owlv2|grounding_dino] [--out artifacts/text]

Builds a tiny random-weight detector of the family (tests/tiny_detectors.py) and a tiny SAM, loads both through
SegFill's real loaders, runs ``python -m segfill mask --text`` 's pipeline through :func:`segfill.jobs.run_job`
on skimage's astronaut photo, and writes ``<out>/text-pipeline.png``: the photo with the detected boxes, labels
and scores, the united mask, and the OpenCV inpaint. Random weights give arbitrary boxes: the figure shows that
the boxes, masks and result line up, not what a trained detector would find.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="owlvit", choices=("owlvit", "owlv2", "grounding_dino"))
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "text")
    parser.add_argument("--text", default="an astronaut. a flag. a helmet")
    ns = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image, ImageDraw
    from skimage import data

    from segfill.jobs import JobModels, run_job
    from tests import tiny_detectors
    from tests.tiny_models import save_tiny_sam

    torch.set_num_threads(1)
    ns.out.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut()).resize((384, 384), Image.LANCZOS)
    with tempfile.TemporaryDirectory(prefix="segfill-text-") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        detector = getattr(tiny_detectors, f"save_tiny_{ns.family}")(tmp_path / f"tiny-{ns.family}", seed=5)
        sam = save_tiny_sam(tmp_path / "sam.pth")
        built = time.perf_counter() - started
        photo.save(tmp_path / "astronaut.png")
        job = {"mode": "inpaint", "image": str(tmp_path / "astronaut.png"), "output": str(ns.out / "inpainted.png"),
               "mask": {"text": ns.text, "detector": str(detector), "box_threshold": 0.0, "sam_checkpoint": str(sam),
                        "refinement": {"grow": 4}},
               "args": {"seed": 1}, "backend": {"name": "opencv", "options": {}}}
        models = JobModels(device="cpu")
        timings = {}
        for run in ("first (loads models)", "second (models loaded)"):
            started = time.perf_counter()
            result = run_job(job, models, source="benchmark", manifest=False)
            timings[run] = time.perf_counter() - started
    entry = result.entry
    detections = entry["selection"]["detections"]
    mask = np.asarray(Image.open(entry["mask_file"])) > 127

    panels = []
    boxes = photo.copy()
    draw = ImageDraw.Draw(boxes)
    for detection in detections:
        x0, y0, x1, y1 = detection["box"]
        draw.rectangle((x0, y0, x1, y1), outline=(255, 220, 0), width=2)
        draw.text((x0 + 3, y0 + 2), f"{detection['label']} {detection['score']:.2f}", fill=(255, 220, 0))
    panels.append(boxes)
    tinted = np.asarray(photo).astype(np.float32)
    tinted[mask] = tinted[mask] * 0.4 + np.array([30, 144, 255]) * 0.6
    panels.append(Image.fromarray(tinted.astype(np.uint8)))
    panels.append(Image.open(entry["output"]["path"]).convert("RGB"))
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), photo.height), "white")
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + 8
    figure = ns.out / "text-pipeline.png"
    sheet.save(figure)

    load = os.getloadavg()
    print(f"family: {ns.family} (tiny random weights), text: {ns.text!r}, image 384x384, torch "
          f"{torch.__version__}, 1 thread, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"built tiny detector + SAM in {built:.2f} s")
    for run, seconds in timings.items():
        print(f"text -> {len(detections)} boxes -> SAM per box -> union -> OpenCV inpaint, {run}: {seconds:.2f} s")
    print(json.dumps({"boxes": len(detections), "mask_area": int(mask.sum()), "figure": str(figure)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
