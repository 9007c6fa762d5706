""""Inpaint here" / "Outpaint here": controls -> argument models -> the host's backend.

A failure becomes a message on the canvas; the user's image, points and mask stay as they were.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from segfill.args import InpaintArgs, OutpaintArgs, parse_args_model
from segfill.errors import InputError
from segfill.ui import state as st
from segfill.ui.callbacks import guarded, payload_json

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host, HostProgress


def _seed(value: Any) -> int:
    seed = int(value if value is not None else -1)
    return random.randint(0, 2**31 - 1) if seed < 0 else seed


def _common(prompt: str, negative: str, seed: Any, steps: Any, cfg: Any, strength: Any) -> dict[str, Any]:
    return {"prompt": prompt or "", "negative_prompt": negative or "", "seed": _seed(seed), "steps": int(steps),
            "guidance": float(cfg), "strength": float(strength)}


def on_inpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
               strength: Any, host: Host, progress: HostProgress | None = None) -> tuple[Any, ...]:
    from PIL import Image

    from segfill.masks import mask_to_image

    result: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        mask = s.final_mask()
        if not (mask > 0).any():
            raise InputError("The mask is empty: select something to inpaint first.")
        args = parse_args_model(InpaintArgs, _common(prompt, negative, seed, steps, cfg, strength))
        generated = host.inpaint(Image.fromarray(image, "RGB"), mask_to_image(mask), args, progress=progress,
                                 provenance={"source": "tab", "selection": st.selection_provenance(s)})
        result["image"], result["info"] = generated.images[0], generated.infotext
        s.message = "Inpainting done; 'Continue with the result' edits it further."

    state, error = guarded(state, action)
    return state, payload_json(state, error), result.get("image"), result.get("info", "")


def on_outpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
                strength: Any, pad_left: Any, pad_right: Any, pad_top: Any, pad_bottom: Any, host: Host,
                progress: HostProgress | None = None) -> tuple[Any, ...]:
    from PIL import Image

    result: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        padding = {"left": int(pad_left), "right": int(pad_right), "top": int(pad_top), "bottom": int(pad_bottom)}
        if not any(v > 0 for v in padding.values()):
            raise InputError("Choose how far to outpaint: set at least one side above 0.")
        defaults = host.defaults()
        args = parse_args_model(OutpaintArgs, {**_common(prompt, negative, seed, steps, cfg, strength), **padding,
                                               "tile_size": defaults.tile_size, "overlap": defaults.overlap,
                                               "feather": defaults.feather})
        generated = host.outpaint(Image.fromarray(image, "RGB"), args, progress=progress,
                                  provenance={"source": "tab"})
        result["image"], result["info"] = generated.images[0], generated.infotext
        s.message = "Outpainting done; 'Continue with the result' edits it further."

    state, error = guarded(state, action)
    return state, payload_json(state, error), result.get("image"), result.get("info", "")
