"""``python -m segfill serve`` for the browser tests, with two fixtures:

- a known segment map: SAM's automatic mask generator on a tiny random-weight model finds meaningless segments
  (often none), so a browser test could not check that clicking a segment picks it. Here the generator is
  replaced by a map of the test image's own shapes (the disc, the square and the background, found by colour),
  so the test knows which segment each pixel belongs to;
- a slow embedding for images exactly ``SLOW_WIDTH`` px wide, so a test can see what the canvas shows while the
  first embedding is computed (minutes on a busy CPU with a real SAM);
- with ``$SEGFILL_TEST_HUB`` (a folder of ``<owner>--<name>`` repositories), a stand-in for the Hugging Face hub:
  a detector's first-use download runs SegFill's real download code on ``file://`` URLs of those files, slowly
  enough (``HUB_SECONDS``) that a test sees its progress bar.

Everything else is the real ``serve`` command.

    python -m tests.browser.fixture_app --port 7999 --sam-checkpoint tiny.pth --backend opencv --device cpu
"""

from __future__ import annotations

import sys
import time

import numpy as np


def shape_masks(image: np.ndarray) -> list[np.ndarray]:
    """The sample image's shapes (tests/browser/tiny_assets.py): yellow disc, dark blue square, the rest;
    on any other image one segment per quarter."""
    rgb = np.asarray(image)[..., :3].astype(np.int16)
    disc = (rgb[..., 0] > 190) & (rgb[..., 1] > 180) & (rgb[..., 2] < 110)
    square = (rgb[..., 0] < 70) & (rgb[..., 1] < 70) & (rgb[..., 2] > 120)
    if disc.sum() > 50 and square.sum() > 50:
        return [disc, square, ~(disc | square)]
    h, w = rgb.shape[:2]
    quarters = []
    for y0, y1 in ((0, h // 2), (h // 2, h)):
        for x0, x1 in ((0, w // 2), (w // 2, w)):
            mask = np.zeros((h, w), bool)
            mask[y0:y1, x0:x1] = True
            quarters.append(mask)
    return quarters


def fixture_segment_map(model, image, **_options):
    from segfill.sam.segment_map import SegmentMap

    rgb = np.asarray(image)
    return SegmentMap.from_masks(shape_masks(rgb), (rgb.shape[1], rgb.shape[0]))


SLOW_SECONDS = 4.0


def install_slow_embedding() -> None:
    """Images ``SLOW_WIDTH`` px wide take ``SLOW_SECONDS`` to encode, spread over the encoder's blocks, so the
    real progress reports (one per block) and the real cancel (checked after each block) are what the page sees;
    their embedding is never cached, so each test that opens one sees a first embedding."""
    from segfill.sam.encoding import encoder_blocks
    from segfill.sam.session import SamSession
    from tests.browser.tiny_assets import SLOW_WIDTH

    original = SamSession.set_image

    def set_image(self, image, *args, **kwargs):
        if np.asarray(image).shape[1] != SLOW_WIDTH:
            return original(self, image, *args, **kwargs)
        if self.cache is not None:
            self.cache.clear()
        blocks = encoder_blocks(self.model)
        pause = SLOW_SECONDS / max(1, len(blocks))
        handles = [block.register_forward_pre_hook(lambda *_: time.sleep(pause)) for block in blocks]
        try:
            return original(self, image, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    SamSession.set_image = set_image


HUB_SECONDS = 3.0


def install_fake_hub(hub: str) -> None:
    from pathlib import Path

    from segfill.detect import manager
    from segfill.detect.download import HubFile, download_detector, folder_name
    from segfill.errors import DownloadError
    from segfill.provenance import file_sha256

    def download(repo_id, into, progress=None):
        source = Path(hub) / folder_name(repo_id)
        if not source.is_dir():
            raise DownloadError(f"Cannot list the files of {repo_id} on the Hugging Face hub (no such repository).")
        files = sorted(source.iterdir())
        listing = [HubFile(p.name, p.stat().st_size, file_sha256(p) if p.suffix == ".safetensors" else None)
                   for p in files]
        pause = HUB_SECONDS / max(1, len(files))

        def slow(done, total):  # one report per file chunk; the whole download takes about HUB_SECONDS
            time.sleep(pause)
            if progress is not None:
                progress(done, total)

        return download_detector(repo_id, into, progress=slow, lister=lambda _id: listing,
                                 url_for=lambda _id, name: (source / name).as_uri())

    original = manager.DetectorManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._downloader = download

    manager.DetectorManager.__init__ = init


def main(argv: list[str] | None = None) -> int:
    import os

    import segfill.sam.segment_map as segment_map
    from segfill.cli import main as segfill_main

    segment_map.compute_segment_map = fixture_segment_map
    install_slow_embedding()
    if os.environ.get("SEGFILL_TEST_HUB"):
        install_fake_hub(os.environ["SEGFILL_TEST_HUB"])
    return segfill_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
