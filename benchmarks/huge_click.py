"""A click on an 8000×6000 photo against a click on a 1024×768 one: the tab's whole server-side event.

    .venv/bin/python benchmarks/huge_click.py [--model vit_b] [--clicks 10]

The tab's event function (``segfill.ui.callbacks.on_events``: decoder, the shown mask, candidate thumbnails,
the payload's mask PNG and JSON) on a real SamManager with a random-weight SAM, after the image's embedding is
computed (not timed). A click answers at display size; the full-size mask is made only when something needs it,
timed separately ("final mask", what a download or an inpaint pays once). Peak memory is the process's resident
set above what it held before the click, sampled every 5 ms. Target: a click on 8000×6000 <= 2× one on 1024×768.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from segment_map import PeakRss, photo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--clicks", type=int, default=10)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache
    from segfill.ui import callbacks as cb

    rng = np.random.default_rng(0)
    folder = tempfile.TemporaryDirectory(prefix="segfill-bench-")
    torch.manual_seed(0)
    if args.model == "vit_t":
        from mobile_sam import sam_model_registry
    else:
        from segment_anything import sam_model_registry
    torch.save(sam_model_registry[args.model]().state_dict(), Path(folder.name) / "sam.pth")
    host = StandaloneHost(SamManager([folder.name], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(), defaults=HostDefaults(sam_model="sam.pth"))
    host.sam.get("sam.pth")
    print(f"# {args.model} random weights, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load {os.getloadavg()[0]:.2f}")
    rows = {}
    for width, height in ((1024, 768), (8000, 6000)):
        image = Image.fromarray(photo(width, height))
        started = time.perf_counter()
        state, _ = cb.on_image(None, image, None, host)
        encode_s = time.perf_counter() - started
        times, peaks = [], []
        points = [(float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height)) for _ in range(args.clicks)]
        for index, (x, y) in enumerate(points):
            events = ([{"type": "clear"}] if index % 5 == 0 else []) + [{"type": "point", "x": x, "y": y,
                                                                          "label": 1 if index % 2 == 0 else 0}]
            with PeakRss() as rss:
                started = time.perf_counter()
                out = cb.on_events(state, json.dumps(events), host)
                times.append((time.perf_counter() - started) * 1000)
            peaks.append(rss.added_mib)
            payload = json.loads(out[1])
            assert payload["error"] == "", payload["error"]
            state = out[0]
        with PeakRss() as rss:
            started = time.perf_counter()
            state.final_mask()
            final_ms = (time.perf_counter() - started) * 1000
        rows[(width, height)] = (statistics.median(times), min(times), max(peaks), final_ms, rss.added_mib, encode_s)
        print(f"{width}x{height}: click event median {rows[(width, height)][0]:.1f} ms (min {min(times):.1f}), "
              f"peak +{max(peaks):.0f} MiB; full-size final mask once: {final_ms:.0f} ms (+{rss.added_mib:.0f} MiB); "
              f"upload incl. encoder {encode_s:.1f} s; load {os.getloadavg()[0]:.2f}", flush=True)
    ratio = rows[(8000, 6000)][0] / rows[(1024, 768)][0]
    print(f"# target: click on 8000x6000 <= 2x a click on 1024x768: {ratio:.2f}x")
    folder.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
