"""Which checkpoint the WebUI has loaded, and whether it is an inpainting model.

Duck-typed on the model object, so it works on 1.10 (ldm: UNet input channels, ``conditioning_key``) and on
Forge (``sd_model.is_inpaint``) without importing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

INPAINT_UNET_CHANNELS = 9


def _unet_input_channels(sd_model: Any) -> int | None:
    """Input channels of the first UNet convolution, for ldm (1.10) and sgm (SDXL) models; None if unknown."""
    for path in (("model", "diffusion_model"), ("diffusion_model",), ("forge_objects", "unet", "model",
                                                                       "diffusion_model")):
        node = sd_model
        try:
            for attr in path:
                node = getattr(node, attr)
            weight = node.input_blocks[0][0].weight
            return int(weight.shape[1])
        except (AttributeError, IndexError, TypeError, KeyError):
            continue
    return None


def is_inpainting_model(sd_model: Any) -> bool | None:
    """True for an inpainting checkpoint (9-channel UNet: SD2-inpainting, SD1.5-inpainting, SDXL-inpainting),
    False for a plain one, None when it cannot be told (no model loaded yet, e.g. Forge before the first job).

    The channel count wins over ``conditioning_key``: instruct-pix2pix is also "hybrid" but has 8 channels.
    """
    if sd_model is None:
        return None
    flag = getattr(sd_model, "is_inpaint", None)  # Forge
    if isinstance(flag, bool):
        return flag
    channels = _unet_input_channels(sd_model)
    if channels is not None:
        return channels == INPAINT_UNET_CHANNELS
    key = getattr(getattr(sd_model, "model", None), "conditioning_key", None)
    if key is not None:
        return key in ("hybrid", "concat")
    return None


def checkpoint_title(sd_model: Any) -> str:
    info = getattr(sd_model, "sd_checkpoint_info", None)
    for attr in ("title", "name_for_extra", "name"):
        value = getattr(info, attr, None)
        if value:
            return str(value)
    return "the loaded checkpoint"


def inpainting_checkpoint_titles(titles: Iterable[str]) -> list[str]:
    """Installed checkpoints that look like inpainting models by name (weights are not opened for this)."""
    return sorted((t for t in titles if "inpaint" in str(t).lower()), key=str.lower)


def not_inpainting_warning(model_title: str, alternatives: Sequence[str]) -> str:
    text = (f"The loaded checkpoint ({model_title}) is not an inpainting model: SegFill will still run it, "
            "but new areas blend less well with the original.")
    if alternatives:
        text += " Installed inpainting checkpoints: " + ", ".join(alternatives) + "."
    else:
        text += " Install an inpainting checkpoint (e.g. SD2-inpainting, 512-inpainting-ema) for best results."
    return text
