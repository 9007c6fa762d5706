"""Files the browser tests share with the app they drive: a tiny random SAM and a small test image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = (160, 120)  # (width, height)
#: the fixture app computes the SAM embedding of an image this wide slowly (tests/browser/fixture_app.py)
SLOW_WIDTH = 161
#: the big image for zoomed detail: 1-px black/white stripes in this box, a smooth gradient elsewhere
BIG_SIZE = (2600, 1500)
STRIPES = (1200, 600, 1400, 800)


@dataclass
class BrowserAssets:
    sam_path: Path
    image_path: Path
    second_image_path: Path
    second_sam_path: Path | None = None
    slow_image_path: Path | None = None
    big_image_path: Path | None = None
    bad_file_path: Path | None = None
    photo_path: Path | None = None


def sample_image(width: int = IMAGE_SIZE[0], height: int = IMAGE_SIZE[1], seed: int = 0) -> np.ndarray:
    """A bright disc and a dark square on a noisy gradient (RGB uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 70)], axis=-1)
    disc = (xx - width * 0.62) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.26) ** 2
    image[disc] = (240, 230, 40)
    image[height // 6: height // 2, width // 10: width // 3] = (20, 20, 160)
    return np.clip(image + rng.integers(-12, 13, size=image.shape), 0, 255).astype(np.uint8)


def big_image() -> np.ndarray:
    width, height = BIG_SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    x0, y0, x1, y1 = STRIPES
    stripes = np.where((xx[y0:y1, x0:x1] % 2) == 0, 255, 0).astype(np.uint8)
    image[y0:y1, x0:x1] = stripes[..., None]
    return image


@dataclass
class DetectorAssets:
    installed: Path  # $SEGFILL_DETECTORS of the app: tiny-grounding-dino (where transformers has it), tiny-owlvit
    hub: Path  # the fake hub's repositories, <owner>--<name> (tests/browser/fixture_app.py serves them)
    families: tuple[str, ...]  # the families installed
    folders: dict[str, str]  # installed folder name -> family: {"tiny-owlvit": "owlvit", ...}
    hub_id: str  # the one repository the fake hub serves (downloaded on first use)


#: the repository the fake hub serves: OWL-ViT's default, so every stack (transformers 4.30.2 too) can use it
FAKE_HUB_ID = "google/owlvit-base-patch32"


def write_detector_assets(folder: Path) -> DetectorAssets | None:
    """Tiny random-weight detectors through tests/tiny_detectors.py; None without transformers."""
    import shutil

    from segfill.detect.download import folder_name
    from segfill.detect.registry import family_status

    if not family_status("owlvit").available:
        return None
    from tests import tiny_detectors

    folder = Path(folder)
    installed = folder / "detectors"
    folders = {"tiny-owlvit": "owlvit"}
    tiny_detectors.save_tiny_owlvit(installed / "tiny-owlvit", seed=4)
    if family_status("grounding_dino").available:
        tiny_detectors.save_tiny_grounding_dino(installed / "tiny-grounding-dino", seed=1)
        folders["tiny-grounding-dino"] = "grounding_dino"
    hub = folder / "hub"
    shutil.copytree(installed / "tiny-owlvit", hub / folder_name(FAKE_HUB_ID))
    return DetectorAssets(installed, hub, tuple(sorted(set(folders.values()))), folders, FAKE_HUB_ID)


def write_assets(folder: Path) -> BrowserAssets:
    from tests.tiny_models import save_tiny_sam

    folder = Path(folder)
    sam_path = save_tiny_sam(folder / "models" / "tiny_sam.pth", seed=0)
    second_sam = save_tiny_sam(folder / "models" / "tiny_sam_b.pth", seed=3)
    image_path = folder / "image.png"
    Image.fromarray(sample_image(), "RGB").save(image_path)
    second = folder / "image2.png"
    Image.fromarray(sample_image(seed=1)[::-1].copy(), "RGB").save(second)
    slow = folder / "slow.png"
    Image.fromarray(sample_image(SLOW_WIDTH, 120, seed=2), "RGB").save(slow)
    big = folder / "big.png"
    Image.fromarray(big_image(), "RGB").save(big)
    bad = folder / "holiday.jpg"
    bad.write_bytes(b"this is a text file, not a photo\n" * 20)
    photo = folder / "coffee.png"
    try:
        from skimage import data

        Image.fromarray(data.coffee(), "RGB").save(photo)
    except ImportError:  # scikit-image is a dev requirement; without it the photo is the sample image
        Image.fromarray(sample_image(600, 400, seed=4), "RGB").save(photo)
    return BrowserAssets(sam_path, image_path, second, second_sam, slow, big, bad, photo)
