"""SegFill inside the AUTOMATIC1111 WebUI (1.10.x) and Forge.

The diffusion is always the WebUI's: the engine plans canvas, masks and tiles, and every tile is one
``processing.process_images`` call on a ``StableDiffusionProcessingImg2Img`` with the user's checkpoint.
This module never imports the WebUI's ``modules``; ``scripts/`` passes what it needs through
:class:`WebUIBindings`, so everything here runs under test with small fakes.

Pieces:
- :func:`is_inpainting_model` — duck-typed check of the loaded checkpoint (1.10: UNet input channels /
  ``conditioning_key``; Forge: ``sd_model.is_inpaint``).
- :class:`ProcessingTileBackend` — an :class:`~segfill.backends.base.InpaintBackend` whose ``inpaint`` runs
  ``process_images`` on a fresh copy of a template ``p``; the engine's runner drives it tile by tile.
- :class:`WebUIHost` — the :class:`~segfill.host.Host` used by the SegFill tab and the REST API.
"""

from __future__ import annotations

import copy
import os
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from segfill.errors import InputError, SegFillError
from segfill.host import GenerationResult, HostDefaults, HostProgress

#: img2img ``inpainting_fill`` values (modules/processing.py)
FILL_FILL, FILL_ORIGINAL, FILL_LATENT_NOISE, FILL_LATENT_NOTHING = 0, 1, 2, 3

INPAINT_UNET_CHANNELS = 9

#: SegFill's pre-fill methods -> the WebUI's "masked content" for a plain (non-tiled) inpaint
PREFILL_TO_INPAINTING_FILL = {"none": FILL_ORIGINAL, "noise": FILL_LATENT_NOISE, "grey": FILL_FILL,
                              "blur_extend": FILL_FILL, "telea": FILL_FILL, "navier_stokes": FILL_FILL,
                              "edge": FILL_FILL, "reflect": FILL_FILL}


class GenerationInterrupted(SegFillError):
    """The user pressed Interrupt; nothing was finished."""


# --------------------------------------------------------------------------------------------------------
# Which checkpoint is loaded


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


# --------------------------------------------------------------------------------------------------------
# Locking


class ThreadReentrantLock:
    """Wraps the WebUI's (non-reentrant) queue lock so one thread may enter it again.

    The REST API holds the lock around ``host.inpaint``; the tab may call ``host.inpaint`` without it. Both
    go through this wrapper, so the host can always ask for the lock without deadlocking itself, while the
    WebUI's own generations (which take the raw lock) still never overlap with ours.
    """

    def __init__(self, lock: Any = None) -> None:
        self._lock = lock if lock is not None else threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> ThreadReentrantLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            if hasattr(self._lock, "acquire"):
                self._lock.acquire()
            else:
                self._lock.__enter__()
        self._local.depth = depth + 1
        return True

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth <= 0:
            raise RuntimeError("release of an unheld lock")
        self._local.depth = depth - 1
        if depth == 1:
            if hasattr(self._lock, "release"):
                self._lock.release()
            else:
                self._lock.__exit__(None, None, None)

    @property
    def held_here(self) -> bool:
        return getattr(self._local, "depth", 0) > 0


# --------------------------------------------------------------------------------------------------------
# What scripts/ passes in


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
    #: switch to a checkpoint by title (1.10 and Forge: ``opts.set("sd_model_checkpoint", title)``)
    switch_checkpoint: Callable[[str], None] | None = None
    #: ``modules.images.save_image`` (image, path, basename, seed=, prompt=, extension=, info=, p=)
    save_image: Callable[..., Any] | None = None
    #: the WebUI's ``models/`` folder (SAM models are looked for in ``models/sam``)
    models_path: str = "models"
    name: str = "webui"  # "webui" or "forge"


# --------------------------------------------------------------------------------------------------------
# One tile = one process_images call


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
        if not images:  # interrupted before the sampler produced anything: keep the tile as it was
            self.runs.append(TileRun(request.seed, request.image.size, info, True))
            if self.interrupted:
                raise GenerationInterrupted("Interrupted.")
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


# --------------------------------------------------------------------------------------------------------
# Running the engine's plan


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


def patch_infotext(infotext: str, *, seed: int | None = None, size: tuple[int, int] | None = None,
                   params: Mapping[str, Any] | None = None) -> str:
    """A tile's WebUI infotext turned into the whole job's: the job's base seed, the final size, and the
    SegFill parameters that the tile's text does not already carry (each key once)."""
    from segfill.infotext import params_to_text

    text = infotext or ""
    if seed is not None:
        text = re.sub(r"\bSeed: -?\d+", f"Seed: {int(seed)}", text)
    if size is not None:
        text = re.sub(r"\bSize: \d+x\d+", f"Size: {size[0]}x{size[1]}", text)
    last_line = text.rstrip().rsplit("\n", 1)[-1]
    missing = {k: v for k, v in (params or {}).items()
               if not re.search(r"(^|, )" + re.escape(str(k)) + r": ", last_line)}
    if missing:
        extra = params_to_text(missing)
        text = (text.rstrip() + ", " + extra) if text.strip() else extra
    return text


# --------------------------------------------------------------------------------------------------------
# The host used by the SegFill tab and the REST API


def feather_to_mask_blur(feather_px: float) -> int:
    """SegFill's feather (how far the soft edge reaches, px) as the WebUI's mask blur (a Gaussian sigma whose
    kernel reaches int(2.5 * sigma + 0.5) px)."""
    return max(0, int(round(float(feather_px) / 2.5)))



def _random_seed() -> int:
    return random.randrange(4294967294)


class WebUIHost:
    """The :class:`segfill.host.Host` for the WebUI and Forge (see module doc)."""

    supports_send_to_img2img = True

    def __init__(self, bindings: WebUIBindings, *, sam: Any = None, embeddings: Any = None,
                 settings: Callable[[], dict[str, Any]] | None = None) -> None:
        self.bindings = bindings
        self.name = bindings.name
        self.lock = ThreadReentrantLock(bindings.queue_lock)
        self._settings = settings or (lambda: _settings_from_opts(bindings.opts))
        self._sam = sam
        self._embeddings = embeddings
        self._sam_lock = threading.Lock()
        #: img2img's Inpaint upload (image, mask) components when the glue captured them; the tab's
        #: "Send to img2img inpaint" fills them directly
        self.inpaint_upload_components: list | None = None

    # ---- shared SAM objects, built on first use so a missing optional package never hides the tab

    @property
    def sam(self) -> Any:
        with self._sam_lock:
            if self._sam is None:
                from segfill.sam.manager import SamManager

                values = self._settings()
                self._sam = SamManager(self.sam_folders(values), device=values.get("segfill_sam_device", "auto"),
                                       idle_unload_s=(float(values.get("segfill_sam_idle_unload_s", 300))
                                                      if values.get("segfill_sam_unload_policy") == "idle"
                                                      else None))
            return self._sam

    @property
    def embeddings(self) -> Any:
        with self._sam_lock:  # one cache per host, even when two users' first clicks arrive together
            if self._embeddings is None:
                from segfill.sam.session import EmbeddingCache

                mib = int(self._settings().get("segfill_embedding_cache_mib", 256))
                self._embeddings = EmbeddingCache(mib * 1024 * 1024)
            return self._embeddings

    def sam_folders(self, values: dict[str, Any] | None = None) -> list[str]:
        from segfill.settings import split_folders

        values = values if values is not None else self._settings()
        folders = [os.path.join(self.bindings.models_path, "sam")]
        for folder in split_folders(values.get("segfill_sam_model_dirs", "")):
            if folder not in folders:
                folders.append(folder)
        return folders

    # ---- Host protocol

    def defaults(self) -> HostDefaults:
        from segfill.settings import host_defaults

        return host_defaults(self._settings(), fallback_tile_size=512)

    def model_warning(self) -> str | None:
        sd_model = self.bindings.get_sd_model()
        if is_inpainting_model(sd_model) is not False:
            return None  # an inpainting model, or not known yet (Forge loads lazily; jobs check again)
        return not_inpainting_warning(checkpoint_title(sd_model), self.inpainting_checkpoints())

    def inpainting_checkpoints(self) -> list[str]:
        try:
            return inpainting_checkpoint_titles(self.bindings.list_checkpoints())
        except Exception:  # listing is a nicety; never let it break the tab
            return []

    def switch_checkpoint(self, title: str) -> str:
        """Load another checkpoint by title; returns a sentence for the user."""
        if self.bindings.switch_checkpoint is None:
            raise SegFillError("Switching checkpoints is not available here; use the checkpoint dropdown at the top.")
        if title not in set(self.bindings.list_checkpoints()):
            raise InputError(f"No installed checkpoint is called '{title}'.")
        if self.lock.held_here:
            raise SegFillError("A checkpoint cannot be switched from inside a running generation.")
        # no lock here: the WebUI's own handler of the checkpoint option takes the queue lock itself
        self.bindings.switch_checkpoint(title)
        return f"Loaded {title}."

    def release_sam_before_generation(self) -> None:
        """Move SAM off the GPU when the unload policy says so (only if it was ever loaded)."""
        if self._sam is None:
            return
        if self._settings().get("segfill_sam_unload_policy") == "before_generation":
            self._sam.offload_to_cpu()

    def _new_processing(self, image: Image.Image, mask: Image.Image | None, args: Any) -> Any:
        """A StableDiffusionProcessingImg2Img for the tab/API: with a mask it is an "only masked" inpaint
        (the crop around the mask plus ``context`` px, rendered at up to the tile size, pasted back by the
        WebUI); without one, the template the outpaint tiles are copied from."""
        if mask is not None:
            tile = args.tile_size or self.defaults().tile_size
            width = min(tile, max(64, image.size[0] // 8 * 8))
            height = min(tile, max(64, image.size[1] // 8 * 8))
        else:
            width, height = image.size
        return self.bindings.img2img_class(
            prompt=args.prompt,
            negative_prompt=args.negative_prompt,
            seed=args.seed,  # InpaintArgs / OutpaintArgs: the UI and the API already resolved -1 to a seed
            steps=args.steps,
            cfg_scale=args.guidance,
            width=width,
            height=height,
            init_images=[image.convert("RGB")],
            mask=mask.convert("L") if mask is not None else None,
            denoising_strength=args.strength,
            mask_blur=feather_to_mask_blur(args.feather),
            inpainting_fill=PREFILL_TO_INPAINTING_FILL[args.prefill],
            inpaint_full_res=True,
            inpaint_full_res_padding=getattr(args, "context", 0),  # InpaintArgs only; outpaint tiles reset it
            resize_mode=0,
            n_iter=1,
            batch_size=1,
            outpath_samples=self.outdir(),
            outpath_grids=self.outdir(),
            do_not_save_samples=True,
            do_not_save_grid=True,
        )

    def outdir(self) -> str:
        values = self._settings()
        folder = str(values.get("segfill_outdir") or "").strip()
        if folder:
            return folder
        return str(getattr(self.bindings.opts, "outdir_img2img_samples", "") or
                   getattr(self.bindings.opts, "outdir_samples", "") or "outputs/img2img-images")

    def _save(self, image: Image.Image, infotext: str, seed: int, prompt: str, p: Any) -> None:
        save_result(self.bindings, image, self.outdir(), infotext, seed, prompt, p)

    def _begin(self, job: str) -> None:
        begin = getattr(self.bindings.state, "begin", None)
        if callable(begin):
            begin(job=job)

    def _end(self) -> None:
        end = getattr(self.bindings.state, "end", None)
        if callable(end):
            end()

    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None) -> GenerationResult:
        from segfill.infotext import segfill_params

        if mask.size != image.size:
            raise InputError(f"The mask is {mask.size[0]}x{mask.size[1]} but the image is "
                             f"{image.size[0]}x{image.size[1]}.")
        with self.lock:
            self.release_sam_before_generation()
            self._begin("segfill-inpaint")
            try:
                p = self._new_processing(image, mask, args)
                params = {"SegFill": "inpaint"}
                params.update(segfill_params(args))
                p.extra_generation_params.update(params)
                self.bindings.state.job_count = 1
                if progress is not None:
                    progress(0, 1, "inpainting")
                processed = self.bindings.process_images(p)
                images = [im.convert("RGB") for im in (getattr(processed, "images", None) or [])]
                if not images:
                    raise GenerationInterrupted("The generation was interrupted before an image was made.")
                out = images[0]
                if out.size != image.size:
                    out = out.resize(image.size, Image.LANCZOS)
                infotexts = list(getattr(processed, "infotexts", None) or [])
                infotext = infotexts[0] if infotexts else str(getattr(processed, "info", "") or "")
                self._save(out, infotext, p.seed, p.prompt, p)
                if progress is not None:
                    progress(1, 1, "done")
                return GenerationResult(images=[out], infotext=infotext,
                                        info={"host": self.name, "mode": "inpaint", "seed": p.seed,
                                              "inpaint_model": is_inpainting_model(self.bindings.get_sd_model()),
                                              "warning": self.model_warning()})
            finally:
                self._end()

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None) -> GenerationResult:
        from segfill.infotext import segfill_params

        with self.lock:
            self.release_sam_before_generation()
            self._begin("segfill-outpaint")
            try:
                template = self._new_processing(image, None, args)
                seed = args.seed
                params = {"SegFill": "outpaint"}
                params.update(segfill_params(args))
                result, backend = outpaint_on_processing(template, image.convert("RGB"), args,
                                                         process_images=self.bindings.process_images,
                                                         state=self.bindings.state, extra_params=params,
                                                         use_request_prompt=True, progress=progress)
                out = result.image.convert("RGB")
                last = next((r.infotext for r in reversed(backend.runs) if r.infotext), "")

                infotext = patch_infotext(last, seed=seed, size=out.size, params=params)
                out.info["parameters"] = infotext
                self._save(out, infotext, seed, template.prompt, template)
                return GenerationResult(images=[out], infotext=infotext,
                                        info={"host": self.name, "mode": "outpaint", "seed": seed,
                                              "tiles": len(backend.runs), "plan": result.plan.to_dict(),
                                              "inpaint_model": is_inpainting_model(self.bindings.get_sd_model()),
                                              "warning": self.model_warning()})
            finally:
                self._end()


def save_result(bindings: WebUIBindings, image: Image.Image, folder: str, infotext: str, seed: int, prompt: str,
                p: Any) -> None:
    """Save like the WebUI does (its format, its "save images" switch), with the infotext embedded."""
    if bindings.save_image is None or not getattr(bindings.opts, "samples_save", True):
        return
    bindings.save_image(image, folder, "", seed=seed, prompt=prompt,
                        extension=getattr(bindings.opts, "samples_format", "png") or "png", info=infotext, p=p)


def _settings_from_opts(opts: Any) -> dict[str, Any]:
    from segfill.settings import read_all

    return read_all(opts)


# --------------------------------------------------------------------------------------------------------
# The img2img "SegFill outpaint" script


SCRIPT_TITLE = "SegFill outpaint"


def decode_script_args(raw: Any) -> dict[str, Any]:
    """The script's single argument as a dict: a dict (API), a JSON string (the UI's hidden textbox), or
    nothing (defaults). Any other shape is a user error with one readable sentence."""
    import json

    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise InputError("The SegFill script argument is not valid JSON.") from None
        if not isinstance(value, dict):
            raise InputError("The SegFill script argument must be a JSON object of outpaint settings.")
        return value
    raise InputError("script_args for SegFill outpaint must be [ {\"pad_right\": 256, ...} ] (one object).")


def outpaint_args_for_processing(raw: Any, p: Any, settings: Mapping[str, Any] | None = None) -> Any:
    """Validated OutpaintArgs for an img2img job: the user's values, then the SegFill settings' defaults,
    then what ``p`` says (tile size = img2img width/height, seed = the job's seed)."""
    from segfill.args import OutpaintArgs, parse_args_model

    data = decode_script_args(raw)
    settings = settings or {}
    for key in ("overlap", "feather"):
        if key not in data and settings.get(f"segfill_{key}") is not None:
            data[key] = settings[f"segfill_{key}"]
    if not data.get("tile_size"):
        data["tile_size"] = int(settings.get("segfill_tile_size") or 0) or min(
            int(getattr(p, "width", 0) or 512), int(getattr(p, "height", 0) or 512))
    if data.get("seed") in (None, -1, ""):
        data["seed"] = int(getattr(p, "seed", -1))
    for name in ("prompt", "negative_prompt"):
        if not data.get(name) and getattr(p, name, None):
            data[name] = getattr(p, name)
    return parse_args_model(OutpaintArgs, data)


def _comment(p: Any, text: str) -> None:
    """A note shown under the result in the WebUI (``Processed`` reads ``p.comments``, not its argument)."""
    add_comment = getattr(p, "comment", None)
    if callable(add_comment) and text:
        add_comment(text)


def run_outpaint_script(p: Any, raw_args: Any, bindings: WebUIBindings,
                        make_processed: Callable[..., Any]) -> Any:
    """What ``Script.run(p, args)`` does: outpaint ``p.init_images[0]`` tile by tile through
    ``process_images`` on copies of ``p``, once per image of the batch (batch count x batch size, seeds
    ``seed``, ``seed + 1``, ...); returns ``make_processed(p, images, seeds, infotexts, comments)``."""
    if not getattr(p, "init_images", None):
        raise InputError("SegFill outpaint needs an image in img2img.")
    if getattr(p, "seed", -1) in (None, -1, "") or int(p.seed) < 0:
        p.seed = _random_seed()
    p.seed = int(p.seed)
    settings = _settings_from_opts(bindings.opts)
    args = outpaint_args_for_processing(raw_args, p, settings)
    image = p.init_images[0].convert("RGB")
    count = max(1, int(getattr(p, "n_iter", 1) or 1) * int(getattr(p, "batch_size", 1) or 1))

    comments = ""
    sd_model = bindings.get_sd_model()
    if is_inpainting_model(sd_model) is False:
        comments = not_inpainting_warning(checkpoint_title(sd_model),
                                          inpainting_checkpoint_titles(bindings.list_checkpoints()))
        print(f"SegFill: {comments}")
        _comment(p, comments)

    from segfill.infotext import segfill_params

    images: list[Image.Image] = []
    seeds: list[int] = []
    infotexts: list[str] = []
    for index in range(count):
        seed = (p.seed + index) % 4294967296
        one_args = args.copy(update={"seed": seed}) if index else args
        params = {"Script": SCRIPT_TITLE}
        params.update(segfill_params(one_args))
        p.extra_generation_params = dict(getattr(p, "extra_generation_params", None) or {})
        p.extra_generation_params.update(params)
        try:
            result, backend = outpaint_on_processing(p, image, one_args, process_images=bindings.process_images,
                                                     state=bindings.state, extra_params=params,
                                                     repeats=count, first=index == 0)
        except SegFillError as exc:
            partial = getattr(exc, "partial", None)
            if partial is None and not isinstance(exc, GenerationInterrupted):
                raise
            # Interrupt: show what was finished, like the WebUI does with an interrupted batch
            if partial is not None:
                images.append(partial.convert("RGB"))
                seeds.append(seed)
                infotexts.append("")
            _comment(p, str(exc))
            return make_processed(p, images, seeds, infotexts, "\n".join(c for c in (comments, str(exc)) if c))
        out = result.image.convert("RGB")
        last = next((r.infotext for r in reversed(backend.runs) if r.infotext), "")
        infotext = patch_infotext(last, seed=seed, size=out.size, params=params)
        out.info["parameters"] = infotext  # what the WebUI embeds in PNGs it returns or shows (PNG Info)
        if not getattr(p, "do_not_save_samples", False):
            save_result(bindings, out, getattr(p, "outpath_samples", None) or "outputs/img2img-images", infotext,
                        seed, getattr(p, "prompt", ""), p)
        images.append(out)
        seeds.append(seed)
        infotexts.append(infotext)
    return make_processed(p, images, seeds, infotexts, comments)


# --------------------------------------------------------------------------------------------------------
# One host per WebUI process, shared by the tab, the REST API and the script

_current_host: WebUIHost | None = None
_host_factory: Callable[[], WebUIHost] | None = None


def set_current_host(host: WebUIHost | None) -> None:
    global _current_host
    _current_host = host


def set_host_factory(factory: Callable[[], WebUIHost] | None) -> None:
    """``scripts/`` registers how to build the host; it is built on first use (tab, API or script)."""
    global _host_factory
    _host_factory = factory


def current_host() -> WebUIHost | None:
    global _current_host
    if _current_host is None and _host_factory is not None:
        _current_host = _host_factory()
    return _current_host


# --------------------------------------------------------------------------------------------------------
# The script's visible controls -> its one JSON argument

#: the script's controls, in display order: (OutpaintArgs field, UI value meaning "use the default")
SCRIPT_CONTROL_UNSET: dict[str, Any] = {
    "size_mode": None,  # UI only: "padding" or "aspect"
    "left": None, "right": None, "top": None, "bottom": None,
    "aspect": "", "anchor": None,
    "prefill": None, "strength": None,
    "tile_size": 0, "overlap": None, "band": None, "feather": None, "max_step": 0,
    "color_match": None, "seam_fix": None,
}


def script_args_from_controls(values: Mapping[str, Any]) -> str:
    """The JSON object the script's hidden argument holds, from the visible controls' values.

    0 for tile size / max step means "automatic" and is left out; in aspect mode the per-side padding is
    left out, in padding mode the aspect is.
    """
    import json

    data: dict[str, Any] = {}
    mode = values.get("size_mode") or "padding"
    for name, value in values.items():
        if name == "size_mode" or value is None:
            continue
        if name in SCRIPT_CONTROL_UNSET and value == SCRIPT_CONTROL_UNSET[name]:
            continue
        if mode == "aspect" and name in ("left", "right", "top", "bottom"):
            continue
        if mode != "aspect" and name == "aspect":
            continue
        if isinstance(value, float) and value.is_integer() and name not in ("strength",):
            value = int(value)
        data[name] = value
    return json.dumps(data, sort_keys=True)
