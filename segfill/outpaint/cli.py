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
from segfill.presets import PRESETS

PREFILL_CHOICES = get_args(PrefillMethod)
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".bin", ".pt", ".pth")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register both ``outpaint`` and ``inpaint``."""
    out = subparsers.add_parser("outpaint", help="extend an image beyond its borders",
                                description="Extend an image: exact size, coherent tiles, invisible seams.")
    out.add_argument("--image", required=True, help="input image")
    sides = out.add_argument_group("size (per-side padding, or --aspect/--width+--height with --anchor)")
    for side in ("left", "right", "top", "bottom"):
        sides.add_argument(f"--{side}", type=int, default=0, metavar="PX", help=f"pixels to add on the {side}")
    sides.add_argument("--aspect", default=None, metavar="W:H", help="target aspect ratio, e.g. 16:9, 4:3, 9:16")
    sides.add_argument("--width", type=int, default=None, metavar="PX", help="target width (with --height)")
    sides.add_argument("--height", type=int, default=None, metavar="PX", help="target height (with --width)")
    sides.add_argument("--anchor", default="center", metavar="POS",
                       help="where the original sits: center, top, bottom, left, right, top-left, ... or 'fx,fy'")
    out.add_argument("--band", type=int, default=None, metavar="PX",
                     help="pixels of the original regenerated and blended at the seam (default 32)")
    out.add_argument("--max-step", type=int, default=None, metavar="PX",
                     help="most pixels added per side in one pass (default: tile size / 2)")
    _add_common(out, default_prefill="blur_extend")
    out.set_defaults(func=run_outpaint_command)

    inp = subparsers.add_parser("inpaint", help="repaint the masked part of an image (any size)",
                                description="Inpaint a mask on an image of any size: crops around the mask, tiled.")
    inp.add_argument("--image", required=True, help="input image")
    inp.add_argument("--mask", required=True, help="mask image of the same size (white = repaint)")
    inp.add_argument("--band", type=int, default=None, metavar="PX",
                     help="pixels beyond the mask regenerated and blended (default 8)")
    inp.add_argument("--context", type=int, default=None, metavar="PX",
                     help="pixels of surroundings kept around each masked area (default 64)")
    _add_common(inp, default_prefill="none")
    inp.set_defaults(func=run_inpaint_command)


def _add_common(parser: argparse.ArgumentParser, default_prefill: str) -> None:
    backend = parser.add_argument_group("backend")
    backend.add_argument("--backend", choices=("opencv", "diffusers"), default="opencv",
                         help="opencv: no model, instant preview (default); diffusers: a Stable Diffusion inpainting model")
    backend.add_argument("--model", default=None, metavar="PATH_OR_ID", help="diffusers model folder, file or hub id")
    backend.add_argument("--device", default=None, help="diffusers device (cuda, cpu, mps; default: best available)")
    backend.add_argument("--dtype", default=None, choices=("float16", "bfloat16", "float32"), help="diffusers dtype")
    backend.add_argument("--attention-slicing", action="store_true", help="diffusers: lower memory, slower")
    backend.add_argument("--cpu-offload", action="store_true", help="diffusers: offload idle modules to the CPU")
    backend.add_argument("--opencv-method", choices=("telea", "navier_stokes"), default="telea",
                         help="opencv backend method")
    backend.add_argument("--working-size", type=int, default=None, metavar="PX",
                         help="opencv backend: working resolution (default 512)")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--preset", default=None, choices=sorted(PRESETS), metavar="NAME",
                     help="start from a preset for a common job (" + ", ".join(sorted(PRESETS)) + "); "
                     "options given here win over its values")
    gen.add_argument("--prompt", default="", help="what to paint")
    gen.add_argument("--negative-prompt", default="", help="what to avoid")
    gen.add_argument("--seed", type=int, default=0, help="one seed for the whole job (tile seeds derive from it)")
    gen.add_argument("--steps", type=int, default=None, help="sampling steps (default 20)")
    gen.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 7.5)")
    gen.add_argument("--strength", type=float, default=None, help="denoising strength 0..1 (default 1)")
    tiles = parser.add_argument_group("tiles and seams")
    tiles.add_argument("--prefill", choices=PREFILL_CHOICES, default=None,  # None: the argument model's default
                       help=f"what the new area starts from (default {default_prefill})")
    tiles.add_argument("--tile-size", type=int, default=None, metavar="PX", help="tile side (default: the model's)")
    tiles.add_argument("--overlap", type=int, default=None, metavar="PX", help="overlap between tiles (default 64)")
    tiles.add_argument("--feather", type=int, default=None, metavar="PX", help="soft edge of the masks")
    tiles.add_argument("--blend", choices=("cosine", "gaussian"), default=None, help="tile blending window")
    tiles.add_argument("--tile-mode", choices=("continue", "independent"), default=None,
                       help="continue (default): tiles continue their neighbours' results (diffusion models); "
                       "independent: tiles repaint from the known content and are averaged (smoother OpenCV previews)")
    tiles.add_argument("--seam-fix", action="store_true", help="re-denoise the seams at low strength")
    tiles.add_argument("--color-match", action="store_true", help="match the new content's colours to the original")
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
    file = Path(path)
    if not file.is_file():
        raise InputError(f"The {what} file {path} does not exist.")
    try:
        with Image.open(file) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read the {what} {path}: {str(exc).splitlines()[0] if str(exc) else 'unknown format'}.") from None


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


def create_cli_backend(ns: argparse.Namespace):
    from segfill.backends import create_backend

    if ns.backend == "opencv":
        options: dict[str, Any] = {"method": ns.opencv_method}
        if ns.working_size:
            options["working_size"] = ns.working_size
        return create_backend("opencv", **options)
    # the loader expands ~ and tells files, folders and hub ids apart itself
    return create_backend("diffusers", model=ns.model, device=ns.device, dtype=ns.dtype,
                          attention_slicing=ns.attention_slicing, cpu_offload=ns.cpu_offload)


class _ProgressBar:
    """tqdm bar driven by the engine's ``progress(done, total, message)``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: float, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="tile", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.1f}/{total} tiles [{elapsed}<{remaining}]")
        self.bar.n = done
        self.bar.set_description(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_output(path: str) -> Path:
    out = Path(path)
    if not out.parent.exists():
        raise InputError(f"The output folder {out.parent} does not exist.")
    if out.suffix.lower() not in Image.registered_extensions():
        raise InputError(f"Cannot tell the image format of {path}; use .png (or .jpg, .webp).")
    return out


def _save(image: Image.Image, plan, ns: argparse.Namespace, out: Path) -> None:
    image.save(out)
    if ns.plan_json:
        Path(ns.plan_json).write_text(json.dumps(plan.to_dict(), indent=1))
    print(f"wrote {out} ({image.size[0]}x{image.size[1]}, {plan.total_tiles} tiles in {len(plan.passes)} pass(es))")


def _execute(ns: argparse.Namespace, run) -> int:
    bar = _ProgressBar(enabled=not ns.quiet)
    try:
        result = run(bar)
    finally:
        bar.close()
    _save(result.image, result.plan, ns, _check_output(ns.output))
    return 0


def run_outpaint_command(ns: argparse.Namespace) -> int:
    from segfill.outpaint.runner import plan_outpaint, run_outpaint

    image = load_image(ns.image)
    args = outpaint_args_from(ns)
    plan_outpaint(image.size, args, working_size=ns.working_size or 512)  # geometry errors before any loading
    _check_output(ns.output)
    check_model_argument(ns)
    backend = create_cli_backend(ns)
    return _execute(ns, lambda bar: run_outpaint(image, args, backend, progress=bar))


def run_inpaint_command(ns: argparse.Namespace) -> int:
    from segfill.outpaint.runner import mask_to_array, plan_inpaint, run_inpaint

    image = load_image(ns.image)
    mask = preset_refined_mask(ns, mask_to_array(load_image(ns.mask, "mask"), image.size))
    args = inpaint_args_from(ns)
    plan_inpaint(image.size, mask, args, working_size=ns.working_size or 512)
    _check_output(ns.output)
    check_model_argument(ns)
    backend = create_cli_backend(ns)
    return _execute(ns, lambda bar: run_inpaint(image, mask, args, backend, progress=bar))


def main(argv: list | None = None) -> int:  # pragma: no cover - convenience for `python -m segfill.outpaint.cli`
    from segfill.cli import main as segfill_main

    return segfill_main(argv)
