"""The img2img "SegFill outpaint" script: its one JSON argument and its ``run``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from segfill.errors import InputError, SegFillError
from segfill.hosts.webui.bindings import WebUIBindings
from segfill.hosts.webui.checkpoints import (
    checkpoint_title,
    inpainting_checkpoint_titles,
    is_inpainting_model,
    not_inpainting_warning,
)
from segfill.hosts.webui.host import random_seed, save_result, settings_from_opts
from segfill.hosts.webui.infotext_patch import patch_infotext
from segfill.hosts.webui.tile_backend import GenerationInterrupted, outpaint_on_processing

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
        p.seed = random_seed()
    p.seed = int(p.seed)
    settings = settings_from_opts(bindings.opts)
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
