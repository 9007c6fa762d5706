"""Presets for common jobs, as data: one table used by the tab, the REST API (``preset``) and the CLI (``--preset``).

A preset is a starting point, never a lock: it fills in values, and any value the caller gives itself wins
(an API field in the request, a CLI flag, a control the user has edited in the tab). Two parts:

- ``refinement``: :class:`segfill.args.MaskRefinement` fields for the mask (``grow``, ``feather``, ``invert``...),
  applied by the tab's mask refinement and, for the API/CLI inpaint, to the mask that was sent;
- ``args``: :class:`segfill.args.InpaintArgs` / :class:`~segfill.args.OutpaintArgs` fields for the job
  (``strength``, ``steps``, ``guidance``, ``prompt``, ``negative_prompt``, ``prefill``, ``band``, ...).

Prompts are templates: text in ``[brackets]`` is for the user to replace (``a [colour] [product]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segfill.errors import InputError

INPAINT = "inpaint"
OUTPAINT = "outpaint"

#: how each field is named when a preset says what it set (the tab's labels)
FIELD_LABELS = {
    "grow": "grow", "shrink": "shrink", "feather": "feather", "invert": "invert", "fill_holes": "fill holes",
    "strength": "strength", "steps": "steps", "guidance": "CFG", "prompt": "prompt",
    "negative_prompt": "negative prompt", "prefill": "pre-fill", "band": "seam band", "context": "context",
    "color_match": "colour match", "seam_fix": "seam fix",
}


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    kinds: tuple[str, ...]  # the jobs it is meant for: "inpaint", "outpaint"
    refinement: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)

    def job_args(self, kind: str) -> dict[str, Any]:
        """The ``args`` that the job ``kind`` ("inpaint" / "outpaint") accepts (fields of its argument model)."""
        from segfill.args import InpaintArgs, OutpaintArgs

        model = InpaintArgs if kind == INPAINT else OutpaintArgs
        return {key: value for key, value in self.args.items() if key in model.__fields__}

    def summary(self, values: dict[str, Any] | None = None, kept: tuple[str, ...] = ()) -> str:
        """One line saying what the preset set (and which of the user's own values it left alone)."""
        values = {**self.refinement, **self.args} if values is None else values
        parts = []
        for key, value in values.items():
            label = FIELD_LABELS.get(key, key.replace("_", " "))
            if key in ("prompt", "negative_prompt"):
                parts.append(label)
            elif isinstance(value, bool):
                parts.append(label if value else f"no {label}")
            elif key in ("grow", "shrink", "feather", "band", "context"):
                parts.append(f"{label} {value:g} px" if isinstance(value, (int, float)) else f"{label} {value}")
            else:
                parts.append(f"{label} {value:g}" if isinstance(value, (int, float)) else f"{label} {value}")
        text = f"{self.title}: set {', '.join(parts)}." if parts else f"{self.title}: nothing to set."
        if kept:
            text += " Kept your " + ", ".join(FIELD_LABELS.get(k, k) for k in kept) + "."
        return text


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        "remove_object", "Remove an object",
        "Select the object; it is filled from its surroundings (grown a little so no outline is left).",
        (INPAINT,),
        refinement={"grow": 12, "feather": 6},
        args={"strength": 1.0, "steps": 30, "guidance": 6.0, "prefill": "telea", "band": 16, "context": 128,
              "prompt": "empty background, natural continuation of the surroundings, seamless",
              "negative_prompt": "object, person, text, watermark, frame, blurry"},
    ),
    Preset(
        "replace_background", "Replace the background",
        "Select the subject; everything else is repainted (the mask is inverted).",
        (INPAINT,),
        refinement={"invert": True, "grow": 0, "feather": 3},
        args={"strength": 1.0, "steps": 30, "guidance": 7.0, "prefill": "none", "band": 8, "context": 64,
              "prompt": "[describe the new background], natural light, high detail",
              "negative_prompt": "blurry, distorted, extra limbs, text"},
    ),
    Preset(
        "retouch_portrait", "Retouch a portrait",
        "Low strength and a soft edge: skin and details are cleaned up, the face stays the same person.",
        (INPAINT,),
        refinement={"grow": 4, "feather": 24},
        args={"strength": 0.55, "steps": 30, "guidance": 5.0, "prefill": "none", "band": 16, "context": 96,
              "prompt": "natural skin texture, soft even light, detailed portrait photo",
              "negative_prompt": "plastic skin, blurry, oversaturated, deformed"},
    ),
    Preset(
        "complete_sketch", "Complete a sketch",
        "Turns the selected rough lines into a finished drawing in the same style.",
        (INPAINT,),
        refinement={"grow": 8, "feather": 4},
        args={"strength": 0.75, "steps": 30, "guidance": 8.0, "prefill": "none", "band": 8, "context": 128,
              "prompt": "clean line art, finished illustration of [subject], consistent style",
              "negative_prompt": "messy lines, smudges, blurry, text"},
    ),
    Preset(
        "repair_damage", "Repair a scan or photo damage",
        "Paint over scratches, dust, tears and stains; they are filled from around them.",
        (INPAINT,),
        refinement={"grow": 3, "feather": 3},
        args={"strength": 0.85, "steps": 30, "guidance": 6.0, "prefill": "telea", "band": 8, "context": 64,
              "prompt": "restored photograph, clean, sharp, no scratches",
              "negative_prompt": "scratches, dust, tears, stains, noise, jpeg artifacts"},
    ),
    Preset(
        "product_colour", "Change a product's colour",
        "Select the product; its shape and shading stay, its colour follows the prompt.",
        (INPAINT,),
        refinement={"grow": 0, "feather": 2},
        args={"strength": 0.7, "steps": 30, "guidance": 7.5, "prefill": "none", "band": 4, "context": 64,
              "prompt": "a [colour] [product], studio product photo, same shape and lighting",
              "negative_prompt": "deformed, blurry, text, watermark"},
    ),
    Preset(
        "extend_landscape", "Extend a landscape",
        "Outpaint a wide scene: a wider seam band and colour matching so the horizon and light carry on.",
        (OUTPAINT,),
        args={"strength": 1.0, "steps": 30, "guidance": 6.0, "prefill": "blur_extend", "band": 48, "feather": 32,
              "color_match": True,
              "prompt": "wide landscape, [scene], natural continuation, consistent light, high detail",
              "negative_prompt": "frame, border, text, watermark, seam, blurry"},
    ),
)}


def get_preset(name: str | None) -> Preset | None:
    """The preset called ``name`` (its ``name`` or its title, any case); None for None/"" ; InputError otherwise."""
    if name is None or not str(name).strip() or str(name).strip().lower() == "none":
        return None
    key = str(name).strip()
    if key in PRESETS:
        return PRESETS[key]
    for preset in PRESETS.values():
        if key.lower() in (preset.name.lower(), preset.title.lower()):
            return preset
    raise InputError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")


def presets_for(kind: str) -> list[Preset]:
    return [p for p in PRESETS.values() if kind in p.kinds]


def apply_preset(name: str | None, kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """Job arguments: the preset's values for ``kind`` under the caller's own ``given`` values (which win)."""
    preset = get_preset(name)
    if preset is None:
        return dict(given)
    return {**preset.job_args(kind), **given}


def apply_refinement(name: str | None, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """:class:`~segfill.args.MaskRefinement` values: the preset's under the caller's own ``given`` ones."""
    preset = get_preset(name)
    base = dict(preset.refinement) if preset is not None else {}
    return {**base, **(given or {})}


__all__ = ["PRESETS", "Preset", "apply_preset", "apply_refinement", "get_preset", "presets_for"]
