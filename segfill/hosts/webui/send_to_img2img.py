""""Send to img2img inpaint": what img2img's Inpaint upload gets besides the image and the mask.

img2img renders at its Width/Height, so a 600x400 photo sent with the default 512x512 comes back squashed;
SegFill sets them to the image's aspect ratio (no side above the model's native size, multiples of 8), and
picks "Inpaint area: Only masked" when the mask is small, so generating right away gives a sensible result.
A mask covering the whole image is white on white in the upload box; its label says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segfill.hosts.webui.checkpoints import generation_size

#: the WebUI's "Only masked padding, pixels" default: the crop it renders around the mask
ONLY_MASKED_PADDING = 32
#: "Only masked" when the mask's padded box covers at most this share of the image
SMALL_MASK_SHARE = 0.25
#: the img2img components SegFill fills, by the WebUI's elem_id (1.10.1 and Forge alike)
IMG2IMG_COMPONENT_IDS = {
    "image": "img_inpaint_base",
    "mask": "img_inpaint_mask",
    "width": "img2img_width",
    "height": "img2img_height",
    "inpaint_area": "img2img_inpaint_full_res",
}
TARGET_ORDER = ("image", "mask", "width", "height", "inpaint_area")
INPAINT_AREA_CHOICES = ("Whole picture", "Only masked")
MASK_LABEL = "Mask"
WHOLE_IMAGE_MASK_LABEL = "Mask: the whole image (white = repaint)"


@dataclass(frozen=True)
class InpaintUploadSettings:
    width: int
    height: int
    only_masked: bool
    whole_image: bool  # the mask covers every pixel
    empty: bool  # the mask covers nothing

    @property
    def inpaint_area(self) -> str:
        return INPAINT_AREA_CHOICES[1] if self.only_masked else INPAINT_AREA_CHOICES[0]


def _mask_array(mask: Any) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask.astype(np.float32) > (0.5 if mask.dtype != np.uint8 else 127)
    return np.asarray(mask.convert("L")) > 127


def inpaint_upload_settings(image_size: tuple[int, int], mask: Any, native: int) -> InpaintUploadSettings:
    """Width/height, inpaint area and the whole-image flag for an image of ``image_size`` and its ``mask``
    (PIL, or a bool/float/uint8 array; white = repaint) on a model trained at ``native`` px."""
    width, height = generation_size(image_size, native)
    selected = _mask_array(mask)
    if not selected.any():
        return InpaintUploadSettings(width, height, False, False, True)
    if selected.all():
        return InpaintUploadSettings(width, height, False, True, False)
    ys, xs = np.nonzero(selected)
    box_w = min(selected.shape[1], int(xs.max() - xs.min() + 1) + 2 * ONLY_MASKED_PADDING)
    box_h = min(selected.shape[0], int(ys.max() - ys.min() + 1) + 2 * ONLY_MASKED_PADDING)
    share = (box_w * box_h) / float(selected.shape[0] * selected.shape[1])
    return InpaintUploadSettings(width, height, share <= SMALL_MASK_SHARE, False, False)


def inpaint_upload_updates(settings: InpaintUploadSettings | None, image: Any, mask: Any,
                           targets: tuple[str, ...] = TARGET_ORDER) -> list[Any]:
    """``gr.update`` values for the img2img components named in ``targets`` (keys of
    :data:`IMG2IMG_COMPONENT_IDS`); nothing changes where ``image`` is None (the tab had nothing to send)."""
    import gradio as gr

    if image is None or mask is None or settings is None:
        return [gr.update() for _ in targets]
    values = {
        "image": gr.update(value=image),
        "mask": gr.update(value=mask, label=WHOLE_IMAGE_MASK_LABEL if settings.whole_image else MASK_LABEL),
        "width": gr.update(value=settings.width),
        "height": gr.update(value=settings.height),
        "inpaint_area": gr.update(value=settings.inpaint_area),
    }
    return [values[name] for name in targets]
