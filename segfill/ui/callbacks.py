"""The tab's callbacks as plain functions: state and values in, state and outputs out.

The builder binds them to components; tests call them directly. Each returns the user's state, the canvas
payload (JSON text for the hidden ``segfill_render`` box) and whatever else the event updates. A
:class:`~segfill.errors.SegFillError` never escapes: it becomes a readable message in the payload and the
user's image, points and mask stay as they were.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from segfill.errors import SegFillError
from segfill.ui import state as st
from segfill.ui.render import build_payload

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host

log = logging.getLogger("segfill.ui")

#: the mask-refinement controls, in the order the builder wires them
REFINEMENT_FIELDS = ("grow", "shrink", "feather", "fill_holes", "remove_specks", "invert")
OP_LABELS = {"add": "Add", "subtract": "Subtract", "intersect": "Intersect", "replace": "Replace"}
NO_CHANGE = object()  # the builder turns it into gr.update()


def payload_json(state: st.UserState, error: str | None = None, force_image: bool = False) -> str:
    return json.dumps(build_payload(state, error=error, force_image=force_image), separators=(",", ":"))


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
        except SegFillError as exc:
            return state, str(exc)
        except Exception as exc:  # a bug must not lose the user's work: report it, keep the state
            return state, _bug_message(exc)
    return state, None


def control_values(state: st.UserState) -> dict[str, Any]:
    edit = state.edit
    values = {name: getattr(edit.refinement, name) for name in REFINEMENT_FIELDS}
    values["op"] = OP_LABELS.get(edit.op, edit.op.title())
    return values


def control_updates(before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    """For ``op`` then each refinement field: the new value where undo/redo changed it, else NO_CHANGE."""
    return [after[name] if before.get(name) != after[name] else NO_CHANGE for name in ("op",) + REFINEMENT_FIELDS]


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
        payload = build_payload(state, error=error)
        payload["timings"]["server_ms"] = round((time.perf_counter() - started) * 1000, 2)
        text = json.dumps(payload, separators=(",", ":"))
    except Exception as exc:  # pragma: no cover - a rendering bug
        text = json.dumps({"rev": state.revision, "error": _bug_message(exc)})
    return (state, text, *control_updates(before, control_values(state)))


def on_image(state: st.UserState | None, image: Any, model_name: str | None, host: Host) -> tuple[Any, ...]:
    """A new image in the upload box (None when cleared)."""

    def action(s: st.UserState) -> None:
        if image is None:
            st.clear_image(s)
        else:
            st.set_image(s, image, host, model_name or None)
            s.message = f"Image {s.size[0]}×{s.size[1]} ready: left-click to select, right-click to exclude, drag for a box."

    state, error = guarded(state, action)
    return state, payload_json(state, error, force_image=True)


def on_controls(state: st.UserState | None, op: str, grow: float, shrink: float, feather: float,
                fill_holes: bool, remove_specks: float, invert: bool) -> tuple[Any, ...]:
    """Combine operation or a refinement control changed: applied live to the shown mask."""

    def action(s: st.UserState) -> None:
        st.set_controls(s, op=str(op or "add").lower(), grow=int(grow or 0), shrink=int(shrink or 0),
                        feather=float(feather or 0), fill_holes=bool(fill_holes), remove_specks=int(remove_specks or 0),
                        invert=bool(invert))

    state, error = guarded(state, action)
    return state, payload_json(state, error)


def on_model(state: st.UserState | None, model_name: str | None, host: Host) -> tuple[Any, ...]:
    def action(s: st.UserState) -> None:
        if model_name:
            st.change_model(s, host, model_name)
            s.message = f"SAM model: {model_name}."

    state, error = guarded(state, action)
    return state, payload_json(state, error)


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
