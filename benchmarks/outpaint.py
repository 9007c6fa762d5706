"""Outpainting: SegFill's tiling and blending against the WebUI's "Poor man's outpainting" geometry.

    .venv/bin/python benchmarks/outpaint.py            # seam metrics on astronaut / coffee, timing 1024² -> 2048²
    .venv/bin/python benchmarks/outpaint.py --large    # also the seam metrics at 1024² -> 2048² (slow: Telea)

Both methods run on the same inputs with the same model-free backend (OpenCV Telea, deterministic), so the
differences come from geometry, order and blending only.

Poor man's outpainting (AUTOMATIC1111 ``scripts/poor_mans_outpainting.py``), re-implemented from its
behaviour: the canvas is rounded *up to a multiple of 64* (the extra is split between the padded sides, so the
result is not the size asked for); the original is pasted on black; the repaint mask is everything except the
original shrunk by ``2·mask_blur`` on padded sides; ``images.split_grid`` cuts the canvas into tiles of the
img2img size with ``overlap = pixels``; every tile that is not wholly inside the original is processed on
its own, from the *initial* canvas (no tile sees another's result), with ``seed + 1`` per tile; the WebUI
pastes the original back through the mask blurred by ``2·mask_blur`` (its "mask blur" is doubled by the script);
``images.combine_grid`` joins the tiles with a *linear* ramp over the first ``overlap`` px of each tile (left
and top) and a hard paste after it.

SegFill: :func:`segfill.outpaint.runner.run_outpaint` with default arguments (blur-extend pre-fill, 32 px band,
cosine blending, tiles ordered outward, the canvas updated between tiles, each tile continuing its
neighbours), and the same with ``tile_mode="independent"`` ("indep.": every tile repaints its whole share and
overlaps are averaged).

Metrics (:mod:`segfill.metrics`) on two bands of each result: *original seam* (±4 px around the edges of the
original that border new content) and *tile seams* (±2 px around every processed tile's inner edges, inside
the new area and more than 8 px away from the original). Timing: CPU time (``time.process_time``) of a whole
``run_outpaint`` minus the CPU time spent inside the backend, best of N, for 1024² -> 2048².
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segfill.args import OutpaintArgs  # noqa: E402
from segfill.backends.base import InpaintRequest  # noqa: E402
from segfill.backends.opencv_backend import OpenCVBackend  # noqa: E402
from segfill.metrics import lines_band, rect_edge_band, seam_metrics  # noqa: E402
from segfill.outpaint.plan import plan_outpaint  # noqa: E402
from segfill.outpaint.runner import run_outpaint  # noqa: E402

Rect = tuple[int, int, int, int]


def tiled_opencv() -> OpenCVBackend:
    """Telea cut into 512-px tiles like a diffusion model: this benchmark measures the tiled path (SegFill's
    OpenCV backend itself fills the whole canvas in one call)."""
    return OpenCVBackend(tiled=True)


# --- Poor man's outpainting geometry --------------------------------------------------------------------------

@dataclass
class PoorMansResult:
    image: np.ndarray
    original_rect: Rect
    tiles: list[Rect]  # processed tiles
    grid_size: tuple[int, int]  # (cols, rows)


def grid_positions(length: int, tile: int, overlap: int) -> list[int]:
    """``images.split_grid`` along one axis: evenly spread starts, the last one flush with the end."""
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1) if count > 1 else 0
    starts = []
    for i in range(count):
        start = int(i * step)
        if start + tile >= length:
            start = length - tile
        starts.append(start)
    return starts


def poor_mans_geometry(size: tuple[int, int], pixels: int):
    """(canvas size, (left, right, up, down)) exactly as the script computes them (all four directions)."""
    w, h = size
    left = right = up = down = pixels
    target_w = math.ceil((w + left + right) / 64) * 64
    target_h = math.ceil((h + up + down) / 64) * 64
    left = left * (target_w - w) // (left + right)
    right = target_w - w - left
    up = up * (target_h - h) // (up + down)
    down = target_h - h - up
    return (target_w, target_h), (left, right, up, down)


def poor_mans_tiles(size: tuple[int, int], pixels: int, tile: int = 512) -> tuple[list[Rect], tuple[int, int]]:
    (tw, th), (left, right, up, down) = poor_mans_geometry(size, pixels)
    xs, ys = grid_positions(tw, tile, pixels), grid_positions(th, tile, pixels)
    tiles = [(x, y, x + tile, y + tile) for y in ys for x in xs
             if not (x >= left and x + tile <= tw - right and y >= up and y + tile <= th - down)]
    return tiles, (len(xs), len(ys))


def _linear_ramp(overlap: int) -> np.ndarray:
    return (np.arange(overlap, dtype=np.float32) * 255 / overlap).astype(np.uint8).astype(np.float32) / 255.0


def poor_mans_outpaint(image: np.ndarray, pixels: int, backend, mask_blur: int = 4, tile: int = 512,
                       seed: int = 0) -> PoorMansResult:
    h, w = image.shape[:2]
    (tw, th), (left, right, up, down) = poor_mans_geometry((w, h), pixels)
    canvas = np.zeros((th, tw, 3), dtype=np.uint8)
    canvas[up:up + h, left:left + w] = image
    # repaint mask: white except the original shrunk by 2·mask_blur (PIL rectangles include their end pixel)
    mask = np.full((th, tw), 255, dtype=np.uint8)
    mx0, my0 = left + 2 * mask_blur, up + 2 * mask_blur
    mx1, my1 = tw - right - 2 * mask_blur, th - down - 2 * mask_blur
    mask[my0:my1 + 1, mx0:mx1 + 1] = 0
    # the WebUI's overlay: the original comes back through the mask blurred by p.mask_blur = 2·mask_blur
    sigma = 2 * mask_blur
    k = int(2.5 * sigma) * 2 + 1
    overlay = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (k, k), sigma)[..., None]

    xs, ys = grid_positions(tw, tile, pixels), grid_positions(th, tile, pixels)
    results = {}
    processed: list[Rect] = []
    current_seed = seed
    for y in ys:
        for x in xs:
            if x >= left and x + tile <= tw - right and y >= up and y + tile <= th - down:
                continue
            sl = (slice(y, y + tile), slice(x, x + tile))
            request = InpaintRequest(image=Image.fromarray(canvas[sl]), mask=Image.fromarray(mask[sl], "L"),
                                     seed=current_seed)
            generated = np.asarray(backend.inpaint(request), dtype=np.float32)
            blended = canvas[sl].astype(np.float32) * (1 - overlay[sl]) + generated * overlay[sl]
            results[(x, y)] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            processed.append((x, y, x + tile, y + tile))
            current_seed += 1
    # images.combine_grid: linear ramp over the first `overlap` px of every tile but the first, then hard paste
    ramp = _linear_ramp(pixels)
    combined = np.zeros_like(canvas)
    for y in ys:
        row = np.zeros((tile, tw, 3), dtype=np.float32)
        for x in xs:
            t = results.get((x, y), canvas[y:y + tile, x:x + tile]).astype(np.float32)
            if x == 0:
                row[:, :tile] = t
                continue
            row[:, x:x + pixels] = row[:, x:x + pixels] * (1 - ramp[None, :, None]) + t[:, :pixels] * ramp[None, :, None]
            row[:, x + pixels:x + tile] = t[:, pixels:]
        row = np.rint(row).astype(np.uint8).astype(np.float32)
        if y == 0:
            combined[:tile] = row.astype(np.uint8)
            continue
        top = combined[y:y + pixels].astype(np.float32)
        combined[y:y + pixels] = np.rint(top * (1 - ramp[:, None, None]) + row[:pixels] * ramp[:, None, None]).astype(np.uint8)
        combined[y + pixels:y + tile] = row[pixels:].astype(np.uint8)
    return PoorMansResult(combined, (left, up, left + w, up + h), processed, (len(xs), len(ys)))


# --- measurements ---------------------------------------------------------------------------------------------

def tile_seam_band(shape, tiles: list[Rect], original: Rect, offset=(0, 0), half_width: int = 2) -> np.ndarray:
    h, w = shape
    xs = sorted({x - offset[0] for t in tiles for x in (t[0], t[2]) if 0 < x - offset[0] < w})
    ys = sorted({y - offset[1] for t in tiles for y in (t[1], t[3]) if 0 < y - offset[1] < h})
    outside = np.ones((h, w), dtype=bool)
    x0, y0, x1, y1 = original
    outside[max(y0 - 8, 0):y1 + 8, max(x0 - 8, 0):x1 + 8] = False
    return lines_band((h, w), xs, ys, half_width, within=outside)


def metrics_row(name: str, image: np.ndarray, original: Rect, tiles: list[Rect], offset=(0, 0)) -> dict:
    orig = seam_metrics(image, rect_edge_band(image.shape[:2], original, 4))
    band = tile_seam_band(image.shape[:2], tiles, original, offset)
    generated = np.ones(image.shape[:2], dtype=bool)
    x0, y0, x1, y1 = original
    generated[max(y0 - 8, 0):y1 + 8, max(x0 - 8, 0):x1 + 8] = False
    # tile seams are judged against the rest of the generated area, not against the (detailed) original
    tile = seam_metrics(image, band, reference_mask=generated) if band.any() else None
    return {"name": name, "size": f"{image.shape[1]}x{image.shape[0]}", "tiles": len(tiles),
            "orig_de": orig.delta_e_mean, "orig_de_ratio": orig.delta_e_ratio, "orig_grad": orig.gradient_jump_ratio,
            "tile_de": tile.delta_e_mean if tile else float("nan"),
            "tile_de_ratio": tile.delta_e_ratio if tile else float("nan"),
            "tile_grad": tile.gradient_jump_ratio if tile else float("nan")}


def compare(label: str, image: np.ndarray, pixels: int, out_dir: Path | None) -> list[dict]:
    h, w = image.shape[:2]
    pm = poor_mans_outpaint(image, pixels, tiled_opencv())
    rows = [metrics_row(f"{label} Poor man's", pm.image, pm.original_rect, pm.tiles)]
    if out_dir is not None:
        Image.fromarray(pm.image).save(out_dir / f"{label}_poor_mans.png")
    for mode, suffix in (("continue", ""), ("independent", " indep.")):
        args = OutpaintArgs(left=pixels, right=pixels, top=pixels, bottom=pixels, tile_mode=mode)
        sf = run_outpaint(Image.fromarray(image), args, tiled_opencv())
        rows.append(metrics_row(f"{label} SegFill{suffix}", np.asarray(sf.image), sf.plan.original_rect,
                                [t.rect for t in sf.plan.tiles], sf.plan.work.offset))
        if out_dir is not None:
            sf.image.save(out_dir / f"{label}_segfill_{mode}.png")
    return rows


def compare_large(image: np.ndarray, out_dir: Path | None) -> list[dict]:
    """1024² -> 2048²: Poor man's run twice with 256 px (what its UI allows) versus SegFill in one call."""
    first = poor_mans_outpaint(image, 256, tiled_opencv())
    second = poor_mans_outpaint(first.image, 256, tiled_opencv())
    dx, dy = second.original_rect[:2]
    tiles = [(x0 + dx, y0 + dy, x1 + dx, y1 + dy) for x0, y0, x1, y1 in first.tiles] + second.tiles
    x0, y0 = first.original_rect[:2]
    original = (x0 + dx, y0 + dy, x0 + dx + image.shape[1], y0 + dy + image.shape[0])
    rows = [metrics_row("astro 1024+512 Poor man's", second.image, original, tiles)]
    if out_dir is not None:
        Image.fromarray(second.image).save(out_dir / "astronaut1024_poor_mans.png")
    for mode, suffix in (("continue", ""), ("independent", " indep.")):
        args = OutpaintArgs(left=512, right=512, top=512, bottom=512, tile_mode=mode)
        sf = run_outpaint(Image.fromarray(image), args, tiled_opencv())
        rows.append(metrics_row(f"astro 1024+512 SegFill{suffix}", np.asarray(sf.image), sf.plan.original_rect,
                                [t.rect for t in sf.plan.tiles], sf.plan.work.offset))
        if out_dir is not None:
            sf.image.save(out_dir / f"astronaut1024_segfill_{mode}.png")
    return rows


class TimedBackend:
    """Wraps a backend and adds up the CPU time spent inside it."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.working_size = backend.working_size
        self.needs_tiles = getattr(backend, "needs_tiles", True)
        self.cpu = 0.0

    def inpaint(self, request, progress=None):
        start = time.process_time()
        try:
            return self.backend.inpaint(request, progress)
        finally:
            self.cpu += time.process_time() - start


class CopyBackend:
    """Returns the tile unchanged: the cheapest possible backend, so all remaining time is SegFill's."""

    name = "copy"
    working_size = 512
    needs_tiles = True

    def inpaint(self, request, progress=None):
        return request.image


def time_large(repeats: int, backend_factory) -> tuple[float, float, int]:
    """Best-of-N CPU seconds (SegFill's own, wall) for 1024² -> 2048²."""
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.LANCZOS)
    args = OutpaintArgs(left=512, right=512, top=512, bottom=512)
    best_own, best_wall, tiles = float("inf"), float("inf"), 0
    for _ in range(repeats):
        backend = TimedBackend(backend_factory())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run_outpaint(image, args, backend)
        own = time.process_time() - cpu0 - backend.cpu
        wall = time.perf_counter() - wall0
        best_own, best_wall, tiles = min(best_own, own), min(best_wall, wall), result.plan.total_tiles
    return best_own, best_wall, tiles


def _fmt(rows: list[dict]) -> str:
    head = (f"{'run':<33} {'size':>9} {'tiles':>5} | {'orig ΔE':>7} {'ΔE/ref':>6} {'grad':>5} | "
            f"{'tile ΔE':>7} {'ΔE/ref':>6} {'grad':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<33} {r['size']:>9} {r['tiles']:>5} | {r['orig_de']:7.2f} {r['orig_de_ratio']:6.2f} "
                     f"{r['orig_grad']:5.2f} | {r['tile_de']:7.2f} {r['tile_de_ratio']:6.2f} {r['tile_grad']:5.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing runs (best of)")
    parser.add_argument("--large", action="store_true", help="also compare seams at 1024² -> 2048² (slow)")
    parser.add_argument("--save", default=None, metavar="DIR", help="write the result images here")
    ns = parser.parse_args(argv)
    from skimage import data

    out_dir = Path(ns.save) if ns.save else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.platform()}, Python {platform.python_version()}, OpenCV {cv2.__version__}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("# backend: OpenCV Telea (same for both); tiles 512 px; Poor man's mask blur 4, overlap = pixels")
    rows = []
    rows += compare("astronaut 512+256", data.astronaut(), 256, out_dir)
    rows += compare("coffee 600x400+128", data.coffee(), 128, out_dir)
    if ns.large:
        big = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024), Image.LANCZOS))
        rows += compare_large(big, out_dir)
    print(_fmt(rows))
    print("# orig = ±4 px around the original's inner edges; tile = ±2 px around processed tiles' inner edges in the"
          " new area; ΔE = mean CIEDE2000 of pixel pairs 2 px apart in the band, ΔE/ref = that / same outside the"
          " band; grad = mean Sobel |∇L*| in the band / outside (1 = like the rest of the image)")

    sf_plan = plan_outpaint((1024, 1024), OutpaintArgs(left=512, right=512, top=512, bottom=512))
    pm_first, _ = poor_mans_tiles((1024, 1024), 256)
    pm_second, _ = poor_mans_tiles((1536, 1536), 256)
    print(f"\n# 1024² -> 2048² tile count: SegFill {sf_plan.total_tiles} in {len(sf_plan.passes)} passes "
          f"(max 256 px per side per pass); Poor man's cannot add 512 px in one run (overlap = pixels must stay "
          f"below the 512 tile; its slider stops at 256), so twice 256 (1024->1536->2048): "
          f"{len(pm_first)} + {len(pm_second)} = {len(pm_first) + len(pm_second)}")
    own, wall, tiles = time_large(ns.repeats, CopyBackend)
    print(f"# SegFill's own CPU time, 1024² -> 2048² ({tiles} tiles, copy backend): {own:.3f} s "
          f"(best of {ns.repeats}; wall {wall:.3f} s; target <= 0.5 s)")
    own_cv, wall_cv, _ = time_large(1, tiled_opencv)
    print(f"# same with the OpenCV backend, backend CPU excluded: {own_cv:.3f} s (wall incl. backend {wall_cv:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
