"""Files the browser tests share with the app they drive: a tiny random SAM and a small test image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = (160, 120)  # (width, height)


@dataclass
class BrowserAssets:
    sam_path: Path
    image_path: Path
    second_image_path: Path


def sample_image(width: int = IMAGE_SIZE[0], height: int = IMAGE_SIZE[1], seed: int = 0) -> np.ndarray:
    """A bright disc and a dark square on a noisy gradient (RGB uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 70)], axis=-1)
    disc = (xx - width * 0.62) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.26) ** 2
    image[disc] = (240, 230, 40)
    image[height // 6: height // 2, width // 10: width // 3] = (20, 20, 160)
    return np.clip(image + rng.integers(-12, 13, size=image.shape), 0, 255).astype(np.uint8)


def write_assets(folder: Path) -> BrowserAssets:
    from tests.tiny_models import save_tiny_sam

    folder = Path(folder)
    sam_path = save_tiny_sam(folder / "models" / "tiny_sam.pth", seed=0)
    image_path = folder / "image.png"
    Image.fromarray(sample_image(), "RGB").save(image_path)
    second = folder / "image2.png"
    Image.fromarray(sample_image(seed=1)[::-1].copy(), "RGB").save(second)
    return BrowserAssets(sam_path, image_path, second)
