"""Segment map: SegFill's ``compute_segment_map`` against segment-anything's ``SamAutomaticMaskGenerator``.

    .venv/bin/python benchmarks/segment_map.py                        # vit_b (random weights), 16 points/side
    .venv/bin/python benchmarks/segment_map.py --points-per-side 32 --huge

Same model (loaded through ``load_sam``), same 1024×768 photo (scikit-image's ``coffee``), same points per
side, same thresholds, one run. Both are timed

- "total": what a user waits for on a new image (the generator encodes with ``SamPredictor``, fp32; SegFill
  encodes through its session, with the precision ``auto`` picks: bf16 where the CPU has it);
- "decoder + masks": the embedding already there (the generator's ``set_image`` made a no-op after one call;
  SegFill's from its embedding cache, as in the tab after a click).

Thresholds: SAM's defaults (0.88 / 0.95) filter out almost every mask of a random-weight model, which hides the
generator's per-mask cost, so the figures use 0 / 0 (every candidate goes through: the worst case) unless
``--sam-thresholds``. Peak memory is this process's resident set, sampled every 5 ms, above what it held before.
``agreement`` is the mean, over the generator's segments painted largest first, of the best IoU with one of
SegFill's segments (1.0 = the same map).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class PeakRss:
    """This process's resident memory, sampled every few milliseconds; ``peak`` is the highest seen (bytes)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.before = self.peak = 0

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> PeakRss:
        self.before = self.peak = self.current()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())

    @property
    def added_mib(self) -> float:
        return (self.peak - self.before) / 2**20


def photo(width: int, height: int) -> np.ndarray:
    import cv2
    from skimage import data

    return np.ascontiguousarray(cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_CUBIC))


def generator_map(loaded, image, args, encoder: bool):
    """The generator's masks painted largest first (the same painting as SegFill's), and its time."""
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.utils.amg import rle_to_mask

    from segfill.sam.segment_map import SegmentMap

    generator = SamAutomaticMaskGenerator(
        loaded.model, points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.iou, stability_score_thresh=args.stability, output_mode="uncompressed_rle")
    if not encoder:  # embedding already there: time decoder + masks only
        generator.predictor.set_image(image)
        generator.predictor.set_image = lambda *a, **k: None
        generator.predictor.reset_image = lambda *a, **k: None
    with PeakRss() as rss:
        started = time.perf_counter()
        records = generator.generate(image)
        masks = [rle_to_mask(r["segmentation"]) for r in sorted(records, key=lambda r: -r["area"])]
        painted = SegmentMap.from_masks(masks, (image.shape[1], image.shape[0])) if masks else None
        elapsed = time.perf_counter() - started
    return painted, elapsed, rss.added_mib


def segfill_map(loaded, image, args, cache):
    from segfill.sam.segment_map import compute_segment_map

    reports = []
    with PeakRss() as rss:
        started = time.perf_counter()
        result = compute_segment_map(loaded, image, points_per_side=args.points_per_side,
                                     points_per_batch=args.points_per_batch, pred_iou_thresh=args.iou,
                                     stability_score_thresh=args.stability, cache=cache,
                                     progress=lambda d, t, m: reports.append(d))
        elapsed = time.perf_counter() - started
    return result, elapsed, rss.added_mib, len(reports)


def agreement(reference, ours) -> float:
    if reference is None or not reference.segments:
        return 1.0 if ours is None or not ours.segments else 0.0
    theirs = [reference.labels == s.id for s in reference.segments]
    mine = [ours.labels == s.id for s in ours.segments]
    scores = []
    for a in theirs:
        best = 0.0
        for b in mine:
            union = np.logical_or(a, b).sum()
            if union:
                best = max(best, np.logical_and(a, b).sum() / union)
        scores.append(best)
    return float(np.mean(scores))


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_b", help="vit_b, vit_l, vit_h or vit_t (random weights)")
    parser.add_argument("--points-per-side", type=int, default=None, help="default: segfill.defaults")
    parser.add_argument("--points-per-batch", type=int, default=None)
    parser.add_argument("--sam-thresholds", action="store_true", help="SAM's 0.88 / 0.95 instead of 0 / 0")
    parser.add_argument("--huge", action="store_true", help="also SegFill on an 8000×6000 copy (peak memory)")
    args = parser.parse_args(argv)

    import torch

    from segfill import defaults
    from segfill.sam.loading import load_sam
    from segfill.sam.precision import model_precision
    from segfill.sam.session import EmbeddingCache

    args.points_per_side = args.points_per_side or defaults.SEGMENT_MAP_POINTS_PER_SIDE
    args.points_per_batch = args.points_per_batch or defaults.SEGMENT_MAP_POINTS_PER_BATCH
    args.iou, args.stability = (0.88, 0.95) if args.sam_thresholds else (0.0, 0.0)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="segfill-bench-") as tmp:
        path = Path(tmp) / f"random_{args.model}.pth"
        if args.model == "vit_t":
            from mobile_sam import sam_model_registry
        else:
            from segment_anything import sam_model_registry
        torch.save(sam_model_registry[args.model]().state_dict(), path)
        loaded = load_sam(path, device="cpu")
    image = photo(1024, 768)
    print(f"# {platform.platform()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"# {loaded.label} random weights; coffee 1024x768; {args.points_per_side} points per side, "
          f"{args.points_per_batch} per batch; thresholds iou {args.iou} / stability {args.stability}; "
          f"SegFill encoder precision: {model_precision(loaded)}")
    rows = []
    with torch.inference_mode():
        print(f"# {load()}", flush=True)
        reference, gen_total, gen_total_mem = generator_map(loaded, image, args, encoder=True)
        cache = EmbeddingCache()
        ours, ours_total, ours_total_mem, reports = segfill_map(loaded, image, args, cache)
        rows.append(("total (encoder + decoder + masks)", gen_total, gen_total_mem, ours_total, ours_total_mem))
        print(f"# {load()}", flush=True)
        reference_warm, gen_warm, gen_warm_mem = generator_map(loaded, image, args, encoder=False)
        ours_warm, ours_warm_t, ours_warm_mem, _ = segfill_map(loaded, image, args, cache)
        rows.append(("decoder + masks (embedding there)", gen_warm, gen_warm_mem, ours_warm_t, ours_warm_mem))
        print(f"# {load()}", flush=True)
    print(f"{'':<36}{'generator s':>12}{'peak MiB':>10}{'SegFill s':>11}{'peak MiB':>10}{'ratio':>8}")
    for name, gt, gm, st, sm in rows:
        print(f"{name:<36}{gt:>12.2f}{gm:>10.0f}{st:>11.2f}{sm:>10.0f}{st / gt:>8.2f}")
    print(f"segments: generator {len(reference.segments) if reference else 0}, SegFill {len(ours.segments)}; "
          f"agreement {agreement(reference_warm, ours_warm):.3f}; SegFill progress reports: {reports}")
    print(f"# target: SegFill <= 0.5x the generator at the same points per side: "
          f"total {rows[0][3] / rows[0][1]:.2f}x, decoder + masks {rows[1][3] / rows[1][1]:.2f}x")
    if args.huge:
        big = photo(8000, 6000)
        with torch.inference_mode():
            _, small_t, small_mem, _ = segfill_map(loaded, image, args, EmbeddingCache())
            _, big_t, big_mem, _ = segfill_map(loaded, big, args, EmbeddingCache())
        print(f"SegFill 1024x768: {small_t:.2f} s, +{small_mem:.0f} MiB; 8000x6000 (working 1024x768): "
              f"{big_t:.2f} s, +{big_mem:.0f} MiB  ({load()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
