"""The Inpaint and Outpaint panels: presets, the outpaint frame, and the jobs -> the host's backend.

A job's result lands on the canvas (``segfill.ui.workspace``: compare, accept, discard, gallery), not in a
separate image box. A failure becomes a message on the canvas; the user's image, points and mask stay as they
were. The functions return plain values in the order the builder wires them (tests call them directly).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from segfill.args import InpaintArgs, parse_args_model
from segfill.errors import InputError
from segfill.presets import get_preset
from segfill.ui import state as st
from segfill.ui import workspace
from segfill.ui.callbacks import FREE_ASPECT, NO_CHANGE, guarded, payload_json

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host, HostProgress

#: the generation controls of each job panel, in the builder's order, and their argument-model fields
GENERATION_CONTROLS = ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength")
#: the mask refinement controls a preset may set, in the builder's order (see callbacks.REFINEMENT_FIELDS)
PRESET_REFINEMENT = ("grow", "shrink", "feather", "fill_holes", "remove_specks", "invert")
NO_PRESET = "None"


def _seed(value: Any) -> int:
    seed = int(value if value is not None else -1)
    return random.randint(0, 2**31 - 1) if seed < 0 else seed


def _common(prompt: str, negative: str, seed: Any, steps: Any, cfg: Any, strength: Any) -> dict[str, Any]:
    return {"prompt": prompt or "", "negative_prompt": negative or "", "seed": _seed(seed), "steps": int(steps),
            "guidance": float(cfg), "strength": float(strength)}


def _preset_extras(preset: str | None, kind: str) -> dict[str, Any]:
    """The preset's job fields that have no control in the panel (pre-fill, band, context, colour match...)."""
    found = get_preset(preset if preset != NO_PRESET else None)
    if found is None:
        return {}
    return {k: v for k, v in found.job_args(kind).items() if k not in GENERATION_CONTROLS}


def _done_message(result: workspace.Result, what: str, info: dict | None = None) -> str:
    """What the tab says when a result is on the canvas, then what the host warned about (e.g. OpenCV under a
    whole-image mask) and what the saved file could not keep."""
    width, height = result.size
    seed = f", seed {result.seed}" if result.seed is not None else ""
    text = (f"{what} result {result.id} ({width}×{height}{seed}): drag the divider to compare; "
            "Accept (Enter) edits it further, Discard (Esc) puts it aside.")
    extra = [str(line) for key in ("warnings", "notes") for line in (info or {}).get(key) or []]
    if (info or {}).get("save_error"):
        extra.append(f"It was not saved: {info['save_error']}")
    return " ".join([text, *extra])


def on_inpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
               strength: Any, host: Host, progress: HostProgress | None = None,
               preset: str | None = None) -> tuple[Any, ...]:
    """(state, payload, result image | None, infotext)."""
    from PIL import Image

    from segfill.masks import mask_to_image

    out: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        mask = s.final_mask()
        if not (mask > 0).any():
            raise InputError("The mask is empty: select something to inpaint first.")
        values = {**_preset_extras(preset, "inpaint"), **_common(prompt, negative, seed, steps, cfg, strength)}
        args = parse_args_model(InpaintArgs, values)
        generated = host.inpaint(Image.fromarray(image, "RGB"), mask_to_image(mask), args, progress=progress,
                                 provenance={"source": "tab", "selection": st.selection_provenance(s)})
        result = workspace.add_result(s, generated.images[0], "inpaint", generated.infotext, (0, 0), args.seed)
        _encode_ahead(s, host, result)
        out["image"], out["info"] = generated.images[0], generated.infotext
        s.message = _done_message(result, "Inpaint", generated.info)

    state, error = guarded(state, action)
    return state, payload_json(state, error), out.get("image"), out.get("info", "")


def _encode_ahead(state: st.UserState, host: Host, result: Any) -> None:
    """Start encoding a result in the background while the user compares it, so that after Accept the first
    click finds its embedding (or waits, with a bar, for the part not done yet) and editing goes on meanwhile."""
    if state.session is None:
        return  # SAM was never used on this image: do not load a model for a result nobody may click on
    try:
        st.start_encoding(state, host, result.image)
    except Exception:  # noqa: BLE001 - encoding ahead is an optimisation; the first click encodes in the open
        logging.getLogger(__name__).debug("could not encode the result ahead", exc_info=True)


def on_outpaint(state: st.UserState | None, prompt: str, negative: str, seed: Any, steps: Any, cfg: Any,
                strength: Any, pad_left: Any, pad_right: Any, pad_top: Any, pad_bottom: Any, host: Host,
                progress: HostProgress | None = None, preset: str | None = None) -> tuple[Any, ...]:
    """(state, payload, result image | None, infotext). The four paddings become the canvas frame first."""
    from PIL import Image

    out: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        frame = [pad_left, pad_right, pad_top, pad_bottom]
        workspace.set_frame(s, host, [v or 0 for v in frame])
        if not any(s.edit.frame):
            raise InputError("Choose how far to outpaint: drag the frame's edges on the canvas, pick an aspect or "
                             "zoom out, or set a side above 0.")
        values = {**_preset_extras(preset, "outpaint"), **_common(prompt, negative, seed, steps, cfg, strength)}
        args = workspace.outpaint_args(host, s.edit.frame, values)
        generated = host.outpaint(Image.fromarray(image, "RGB"), args, progress=progress,
                                  provenance={"source": "tab"})
        left, _, top, _ = s.edit.frame
        result = workspace.add_result(s, generated.images[0], "outpaint", generated.infotext, (left, top), args.seed)
        _encode_ahead(s, host, result)
        out["image"], out["info"] = generated.images[0], generated.infotext
        s.message = _done_message(result, "Outpaint", generated.info)

    state, error = guarded(state, action)
    return state, payload_json(state, error), out.get("image"), out.get("info", "")


# -- presets ------------------------------------------------------------------------------------------------


def on_preset(state: st.UserState | None, name: str | None, kind: str, takes_prompts: bool = True,
              host: Host | None = None) -> tuple[Any, ...]:
    """A preset chosen in the Inpaint or Outpaint panel: (state, payload, summary, *refinement updates,
    *generation updates) — updates in PRESET_REFINEMENT then GENERATION_CONTROLS order, NO_CHANGE where the
    preset sets nothing or the user already set the control by hand (it stays theirs)."""
    summary: dict[str, str] = {"text": ""}
    updates: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        preset = get_preset(name if name != NO_PRESET else None)
        s.presets[kind] = preset.name if preset is not None else ""
        if kind == "outpaint" and host is not None:
            workspace.plan_frame(s, host)  # band, feather... of the preset change the tile plan
        if preset is None:
            summary["text"] = ""
            return
        kept: list[str] = []
        applied: dict[str, Any] = {}
        refinement: dict[str, Any] = {}
        if kind == "inpaint":
            for key, value in preset.refinement.items():
                if f"mask.{key}" in s.user_edited:
                    kept.append(key)
                else:
                    refinement[key] = applied[key] = value
        for key, value in preset.job_args(kind).items():
            if key not in GENERATION_CONTROLS:
                applied[key] = value  # pre-fill, band...: no control, used by the job itself
            elif key in ("prompt", "negative_prompt", "steps", "guidance", "strength") and not takes_prompts:
                continue  # hidden controls for this backend: nothing to say about them
            elif f"{kind}.{key}" in s.user_edited:
                kept.append(key)
            else:
                updates[key] = applied[key] = value
        if refinement:
            st.set_controls(s, coalesce=False, **refinement)
            updates.update({f"mask.{k}": v for k, v in refinement.items()})
        summary["text"] = preset.summary(applied, tuple(kept))
        s.message = summary["text"]

    state, error = guarded(state, action)
    refinement_updates = [updates.get(f"mask.{k}", NO_CHANGE) for k in PRESET_REFINEMENT]
    generation_updates = [updates.get(k, NO_CHANGE) for k in GENERATION_CONTROLS]
    return (state, payload_json(state, error), summary["text"], *refinement_updates, *generation_updates)


def preset_choices(kind: str) -> list[str]:
    from segfill.presets import presets_for

    return [NO_PRESET] + [p.title for p in presets_for(kind)]


# -- the outpaint frame -------------------------------------------------------------------------------------


def _frame_outputs(state: st.UserState, error: str | None, aspect: Any = NO_CHANGE) -> tuple[Any, ...]:
    return (state, payload_json(state, error), *state.edit.frame, aspect)


def on_frame_numbers(state: st.UserState | None, left: Any, right: Any, top: Any, bottom: Any,
                     host: Host) -> tuple[Any, ...]:
    """The panel's four paddings typed by the user: (state, payload, left, right, top, bottom, aspect)."""
    changed = {"value": False}

    def action(s: st.UserState) -> None:
        s.require_image()
        changed["value"] = workspace.set_frame(s, host, [left or 0, right or 0, top or 0, bottom or 0],
                                               coalesce="frame_numbers")

    state, error = guarded(state, action)
    return _frame_outputs(state, error, FREE_ASPECT if changed["value"] else NO_CHANGE)


def on_frame_shape(state: st.UserState | None, aspect: str | None, anchor: str | None, host: Host,
                   zoom: float | None = None) -> tuple[Any, ...]:
    """An aspect preset, an anchor or a zoom-out factor: the frame that gives it
    (state, payload, left, right, top, bottom, aspect)."""
    shown_aspect: dict[str, Any] = {"value": NO_CHANGE}

    def action(s: st.UserState) -> None:
        s.require_image()
        wanted = None if (not aspect or aspect == FREE_ASPECT or zoom is not None) else aspect
        frame = workspace.frame_for(s.size, s.edit.frame, aspect=wanted, anchor=anchor or "center", zoom=zoom)
        workspace.set_frame(s, host, frame)
        if zoom is not None:
            shown_aspect["value"] = FREE_ASPECT
        elif wanted and not any(frame):
            s.message = f"The image already has the aspect ratio {wanted}; there is nothing to add."

    state, error = guarded(state, action)
    return _frame_outputs(state, error, shown_aspect["value"])


def on_frame_clear(state: st.UserState | None, host: Host) -> tuple[Any, ...]:
    def action(s: st.UserState) -> None:
        s.require_image()
        workspace.set_frame(s, host, (0, 0, 0, 0))
        s.message = "Frame cleared: nothing to outpaint."

    state, error = guarded(state, action)
    return _frame_outputs(state, error, FREE_ASPECT)
