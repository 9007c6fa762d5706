"""One outpaint tile = one ``process_images`` call on a copy of the user's ``p``.

:class:`ProcessingTileBackend` is an :class:`~segfill.backends.base.InpaintBackend` whose ``inpaint`` runs the
WebUI's own sampler and checkpoint; :func:`outpaint_on_processing` plans once with the engine and runs that
plan through it (the WebUI's progress bar counts tiles).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from segfill.errors import SegFillError
from segfill.hosts.base import HostProgress

#: img2img ``inpainting_fill`` values (modules/processing.py)
FILL_FILL, FILL_ORIGINAL, FILL_LATENT_NOISE, FILL_LATENT_NOTHING = 0, 1, 2, 3

INPAINT_UNET_CHANNELS = 9

#: SegFill's pre-fill methods -> the WebUI's "masked content" for a plain (non-tiled) inpaint
PREFILL_TO_INPAINTING_FILL = {"none": FILL_ORIGINAL, "noise": FILL_LATENT_NOISE, "grey": FILL_FILL,
                              "blur_extend": FILL_FILL, "telea": FILL_FILL, "navier_stokes": FILL_FILL,
                              "edge": FILL_FILL, "reflect": FILL_FILL}


class GenerationInterrupted(SegFillError):
    """The user pressed Interrupt; nothing was finished."""


@dataclass
class TileRun:
    seed: int
    size: tuple[int, int]
    infotext: str
    interrupted: bool


def apply_tile_fields(p: Any, image: Image.Image, mask: Image.Image, *, seed: int, strength: float,
                      prompt: str | None = None, negative_prompt: str | None = None,
                      steps: int | None = None, cfg_scale: float | None = None) -> Any:
    """Set the img2img fields for one already-prepared tile on ``p`` (mutates and returns it).

    The engine has pre-filled the new area and feathers the seam itself, so the WebUI gets: the tile as the
    init image (``inpainting_fill`` = original), its mask un-blurred, the whole tile as the working area
    (``inpaint_full_res`` False, i.e. "Whole picture") at exactly the tile's size, one image per call.
    """
    p.init_images = [image.convert("RGB")]
    p.image_mask = mask.convert("L")
    p.mask = None
    p.latent_mask = None
    p.width, p.height = image.size
    p.resize_mode = 0
    p.inpainting_fill = FILL_ORIGINAL
    p.mask_blur_x = 0
    p.mask_blur_y = 0
    p.inpaint_full_res = False
    p.inpaint_full_res_padding = 0
    p.inpainting_mask_invert = 0
    p.denoising_strength = float(strength)
    p.seed = int(seed)
    p.subseed = int(seed)
    p.subseed_strength = 0
    p.n_iter = 1
    p.batch_size = 1
    p.do_not_save_samples = True
    p.do_not_save_grid = True
    if prompt is not None:
        p.prompt = prompt
    if negative_prompt is not None:
        p.negative_prompt = negative_prompt
    if steps is not None:
        p.steps = int(steps)
    if cfg_scale is not None:
        p.cfg_scale = float(cfg_scale)
    return p


def copy_processing(template: Any) -> Any:
    """A fresh copy of ``p`` for one tile: shallow, but with its own mutable containers."""
    p = copy.copy(template)
    p.extra_generation_params = dict(getattr(template, "extra_generation_params", None) or {})
    if hasattr(template, "override_settings"):
        p.override_settings = dict(template.override_settings or {})
    for cache in ("cached_c", "cached_uc"):
        if cache in vars(template):  # instance-level caches must not leak between tiles of different sizes
            setattr(p, cache, [None, None])
    return p


class ProcessingTileBackend:
    """An InpaintBackend that repaints each tile with the WebUI's ``process_images`` on a copy of ``template``.

    Prompt, steps and CFG come from ``template`` (the user's img2img settings) unless the engine's request
    carries them; seed, strength, image, mask and size come from the request.
    """

    name = "webui"

    def __init__(self, template: Any, process_images: Callable[[Any], Any], state: Any = None,
                 extra_params: dict[str, Any] | None = None, use_request_prompt: bool = False,
                 working_size: int | None = None) -> None:
        self.template = template
        self.process_images = process_images
        self.state = state
        self.extra_params = dict(extra_params or {})
        self.use_request_prompt = use_request_prompt
        self.working_size = int(working_size or max(getattr(template, "width", 512) or 512,
                                                      getattr(template, "height", 512) or 512))
        self.runs: list[TileRun] = []

    def inpaint(self, request: Any, progress: Callable[[float], None] | None = None) -> Image.Image:
        if self.interrupted:
            raise GenerationInterrupted("Interrupted.")
        p = copy_processing(self.template)
        apply_tile_fields(
            p, request.image, request.mask, seed=request.seed, strength=request.strength,
            prompt=request.prompt if self.use_request_prompt else None,
            negative_prompt=request.negative_prompt if self.use_request_prompt else None,
            steps=request.steps if self.use_request_prompt else None,
            cfg_scale=request.guidance if self.use_request_prompt else None,
        )
        p.extra_generation_params.update(self.extra_params)
        processed = self.process_images(p)
        images = list(getattr(processed, "images", None) or [])
        infotexts = list(getattr(processed, "infotexts", None) or [])
        info = infotexts[0] if infotexts else str(getattr(processed, "info", "") or "")
        if not images:
            # interrupted before the sampler produced anything: keep the tile as it was; the executor stops
            # before the next tile and hands back everything finished so far (raising here would lose it)
            self.runs.append(TileRun(request.seed, request.image.size, info, True))
            return request.image.convert("RGB")
        out = images[0].convert("RGB")
        if out.size != request.image.size:
            out = out.resize(request.image.size, Image.LANCZOS)
        self.runs.append(TileRun(request.seed, request.image.size, info, self.interrupted))
        if progress is not None:
            progress(1.0)
        return out

    @property
    def interrupted(self) -> bool:
        return bool(getattr(self.state, "interrupted", False) or getattr(self.state, "stopping_generation", False))


def outpaint_on_processing(template: Any, image: Image.Image, args: Any, *, process_images: Callable[[Any], Any],
                           state: Any = None, extra_params: dict[str, Any] | None = None,
                           use_request_prompt: bool = False, progress: HostProgress | None = None,
                           repeats: int = 1, first: bool = True) -> tuple[Any, ProcessingTileBackend]:
    """Plan with the engine, repaint every tile through ``process_images`` on copies of ``template``, paste
    back through the engine. Returns (the runner's result, the backend with one :class:`TileRun` per tile).

    ``state.job_count`` is set to the number of tiles times ``repeats`` (the images of a batch; the WebUI's
    progress bar counts tiles; ``first`` = the batch's first image resets the counter); Interrupt stops
    between tiles (and the sampler stops inside one); Skip ends the current tile early and goes on.
    """
    from segfill.outpaint.executor import backend_repaint, execute_plan
    from segfill.outpaint.runner import OutpaintResult, plan_outpaint

    backend = ProcessingTileBackend(template, process_images, state, extra_params, use_request_prompt,
                                    working_size=args.tile_size)
    plan = plan_outpaint(image.size, args, working_size=backend.working_size)
    if state is not None and first:  # later images of a batch have the same plan
        state.job_count = plan.total_tiles * max(1, int(repeats))
        state.job_no = 0

    def on_progress(done: float, total: int, message: str) -> None:
        if state is not None and message:
            state.textinfo = f"SegFill: {message}"
        if progress is not None:
            progress(int(done), int(total), message)

    # planned once here (job_count needs the tile count), so execute this plan rather than run_outpaint
    out = execute_plan(plan, image, backend_repaint(backend), on_progress, lambda: backend.interrupted)
    return OutpaintResult(out, plan), backend


def feather_to_mask_blur(feather_px: float) -> int:
    """SegFill's feather (how far the soft edge reaches, px) as the WebUI's mask blur (a Gaussian sigma whose
    kernel reaches int(2.5 * sigma + 0.5) px)."""
    return max(0, int(round(float(feather_px) / 2.5)))
