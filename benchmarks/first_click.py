"""First click on a new image: every installed SAM family, fp32 and bf16 autocast side by side, one run.

    .venv/bin/python benchmarks/first_click.py                      # every installed family and size
    .venv/bin/python benchmarks/first_click.py --models vit_b,vit_t # a few

What is timed: a :class:`segfill.sam.session.SamSession` on a model already in memory (random weights: the cost
of a forward pass does not depend on their values) doing ``set_image`` (hash + image encoder) and ``predict``
for one point, on a 1024×768 copy of scikit-image's ``coffee`` photo; no embedding cache, so the encoder runs
every time. Each model runs in fp32 and under bf16 autocast (``segfill.sam.precision``), the best of
``--repeats`` runs is reported, with:

- the relative L2 difference of the bf16 image embedding from the fp32 one (tolerance
  ``precision.BF16_TOLERANCE``) and the IoU of the two best masks for the same point;
- what "auto" picks for the family on this machine (bf16 only with native bf16 hardware and a family whose
  difference is within tolerance, see ``precision.BF16_BY_FAMILY``).

The machine's load (``os.getloadavg``) is printed before and after each model: the machine may be shared.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name -> (family, arch)
MODELS = {
    "vit_b": ("sam", "vit_b"),
    "vit_l": ("sam", "vit_l"),
    "vit_h": ("sam", "vit_h"),
    "vit_t": ("mobile_sam", "vit_t"),
    "hiera_t": ("sam2", "hiera_t"),
    "hiera_s": ("sam2", "hiera_s"),
    "hiera_b+": ("sam2", "hiera_b+"),
    "hiera_l": ("sam2", "hiera_l"),
    "sam_hq:vit_b": ("sam_hq", "vit_b"),
}


def photo(width: int = 1024, height: int = 768) -> np.ndarray:
    import cv2
    from skimage import data

    return np.ascontiguousarray(cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_CUBIC))


def installed(family: str) -> bool:
    import importlib

    module = {"sam": "segment_anything", "mobile_sam": "mobile_sam", "sam_hq": "segment_anything_hq",
              "sam2": "sam2.build_sam"}[family]
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def build_random(family: str, arch: str):
    """The family's own architecture with random initial weights, in eval mode, as a LoadedSam."""
    import torch

    from segfill.sam.loading import LoadedSam

    torch.manual_seed(0)
    if family == "sam":
        from segment_anything import sam_model_registry

        model = sam_model_registry[arch]()
    elif family == "mobile_sam":
        from mobile_sam import sam_model_registry

        model = sam_model_registry["vit_t"]()
    elif family == "sam_hq":
        from segment_anything_hq import sam_model_registry

        model = sam_model_registry[arch]()
    else:
        from sam2.build_sam import build_sam2

        from segfill.sam.loading import _sam2_config_for

        model = build_sam2(_sam2_config_for(arch), ckpt_path=None, device="cpu", mode="eval")
    model.eval()
    return LoadedSam(model=model, arch=arch, family=family, path=Path(f"random-{family}-{arch}"),
                     model_key=f"random-{family}-{arch}", device="cpu")


def first_click(loaded, image: np.ndarray, precision: str, point: tuple[float, float]):
    """(seconds for set_image + predict, image embedding as float32 numpy, best mask)."""
    import torch

    from segfill.sam.session import SamSession

    loaded.precision = precision
    session = SamSession(loaded, cache=None)
    with torch.inference_mode():
        started = time.perf_counter()
        session.set_image(image)
        prediction = session.predict(points=[(point[0], point[1], 1)])
        elapsed = time.perf_counter() - started
    predictor = session.predictor
    features = getattr(predictor, "features", None)
    if features is None:  # SAM 2
        features = predictor.inner._features["image_embed"]
    return elapsed, features.float().cpu().numpy(), prediction.best_mask


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per model and precision first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args(argv)

    import torch

    from segfill.sam import precision as prec

    if args.threads:
        torch.set_num_threads(args.threads)
    image = photo()
    point = (image.shape[1] * 0.55, image.shape[0] * 0.5)
    print(f"# {platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; native bf16 on the CPU: {prec.native_bf16('cpu')}")
    print(f"# image: skimage coffee resized to {image.shape[1]}x{image.shape[0]}; set_image + predict (1 point), "
          f"model in memory, random weights, {args.warmup} untimed + best of {args.repeats}; bf16 tolerance {prec.BF16_TOLERANCE:.1%}")
    header = f"{'model':<14}{'fp32 s':>9}{'bf16 s':>9}{'speed-up':>10}{'emb diff':>10}{'mask IoU':>10}  auto   load"
    print(header)
    print("-" * len(header))
    rows = []
    for name in [n.strip() for n in args.models.split(",") if n.strip()]:
        family, arch = MODELS[name]
        if not installed(family):
            print(f"{name:<14} not installed")
            continue
        before = load()
        loaded = build_random(family, arch)
        times: dict[str, float] = {}
        embeddings, masks = {}, {}
        for precision in ("fp32", "bf16"):
            best = None
            for _ in range(max(0, args.warmup)):
                first_click(loaded, image, precision, point)
            for _ in range(max(1, args.repeats)):
                elapsed, embedding, mask = first_click(loaded, image, precision, point)
                best = elapsed if best is None else min(best, elapsed)
            times[precision], embeddings[precision], masks[precision] = best, embedding, mask
        diff = float(np.linalg.norm(embeddings["bf16"] - embeddings["fp32"]) / max(np.linalg.norm(embeddings["fp32"]), 1e-12))
        union = np.logical_or(masks["fp32"], masks["bf16"]).sum()
        iou = float(np.logical_and(masks["fp32"], masks["bf16"]).sum() / union) if union else 1.0
        auto = prec.resolve_precision("auto", family, "cpu")
        print(f"{name:<14}{times['fp32']:>9.2f}{times['bf16']:>9.2f}{times['fp32'] / times['bf16']:>9.2f}x"
              f"{diff:>9.2%}{iou:>10.3f}  {auto:<5}  {before} -> {load()}", flush=True)
        rows.append((name, times, diff, iou, auto))
        del loaded, embeddings, masks
        gc.collect()
    by_name = {row[0]: row for row in rows}
    if "vit_t" in by_name:
        name, times, _diff, _iou, auto = by_name["vit_t"]
        print(f"# target: vit_t first click <= 1.5 s: {times[auto]:.2f} s with '{auto}' (auto)")
    if "vit_b" in by_name:
        name, times, _diff, _iou, auto = by_name["vit_b"]
        print(f"# target: vit_b bf16 first click <= 0.5x fp32: {times['bf16'] / times['fp32']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
