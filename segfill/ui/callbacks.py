"""The tab's callbacks as plain functions: state and values in, state and outputs out.

The builder binds them to components; tests call them directly. Each returns the user's state, the canvas
payload (JSON text for the hidden ``segfill_render`` box) and whatever else the event updates. A
:class:`~segfill.errors.SegFillError` never escapes: it becomes a readable message in the payload and the
user's image, points and mask stay as they were.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from segfill.errors import Cancelled, SegFillError
from segfill.ui import state as st
from segfill.ui.render import build_payload

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host

log = logging.getLogger("segfill.ui")

#: the mask-refinement controls, in the order the builder wires them
REFINEMENT_FIELDS = ("grow", "shrink", "feather", "fill_holes", "remove_specks", "invert")
OP_LABELS = {"add": "Add", "subtract": "Subtract", "intersect": "Intersect", "replace": "Replace"}
NO_CHANGE = object()  # the builder turns it into gr.update()


def payload_json(state: st.UserState, error: str | None = None, force_image: bool = False, host: Host | None = None) -> str:
    """The canvas payload as JSON; with ``host`` it lists the detectors "Select by text" offers."""
    return json.dumps(build_payload(state, error=error, force_image=force_image, host=host), separators=(",", ":"))


def _bug_message(exc: BaseException) -> str:
    log.error("SegFill UI error:\n%s", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return f"Something went wrong ({type(exc).__name__}: {exc}). Your image and mask are kept; details are in the console."


def guarded(state: st.UserState | None, action: Callable[[st.UserState], None]) -> tuple[st.UserState, str | None]:
    """Run ``action(state)`` under the state's lock; user errors and bugs become a message, never a lost state."""
    state = state or st.UserState()
    with state.lock:
        state.message = ""
        state.timings = {}
        try:
            action(state)
        except Cancelled as exc:  # the user's own Cancel: a message, not an error; nothing was changed
            state.message = st.cancelled_message(exc)
            return state, None
        except SegFillError as exc:
            return state, str(exc)
        except Exception as exc:  # a bug must not lose the user's work: report it, keep the state
            return state, _bug_message(exc)
    return state, None


#: the outpaint frame's controls after the refinement ones: four paddings and the aspect preset
FRAME_FIELDS = ("left", "right", "top", "bottom")
FREE_ASPECT = "Free"


def control_values(state: st.UserState) -> dict[str, Any]:
    edit = state.edit
    values = {name: getattr(edit.refinement, name) for name in REFINEMENT_FIELDS}
    values["op"] = OP_LABELS.get(edit.op, edit.op.title())
    values.update(zip(FRAME_FIELDS, edit.frame, strict=True))
    return values


def control_updates(before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    """For ``op``, each refinement field, each frame side and the aspect preset: the new value where undo/redo
    or a frame drag changed it, else NO_CHANGE (a frame changed on the canvas has no preset aspect)."""
    names = ("op",) + REFINEMENT_FIELDS + FRAME_FIELDS
    updates = [after[name] if before.get(name) != after[name] else NO_CHANGE for name in names]
    frame_changed = any(before.get(name) != after[name] for name in FRAME_FIELDS)
    return updates + [FREE_ASPECT if frame_changed else NO_CHANGE]


def on_events(state: st.UserState | None, events: Any, host: Host, progress: Any = None) -> tuple[Any, ...]:
    """Canvas events (JSON list) -> (state, payload, op, *refinement controls). ``progress``: a ``gr.Progress``
    (shows a text detector's first-use download)."""
    started = time.perf_counter()
    state = state or st.UserState()
    state.timings = {}
    before = control_values(state)
    try:
        state, error = st.handle_events(state, events, host, progress)
    except Exception as exc:  # a bug must not lose the user's work
        error = _bug_message(exc)
    try:
        state.timings["events_ms"] = (time.perf_counter() - started) * 1000
        payload = build_payload(state, error=error, host=host)
        payload["timings"]["server_ms"] = round((time.perf_counter() - started) * 1000, 2)
        text = json.dumps(payload, separators=(",", ":"))
    except Exception as exc:  # pragma: no cover - a rendering bug
        text = json.dumps({"rev": state.revision, "error": _bug_message(exc)})
    return (state, text, *control_updates(before, control_values(state)))


READY_MESSAGE = "Image {w}×{h} ready: left-click to select, right-click to exclude, drag for a box."
EMBEDDING_BUSY = "Computing SAM's embedding of the image… zoom and pan meanwhile; selecting works when it is done."


def has_models(host: Host) -> bool:
    try:
        return bool(st.model_names(host))
    except Exception:  # a broken models folder: let the SAM call say what is wrong
        return True


def no_model_notice(host: Host) -> str:
    return "" if has_models(host) else st.NO_MODEL_MESSAGE


def on_image(state: st.UserState | None, image: Any, model_name: str | None, host: Host) -> tuple[Any, ...]:
    """A new image (PIL / array, None to clear), embedded right away (tests and Python callers)."""

    def action(s: st.UserState) -> None:
        if image is None:
            st.clear_image(s)
        else:
            st.set_image(s, image, host, model_name or None)
            s.message = READY_MESSAGE.format(w=s.size[0], h=s.size[1])

    state, error = guarded(state, action)
    return state, payload_json(state, error, force_image=True, host=host)


def on_file(state: st.UserState | None, file: Any, host: Host) -> tuple[Any, ...]:
    """A file dropped on / opened in the canvas: read it (SegFill's own messages) and show it at once; the SAM
    embedding follows in :func:`on_embed`, with a busy note on the canvas meanwhile."""
    from segfill.ui.files import read_image_file, upload_path_and_name

    def action(s: st.UserState) -> None:
        found = upload_path_and_name(file)
        if found is None:
            return
        path, name = found
        name = os.path.basename(name) or "the image"
        image = read_image_file(path, name)
        st.set_image(s, image, host, embed=False)
        s.notice = no_model_notice(host)
        s.busy = EMBEDDING_BUSY if not s.notice else ""
        s.message = f"Opened {name} ({s.size[0]}×{s.size[1]})."

    state, error = guarded(state, action)
    if error:
        state.busy = ""
    return state, payload_json(state, error, force_image=error is None, host=host)


def on_embed(state: st.UserState | None, model_name: str | None, host: Host) -> tuple[Any, ...]:
    """Second step of opening an image: SAM's embedding (free when cached), then the canvas is ready. With
    nothing to do (the file was refused, no model) the payload is NO_CHANGE: the message on the canvas stays."""
    if state is None or state.image is None or not state.busy:
        return state, NO_CHANGE

    def action(s: st.UserState) -> None:
        try:
            st.ensure_session(s, host, model_name or None)
            s.message = READY_MESSAGE.format(w=s.size[0], h=s.size[1])
        finally:
            s.busy = ""

    state, error = guarded(state, action)
    return state, payload_json(state, error, host=host)


def _changed_field(before: dict[str, Any], **values: Any) -> str | None:
    changed = [k for k, v in values.items() if before.get(k) != v]
    return changed[0] if len(changed) == 1 else None


def on_controls(state: st.UserState | None, op: str, grow: float, shrink: float, feather: float,
                fill_holes: bool, remove_specks: float, invert: bool) -> tuple[Any, ...]:
    """Combine operation or a refinement control changed by the user: applied live to the shown mask (one undo
    step per slider drag); the control counts as the user's own for presets."""

    def action(s: st.UserState) -> None:
        before = s.edit.refinement.dict()
        changed = _changed_field(before, grow=int(grow or 0), shrink=int(shrink or 0), feather=float(feather or 0),
                                 remove_specks=int(remove_specks or 0))
        if changed:
            s.start_drag(changed)  # ends with the slider's release (or COALESCE_SECONDS without one)
        st.set_controls(s, op=str(op or "add").lower(), grow=int(grow or 0), shrink=int(shrink or 0),
                        feather=float(feather or 0), fill_holes=bool(fill_holes), remove_specks=int(remove_specks or 0),
                        invert=bool(invert))
        after = s.edit.refinement.dict()
        s.user_edited.update(f"mask.{k}" for k in REFINEMENT_FIELDS if before.get(k) != after.get(k))

    state, error = guarded(state, action)
    return state, payload_json(state, error)


def on_release(state: st.UserState | None, name: str) -> st.UserState:
    """A refinement slider was let go: its next change is a new undo step."""
    state = state or st.UserState()
    with state.lock:
        state.end_drag(name)
    return state


def on_model_starting(state: st.UserState | None, model_name: str | None) -> tuple[Any, ...]:
    """First step of a model switch: the canvas says that the model is loading (it can take a while)."""

    def action(s: st.UserState) -> None:
        if model_name and model_name != s.model_name and s.image is not None:
            s.busy = f"Loading SAM model {model_name} and computing the embedding…"

    state, error = guarded(state, action)
    return state, payload_json(state, error)


def on_model(state: st.UserState | None, model_name: str | None, host: Host) -> tuple[Any, ...]:
    def action(s: st.UserState) -> None:
        try:
            if model_name and model_name != s.model_name:
                st.change_model(s, host, model_name)
                s.notice = ""
                s.message = (f"SAM model: {model_name}. The selection was made with the previous model, so it is "
                             "cleared; click again.") if s.image is not None else f"SAM model: {model_name}."
        finally:
            s.busy = ""

    state, error = guarded(state, action)
    return state, payload_json(state, error)


def on_mark_edited(state: st.UserState | None, name: str) -> st.UserState:
    """A generation control changed by the user's hand: presets leave it alone from now on."""
    state = state or st.UserState()
    state.user_edited.add(name)
    return state


def refined_mask_image(state: st.UserState) -> Any:
    from segfill.masks import mask_to_image

    return mask_to_image(state.final_mask())


def send_payload(state: st.UserState | None) -> tuple[st.UserState, str, str]:
    """Image and mask as PNG data URLs for ``segfillSendToInpaint`` (WebUI only)."""
    from PIL import Image

    from segfill.ui.dataurl import png_data_url

    data: dict[str, str] = {}

    def action(s: st.UserState) -> None:
        image = s.require_image()
        mask = refined_mask_image(s)
        data["image"] = png_data_url(Image.fromarray(image, "RGB"))
        data["mask"] = png_data_url(mask)
        s.message = "Sent image and mask to img2img → Inpaint upload."

    state, error = guarded(state, action)
    return state, payload_json(state, error), json.dumps(data) if data else ""


def send_images(state: st.UserState | None) -> tuple[Any, ...]:
    """Image (RGB PIL) and refined mask (L PIL) for img2img's Inpaint upload; None, None on error."""
    from PIL import Image

    images: dict[str, Any] = {}

    def action(s: st.UserState) -> None:
        images["image"] = Image.fromarray(s.require_image(), "RGB")
        images["mask"] = refined_mask_image(s)
        s.message = "Sent image and mask to img2img → Inpaint upload."

    state, error = guarded(state, action)
    return state, payload_json(state, error), images.get("image"), images.get("mask")
