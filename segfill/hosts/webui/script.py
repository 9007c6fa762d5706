"""The img2img "SegFill outpaint" script: its one JSON argument and its ``run``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from segfill.errors import InputError, SegFillError
from segfill.hosts.webui.bindings import WebUIBindings
from segfill.hosts.webui.checkpoints import model_status
from segfill.hosts.webui.host import job_params, random_seed, save_result, settings_from_opts
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
    raise InputError('script_args for SegFill outpaint must hold one JSON object, e.g. [{"right": 256}].')


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


def script_argument(p: Any, received: tuple[Any, ...], args_from: int | None, args_to: int | None) -> Any:
    """The script's one argument as the caller sent it, or None for "all defaults".

    The WebUI's API splices the request's ``script_args`` into the slot ``args_from:args_to`` of one long list
    (``p.script_args``) and ``run`` gets only that slot back, so two objects would silently lose the second and
    ``[]`` would hand ``run`` the next script's first value. The list's length, against the runner's
    ``args_to``, says how many the caller sent: more than one is an :class:`InputError`; none is repaired (a
    placeholder put back in the slot, so the always-on scripts behind it find their own values again).
    """
    full = getattr(p, "script_args", None)
    runner_scripts = getattr(getattr(p, "scripts", None), "scripts", None)
    if full is not None and runner_scripts and args_from is not None and args_to is not None:
        expected = max([1] + [int(getattr(s, "args_to", 0) or 0) for s in runner_scripts])
        sent = (args_to - args_from) + len(full) - expected
        if sent > 1:
            raise InputError(f"The script takes one argument (a JSON object of outpaint settings), not {sent}: "
                             "put every setting into one object.")
        if sent < 1:
            repaired = list(full[:args_from]) + [None] * (1 - sent) + list(full[args_from:])
            p.script_args = tuple(repaired) if isinstance(full, tuple) else repaired
            return None
    if len(received) > 1:
        raise InputError(f"The script takes one argument (a JSON object of outpaint settings), not {len(received)}.")
    return received[0] if received else None


def http_error(error: SegFillError) -> Exception:
    """``error`` as an exception the WebUI's API answers with a 4xx and its sentence, without a traceback
    (its handler prints none for ``fastapi.HTTPException``; ``status_code`` becomes the HTTP status)."""
    from fastapi.exceptions import HTTPException

    from segfill.api.routes import status_for

    class SegFillScriptError(HTTPException, InputError):
        def __str__(self) -> str:  # the WebUI puts str(e) into the reply's "errors"
            return str(self.detail)

    return SegFillScriptError(status_code=status_for(error), detail=str(error))


def run_outpaint_script(p: Any, received: tuple[Any, ...], bindings: WebUIBindings,
                        make_processed: Callable[..., Any], slot: tuple[int | None, int | None] = (None, None)) -> Any:
    """What ``Script.run(p, *received)`` does (``slot`` = the script's ``args_from``, ``args_to``; see
    :func:`script_argument`): outpaint ``p.init_images[0]`` tile by tile through
    ``process_images`` on copies of ``p``, once per image of the batch (batch count x batch size, seeds
    ``seed``, ``seed + 1``, ...); returns ``make_processed(p, images, seeds, infotexts, comments)``.

    A user's mistake (bad arguments, impossible geometry) prints one line on the console and reaches the caller
    as a sentence: from the API (``p.is_api``) a 4xx reply, in the page a note under an empty result (the img2img
    Batch tab then goes on with its next image). ``p.seed`` is left as it came (-1 stays random per image).
    """
    seed_given = getattr(p, "seed", -1)
    try:
        raw_args = script_argument(p, tuple(received), *slot)
        return _run_outpaint(p, raw_args, bindings, make_processed)
    except SegFillError as exc:
        if getattr(exc, "partial", None) is not None or isinstance(exc, GenerationInterrupted):
            raise
        print(f"SegFill outpaint: {exc}")
        if getattr(p, "is_api", False):
            raise http_error(exc) from None
        _comment(p, str(exc))
        return make_processed(p, [], [], [], str(exc))
    finally:
        p.seed = seed_given


def _run_outpaint(p: Any, raw_args: Any, bindings: WebUIBindings, make_processed: Callable[..., Any]) -> Any:
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
    try:
        status = model_status(bindings.get_sd_model(), bindings.selected_checkpoint(), bindings.list_checkpoints())
    except Exception:  # a nicety; never the reason a job fails
        status = None
    if status is not None and status.warning:
        comments = status.warning
        print(f"SegFill: {comments}")
        _comment(p, comments)

    images: list[Image.Image] = []
    seeds: list[int] = []
    infotexts: list[str] = []
    for index in range(count):
        seed = (p.seed + index) % 4294967296
        one_args = args.copy(update={"seed": seed}) if index else args
        params = {"Script": SCRIPT_TITLE}
        params.update(job_params(one_args))
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
                # the API's caller sees how far it got ("SegFill stopped" is no argument: paste-back ignores it)
                stopped = {"Seed": seed, "Size": f"{partial.size[0]}x{partial.size[1]}", **params,
                           "SegFill stopped": f"after {exc.done} of {exc.total} tiles"}
                infotexts.append(patch_infotext("", params=stopped))
            _comment(p, str(exc))
            return make_processed(p, images, seeds, infotexts, "\n".join(c for c in (comments, str(exc)) if c))
        out = result.image.convert("RGB")
        last = next((r.infotext for r in reversed(backend.runs) if r.infotext), "")
        infotext = patch_infotext(last, seed=seed, size=out.size, params=params)
        out.info["parameters"] = infotext  # what the WebUI embeds in PNGs it returns or shows (PNG Info)
        if not getattr(p, "do_not_save_samples", False):
            # the img2img Batch tab names outputs after their inputs through p.override_settings (save_result)
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


def script_infotext_fields(controls: Mapping[str, Any]) -> list[tuple[Any, Callable[[Mapping[str, Any]], Any]]]:
    """``Script.infotext_fields`` for the script's controls (``{OutpaintArgs field: component}``).

    The infotext lists only values that differ from SegFill's defaults, so pasting one of this script's
    infotexts sets every control it does not mention back to the default (a tile size of
    ``defaults.TILE_SIZE``); pasting any other infotext leaves the controls alone."""
    from segfill import defaults
    from segfill.args import OutpaintArgs
    from segfill.infotext import label_table

    table = label_table(OutpaintArgs)
    fields = OutpaintArgs.__fields__

    def default_of(name: str) -> Any:
        if name == "tile_size":
            return defaults.TILE_SIZE
        unset = SCRIPT_CONTROL_UNSET.get(name)
        return unset if unset is not None else fields[name].default

    def reader(name: str) -> Callable[[Mapping[str, Any]], Any]:
        label = table[name]

        def read(params: Mapping[str, Any]) -> Any:
            if params.get("Script") != SCRIPT_TITLE:
                return None  # not this script's infotext: leave the control as it is
            value = params.get(label)
            return default_of(name) if value is None else value

        return read

    return [(component, reader(name)) for name, component in controls.items() if name in table]
