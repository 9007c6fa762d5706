"""Which checkpoint the WebUI has loaded, and whether it is an inpainting model.

Duck-typed on the model object, so it works on 1.10 (ldm: UNet input channels, ``conditioning_key``) and on
Forge (``sd_model.is_inpaint``) without importing either. Forge loads the selected checkpoint only at the next
generation, so the selected file's safetensors header is read too (:func:`read_checkpoint_facts`).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


# ---- what a checkpoint file is, from its safetensors header alone (Forge loads the selected one lazily)

#: a safetensors header larger than this is not a checkpoint header SegFill reads
MAX_HEADER_BYTES = 64 * 1024 * 1024
UNET_INPUT_KEY = "model.diffusion_model.input_blocks.0.0.weight"
#: keys only SDXL-layout checkpoints have (second text encoder, ADM label embedding)
SDXL_KEY_PREFIXES = ("conditioner.embedders.1.", "model.diffusion_model.label_emb.")


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint's header says: ``inpainting`` (9-channel UNet) and its ``native_size`` (px per side);
    None where the header cannot tell (a pickled .ckpt, an unknown layout)."""

    inpainting: bool | None = None
    native_size: int | None = None


def read_checkpoint_facts(path: str | os.PathLike | None) -> CheckpointFacts:
    """Read a ``.safetensors`` checkpoint's JSON header (never its weights, never a pickle)."""
    if not path or not str(path).lower().endswith(".safetensors"):
        return CheckpointFacts()
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 2 <= length <= MAX_HEADER_BYTES:
                return CheckpointFacts()
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error):
        return CheckpointFacts()
    if not isinstance(header, dict):
        return CheckpointFacts()
    inpainting = None
    shape = (header.get(UNET_INPUT_KEY) or {}).get("shape") if isinstance(header.get(UNET_INPUT_KEY), dict) else None
    if isinstance(shape, list) and len(shape) == 4:
        inpainting = int(shape[1]) == INPAINT_UNET_CHANNELS
    sdxl = any(key.startswith(SDXL_KEY_PREFIXES) for key in header)
    return CheckpointFacts(inpainting=inpainting, native_size=1024 if sdxl else (512 if shape else None))


def native_size(sd_model: Any, default: int = 512) -> int:
    """The side the loaded model was trained at: 1024 for SDXL/SD3, 768 for SD2 v-prediction, else 512."""
    if sd_model is None:
        return default
    if getattr(sd_model, "is_sdxl", False) is True or getattr(sd_model, "is_sd3", False) is True:
        return 1024
    if getattr(sd_model, "is_sd2", False) is True and getattr(sd_model, "parameterization", "eps") == "v":
        return 768
    return default


def generation_size(size: tuple[int, int], native: int, multiple: int = 8, minimum: int = 64) -> tuple[int, int]:
    """The width/height to render ``size`` at: the aspect ratio kept, no side above ``native``, each side
    rounded to a multiple of ``multiple`` and at least ``minimum`` (on a 512 model: 600x400 -> 512x344,
    400x600 -> 344x512, 200x100 -> 200x104; images are never scaled up)."""
    width, height = (max(1, int(v)) for v in size)
    scale = min(1.0, float(native) / max(width, height))

    def snap(value: int) -> int:
        return max(minimum, min(native, int(value * scale / multiple + 0.5) * multiple))

    return snap(width), snap(height)


# ---- one status sentence for the script panel, the tab and the jobs


@dataclass(frozen=True)
class ModelStatus:
    """The checkpoint SegFill's next job will run on, and what is known about it.

    ``loaded`` is False when that checkpoint is only selected (Forge loads it at the next generation; 1.10 while
    it starts) or nothing is loaded yet; ``inpainting`` then comes from the file's header (None: cannot tell before loading)."""

    title: str | None
    loaded: bool
    inpainting: bool | None
    alternatives: tuple[str, ...] = ()
    native_size: int = 512

    @property
    def warning(self) -> str | None:
        """The "not an inpainting model" sentence, or None when it is one or cannot be told yet."""
        if self.inpainting is not False:
            return None
        title = self.title or "the selected checkpoint"
        if not self.loaded:
            title += ", selected and not loaded yet"
        return not_inpainting_warning(title, self.alternatives)

    @property
    def sentence(self) -> str:
        """Always something to show under "Check checkpoint"."""
        if self.warning:
            return self.warning
        if self.title is None:
            return "No checkpoint is loaded yet; SegFill checks whether it is an inpainting model at the first generation."
        if self.loaded and self.inpainting:
            return f"{self.title} is an inpainting model: SegFill's inpaint and outpaint use it as it is."
        if self.loaded:
            return (f"SegFill cannot tell whether {self.title} is an inpainting model (its UNet is not one it "
                    "knows); it runs it as it is.")
        if self.inpainting:
            return (f"{self.title} is selected and not loaded yet (at the latest, the next generation loads it); "
                    "its UNet is an inpainting model's (9 input channels).")
        return (f"{self.title} is selected and not loaded yet (at the latest, the next generation loads it); "
                "whether it is an inpainting model shows once it is loaded.")


def model_status(sd_model: Any, selected: tuple[str, str | None] | None, installed: Iterable[str]) -> ModelStatus:
    """The :class:`ModelStatus` for the loaded model ``sd_model`` (None or Forge's placeholder when nothing is
    loaded) and the ``selected`` (title, file) checkpoint."""
    alternatives = tuple(inpainting_checkpoint_titles(installed))
    loaded_flag = is_inpainting_model(sd_model)
    loaded_file = getattr(getattr(sd_model, "sd_checkpoint_info", None), "filename", None)
    selected_title, selected_file = selected if selected else (None, None)
    same_file = (not selected_file or not loaded_file
                 or os.path.normcase(os.path.abspath(str(selected_file))) == os.path.normcase(os.path.abspath(str(loaded_file))))
    if loaded_flag is not None and same_file:
        return ModelStatus(checkpoint_title(sd_model), True, loaded_flag,
                           tuple(a for a in alternatives if a != checkpoint_title(sd_model)), native_size(sd_model))
    if selected_title is None:
        return ModelStatus(None, False, None, alternatives)
    facts = read_checkpoint_facts(selected_file)
    return ModelStatus(str(selected_title), False, facts.inpainting,
                       tuple(a for a in alternatives if a != selected_title), facts.native_size or 512)
