"""What ``scripts/`` passes in: the WebUI functions and objects SegFill uses (never imported here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class WebUIBindings:
    """The WebUI functions and objects SegFill uses, passed in by ``scripts/`` (never imported here)."""

    process_images: Callable[[Any], Any]
    #: ``modules.processing.StableDiffusionProcessingImg2Img`` (called with keyword arguments)
    img2img_class: Callable[..., Any]
    state: Any  # shared.state: job_count, job_no, interrupted, skipped, begin(), end(), textinfo
    opts: Any  # shared.opts
    get_sd_model: Callable[[], Any] = lambda: None
    queue_lock: Any = None
    #: titles of installed checkpoints (``sd_models.checkpoints_list`` keys)
    list_checkpoints: Callable[[], list[str]] = lambda: []
    #: the checkpoint the user selected, as (title, file path or None); Forge loads it at the next generation,
    #: so it may differ from the loaded one
    selected_checkpoint: Callable[[], tuple[str, str | None] | None] = lambda: None
    #: switch to a checkpoint by title (1.10 and Forge: ``opts.set("sd_model_checkpoint", title)``)
    switch_checkpoint: Callable[[str], None] | None = None
    #: ``modules.images.save_image`` (image, path, basename, seed=, prompt=, extension=, info=, p=)
    save_image: Callable[..., Any] | None = None
    #: the WebUI's ``models/`` folder (SAM models are looked for in ``models/sam``)
    models_path: str = "models"
    name: str = "webui"  # "webui" or "forge"
