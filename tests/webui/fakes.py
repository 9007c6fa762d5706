"""Small stand-ins for the WebUI's ``modules.*``, enough to import ``scripts/*.py`` and to check what the
glue puts on a ``StableDiffusionProcessingImg2Img``. They record; they do not diffuse: the fake
``process_images`` paints the masked part of each tile a flat colour, so tests can tell repainted pixels
from original ones. The real WebUI is exercised by ``tests/webui/`` against a running server.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
REPAINT_COLOUR = (255, 0, 255)


class FakeState:
    def __init__(self) -> None:
        self.job_count = 0
        self.job_no = 0
        self.interrupted = False
        self.skipped = False
        self.stopping_generation = False
        self.textinfo = ""
        self.begun: list[str] = []
        self.ended = 0

    def begin(self, job: str = "(unknown)") -> None:
        self.begun.append(job)
        self.job_count = -1
        self.job_no = 0
        self.interrupted = False

    def end(self) -> None:
        self.ended += 1
        self.job_count = 0


class FakeOpts:
    def __init__(self, **values: Any) -> None:
        self.samples_save = True
        self.samples_format = "png"
        self.outdir_img2img_samples = "outputs/img2img-images"
        self.data_labels: dict[str, Any] = {}
        self.set_calls: list[tuple] = []
        for key, value in values.items():
            setattr(self, key, value)

    def add_option(self, key: str, info: Any) -> None:
        self.data_labels[key] = info
        if not hasattr(self, key):
            setattr(self, key, info.default)

    def set(self, key: str, value: Any) -> bool:
        self.set_calls.append((key, value))
        setattr(self, key, value)
        return True


class FakeOptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                 section=None, refresh=None, **kwargs: Any) -> None:
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.section = section


class FakeImg2Img:
    """Field-compatible with ``StableDiffusionProcessingImg2Img`` for what SegFill touches."""

    def __init__(self, prompt="", negative_prompt="", seed=-1, steps=20, cfg_scale=7.0, width=512, height=512,
                 init_images=None, mask=None, denoising_strength=0.75, mask_blur=4, inpainting_fill=0,
                 inpaint_full_res=True, inpaint_full_res_padding=0, resize_mode=0, n_iter=1, batch_size=1,
                 outpath_samples=None, outpath_grids=None, do_not_save_samples=False, do_not_save_grid=False,
                 sampler_name="Euler a", **extra: Any) -> None:
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.seed = seed
        self.subseed = -1
        self.subseed_strength = 0
        self.steps = steps
        self.cfg_scale = cfg_scale
        self.width = width
        self.height = height
        self.init_images = init_images
        self.image_mask = mask  # like the real __post_init__
        self.mask = None
        self.latent_mask = None
        self.denoising_strength = denoising_strength
        self.mask_blur_x = self.mask_blur_y = mask_blur
        self.inpainting_fill = inpainting_fill
        self.inpaint_full_res = inpaint_full_res
        self.inpaint_full_res_padding = inpaint_full_res_padding
        self.inpainting_mask_invert = 0
        self.resize_mode = resize_mode
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.outpath_samples = outpath_samples
        self.outpath_grids = outpath_grids
        self.do_not_save_samples = do_not_save_samples
        self.do_not_save_grid = do_not_save_grid
        self.sampler_name = sampler_name
        self.extra_generation_params: dict[str, Any] = {}
        self.override_settings: dict[str, Any] = {}
        self.extra = extra

    @property
    def mask_blur(self):
        return self.mask_blur_x if self.mask_blur_x == self.mask_blur_y else None


class FakeProcessed:
    def __init__(self, p: Any, images_list: list[Image.Image], seed: int = -1, info: str = "", subseed=None,
                 all_prompts=None, all_negative_prompts=None, all_seeds=None, all_subseeds=None,
                 index_of_first_image=0, infotexts=None, comments="") -> None:
        self.images = images_list
        self.seed = seed
        self.info = info
        self.infotexts = infotexts or [info]
        self.comments = comments


def infotext_of(p: Any) -> str:
    extra = ", ".join(f"{k}: {v}" for k, v in p.extra_generation_params.items())
    text = (f"{p.prompt}\nSteps: {p.steps}, Sampler: {p.sampler_name}, CFG scale: {p.cfg_scale}, Seed: {p.seed}, "
            f"Size: {p.width}x{p.height}, Denoising strength: {p.denoising_strength}")
    return text + (", " + extra if extra else "")


class FakeProcessing:
    """``process_images`` that records each call's fields and repaints the masked pixels flat magenta.

    ``interrupt_after``: set ``state.interrupted`` after that many calls (what the Interrupt button does).
    ``lock``: when given, asserts it is held during every call (the queue lock)."""

    def __init__(self, state: FakeState | None = None, interrupt_after: int | None = None,
                 lock: Any = None) -> None:
        self.state = state
        self.interrupt_after = interrupt_after
        self.lock = lock
        self.calls: list[dict[str, Any]] = []

    def __call__(self, p: Any) -> FakeProcessed:
        if self.lock is not None:
            assert self.lock.locked(), "process_images ran without the queue lock"
        if self.state is not None and self.state.interrupted:
            return FakeProcessed(p, [], info="")
        image = p.init_images[0]
        mask = p.image_mask
        self.calls.append(dict(
            size=image.size, width=p.width, height=p.height, mask_size=mask.size if mask is not None else None,
            inpainting_fill=p.inpainting_fill, mask_blur=(p.mask_blur_x, p.mask_blur_y),
            inpaint_full_res=p.inpaint_full_res, padding=p.inpaint_full_res_padding, denoising_strength=p.denoising_strength, seed=p.seed,
            n_iter=p.n_iter, batch_size=p.batch_size, do_not_save_samples=p.do_not_save_samples,
            prompt=p.prompt, steps=p.steps, cfg_scale=p.cfg_scale, resize_mode=p.resize_mode,
            extra=dict(p.extra_generation_params), p=p,
        ))
        rgb = np.array(image.convert("RGB"))
        if mask is not None:
            selected = np.array(mask.convert("L")) > 127
            rgb[selected] = REPAINT_COLOUR
        out = Image.fromarray(rgb)
        if self.state is not None:
            self.state.job_no += 1
            if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
                self.state.interrupted = True
        return FakeProcessed(p, [out], seed=p.seed, info=infotext_of(p), infotexts=[infotext_of(p)])


class SavedImages:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def __call__(self, image, path, basename, seed=None, prompt=None, extension="png", info=None, p=None, **kw):
        self.saved.append(dict(image=image, path=path, seed=seed, prompt=prompt, info=info, extension=extension))
        return path, None


class FakeCheckpointInfo:
    def __init__(self, title: str) -> None:
        self.title = title


class _Weight:
    def __init__(self, channels: int) -> None:
        self.shape = (320, channels, 3, 3)


class _Conv:
    def __init__(self, channels: int) -> None:
        self.weight = _Weight(channels)


def fake_ldm_model(channels: int, conditioning_key: str = "crossattn", title: str = "model.safetensors") -> Any:
    """A 1.10-style ``shared.sd_model``: ``model.diffusion_model.input_blocks[0][0].weight``."""
    diffusion_model = types.SimpleNamespace(input_blocks=[[_Conv(channels)]])
    wrapper = types.SimpleNamespace(diffusion_model=diffusion_model, conditioning_key=conditioning_key)
    return types.SimpleNamespace(model=wrapper, sd_checkpoint_info=FakeCheckpointInfo(title))


# ---------------------------------------------------------------------------------------------------------
# a fake ``modules`` package, for importing scripts/*.py


class FakeScript:
    """``modules.scripts.Script`` as far as SegFill's script uses it."""

    infotext_fields = None
    is_txt2img = False
    is_img2img = True

    def title(self):
        raise NotImplementedError

    def elem_id(self, item_id: str) -> str:
        import re

        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_img2img_{title}_{item_id}"


class FakeModules:
    """Installs fake ``modules.*`` into ``sys.modules`` and imports the extension's scripts with them."""

    def __init__(self, tmp_path: Path, sd_model: Any = None, checkpoints: list[str] | None = None) -> None:
        self.state = FakeState()
        self.opts = FakeOpts()
        self.processing = FakeProcessing(self.state)
        self.saved = SavedImages()
        self.queue_lock = threading.Lock()
        self.sd_model = sd_model
        self.checkpoints = checkpoints or []
        self.callbacks: dict[str, list[Any]] = {"ui_settings": [], "ui_tabs": [], "app_started": [],
                                                "after_component": []}
        self.tmp_path = tmp_path
        self._saved_modules: dict[str, Any] = {}

    def install(self) -> FakeModules:
        modules = types.ModuleType("modules")
        modules.__path__ = []  # a package
        cb = types.ModuleType("modules.script_callbacks")
        cb.on_ui_settings = lambda fn: self.callbacks["ui_settings"].append(fn)
        cb.on_ui_tabs = lambda fn: self.callbacks["ui_tabs"].append(fn)
        cb.on_app_started = lambda fn: self.callbacks["app_started"].append(fn)
        cb.on_after_component = lambda fn: self.callbacks["after_component"].append(fn)
        shared = types.ModuleType("modules.shared")
        shared.opts = self.opts
        shared.state = self.state
        shared.OptionInfo = FakeOptionInfo
        processing = types.ModuleType("modules.processing")
        processing.process_images = self.processing
        processing.StableDiffusionProcessingImg2Img = FakeImg2Img
        processing.Processed = FakeProcessed
        call_queue = types.ModuleType("modules.call_queue")
        call_queue.queue_lock = self.queue_lock
        images = types.ModuleType("modules.images")
        images.save_image = self.saved
        paths = types.ModuleType("modules.paths")
        paths.models_path = str(self.tmp_path / "models")
        sd_models = types.ModuleType("modules.sd_models")
        sd_models.model_data = types.SimpleNamespace(sd_model=self.sd_model)
        sd_models.checkpoints_list = {title: object() for title in self.checkpoints}
        scripts = types.ModuleType("modules.scripts")
        scripts.Script = FakeScript
        fakes = {"modules": modules, "modules.script_callbacks": cb, "modules.shared": shared,
                 "modules.processing": processing, "modules.call_queue": call_queue, "modules.images": images,
                 "modules.paths": paths, "modules.sd_models": sd_models, "modules.scripts": scripts}
        for name, module in fakes.items():
            self._saved_modules[name] = sys.modules.get(name)
            sys.modules[name] = module
            if "." in name:
                setattr(modules, name.split(".", 1)[1], module)
        return self

    def uninstall(self) -> None:
        from segfill.hosts.webui.host import set_current_host, set_host_factory

        for name, module in self._saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        set_current_host(None)
        set_host_factory(None)

    def load_script(self, filename: str) -> types.ModuleType:
        path = REPO / "scripts" / filename
        spec = importlib.util.spec_from_file_location(f"segfill_test_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
