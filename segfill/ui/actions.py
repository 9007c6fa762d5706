""""Inpaint here" / "Outpaint here": controls -> argument models -> the host's backend.

A failure becomes a message on the canvas; the user's image, points and mask stay as they were.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from segfill.errors import InputError
from segfill.ui import state as st
from segfill.ui.callbacks import guarded, payload_json

if TYPE_CHECKING:  # pragma: no cover
    from segfill.host import Host, HostProgress

# Control name -> the argument-model field names it may be called (first existing one wins).
_ALIASES = {
    "prompt": ("prompt",),
    "negative_prompt": ("negative_prompt",),
    "seed": ("seed",),
    "steps": ("steps",),
    "cfg": ("cfg_scale", "guidance", "guidance_scale", "cfg"),
    "strength": ("denoising_strength", "strength"),
    "pad_left": ("left", "pad_left", "expand_left"),
    "pad_right": ("right", "pad_right", "expand_right"),
    "pad_top": ("top", "pad_top", "expand_top"),
    "pad_bottom": ("bottom", "pad_bottom", "expand_bottom"),
}


def _fields(model: type) -> dict[str, Any]:
    return getattr(model, "__fields__", None) or getattr(model, "model_fields", {})


def build_args(model: type, values: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """Map UI control values onto ``model``'s fields (names differ between models), validate once."""
    from segfill.args import parse_args_model

    fields = _fields(model)
    data: dict[str, Any] = {}
    for control, value in values.items():
        for name in _ALIASES.get(control, (control,)):
            if name in fields:
                data[name] = value
                break
    if extra:
        data.update({k: v for k, v in extra.items() if k in fields})
    return parse_args_model(model, data)


def _seed(value: Any) -> int:
    seed = int(value if value is not None else -1)
    return random.randint(0, 2**31 - 1) if seed < 0 else seed


def _common(prompt: str, negative: str, seed: Any, steps: Any, cfg: Any, strength: Any) -> dict[str, Any]:
    return {"prompt": prompt or "", "negative_prompt": negative or "", "seed": _seed(seed), "steps": int(steps),
            "cfg": float(cfg), "strength": float(strength)}


def on_inpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
               strength: Any, host: Host, progress: HostProgress | None = None) -> tuple[Any, ...]:
    from PIL import Image

    from segfill.args import InpaintArgs
    from segfill.masks import mask_to_image

    result: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        mask = s.final_mask()
        if not (mask > 0).any():
            raise InputError("The mask is empty: select something to inpaint first.")
        args = build_args(InpaintArgs, _common(prompt, negative, seed, steps, cfg, strength))
        generated = host.inpaint(Image.fromarray(image, "RGB"), mask_to_image(mask), args, progress=progress)
        result["image"], result["info"] = generated.images[0], generated.infotext
        s.message = "Inpainting done; 'Continue with the result' edits it further."

    state, error = guarded(state, action)
    return state, payload_json(state, error), result.get("image"), result.get("info", "")


def on_outpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
                strength: Any, pad_left: Any, pad_right: Any, pad_top: Any, pad_bottom: Any, host: Host,
                progress: HostProgress | None = None) -> tuple[Any, ...]:
    from PIL import Image

    from segfill.args import OutpaintArgs

    result: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        values = _common(prompt, negative, seed, steps, cfg, strength)
        values.update(pad_left=int(pad_left), pad_right=int(pad_right), pad_top=int(pad_top), pad_bottom=int(pad_bottom))
        if not any(int(v) > 0 for v in (pad_left, pad_right, pad_top, pad_bottom)):
            raise InputError("Choose how far to outpaint: set at least one side above 0.")
        defaults = host.defaults()
        args = build_args(OutpaintArgs, values,
                          extra={"tile_size": defaults.tile_size, "overlap": defaults.overlap, "feather": defaults.feather})
        generated = host.outpaint(Image.fromarray(image, "RGB"), args, progress=progress)
        result["image"], result["info"] = generated.images[0], generated.infotext
        s.message = "Outpainting done; 'Continue with the result' edits it further."

    state, error = guarded(state, action)
    return state, payload_json(state, error), result.get("image"), result.get("info", "")
