"""The ``diffusers`` backend: ``StableDiffusionInpaintPipeline`` (SD2-inpainting by default) outside the WebUI.

Importing this module is cheap: diffusers, transformers and torch are imported inside the functions that need
them, and a missing package raises :class:`~segfill.errors.MissingDependencyError`.

What :meth:`DiffusersBackend.from_model` accepts:

- a **single file** (``.safetensors``, ``.ckpt``) in the original Stable Diffusion layout, e.g. the WebUI's
  ``512-inpainting-ema.safetensors``. It loads **offline**: the architecture comes from a config folder that
  SegFill ships (``configs/sd2-inpainting`` or ``configs/sd1-inpainting``, chosen from the file's tensor shapes)
  or from ``config=`` (a diffusers folder or hub id). The only thing not shipped is the CLIP BPE vocabulary
  (1.5 MB); it is taken from, in order: the config folder's ``tokenizer/``, a Stable Diffusion or CLIP tokenizer
  already in the Hugging Face cache, or the ``open_clip`` package (the WebUI installs open-clip-torch, which
  ships the same vocabulary). When none is there, the error says so.
- a **diffusers folder** (with ``model_index.json``), loaded with ``local_files_only``;
- a **hub id** such as ``stabilityai/stable-diffusion-2-inpainting`` or any mirror of it (the official
  stabilityai repository was taken down; a cached copy or a mirror id both work).

Whatever the source, the UNet must take 9 input channels (4 latent + 1 mask + 4 masked-image latent); a plain
text-to-image checkpoint is refused with a sentence that says so.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segfill.backends.base import InpaintRequest, ProgressCallback
from segfill.errors import InputError, MissingDependencyError, ModelError, SegFillError

logger = logging.getLogger(__name__)

#: hub id of SD2-inpainting (no longer downloadable from its owner; a local cache or a mirror id still works).
SD2_INPAINTING_REPO_ID = "stabilityai/stable-diffusion-2-inpainting"
#: the file name of SD2-inpainting in the WebUI's models/Stable-diffusion folder.
SD2_INPAINTING_FILENAME = "512-inpainting-ema.safetensors"

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
#: shipped diffusers config folders (no weights, no vocabulary) for single-file checkpoints, by text width.
SHIPPED_CONFIG_BY_CONTEXT_DIM = {1024: "sd2-inpainting", 768: "sd1-inpainting"}
#: CLIP tokenizer settings for config folders that have none: SD2's (77 tokens, padded with "!" = token 0 like
#: OpenCLIP's tokenizer that SD2 was trained with; SD1's config pads with <|endoftext|> like OpenAI's CLIP).
DEFAULT_TOKENIZER_SETTINGS = CONFIGS_DIR / "sd2-inpainting" / "tokenizer" / "tokenizer_config.json"

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
INPAINT_UNET_IN_CHANNELS = 9
LDM_UNET_INPUT_KEY = "model.diffusion_model.input_blocks.0.0.weight"
# First cross-attention of the UNet: its key projection's input width is the text encoder's width.
LDM_UNET_CONTEXT_KEY = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"

#: (repo id, subfolder) of tokenizers that hold the CLIP BPE vocabulary, looked up in the Hugging Face cache only.
CACHED_CLIP_TOKENIZERS = [
    (SD2_INPAINTING_REPO_ID, "tokenizer"),
    ("stabilityai/stable-diffusion-2-1", "tokenizer"),
    ("stabilityai/stable-diffusion-2", "tokenizer"),
    ("stabilityai/stable-diffusion-2-base", "tokenizer"),
    ("runwayml/stable-diffusion-inpainting", "tokenizer"),
    ("stable-diffusion-v1-5/stable-diffusion-inpainting", "tokenizer"),
    ("runwayml/stable-diffusion-v1-5", "tokenizer"),
    ("openai/clip-vit-large-patch14", ""),  # the WebUI downloads this one for every SD1 model
]
OPEN_CLIP_BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
# OpenAI's SimpleTokenizer keeps this many merges of its BPE file (49408 tokens = 512 byte tokens + merges + 2).
CLIP_MERGE_COUNT = 49152 - 256 - 2

_DTYPES = {
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Exceptions that diffusers, transformers, safetensors and huggingface_hub raise for a bad or missing model.
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError)
_LOADING_LIBRARIES = ("diffusers", "huggingface_hub", "transformers", "safetensors")


def _import_pipeline_class():
    try:
        import transformers  # noqa: F401
        from diffusers import StableDiffusionInpaintPipeline
    except ImportError as error:
        raise MissingDependencyError(
            "diffusers", "The diffusers backend", "pip install diffusers transformers"
        ) from error
    return StableDiffusionInpaintPipeline


def default_device() -> str:
    """``cuda`` when available, else ``mps``, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(dtype: str | None, device: str):
    """``torch.dtype`` for a name (``float16``/``fp16``/``half``, ``float32``, ``bfloat16``); ``None`` = fp16 on CUDA."""
    import torch

    if dtype is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    name = _DTYPES.get(str(dtype).lower().replace("torch.", ""))
    if name is None:
        raise InputError(f"Unknown dtype '{dtype}': use float16, bfloat16 or float32.")
    return getattr(torch, name)


def has_accelerate() -> bool:
    return importlib.util.find_spec("accelerate") is not None


def not_inpainting_message(model: str, in_channels: int) -> str:
    return (
        f"{model} is not an inpainting model: its UNet takes {in_channels} input channels, "
        f"an inpainting UNet takes {INPAINT_UNET_IN_CHANNELS}."
    )


# --- single-file checkpoints ----------------------------------------------------------------------------------


def read_checkpoint_shapes(path: Path, keys: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Shapes of ``keys`` in a single-file checkpoint, without loading its weights (absent keys are left out).

    Read by SegFill's restricted reader (:mod:`segfill.sam.safe_load`: a ``.safetensors`` header, or a
    ``.ckpt``'s archive entries and pickle structure), never by ``torch.load``, so a TorchScript archive or a
    pickle with objects is refused before anything in it runs; ``from_single_file`` only ever sees files that
    passed. Raises :class:`ModelError` for a file that is not a readable checkpoint.
    """
    from segfill.sam.safe_load import UnsafeCheckpoint, read_shapes

    try:
        state: Any = read_shapes(path, name=str(path))
    except UnsafeCheckpoint:
        raise
    except ModelError as error:
        detail = str(error)
        detail = detail[len(str(path)):].strip() if detail.startswith(str(path)) else detail
        raise ModelError(f"{path} is not a readable checkpoint (it {detail.rstrip('.')}).") from error
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return {key: tuple(state[key].shape) for key in keys if key in state and hasattr(state[key], "shape")}


def shipped_config_for_checkpoint(path: Path) -> Path:
    """The shipped config folder matching a single-file inpainting checkpoint, from its tensor shapes.

    Raises :class:`ModelError` when the file is not a 9-channel SD1/SD2 inpainting checkpoint.
    """
    shapes = read_checkpoint_shapes(path, (LDM_UNET_INPUT_KEY, LDM_UNET_CONTEXT_KEY))
    check_checkpoint_in_channels(path, shapes)
    context_dim = shapes.get(LDM_UNET_CONTEXT_KEY, (0, 0))[-1]
    family = SHIPPED_CONFIG_BY_CONTEXT_DIM.get(context_dim)
    if family is None:
        raise ModelError(
            f"{path} is an inpainting model SegFill has no built-in config for (text width {context_dim}); "
            "pass a matching diffusers folder or hub id as its config."
        )
    return CONFIGS_DIR / family


def check_checkpoint_in_channels(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    if LDM_UNET_INPUT_KEY not in shapes:
        raise ModelError(f"{path} is not a Stable Diffusion checkpoint: it has no UNet weights ({LDM_UNET_INPUT_KEY}).")
    in_channels = shapes[LDM_UNET_INPUT_KEY][1]
    if in_channels != INPAINT_UNET_IN_CHANNELS:
        raise ModelError(not_inpainting_message(str(path), in_channels))


def _cached_tokenizer_dir() -> Path | None:
    """A folder in the Hugging Face cache holding CLIP ``vocab.json`` + ``merges.txt`` (no network access)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for repo_id, subfolder in CACHED_CLIP_TOKENIZERS:
        prefix = f"{subfolder}/" if subfolder else ""
        found = [try_to_load_from_cache(repo_id, prefix + name) for name in ("vocab.json", "merges.txt")]
        if all(isinstance(item, str) for item in found):
            vocab, merges = (Path(item) for item in found)
            if vocab.parent == merges.parent:
                return vocab.parent
    return None


def _open_clip_bpe_file() -> Path | None:
    """OpenCLIP's bundled CLIP BPE file, found without importing open_clip (which imports torch models)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / OPEN_CLIP_BPE_FILENAME
        if candidate.is_file():
            return candidate
    return None


def write_tokenizer_files_from_bpe(bpe_gz: Path, folder: Path) -> Path:
    """HF CLIP tokenizer files (vocab.json, merges.txt) from OpenAI/OpenCLIP's ``bpe_simple_vocab`` file.

    The vocabulary rule is CLIP's own: the 256 byte symbols, the same with ``</w>``, one token per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>`` — which gives exactly the 49408-token vocabulary of SD's tokenizers.
    """
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    with gzip.open(bpe_gz, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_MERGE_COUNT + 1] if line.strip()]
    tokens = list(bytes_to_unicode().values())
    tokens += [token + "</w>" for token in tokens]
    tokens += ["".join(merge) for merge in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    merge_lines = ["#version: 0.2"] + [" ".join(merge) for merge in merges]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
    return folder


def tokenizer_missing_message(model: str) -> str:
    return (
        f"Loading {model} offline needs the CLIP tokenizer vocabulary, which was not found: install open-clip-torch "
        "(pip install open-clip-torch; the WebUI already has it), or pass a diffusers folder with a tokenizer/ "
        f"subfolder as its config, or load the {SD2_INPAINTING_REPO_ID} tokenizer into the Hugging Face cache once."
    )


def load_clip_tokenizer(config_dir: Path, model: str):
    """A ``CLIPTokenizer`` with ``config_dir/tokenizer``'s settings and a vocabulary found on this machine."""
    from transformers import CLIPTokenizer

    settings_dir = config_dir / "tokenizer"
    if (settings_dir / "vocab.json").is_file() and (settings_dir / "merges.txt").is_file():
        return CLIPTokenizer.from_pretrained(str(settings_dir), local_files_only=True)
    settings_file = settings_dir / "tokenizer_config.json"
    if not settings_file.is_file():
        settings_file = DEFAULT_TOKENIZER_SETTINGS
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    init_settings = {
        key: settings[key]
        for key in ("model_max_length", "bos_token", "eos_token", "unk_token", "pad_token", "errors")
        if isinstance(settings.get(key), (str, int))
    }
    cached = _cached_tokenizer_dir()
    if cached is not None:
        return CLIPTokenizer(str(cached / "vocab.json"), str(cached / "merges.txt"), **init_settings)
    bpe = _open_clip_bpe_file()
    if bpe is None:
        raise ModelError(tokenizer_missing_message(model))
    with tempfile.TemporaryDirectory(prefix="segfill-clip-vocab-") as scratch:
        folder = write_tokenizer_files_from_bpe(bpe, Path(scratch))
        return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), **init_settings)


def _load_single_file(pipeline_class, path: Path, config: str | None, torch_dtype):
    if config is None:
        config_dir = shipped_config_for_checkpoint(path)
    else:
        check_checkpoint_in_channels(path, read_checkpoint_shapes(path, (LDM_UNET_INPUT_KEY,)))
        config_dir = Path(config).expanduser()
    extra: dict[str, Any] = {}
    if config_dir.is_dir():
        extra["tokenizer"] = load_clip_tokenizer(config_dir, str(path))
        config_source = str(config_dir)
    else:
        config_source = str(config)  # a hub id: diffusers reads its configs and tokenizer from the cache or hub
    return pipeline_class.from_single_file(
        str(path),
        config=config_source,
        local_files_only=config_dir.is_dir(),
        torch_dtype=torch_dtype,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
        **extra,
    )


# --- diffusers folders and hub ids ------------------------------------------------------------------------------


def _check_folder(folder: Path) -> None:
    if not (folder / "model_index.json").is_file():
        raise ModelError(f"{folder} is not a diffusers model folder: it has no model_index.json.")
    unet_config = folder / "unet" / "config.json"
    if unet_config.is_file():
        in_channels = json.loads(unet_config.read_text(encoding="utf-8")).get("in_channels")
        if in_channels is not None and in_channels != INPAINT_UNET_IN_CHANNELS:
            raise ModelError(not_inpainting_message(str(folder), in_channels))


def load_inpaint_pipeline(model: str, torch_dtype=None, config: str | None = None):
    """Load a ``StableDiffusionInpaintPipeline`` (CPU, no safety checker) from a file, folder or hub id.

    Raises :class:`ModelError` naming ``model`` when it is missing, unreadable or not a 9-channel inpainting model.
    """
    pipeline_class = _import_pipeline_class()
    path = Path(model).expanduser()
    is_hub_id = False
    try:
        if path.is_file():
            if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                raise ModelError(
                    f"{model} is not a model file SegFill can load: expected .safetensors or .ckpt, "
                    "or a diffusers folder."
                )
            pipeline = _load_single_file(pipeline_class, path, config, torch_dtype)
        elif path.is_dir():
            _check_folder(path)
            pipeline = pipeline_class.from_pretrained(
                str(path),
                torch_dtype=torch_dtype,
                local_files_only=True,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        elif _HUB_ID.match(model) and path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            is_hub_id = True
            pipeline = pipeline_class.from_pretrained(
                model,
                torch_dtype=torch_dtype,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        else:
            raise ModelError(f"Model not found: {model} is neither a file, a folder nor a hub id like 'owner/name'.")
    except SegFillError:
        raise
    except Exception as error:
        # diffusers' SingleFileComponentError and huggingface_hub's errors share no base class with the builtins
        from_libraries = type(error).__module__.split(".")[0] in _LOADING_LIBRARIES
        if not isinstance(error, _LOAD_ERRORS) and not from_libraries:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if is_hub_id:
            raise ModelError(
                f"{model} is no local file or folder, and loading it as a Hugging Face model id failed "
                f"(not cached here, no such id, or no connection): {reason}"
            ) from error
        raise ModelError(f"Could not load the diffusers model {model}: {reason}") from error
    in_channels = pipeline.unet.config.in_channels
    if in_channels != INPAINT_UNET_IN_CHANNELS:
        raise ModelError(not_inpainting_message(model, in_channels))
    return pipeline


# --- the backend ------------------------------------------------------------------------------------------------


def _pad_to_multiple(image: Image.Image, mask: Image.Image, multiple: int = 8) -> tuple[Image.Image, Image.Image]:
    """Pad right/bottom to a multiple of ``multiple``: the image by edge replication, the mask with "keep"."""
    width, height = image.size
    pad_x, pad_y = -width % multiple, -height % multiple
    if not pad_x and not pad_y:
        return image, mask
    pixels = np.pad(np.asarray(image), ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    mask_pixels = np.pad(np.asarray(mask), ((0, pad_y), (0, pad_x)), mode="constant", constant_values=0)
    return Image.fromarray(pixels, "RGB"), Image.fromarray(mask_pixels, "L")


class DiffusersBackend:
    """Repaints tiles with a loaded ``StableDiffusionInpaintPipeline`` (see :meth:`from_model`)."""

    name = "diffusers"
    #: a model made for one resolution: the planner cuts the canvas into tiles of working_size
    needs_tiles = True

    def __init__(self, pipeline, device: str = "cpu", model: str = "") -> None:
        self.pipeline = pipeline
        self.device = str(device)
        self.model = model
        #: native tile size: the UNet's latent sample size times the VAE's downscale factor (512 for SD2-inpainting).
        self.working_size = int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)
        self._generator_device = "cuda" if self.device.startswith("cuda") else "cpu"
        pipeline.set_progress_bar_config(disable=True)

    @classmethod
    def from_model(
        cls,
        model: str,
        device: str | None = None,
        dtype: str | None = None,
        attention_slicing: bool = False,
        cpu_offload: bool = False,
        config: str | None = None,
    ) -> DiffusersBackend:
        """Load ``model`` (single file, diffusers folder or hub id) onto ``device`` (default cuda > mps > cpu).

        ``dtype`` defaults to float16 on CUDA and float32 elsewhere. ``attention_slicing`` trades speed for memory;
        ``cpu_offload`` keeps each sub-model on the CPU until it runs (CUDA only, needs accelerate). ``config``
        (single files only) is a diffusers folder or hub id describing the file's architecture, instead of the
        config SegFill ships for SD1/SD2 inpainting.
        """
        _import_pipeline_class()
        device = str(device or default_device())
        torch_dtype = resolve_dtype(dtype, device)
        if cpu_offload and not has_accelerate():
            raise MissingDependencyError("accelerate", "CPU offload for the diffusers backend")
        pipeline = load_inpaint_pipeline(str(model), torch_dtype=torch_dtype, config=config)
        if attention_slicing:
            pipeline.enable_attention_slicing()
        if cpu_offload and device != "cpu":
            pipeline.enable_model_cpu_offload(device=device)
        else:
            if cpu_offload:
                logger.info("CPU offload ignored: the diffusers backend already runs on the CPU.")
            pipeline.to(device)
        return cls(pipeline, device=device, model=str(model))

    def inpaint(self, request: InpaintRequest, progress: ProgressCallback | None = None) -> Image.Image:
        """Repaint the white part of ``request.mask``; pixels under black mask stay exactly the input's."""
        import torch

        image = request.image.convert("RGB")
        mask = request.mask.convert("L")
        if mask.size != image.size:
            raise InputError(
                f"The mask is {mask.size[0]}×{mask.size[1]} but the image is {image.size[0]}×{image.size[1]}."
            )
        if not 0.0 <= request.strength <= 1.0:
            raise InputError(f"Denoising strength must be between 0 and 1, not {request.strength}.")
        if int(request.steps * request.strength) < 1:
            raise InputError(
                f"{request.steps} steps at strength {request.strength} leave no denoising step: raise either."
            )
        if mask.getextrema()[1] == 0:
            return image.copy()
        padded_image, padded_mask = _pad_to_multiple(image, mask)
        generator = torch.Generator(self._generator_device).manual_seed(int(request.seed))

        def on_step_end(pipeline, step: int, timestep, callback_kwargs: dict) -> dict:
            progress((step + 1) / max(int(pipeline.num_timesteps), 1))
            return callback_kwargs

        result = self.pipeline(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            image=padded_image,
            mask_image=padded_mask,
            width=padded_image.width,
            height=padded_image.height,
            strength=float(request.strength),
            num_inference_steps=int(request.steps),
            guidance_scale=float(request.guidance),
            generator=generator,
            callback_on_step_end=on_step_end if progress is not None else None,
            output_type="pil",
        ).images[0]
        result = result.convert("RGB").crop((0, 0, image.width, image.height))
        # The VAE round trip changes every pixel a little; the backend promises unmasked pixels untouched.
        return Image.composite(result, image, mask)

    def __repr__(self) -> str:
        return f"DiffusersBackend(model={self.model!r}, device={self.device!r}, working_size={self.working_size})"
