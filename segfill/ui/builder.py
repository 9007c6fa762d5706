"""Builds the SegFill tab from a host: the same Blocks content in the WebUI / Forge tab and standalone.

The canvas is SegFill's own (``javascript/segfill.js``) inside a ``gr.HTML`` block. Browser events reach
Python through the hidden ``segfill_events`` textbox: the canvas queues them and clicks the hidden
``segfill_event_button``, whose front-end function hands the queued JSON over as the textbox's value. Python
answers with a JSON payload in the hidden ``segfill_render`` textbox, which a follow-up front-end function
passes to the canvas to draw. Nothing reads gradio's DOM (hashed classes, aria labels).

Hidden components are hidden by CSS (``segfill-hidden``), not ``visible=False``: invisible components are
not rendered at all, so the browser could not reach them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from segfill.ui import callbacks as cb
from segfill.ui import state as st
from segfill.ui.compat import js_kwargs, no_change

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host

HIDDEN = ["segfill-hidden"]

CANVAS_HTML = """
<div id="segfill_canvas_root" class="segfill-root" tabindex="0" data-segfill-rendered="0">
  <div class="segfill-toolbar" role="toolbar">
    <span class="segfill-group" data-group="mode">
      <button type="button" data-action="mode" data-mode="select" class="active" title="Left-click: include, right-click: exclude, drag: box">Point / box</button>
      <button type="button" data-action="mode" data-mode="segments" title="Click or scribble to add segments (right button removes)">Segment map</button>
      <button type="button" data-action="mode" data-mode="brush" title="Paint the mask">Brush</button>
      <button type="button" data-action="mode" data-mode="eraser" title="Erase from the mask">Eraser</button>
      <button type="button" data-action="mode" data-mode="pan" title="Drag to pan (middle button or space+drag pans in any mode)">Pan</button>
    </span>
    <label class="segfill-brush">Size <input type="range" min="1" max="200" value="24" data-role="brush-size"></label>
    <span class="segfill-group" data-group="view">
      <button type="button" data-action="view" data-view="overlay" class="active">Overlay</button>
      <button type="button" data-action="view" data-view="mask">Mask</button>
      <button type="button" data-action="view" data-view="cutout">Cut-out</button>
    </span>
    <span class="segfill-group">
      <button type="button" data-action="undo" title="Ctrl+Z">Undo</button>
      <button type="button" data-action="redo" title="Ctrl+Shift+Z">Redo</button>
      <button type="button" data-action="clear" title="Esc: clear the current selection">Clear selection</button>
      <button type="button" data-action="commit" title="Enter: keep this mask and start a new selection">New selection</button>
      <button type="button" data-action="reset" title="Remove the whole mask">Clear all</button>
      <button type="button" data-action="fit" title="Fit the image (0)">Fit</button>
    </span>
    <span class="segfill-group">
      <button type="button" data-action="download" data-what="mask">Download mask PNG</button>
      <button type="button" data-action="download" data-what="cutout">Download cut-out</button>
    </span>
  </div>
  <div class="segfill-stage"><canvas class="segfill-canvas"></canvas>
    <div class="segfill-empty">Upload an image to start.</div></div>
  <div class="segfill-candidates" data-role="candidates"></div>
  <div class="segfill-statusline" data-role="status" aria-live="polite"></div>
</div>
"""

RENDER_JS = "(payload) => { if (window.segfillRender) { window.segfillRender(payload); } return []; }"
COLLECT_JS = "(state, events) => (window.segfillCollectEvents ? window.segfillCollectEvents(state, events) : [state, events])"
SWITCH_JS = ("(state, payload) => { if (typeof switch_to_img2img_tab === 'function') { switch_to_img2img_tab(4); }"
             " return [state, payload]; }")
SEND_JS = "(data) => { if (window.segfillSendToInpaint) { window.segfillSendToInpaint(data); } return []; }"
DOWNLOAD_PROGRESS_HTML = '<div class="segfill-download"><progress max="100" value="{pct}"></progress> <span>{text}</span></div>'


def _unwrap(values: tuple) -> list[Any]:
    return [no_change() if value is cb.NO_CHANGE else value for value in values]


def _known_model_choices() -> list[str]:
    from segfill.sam.registry import KNOWN_MODELS  # cheap: no torch

    return sorted(KNOWN_MODELS)


def _render(render_box: Any) -> dict[str, Any]:
    """``.then(**_render(render_box))``: hand the payload in the render box to the canvas (front-end only)."""
    return dict(fn=None, inputs=[render_box], outputs=None, **js_kwargs(RENDER_JS))


def build_tab_contents(host: Host) -> None:
    """Create the tab's components in the current Blocks context and wire them to ``host``."""
    defaults = host.defaults()
    try:
        model_choices = st.model_names(host)
    except Exception:  # a broken models folder must not break the whole tab
        model_choices = []
    default_model = defaults.sam_model if defaults.sam_model in model_choices else (model_choices[0] if model_choices else None)

    user_state = gr.State(None)
    with gr.Row(elem_id="segfill_main", equal_height=False):
        with gr.Column(scale=3, min_width=480):
            gr.HTML(CANVAS_HTML, elem_id="segfill_canvas_host")
            events_box = gr.Textbox(value="", elem_id="segfill_events", elem_classes=HIDDEN, show_label=False)
            render_box = gr.Textbox(value="", elem_id="segfill_render", elem_classes=HIDDEN, show_label=False)
            event_button = gr.Button("events", elem_id="segfill_event_button", elem_classes=HIDDEN)
        with gr.Column(scale=2, min_width=320):
            image_input = gr.Image(type="pil", label="Image", elem_id="segfill_image", height=220)
            with gr.Row():
                model_dropdown = gr.Dropdown(choices=model_choices, value=default_model, label="SAM model",
                                             elem_id="segfill_model", scale=4)
                refresh_button = gr.Button("Refresh", elem_id="segfill_model_refresh", scale=1, min_width=60)
            with gr.Accordion("Download a SAM model", open=False, elem_id="segfill_download_accordion"):
                with gr.Row():
                    download_choice = gr.Dropdown(choices=_known_model_choices(), label="Model", elem_id="segfill_download_choice", scale=4)
                    download_button = gr.Button("Download", elem_id="segfill_download_button", scale=1, min_width=80)
                download_status = gr.HTML("", elem_id="segfill_download_status")
            op_radio = gr.Radio(choices=list(cb.OP_LABELS.values()), value="Add", label="Combine selections",
                                elem_id="segfill_op")
            with gr.Accordion("Mask refinement", open=True, elem_id="segfill_refine"):
                with gr.Row():
                    grow = gr.Slider(0, 256, value=0, step=1, label="Grow (px)", elem_id="segfill_grow")
                    shrink = gr.Slider(0, 256, value=0, step=1, label="Shrink (px)", elem_id="segfill_shrink")
                with gr.Row():
                    feather = gr.Slider(0, 256, value=0, step=1, label="Feather (px)", elem_id="segfill_feather")
                    remove_specks = gr.Slider(0, 20000, value=0, step=10, label="Remove specks (px²)", elem_id="segfill_specks")
                with gr.Row():
                    fill_holes = gr.Checkbox(value=False, label="Fill holes", elem_id="segfill_fill_holes")
                    invert = gr.Checkbox(value=False, label="Invert", elem_id="segfill_invert")
            _build_actions(host, user_state, render_box, image_input)

    controls = [op_radio, grow, shrink, feather, fill_holes, remove_specks, invert]

    def events_fn(state, events):
        return tuple(_unwrap(cb.on_events(state, events, host)))

    def image_fn(state, image, model_name):
        return cb.on_image(state, image, model_name, host)

    def model_fn(state, model_name):
        return cb.on_model(state, model_name, host)

    def refresh_fn():
        names = st.model_names(host)
        return gr.update(choices=names)

    def download_fn(name):
        yield from download_model_progress(host, name)

    render = _render(render_box)
    event_button.click(events_fn, inputs=[user_state, events_box], outputs=[user_state, render_box, *controls],
                       **js_kwargs(COLLECT_JS)).then(**render)
    image_input.change(image_fn, inputs=[user_state, image_input, model_dropdown], outputs=[user_state, render_box]).then(**render)
    for control in controls:
        control.change(cb.on_controls, inputs=[user_state, *controls], outputs=[user_state, render_box]).then(**render)
    model_dropdown.change(model_fn, inputs=[user_state, model_dropdown], outputs=[user_state, render_box]).then(**render)
    refresh_button.click(refresh_fn, inputs=None, outputs=[model_dropdown])
    download_button.click(download_fn, inputs=[download_choice], outputs=[download_status]).then(
        refresh_fn, inputs=None, outputs=[model_dropdown])


def download_model_progress(host: Host, name: str | None):
    """Generator for the download button: yields progress HTML, ends with the checksum result."""
    import html
    import queue
    import threading

    if not name:
        yield '<span class="segfill-error">Choose a model to download.</span>'
        return
    from segfill.sam.download import download_model
    from segfill.sam.registry import KNOWN_MODELS

    spec = KNOWN_MODELS.get(name)
    if spec is None:
        yield f'<span class="segfill-error">Unknown model {html.escape(name)}.</span>'
        return
    try:
        folder = host.sam.download_folder()
    except Exception as exc:  # e.g. no writable models folder
        yield f'<span class="segfill-error">No folder to download into: {html.escape(str(exc))}</span>'
        return
    updates: queue.Queue[tuple] = queue.Queue()
    outcome: dict = {}

    def progress(done: int, total: int | None = None, *_: Any) -> None:
        updates.put((done, total))

    def run() -> None:
        try:
            outcome["path"] = download_model(spec, folder, progress=progress)
        except Exception as exc:  # shown to the user below; SegFillError carries a readable sentence
            outcome["error"] = exc
        finally:
            updates.put(None)

    threading.Thread(target=run, name="segfill-download", daemon=True).start()
    while True:
        item = updates.get()
        if item is None:
            break
        while not updates.empty():  # skip to the newest report
            newer = updates.get()
            if newer is None:
                updates.put(None)
                break
            item = newer
        done, total = item
        pct = int(100 * done / total) if total else 0
        text = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        yield DOWNLOAD_PROGRESS_HTML.format(pct=pct, text=html.escape(text))
    if "error" in outcome:
        yield f'<span class="segfill-error">Download failed: {html.escape(str(outcome["error"]))}</span>'
    else:
        if getattr(spec, "sha256", None):
            checksum = "SHA-256 verified"
        elif getattr(spec, "md5", None):
            checksum = "MD5 verified"
        else:
            checksum = "no published checksum to verify"
        saved = f"Saved {outcome.get('path')} ({checksum})."
        yield DOWNLOAD_PROGRESS_HTML.format(pct=100, text=html.escape(saved))
        if spec.family == "sam2":
            yield from ensure_sam2_progress(saved)


def ensure_sam2_progress(prefix: str = ""):
    """SAM 2.1 needs the ``sam2`` package, installed only now that the user picked such a model, and in the
    way that never changes torch (``segfill.sam.sam2_install``); yields status HTML."""
    import html

    from segfill.errors import SegFillError
    from segfill.sam.sam2_install import install_sam2, sam2_status

    status = sam2_status()
    if status.installed:
        return
    lead = f"{prefix} " if prefix else ""
    yield DOWNLOAD_PROGRESS_HTML.format(
        pct=100, text=html.escape(lead + "Installing the sam2 package (without changing torch), this takes a minute…"))
    try:
        status = install_sam2()
    except SegFillError as exc:
        yield f'<span class="segfill-error">{html.escape(lead + str(exc))}</span>'
        return
    yield DOWNLOAD_PROGRESS_HTML.format(pct=100, text=html.escape(lead + status.message))


def _build_actions(host: Host, user_state: Any, render_box: Any, image_input: Any) -> None:
    """Inpaint / outpaint / send-to-img2img controls."""
    import html

    from segfill.ui import actions

    render = _render(render_box)
    with gr.Accordion("Inpaint / outpaint", open=True, elem_id="segfill_actions"):
        warning = host.model_warning()
        if warning:  # names checkpoint files: text, not markup
            gr.HTML(f'<div class="segfill-warning">{html.escape(warning)}</div>', elem_id="segfill_model_warning")
        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="segfill_prompt")
        negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="segfill_negative_prompt")
        with gr.Row():
            seed = gr.Number(value=-1, label="Seed (-1 random)", precision=0, elem_id="segfill_seed")
            steps = gr.Slider(1, 150, value=20, step=1, label="Steps", elem_id="segfill_steps")
        with gr.Row():
            cfg = gr.Slider(1, 30, value=7.0, step=0.5, label="CFG scale", elem_id="segfill_cfg")
            strength = gr.Slider(0, 1, value=1.0, step=0.01, label="Denoising strength", elem_id="segfill_strength")
        with gr.Row():
            pad_left = gr.Slider(0, 2048, value=0, step=8, label="Outpaint left", elem_id="segfill_pad_left")
            pad_right = gr.Slider(0, 2048, value=256, step=8, label="Outpaint right", elem_id="segfill_pad_right")
        with gr.Row():
            pad_top = gr.Slider(0, 2048, value=0, step=8, label="Outpaint top", elem_id="segfill_pad_top")
            pad_bottom = gr.Slider(0, 2048, value=0, step=8, label="Outpaint bottom", elem_id="segfill_pad_bottom")
        with gr.Row():
            inpaint_button = gr.Button("Inpaint here", variant="primary", elem_id="segfill_inpaint")
            outpaint_button = gr.Button("Outpaint here", variant="primary", elem_id="segfill_outpaint")
        result_image = gr.Image(type="pil", label="Result", interactive=False, elem_id="segfill_result", height=260)
        result_info = gr.Textbox(label="Parameters", lines=2, interactive=False, elem_id="segfill_result_info")
        use_result = gr.Button("Continue with the result", elem_id="segfill_use_result")
        send_button = None
        if getattr(host, "supports_send_to_img2img", False):
            send_button = gr.Button("Send to img2img inpaint", elem_id="segfill_send_inpaint")
        send_box = gr.Textbox(value="", elem_id="segfill_send_payload", elem_classes=HIDDEN, show_label=False)

    common = [prompt, negative, seed, steps, cfg, strength]

    def inpaint_fn(state, *values, progress=gr.Progress()):
        return actions.on_inpaint(state, *values, host=host, progress=_progress_adapter(progress))

    def outpaint_fn(state, *values, progress=gr.Progress()):
        return actions.on_outpaint(state, *values, host=host, progress=_progress_adapter(progress))

    inpaint_button.click(inpaint_fn, inputs=[user_state, *common], outputs=[user_state, render_box, result_image, result_info]).then(**render)
    outpaint_button.click(outpaint_fn, inputs=[user_state, *common, pad_left, pad_right, pad_top, pad_bottom],
                          outputs=[user_state, render_box, result_image, result_info]).then(**render)
    use_result.click(lambda image: image if image is not None else gr.update(), inputs=[result_image], outputs=[image_input])
    if send_button is not None:
        targets = getattr(host, "inpaint_upload_components", None)
        if targets:
            # The WebUI glue captured img2img's Inpaint upload images: fill them from Python, switch tab in JS.
            def send_fn(state, _payload):
                state, text, image, mask = cb.send_images(state)
                return state, text, image if image is not None else gr.update(), mask if mask is not None else gr.update()

            send_button.click(send_fn, inputs=[user_state, send_box], outputs=[user_state, render_box, *targets],
                              **js_kwargs(SWITCH_JS)).then(**render)
        else:
            # No component handles: hand the files to img2img's upload boxes in the browser.
            # (a front-end-only step reports no completion in gradio 3, so both follow the Python step directly)
            sent = send_button.click(cb.send_payload, inputs=[user_state], outputs=[user_state, render_box, send_box])
            sent.then(**render)
            sent.then(fn=None, inputs=[send_box], outputs=None, **js_kwargs(SEND_JS))


def _progress_adapter(progress: Any) -> Callable[[int, int, str], None]:
    def report(done: float, total: int, message: str = "") -> None:
        try:
            progress((float(done), int(total)) if total else None, desc=message or "SegFill")
        except Exception:  # progress display must never break a generation
            pass

    return report


def build_tab(host: Host) -> gr.Blocks:
    """A ``gr.Blocks`` holding the tab, for ``script_callbacks.on_ui_tabs`` (the WebUI injects our JS/CSS)."""
    with gr.Blocks(analytics_enabled=False) as tab:
        build_tab_contents(host)
    return tab


__all__ = ["CANVAS_HTML", "build_tab", "build_tab_contents"]
