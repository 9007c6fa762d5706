"""Click latency: SegFill's cached SamSession against a bare segment-anything SamPredictor, same model, same run.

    .venv/bin/python benchmarks/click_latency.py                  # vit_b (random weights), CPU
    .venv/bin/python benchmarks/click_latency.py --segment-map    # plus peak memory of an 8000×6000 segment map

What is timed, per click, with a vit_b-architecture SAM (random weights: the cost of a forward pass does not
depend on the weights' values), saved to a temporary file and loaded through ``segfill.sam.loading.load_sam``:

- SegFill first click: ``set_image`` (hash + encoder + cache) and ``predict``;
- SegFill re-click: ``predict`` on the kept session (the UI's case); and a fresh session on the shared cache,
  ``set_image`` (hash, cache hit) + ``predict`` (the REST API's case, one request per click);
- bare click as in peers' extensions: ``SamPredictor.set_image`` + ``predict`` on every click;
- bare ``predict`` alone, with exactly the arguments the session passed (points, labels, box, mask_input,
  multimask), so the ratio SegFill re-click / bare predict is the session's own overhead.

The click script: selections of 5 clicks (a point, then points appended: include, exclude, ...), 4 selections.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def test_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-sized RGB image with structure (gradients, discs) and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xx / width * 255, yy / height * 255, (xx + yy) / (width + height) * 255], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.2) * min(width, height)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, size=3)
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def click_script(width: int, height: int, clicks: int, per_selection: int = 5, seed: int = 1):
    """``clicks`` prompts: each selection starts with one point and appends points (alternating labels)."""
    rng = np.random.default_rng(seed)
    prompts, points = [], []
    for index in range(clicks):
        if index % per_selection == 0:
            points = []
        label = 1 if len(points) % 2 == 0 else 0
        points = points + [(float(rng.integers(0, width)), float(rng.integers(0, height)), label)]
        prompts.append(list(points))
    return prompts


def make_vit_b(folder: Path, device: str):
    import torch
    from segment_anything import sam_model_registry

    from segfill.sam.loading import load_sam

    path = folder / "random_vit_b.pth"
    torch.manual_seed(0)
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    loaded = load_sam(path, device=device)
    path.unlink()
    return loaded


class PredictRecorder:
    """Records the arguments the session hands to ``SamPredictor.predict`` so bare predict can repeat them."""

    def __init__(self, predictor):
        self.calls = []
        self._predict = predictor.predict
        predictor.predict = self

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._predict(**kwargs)


def timed(fn, sync):
    start = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - start, result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def run_clicks(args) -> None:
    import torch
    from segment_anything import SamPredictor

    from segfill.sam.session import EmbeddingCache, SamSession, image_digest

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    image = test_image(args.width, args.height)
    prompts = click_script(args.width, args.height, args.clicks + 1)

    with tempfile.TemporaryDirectory() as folder:
        t_load, loaded = timed(lambda: make_vit_b(Path(folder), device), sync)
    print(f"model: {loaded.label} random weights, loaded through load_sam in {t_load:.1f} s, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"image: {args.width}×{args.height}, clicks: 1 first + {args.clicks} re-clicks, selections of 5 points")

    with torch.inference_mode():
        # Bare clicks first: they leave the bare predictor holding the image for the "predict alone" timings.
        bare = SamPredictor(loaded.model)
        t_bare_click = []
        for prompt in prompts[: args.bare_clicks]:
            def bare_click(p=prompt):
                bare.set_image(image)
                return bare.predict(point_coords=np.array([q[:2] for q in p]), point_labels=np.array([q[2] for q in p]))

            t, _ = timed(bare_click, sync)
            t_bare_click.append(t)

        cache = EmbeddingCache()
        session = SamSession(loaded, cache)
        recorder = PredictRecorder(session.predictor)

        def first_click():
            session.set_image(image)
            return session.predict(points=prompts[0])

        t_first, _ = timed(first_click, sync)
        # Interleaved, so a change in machine load hits both sides alike.
        t_reclick, t_bare_predict = [], []
        for prompt in prompts[1:]:
            t, _ = timed(lambda p=prompt: session.predict(points=p), sync)
            t_reclick.append(t)
            call = recorder.calls[-1]
            t, _ = timed(lambda c=call: bare.predict(**c), sync)
            t_bare_predict.append(t)

        t_api = []
        for prompt in prompts[1:]:
            def api_click(p=prompt):
                fresh = SamSession(loaded, cache)
                fresh.set_image(image)
                return fresh.predict(points=p, use_previous_logits=False)

            t, _ = timed(api_click, sync)
            t_api.append(t)

        t_hash, _ = timed(lambda: image_digest(image), sync)

    med = statistics.median
    print()
    print(f"encoder calls (SegFill, {1 + 2 * args.clicks} clicks incl. {args.clicks} fresh API sessions): {session.encoder_calls}")
    print(f"encoder calls (bare SamPredictor, set_image per click): {len(t_bare_click)} for {len(t_bare_click)} clicks")
    print(f"cache: {cache.stats()}")
    print()
    print(f"SegFill first click (hash + encoder + predict) {ms(t_first)}")
    print(f"SegFill re-click, kept session: median       {ms(med(t_reclick))}  (min {ms(min(t_reclick))}, max {ms(max(t_reclick))})")
    print(f"SegFill re-click, new session + set_image:    {ms(med(t_api))}  (API request; image hash alone {ms(t_hash)})")
    print(f"bare set_image + predict per click: median    {ms(med(t_bare_click))}  ({len(t_bare_click)} clicks)")
    print(f"bare predict alone, same arguments: median    {ms(med(t_bare_predict))}  ({len(t_bare_predict)} clicks)")
    print()
    print(f"ratio SegFill re-click / bare predict:        {med(t_reclick) / med(t_bare_predict):.3f}  (target <= 1.15)")
    print(f"ratio SegFill API re-click / bare predict:    {med(t_api) / med(t_bare_predict):.3f}")
    print(f"speed-up re-click vs bare set_image+predict:  {med(t_bare_click) / med(t_reclick):.1f}×")


class PeakRss:
    """Samples this process's resident memory every few milliseconds; ``peak`` is the highest seen (bytes)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.before = self.current()
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def segment_map_child(args) -> None:
    """Runs in its own process, after the click timings, so memory figures belong to this work alone."""
    import gc

    import cv2
    import torch

    from segfill.sam.segment_map import compute_segment_map, working_size
    from segfill.sam.session import EmbeddingCache, SamSession

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        loaded = make_vit_b(Path(folder), args.device)
    image = test_image(args.map_width, args.map_height)
    gc.collect()
    size = f"{args.map_width}×{args.map_height}"
    cache = EmbeddingCache()
    with torch.inference_mode():
        # The encoder's peak is the same for every input size (SAM always sees 1024 px), so measure it apart:
        # embed the working-size copy first, then the generator finds it in the cache.
        work_w, work_h = working_size((args.map_width, args.map_height), 1024)
        working = cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA)
        with PeakRss() as rss:
            start = time.perf_counter()
            SamSession(loaded, cache).set_image(working)
            elapsed = time.perf_counter() - start
        print(f"vit_b encoder on the {work_w}×{work_h} working copy: {elapsed:.1f} s; RSS {mib(rss.before)} before "
              f"(model + {size} image), +{mib(rss.peak - rss.before)} peak")
        with PeakRss() as rss:
            start = time.perf_counter()
            segment_map = compute_segment_map(
                loaded, image, max_side=1024, points_per_side=args.map_points, pred_iou_thresh=0.0,
                stability_score_thresh=0.0, cache=cache,
            )
            elapsed = time.perf_counter() - start
        print(f"segment map of {size} (working {work_w}×{work_h}, {args.map_points}² points in batches of 16, "
              f"thresholds 0, embedding from the cache): {len(segment_map)} segments in {elapsed:.1f} s, "
              f"+{mib(rss.peak - rss.before)} peak")
        with PeakRss() as rss:
            start = time.perf_counter()
            mask = segment_map.mask_of(segment_map.ids[:3])
            touched = segment_map.segments_touched([(100, 100), (args.map_width - 100, args.map_height - 100)], thickness=20)
            union = segment_map.mask_of(touched)
            elapsed = time.perf_counter() - start
        print(f"  queries: mask_of + scribble union at {mask.shape[1]}×{mask.shape[0]} ({len(touched)} touched): "
              f"{elapsed * 1000:.0f} ms, +{mib(rss.peak - rss.before)} peak; the map itself holds "
              f"{mib(segment_map.labels.nbytes)} of labels")
        del mask, union
        gc.collect()
        session = SamSession(loaded)
        with PeakRss() as rss:
            start = time.perf_counter()
            session.set_image(image)
            encoded = time.perf_counter() - start
        encode_peak = rss.peak - rss.before
        with PeakRss() as rss:
            start = time.perf_counter()
            prediction = session.predict(points=[(args.map_width / 2, args.map_height / 2, 1)])
            predicted = time.perf_counter() - start
        print(f"  click on the {size} image through SamSession: set_image {encoded:.1f} s (hash included, "
              f"+{mib(encode_peak)} peak), predict {predicted:.2f} s for {len(prediction)} full-size masks "
              f"(+{mib(rss.peak - rss.before)} peak, SAM's own full-size upscaling)")
    full_batch = 64 * 3 * args.map_width * args.map_height * 4
    print(f"  for comparison, SAM's generator run on the full-size image holds 64 points × 3 masks of float32 logits "
          f"per batch: {full_batch / 2**30:.1f} GiB (arithmetic, not run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--clicks", type=int, default=20, help="re-clicks after the first")
    parser.add_argument("--bare-clicks", type=int, default=3, help="bare set_image+predict clicks (each runs the encoder)")
    parser.add_argument("--segment-map", action="store_true", help="also measure an 8000×6000 segment map's peak memory")
    parser.add_argument("--map-width", type=int, default=8000)
    parser.add_argument("--map-height", type=int, default=6000)
    parser.add_argument("--map-points", type=int, default=8)
    parser.add_argument("--segment-map-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.segment_map_child:
        segment_map_child(args)
        return
    run_clicks(args)
    if args.segment_map:
        print()
        child = [sys.executable, __file__, "--segment-map-child", "--device", args.device, "--threads", str(args.threads),
                 "--map-width", str(args.map_width), "--map-height", str(args.map_height), "--map-points", str(args.map_points)]
        subprocess.run(child, check=True)


if __name__ == "__main__":
    main()
