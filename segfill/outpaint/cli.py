"""``python -m segfill outpaint`` and ``python -m segfill inpaint``.

    python -m segfill outpaint --image in.png --left 256 --right 256 --output out.png
    python -m segfill outpaint --image in.png --aspect 16:9 --anchor left --backend diffusers \\
        --model stabilityai/stable-diffusion-2-inpainting --prompt "a beach at dusk" --seed 7 --output out.png
    python -m segfill inpaint --image photo.jpg --mask mask.png --backend opencv --output out.png

Every input is checked before a model is loaded; a problem the user can fix is one line on stderr and exit
code 2 (see :mod:`segfill.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

from PIL import Image

from segfill.args import InpaintArgs, OutpaintArgs, PrefillMethod, parse_args_model
from segfill.errors import InputError, ModelError
from segfill.fileio import check_output_path
from segfill.outpaint.alpha import is_high_bit_depth
from segfill.presets import PRESETS

PREFILL_CHOICES = get_args(PrefillMethod)
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".bin", ".pt", ".pth")


#: what the OpenCV backend does not use (it fills each hole from its surroundings in one call over the canvas)
OPENCV_IGNORES = ("--prompt", "--negative-prompt", "--seed", "--steps", "--guidance", "--tile-size", "--overlap",
                  "--blend", "--tile-mode")


#: options only the named command has, which the opencv backend ignores too
OUTPAINT_OPENCV_IGNORES = ("--max-step",)
INPAINT_OPENCV_IGNORES = ("--context",)


def _default(model: type, field: str) -> Any:
    """The default of ``field`` in the argument model (one source for the CLI's help and the engine)."""
    return model.__fields__[field].default


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register both ``outpaint`` and ``inpaint``."""
    out = subparsers.add_parser("outpaint", help="extend an image beyond its borders",
                                description="Extend an image: exact size, coherent tiles, invisible seams.")
    out.add_argument("--image", required=True, help="input image")
    add_outpaint_arguments(out)
    _add_common(out, OutpaintArgs, opencv_ignores=OUTPAINT_OPENCV_IGNORES)
    out.set_defaults(func=run_outpaint_command)

    inp = subparsers.add_parser("inpaint", help="repaint the masked part of an image (any size)",
                                description="Inpaint a mask on an image of any size: crops around the mask, tiled.")
    inp.add_argument("--image", required=True, help="input image")
    inp.add_argument("--mask", required=True, help="mask image of the same size (white = repaint)")
    add_inpaint_arguments(inp)
    _add_common(inp, InpaintArgs, opencv_ignores=INPAINT_OPENCV_IGNORES)
    inp.set_defaults(func=run_inpaint_command)


def add_outpaint_arguments(out: argparse.ArgumentParser) -> None:
    """The outpaint size and seam options (``outpaint`` and ``batch outpaint``)."""
    sides = out.add_argument_group("size (per-side padding, or --aspect/--width+--height with --anchor)")
    for side in ("left", "right", "top", "bottom"):
        sides.add_argument(f"--{side}", type=int, default=0, metavar="PX", help=f"pixels to add on the {side} (default 0)")
    sides.add_argument("--aspect", default=None, metavar="W:H", help="target aspect ratio, e.g. 16:9, 4:3, 9:16")
    sides.add_argument("--width", type=int, default=None, metavar="PX", help="target width (with --height)")
    sides.add_argument("--height", type=int, default=None, metavar="PX", help="target height (with --width)")
    sides.add_argument("--anchor", default=_default(OutpaintArgs, "anchor"), metavar="POS",
                       help="where the original sits: center, top, bottom, left, right, top-left, ... or 'fx,fy' "
                       f"(default {_default(OutpaintArgs, 'anchor')})")
    out.add_argument("--band", type=int, default=None, metavar="PX",
                     help="pixels of the original regenerated and blended at the seam "
                     f"(default {_default(OutpaintArgs, 'band')})")
    out.add_argument("--max-step", type=int, default=None, metavar="PX",
                     help="most pixels added per side in one pass (default: tile size / 2; the opencv backend "
                     "fills the whole canvas in one pass)")


def add_inpaint_arguments(inp: argparse.ArgumentParser) -> None:
    """The inpaint band and context options (``inpaint`` and ``batch inpaint``)."""
    inp.add_argument("--band", type=int, default=None, metavar="PX",
                     help=f"pixels beyond the mask regenerated and blended (default {_default(InpaintArgs, 'band')})")
    inp.add_argument("--context", type=int, default=None, metavar="PX",
                     help="pixels of surroundings kept around each masked area "
                     f"(default {_default(InpaintArgs, 'context')}; the opencv backend sees the whole image)")


def _add_common(parser: argparse.ArgumentParser, model: type, opencv_ignores: tuple[str, ...],
                single: bool = True) -> None:
    backend = parser.add_argument_group(
        "backend", "opencv (the default) needs no model: it continues the colours around each hole, in one call "
        "over the whole canvas, for previews and small repairs; it ignores "
        + ", ".join(OPENCV_IGNORES + opencv_ignores) + " and the diffusers options. "
        "diffusers runs a Stable Diffusion inpainting model (SD2-inpainting) tile by tile.")
    backend.add_argument("--backend", choices=("opencv", "diffusers"), default="opencv",
                         help="opencv: no model, instant (default); diffusers: a Stable Diffusion inpainting model")
    backend.add_argument("--model", default=None, metavar="PATH_OR_ID",
                         help="diffusers: model folder, single .safetensors/.ckpt file or hub id (no default)")
    backend.add_argument("--device", default=None,
                         help="diffusers device: cuda, mps or cpu (default: the first available of these)")
    backend.add_argument("--dtype", default=None, choices=("float16", "bfloat16", "float32"),
                         help="diffusers dtype (default float16 on CUDA, float32 elsewhere)")
    backend.add_argument("--attention-slicing", action="store_true", help="diffusers: lower memory, slower")
    backend.add_argument("--cpu-offload", action="store_true",
                         help="diffusers: keep idle modules on the CPU (CUDA only)")
    backend.add_argument("--opencv-method", choices=("telea", "navier_stokes"), default="telea",
                         help="opencv backend method (default telea)")
    gen = parser.add_argument_group("generation (diffusers only, except --strength and --preset)")
    gen.add_argument("--preset", default=None, choices=sorted(PRESETS), metavar="NAME",
                     help="start from a preset for a common job (" + ", ".join(sorted(PRESETS)) + "); "
                     "options given here win over its values (default: none)")
    gen.add_argument("--prompt", default="", help="what to paint (default: empty)")
    gen.add_argument("--negative-prompt", default="", help="what to avoid (default: empty)")
    gen.add_argument("--seed", type=int, default=0, help="one seed for the whole job; tile seeds derive from it (default 0)")
    gen.add_argument("--steps", type=int, default=None, help=f"sampling steps (default {_default(model, 'steps')})")
    gen.add_argument("--guidance", type=float, default=None,
                     help=f"classifier-free guidance scale (default {_default(model, 'guidance')})")
    gen.add_argument("--strength", type=float, default=None,
                     help=f"denoising strength 0..1; opencv: how much of the fill is laid over the original "
                     f"(default {_default(model, 'strength'):g})")
    tiles = parser.add_argument_group("tiles and seams")
    default_prefill = _default(model, "prefill")
    tiles.add_argument("--prefill", choices=PREFILL_CHOICES, default=None,  # None: the model's (or preset's) default
                       help=f"what the new area starts from (default {default_prefill})")
    tiles.add_argument("--tile-size", type=int, default=None, metavar="PX",
                       help="tile side (default: the model's resolution, 512 for SD2-inpainting)")
    tiles.add_argument("--overlap", type=int, default=None, metavar="PX",
                       help=f"overlap between tiles (default {_default(model, 'overlap')})")
    tiles.add_argument("--feather", type=int, default=None, metavar="PX",
                       help=f"soft edge of the masks, at most --band (default {_default(model, 'feather')})")
    tiles.add_argument("--blend", choices=("cosine", "gaussian"), default=None,
                       help=f"window that cross-fades overlapping tiles (default {_default(model, 'blend')})")
    tiles.add_argument("--tile-mode", choices=("continue", "independent"), default=None,
                       help="continue (default): each tile continues its neighbours' results; independent: tiles "
                       "repaint from the known content only and are averaged")
    tiles.add_argument("--seam-fix", action="store_true",
                       help="re-denoise the seams at low strength afterwards")
    tiles.add_argument("--color-match", action="store_true",
                       help="match the new content's colours to the original")
    if single:
        parser.add_argument("--output", required=True, help="output image (PNG recommended)")
        parser.add_argument("--plan-json", default=None, metavar="PATH", help="also write the executed plan as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


_COMMON_FIELDS = {
    "prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "steps": "steps",
    "guidance": "guidance", "strength": "strength", "prefill": "prefill", "tile_size": "tile_size",
    "overlap": "overlap", "feather": "feather", "blend": "blend", "band": "band", "tile_mode": "tile_mode",
}


def _args_dict(ns: argparse.Namespace, extra: dict[str, str], kind: str) -> dict[str, Any]:
    from segfill.presets import apply_preset

    preset = getattr(ns, "preset", None)
    data: dict[str, Any] = {}
    for attr, field in {**_COMMON_FIELDS, **extra}.items():
        value = getattr(ns, attr, None)
        # with a preset, an option left at its parser default is not "given": the preset fills it in
        if value is not None and not (preset and attr in _PRESET_FILLS and value == _PRESET_FILLS[attr]):
            data[field] = value
    for flag in ("seam_fix", "color_match"):
        if getattr(ns, flag, False) or not preset:
            data[flag] = bool(getattr(ns, flag, False))
    return apply_preset(preset, kind, data)


#: options whose parser default is a value rather than None: with --preset, the preset's value replaces them
_PRESET_FILLS = {"prompt": "", "negative_prompt": ""}


def outpaint_args_from(ns: argparse.Namespace) -> OutpaintArgs:
    data = _args_dict(ns, {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "aspect": "aspect",
                           "width": "target_width", "height": "target_height", "anchor": "anchor",
                           "max_step": "max_step"}, "outpaint")
    return parse_args_model(OutpaintArgs, data)


def inpaint_args_from(ns: argparse.Namespace) -> InpaintArgs:
    return parse_args_model(InpaintArgs, _args_dict(ns, {"context": "context"}, "inpaint"))


def preset_refined_mask(ns: argparse.Namespace, mask: Any) -> Any:
    """The mask with ``--preset``'s mask refinement (grow, feather, invert...) applied; unchanged without one."""
    from segfill.args import MaskRefinement
    from segfill.masks import refine
    from segfill.presets import get_preset

    preset = get_preset(getattr(ns, "preset", None))
    if preset is None or not preset.refinement:
        return mask
    return refine(mask, parse_args_model(MaskRefinement, dict(preset.refinement)))


def load_image(path: str, what: str = "image") -> Image.Image:
    """The image at ``path`` as stored (mode kept, alpha included); ``info["segfill_high_bit_depth"]`` is set
    for 16-bit files (Pillow opens 16-bit RGB PNGs as 8-bit RGB, so it is only visible before loading)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"The {what} file {path} does not exist.")
    try:
        with Image.open(file) as image:
            high = is_high_bit_depth(image)
            image.load()
            loaded = image.copy()
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read the {what} {path}: {str(exc).splitlines()[0] if str(exc) else 'unknown format'}.") from None
    if high:
        loaded.info["segfill_high_bit_depth"] = True
    return loaded


def _looks_like_path(model: str) -> bool:
    return (model.startswith((".", "/", "~")) or "\\" in model or model.lower().endswith(MODEL_SUFFIXES)
            or model.count("/") > 1)


def check_model_argument(ns: argparse.Namespace) -> None:
    """Fail fast (before any loading) on a model that cannot be right."""
    if ns.backend != "diffusers":
        if ns.model:
            print(f"segfill {ns.command}: note: --model is only used by the diffusers backend", file=sys.stderr)
        return
    if not ns.model:
        raise ModelError("The diffusers backend needs --model (a local folder/file or a Hugging Face id).")
    path = Path(ns.model).expanduser()
    if _looks_like_path(ns.model) and not path.exists():
        raise ModelError(f"The model {ns.model} does not exist.")


def backend_spec(ns: argparse.Namespace) -> dict[str, Any]:
    """The backend part of a job recipe (what the manifest records and ``replay`` rebuilds)."""
    if ns.backend == "opencv":
        return {"name": "opencv", "options": {"method": ns.opencv_method}}
    model = ns.model
    if model and _looks_like_path(model):
        model = str(Path(model).expanduser().resolve())
    return {"name": "diffusers", "options": {"model": model, "device": ns.device, "dtype": ns.dtype,
                                             "attention_slicing": bool(ns.attention_slicing),
                                             "cpu_offload": bool(ns.cpu_offload)}}


def create_cli_backend(ns: argparse.Namespace):
    from segfill.backends import create_backend

    spec = backend_spec(ns)
    # the loader expands ~ and tells files, folders and hub ids apart itself
    return create_backend(spec["name"], **{k: v for k, v in spec["options"].items() if v is not None})


class _ProgressBar:
    """tqdm bar driven by the engine's ``progress(done, total, message)``: the bar moves within a tile, the
    count shows whole tiles ("2/6 tiles")."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: float, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            class TileBar(tqdm):
                @property
                def format_dict(self):  # noqa: ANN202 - tqdm's own
                    values = super().format_dict
                    values["tiles_done"] = int(values["n"])
                    return values

            self.bar = TileBar(total=total, unit="tile", file=sys.stderr, dynamic_ncols=True,
                               bar_format="{l_bar}{bar}| {tiles_done}/{total} tiles [{elapsed}<{remaining}]")
        self.bar.n = done
        self.bar.set_description(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_output(path: str) -> Path:
    """The output path, checked before any work: a folder, a missing or read-only place, an unknown format."""
    out = check_output_path(path)
    if out.suffix.lower() not in Image.registered_extensions():
        raise InputError(f"Cannot tell the image format of {path}; use .png (or .jpg, .webp).")
    return out


def _report(result: Any, ns: argparse.Namespace) -> None:
    from segfill.fileio import atomic_write_text

    if ns.plan_json:
        atomic_write_text(ns.plan_json, json.dumps(result.plan.to_dict(), indent=1))
    width, height = result.image.size
    print(f"wrote {ns.output} ({width}x{height}, {result.plan.total_tiles} tiles in {len(result.plan.passes)} pass(es))")


def _check_outputs(ns: argparse.Namespace) -> Path:
    out = _check_output(ns.output)
    if ns.plan_json:
        check_output_path(ns.plan_json)
    return out


def _run_job(ns: argparse.Namespace, job: dict[str, Any]) -> int:
    from segfill.jobs import JobModels, run_job

    bar = _ProgressBar(enabled=not ns.quiet)
    try:
        result = run_job(job, JobModels(), source="cli", progress=bar)
    finally:
        bar.close()
    for note in result.notes:
        print(f"segfill {ns.command}: note: {note}", file=sys.stderr)
    for warning in result.warnings:
        print(f"segfill {ns.command}: warning: {warning}", file=sys.stderr)
    _report(result, ns)
    return 0


def _planned_tiling(ns: argparse.Namespace) -> tuple[int, bool]:
    """(working_size, needs_tiles) the backend will have, known before a diffusion model is loaded."""
    from segfill.jobs import planned_tiling

    return planned_tiling(backend_spec(ns))


def run_outpaint_command(ns: argparse.Namespace) -> int:
    from segfill.outpaint.runner import plan_outpaint

    image = load_image(ns.image)
    args = outpaint_args_from(ns)
    plan_outpaint(image.size, args, *_planned_tiling(ns))  # geometry errors before any loading
    _check_outputs(ns)  # before any model is loaded
    check_model_argument(ns)
    return _run_job(ns, {"mode": "outpaint", "image": str(Path(ns.image).resolve()),
                         "output": str(Path(ns.output).resolve()), "args": args.dict(), "backend": backend_spec(ns)})


def run_inpaint_command(ns: argparse.Namespace) -> int:
    from segfill.outpaint.runner import mask_to_array, plan_inpaint

    image = load_image(ns.image)
    mask = preset_refined_mask(ns, mask_to_array(load_image(ns.mask, "mask"), image.size))
    args = inpaint_args_from(ns)
    plan_inpaint(image.size, mask, args, *_planned_tiling(ns))
    _check_outputs(ns)  # before any model is loaded
    check_model_argument(ns)
    return _run_job(ns, {"mode": "inpaint", "image": str(Path(ns.image).resolve()),
                         "output": str(Path(ns.output).resolve()),
                         "mask": {"file": str(Path(ns.mask).resolve())}, "args": args.dict(),
                         "backend": backend_spec(ns)})


def main(argv: list | None = None) -> int:  # pragma: no cover - convenience for `python -m segfill.outpaint.cli`
    from segfill.cli import main as segfill_main

    return segfill_main(argv)
