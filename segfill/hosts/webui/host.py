"""The :class:`~segfill.hosts.base.Host` used by the SegFill tab and the REST API inside the WebUI / Forge,
and the one instance per WebUI process shared by the tab, the REST API and the img2img script."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from PIL import Image

from segfill.defaults import EMBEDDING_CACHE_BYTES
from segfill.errors import InputError, SegFillError
from segfill.hosts.base import GenerationResult, HostDefaults, HostProgress
from segfill.hosts.webui.bindings import WebUIBindings
from segfill.hosts.webui.checkpoints import (
    ModelStatus,
    checkpoint_title,
    generation_size,
    inpainting_checkpoint_titles,
    is_inpainting_model,
    model_status,
)
from segfill.hosts.webui.infotext_patch import patch_infotext
from segfill.hosts.webui.locking import ThreadReentrantLock
from segfill.hosts.webui.tile_backend import (
    PREFILL_TO_INPAINTING_FILL,
    GenerationInterrupted,
    feather_to_mask_blur,
    outpaint_on_processing,
)
from segfill.tasks import TaskBoard


def random_seed() -> int:
    return random.randrange(4294967294)


class WebUIHost:
    """The :class:`segfill.hosts.base.Host` for the WebUI and Forge (see module doc)."""

    supports_send_to_img2img = True

    def __init__(self, bindings: WebUIBindings, *, sam: Any = None, embeddings: Any = None,
                 settings: Callable[[], dict[str, Any]] | None = None) -> None:
        self.bindings = bindings
        self.name = bindings.name
        self.lock = ThreadReentrantLock(bindings.queue_lock)
        self._settings = settings or (lambda: settings_from_opts(bindings.opts))
        self._sam = sam
        self._embeddings = embeddings
        self._sam_lock = threading.Lock()
        self._detectors: Any = None
        self.tasks = TaskBoard()  # per-user progress channels (segfill.tasks)
        #: img2img's Inpaint upload (image, mask) components when the glue captured them; the tab's
        #: "Send to img2img inpaint" fills them directly
        self.inpaint_upload_components: list | None = None
        #: every img2img component the glue captured, by the names of ``send_to_img2img.IMG2IMG_COMPONENT_IDS``
        #: (image, mask, width, height, inpaint_area)
        self.img2img_components: dict[str, Any] = {}

    # ---- shared SAM objects, built on first use so a missing optional package never hides the tab

    @property
    def sam(self) -> Any:
        with self._sam_lock:
            if self._sam is None:
                from segfill.sam.manager import SamManager

                values = self._settings()
                self._sam = SamManager(self.sam_folders(values), device=values.get("segfill_sam_device", "auto"),
                                       precision=values.get("segfill_sam_precision") or "auto",
                                       idle_unload_s=(float(values.get("segfill_sam_idle_unload_s", 300))
                                                      if values.get("segfill_sam_unload_policy") == "idle"
                                                      else None))
            return self._sam

    @property
    def embeddings(self) -> Any:
        with self._sam_lock:  # one cache per host, even when two users' first clicks arrive together
            if self._embeddings is None:
                from segfill.sam.session import EmbeddingCache

                mib = int(self._settings().get("segfill_embedding_cache_mib", EMBEDDING_CACHE_BYTES >> 20))
                self._embeddings = EmbeddingCache(mib * 1024 * 1024)
            return self._embeddings

    @property
    def detectors(self) -> Any:
        """The shared DetectorManager: ``<models>/detectors`` first, the SAM device and unload policy."""
        with self._sam_lock:
            if self._detectors is None:
                from segfill.detect.loading import default_detector_folders
                from segfill.detect.manager import DetectorManager

                values = self._settings()
                folders = [os.path.join(self.bindings.models_path, "detectors"), *default_detector_folders()]
                self._detectors = DetectorManager(folders, device=values.get("segfill_sam_device", "auto"),
                                                  idle_unload_s=(float(values.get("segfill_sam_idle_unload_s", 300))
                                                                 if values.get("segfill_sam_unload_policy") == "idle"
                                                                 else None))
            return self._detectors

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

        # tile size 0 in the settings = the model's native size (512 for SD1/SD2, 1024 for SDXL)
        return host_defaults(self._settings(), fallback_tile_size=self.model_status().native_size)

    def model_status(self) -> ModelStatus:
        """The checkpoint the next job runs on: loaded, or selected and loaded at the next generation (Forge)."""
        try:
            selected = self.bindings.selected_checkpoint()
        except Exception:  # a nicety: an odd checkpoint list never breaks the tab
            selected = None
        try:
            installed = self.bindings.list_checkpoints()
        except Exception:
            installed = []
        return model_status(self.bindings.get_sd_model(), selected, installed)

    def model_warning(self) -> str | None:
        """The "not an inpainting model" sentence, or None for an inpainting model or one not known yet."""
        return self.model_status().warning

    def generation_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """img2img width/height for an image of ``size``: its aspect ratio, no side above the model's native
        size, multiples of 8."""
        return generation_size(size, self.model_status().native_size)

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

    def send_to_inpaint_targets(self) -> list[Any]:
        """img2img's components "Send to img2img inpaint" fills, in the order of
        :meth:`send_to_inpaint_values`: image, mask, then width, height and inpaint area where captured."""
        from segfill.hosts.webui.send_to_img2img import TARGET_ORDER

        return [self.img2img_components[name] for name in self._send_targets(TARGET_ORDER)]

    def _send_targets(self, order: tuple[str, ...]) -> tuple[str, ...]:
        if not {"image", "mask"} <= set(self.img2img_components):
            return ()
        return tuple(name for name in order if name in self.img2img_components)

    def send_to_inpaint_values(self, image: Image.Image | None, mask: Image.Image | None) -> list[Any]:
        """``gr.update`` values for :meth:`send_to_inpaint_targets`: the image and mask, img2img's width/height
        at the image's aspect ratio (no side above the model's native size, multiples of 8), "Only masked" when
        the mask is small, and a mask label that says when the mask covers the whole image."""
        from segfill.hosts.webui.send_to_img2img import TARGET_ORDER, inpaint_upload_settings, inpaint_upload_updates

        settings = None
        if image is not None and mask is not None:
            settings = inpaint_upload_settings(image.size, mask, self.model_status().native_size)
        return inpaint_upload_updates(settings, image, mask, self._send_targets(TARGET_ORDER))

    def with_host_defaults(self, args: Any) -> Any:
        """``args`` with the SegFill settings' tile size, overlap and feather where the caller gave none, so
        the tab, the REST API and the img2img script agree (one default each: :mod:`segfill.defaults`, which
        the settings start from)."""
        given = set(getattr(args, "__fields_set__", set()))
        defaults = self.defaults()
        update: dict[str, Any] = {}
        if not args.tile_size:
            update["tile_size"] = defaults.tile_size
        for name in ("overlap", "feather"):
            if name not in given and getattr(args, name) != getattr(defaults, name):
                update[name] = getattr(defaults, name)
        return args.copy(update=update) if update else args

    def release_sam_before_generation(self) -> None:
        """Move SAM off the GPU when the unload policy says so (only if it was ever loaded)."""
        if self._settings().get("segfill_sam_unload_policy") != "before_generation":
            return
        for manager in (self._sam, self._detectors):  # the text detector follows SAM's policy
            if manager is not None:
                manager.offload_to_cpu()

    def _new_processing(self, image: Image.Image, mask: Image.Image | None, args: Any) -> Any:
        """A StableDiffusionProcessingImg2Img for the tab/API: with a mask it is an "only masked" inpaint
        (the crop around the mask plus ``context`` px, rendered at up to the tile size, pasted back by the
        WebUI); without one, the template the outpaint tiles are copied from."""
        if mask is not None:  # "only masked" widens the crop to this ratio, then renders it at this size
            width, height = generation_size(image.size, args.tile_size or self.model_status().native_size)
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

    def _save(self, image: Image.Image, infotext: str, seed: int, prompt: str, p: Any) -> str | None:
        return save_result(self.bindings, image, self.outdir(), infotext, seed, prompt, p)

    def _record(self, saved: str | None, mode: str, image: Image.Image, mask: Image.Image | None, args: Any,
                infotext: str, started: float, provenance: dict[str, Any] | None, info: dict) -> None:
        """The manifest line beside what the WebUI's save_image wrote (nothing when it saved nothing)."""
        if not saved:
            return
        from segfill.hosts.records import record_result

        provenance = provenance or {}
        backend = {"name": "webui", "host": self.name, "checkpoint": checkpoint_title(self.bindings.get_sd_model())}
        try:
            record_result(saved, mode, provenance.get("source", "api"), image, mask, args, backend,
                          time.perf_counter() - started, infotext, provenance.get("selection"))
            info["path"] = str(saved)
        except (SegFillError, OSError) as exc:  # the image is saved; a manifest problem must not lose it
            logging.getLogger("segfill").warning("SegFill could not write its manifest beside %s: %s", saved, exc)
            info["manifest_error"] = str(exc)

    def _begin(self, job: str) -> None:
        begin = getattr(self.bindings.state, "begin", None)
        if callable(begin):
            begin(job=job)

    def _end(self) -> None:
        end = getattr(self.bindings.state, "end", None)
        if callable(end):
            end()

    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None, provenance: dict[str, Any] | None = None) -> GenerationResult:
        started = time.perf_counter()
        if mask.size != image.size:
            raise InputError(f"The mask is {mask.size[0]}x{mask.size[1]} but the image is "
                             f"{image.size[0]}x{image.size[1]}.")
        with self.lock:
            self.release_sam_before_generation()
            self._begin("segfill-inpaint")
            try:
                p = self._new_processing(image, mask, args)
                params = {"SegFill": "inpaint"}
                params.update(job_params(args))
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
                # the WebUI wrote the render size (e.g. 512x344); the result is the image's own size
                infotext = patch_infotext(infotext, size=out.size)
                out.info["parameters"] = infotext
                saved = self._save(out, infotext, p.seed, p.prompt, p)
                if progress is not None:
                    progress(1, 1, "done")
                info = {"host": self.name, "mode": "inpaint", "seed": p.seed, "render_size": [p.width, p.height],
                        "inpaint_model": is_inpainting_model(self.bindings.get_sd_model()),
                        "warning": self.model_warning()}
                self._record(saved, "inpaint", image, mask, args, infotext, started, provenance, info)
                return GenerationResult(images=[out], infotext=infotext, info=info)
            finally:
                self._end()

    def plan_outpaint(self, image_size: tuple[int, int], args: Any) -> Any:
        """The plan :meth:`outpaint` will run (the tab draws it before running): tiles at the job's tile size,
        the settings filling what the caller left out, as every tile goes through ``process_images``."""
        from segfill.outpaint.runner import plan_outpaint

        args = self.with_host_defaults(args)
        return plan_outpaint(image_size, args, working_size=args.tile_size)

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None, provenance: dict[str, Any] | None = None) -> GenerationResult:
        started = time.perf_counter()
        args = self.with_host_defaults(args)
        with self.lock:
            self.release_sam_before_generation()
            self._begin("segfill-outpaint")
            try:
                template = self._new_processing(image, None, args)
                seed = args.seed
                params = {"SegFill": "outpaint"}
                params.update(job_params(args))
                result, backend = outpaint_on_processing(template, image.convert("RGB"), args,
                                                         process_images=self.bindings.process_images,
                                                         state=self.bindings.state, extra_params=params,
                                                         use_request_prompt=True, progress=progress)
                out = result.image.convert("RGB")
                last = next((r.infotext for r in reversed(backend.runs) if r.infotext), "")

                infotext = patch_infotext(last, seed=seed, size=out.size, params=params)
                out.info["parameters"] = infotext
                saved = self._save(out, infotext, seed, template.prompt, template)
                info = {"host": self.name, "mode": "outpaint", "seed": seed, "tiles": len(backend.runs),
                        "plan": result.plan.to_dict(),
                        "inpaint_model": is_inpainting_model(self.bindings.get_sd_model()),
                        "warning": self.model_warning()}
                self._record(saved, "outpaint", image, None, args, infotext, started, provenance, info)
                return GenerationResult(images=[out], infotext=infotext, info=info)
            finally:
                self._end()


def job_params(args: Any) -> dict[str, str]:
    """The infotext's SegFill entries: only values that differ from SegFill's defaults (``segfill.defaults``);
    a tile size of ``defaults.TILE_SIZE`` is the default too (the argument models say None = automatic)."""
    from segfill import defaults
    from segfill.infotext import label_for, segfill_params

    params = segfill_params(args)
    if getattr(args, "tile_size", None) == defaults.TILE_SIZE:
        params.pop(label_for("tile_size"), None)
    return params


def save_result(bindings: WebUIBindings, image: Image.Image, folder: str, infotext: str, seed: int, prompt: str,
                p: Any) -> str | None:
    """Save like the WebUI does (its format, its "save images" switch), with the infotext embedded; returns the
    path the WebUI wrote (its ``save_image`` returns ``(path, txt_path)``), or None when nothing was saved."""
    if bindings.save_image is None or not getattr(bindings.opts, "samples_save", True):
        return None
    with saving_overrides(bindings.opts, getattr(p, "override_settings", None)):
        saved = bindings.save_image(image, folder, "", seed=seed, prompt=prompt,
                                    extension=getattr(bindings.opts, "samples_format", "png") or "png", info=infotext,
                                    p=p)
    path = saved[0] if isinstance(saved, (tuple, list)) and saved else saved
    return str(path) if isinstance(path, (str, os.PathLike)) and os.path.isfile(path) else None


#: the settings img2img's Batch tab overrides per input (``p.override_settings``) that decide where and under
#: which name an image is saved; process_images applies them only while it runs, but SegFill saves the finished
#: outpaint after its tiles' process_images calls
SAVING_SETTINGS = ("samples_filename_pattern", "save_to_dirs", "save_images_replace_action", "samples_format")


@contextlib.contextmanager
def saving_overrides(opts: Any, overrides: dict[str, Any] | None) -> Iterator[None]:
    """Apply ``overrides``' saving settings to ``opts`` for the duration (restored after, as process_images does),
    so the Batch tab's "one output named after each input" holds for the script's own save."""
    changed: dict[str, Any] = {}
    try:
        for key in SAVING_SETTINGS:
            if overrides and key in overrides and hasattr(opts, key):
                previous = getattr(opts, key)
                try:
                    setattr(opts, key, overrides[key])
                except Exception:  # frozen or restricted settings: save as the WebUI is configured
                    continue
                changed[key] = previous
        yield
    finally:
        for key, value in changed.items():
            setattr(opts, key, value)


def settings_from_opts(opts: Any) -> dict[str, Any]:
    from segfill.settings import read_all

    return read_all(opts)


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
