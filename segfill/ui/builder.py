"""Builds the SegFill tab from a host: the same Blocks content in the WebUI / Forge tab and standalone.

Canvas first: SegFill's own canvas (``javascript/segfill.js``, inside a ``gr.HTML`` block) is the page's centre,
with its tools beside it and, on the right, one compact panel (tabs: Mask, Inpaint, Outpaint, Model). The image
is opened on the canvas itself (drop, paste or its Open button); results come back onto the canvas.

Browser ↔ Python (nothing reads gradio's DOM, hashed classes or aria labels): the canvas queues events and
clicks the hidden ``segfill_event_button``, whose front-end function hands the queued JSON over as the value of
the hidden ``segfill_events`` textbox. Python answers with a JSON payload in the hidden ``segfill_render``
textbox, which a follow-up front-end function passes to the canvas to draw. An opened file goes through the
hidden ``segfill_file`` (gr.File: uploaded over HTTP by gradio, read by :mod:`segfill.ui.files`).

Hidden components are hidden by CSS (``segfill-hidden``), not ``visible=False``: invisible components are
not rendered at all, so the browser could not reach them. Controls that do not apply to the host's backend
(prompt, seed, steps, CFG, strength with the OpenCV backend) are left out, with a line saying why.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from segfill.ui import actions
from segfill.ui import callbacks as cb
from segfill.ui import state as st
from segfill.ui.compat import file_kwargs, js_kwargs, no_change

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host

HIDDEN = ["segfill-hidden"]
#: canvas and panel updates happen many times a minute: no gradio progress overlay over the controls they update
QUIET = {"show_progress": "hidden"}

_ICON_PATHS = {
    "open": "M3 7h6l2 2h10v10H3zM12 17v-5M9.5 14.5 12 12l2.5 2.5",
    "select": "M6 3l12 9-5.5 1.2L10 19z",
    "segments": "M4 4h7v7H4zM13 4h7v5h-7zM13 11h7v9h-7zM4 13h7v7H4z",
    "brush": "M20 3.5 9.5 14l-2-2L18 1.5zM7 13.5l3 3c-.3 2.9-2.6 4.5-6.5 4.2 1-1 1.2-2.2 1.1-3.6C4.6 15.6 5.6 14 7 13.5z",
    "eraser": "M15.5 3.5l5 5-9.5 9.5H6l-3-3zM9 18h11",
    "pan": "M12 3v18M3 12h18M12 3 9.5 5.5M12 3l2.5 2.5M12 21l-2.5-2.5M12 21l2.5-2.5M3 12l2.5-2.5M3 12l2.5 2.5"
           "M21 12l-2.5-2.5M21 12l-2.5 2.5",
    "frame": "M3 8V3h5M21 8V3h-5M3 16v5h5M21 16v5h-5M8.5 8.5h7v7h-7z",
    "fit": "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5",
    "undo": "M9 14 4 9l5-5M4 9h11a5 5 0 0 1 0 10h-3",
    "redo": "M15 14l5-5-5-5M20 9H9a5 5 0 0 0 0 10h3",
    "more": "M5 12h.01M12 12h.01M19 12h.01",
    "download": "M12 3v12M7 10l5 5 5-5M4 21h16",
}


def icon(name: str) -> str:
    # inline style: gradio's own svg rules would otherwise colour the strokes
    return (f'<svg class="segfill-icon" viewBox="0 0 24 24" aria-hidden="true">'
            f'<path style="stroke: currentColor; fill: none" d="{_ICON_PATHS[name]}"/></svg>')


def _tool(mode: str, label: str, key: str, title: str, active: bool = False) -> str:
    cls = ' class="active"' if active else ""
    return (f'<button type="button" data-action="mode" data-mode="{mode}"{cls} title="{title} ({key})" '
            f'aria-label="{label}">{icon(mode)}<span>{label}</span></button>')


SHORTCUTS = (
    ("Left click / right click", "include / exclude a point"),
    ("Drag", "box (Select), paint (Brush, Eraser), frame edges (Frame)"),
    ("V  S  B  E  H  F", "Select, Segments, Brush, Eraser, Pan, Frame"),
    ("[  ]", "brush size smaller / larger"),
    ("Shift+[  Shift+]", "brush softer / harder"),
    ("Space+drag, middle drag", "pan"),
    ("Wheel, +  −", "zoom"),
    ("0  1", "fit, 100 %"),
    ("Ctrl+Z  Ctrl+Shift+Z", "undo, redo"),
    ("Esc", "clear the selection · discard a result"),
    ("Enter", "new selection · accept a result"),
    ("C", "compare: split, before, after"),
    ("M", "view: overlay, mask, cut-out"),
    ("?", "this help"),
)


def canvas_html(notice: str = "") -> str:
    """The canvas markup; ``notice`` (e.g. no SAM model installed yet) is shown on the empty canvas."""
    shortcuts = "".join(f"<dt>{html_lib.escape(k)}</dt><dd>{html_lib.escape(v)}</dd>" for k, v in SHORTCUTS)
    notice_html = f'<p class="segfill-notice" data-role="notice">{html_lib.escape(notice)}</p>' if notice else \
        '<p class="segfill-notice" data-role="notice"></p>'
    return f"""
<div id="segfill_canvas_root" class="segfill-root" tabindex="0" data-segfill-rendered="0" data-segfill-mode="select">
  <div class="segfill-topbar" role="toolbar" aria-label="Canvas">
    <button type="button" data-action="open" title="Open an image (or drop one on the canvas, or paste it)" aria-label="Open an image">{icon("open")}</button>
    <span class="segfill-options" data-options="brush eraser">
      <label title="Brush size in image pixels ([ and ])">Size <input type="range" min="1" max="512" value="32" data-role="brush-size"></label>
      <output data-role="brush-size-value">32</output>
      <label title="Hardness: 100 % is a hard edge, lower fades the edge out (Shift+[ and Shift+])">Hardness <input type="range" min="0" max="100" value="100" step="5" data-role="brush-hardness"></label>
    </span>
    <span class="segfill-options" data-options="select">
      <span class="segfill-hint">Click: include · Right-click: exclude · Drag: box</span>
      <span class="segfill-detect" data-role="detect" hidden><input type="text" data-role="detect-text" placeholder="Select by text…" aria-label="Select by text"><button type="button" data-action="detect">Find</button></span>
    </span>
    <span class="segfill-options" data-options="segments"><span class="segfill-hint">Click or scribble: add segments · Right button: remove</span></span>
    <span class="segfill-options" data-options="pan"><span class="segfill-hint">Drag to pan · Wheel to zoom</span></span>
    <span class="segfill-options" data-options="frame"><span class="segfill-hint">Drag the frame's edges or the photo · aspect, anchor and zoom out: Outpaint panel</span></span>
    <span class="segfill-spacer"></span>
    <span class="segfill-group" data-group="view" role="group" aria-label="View">
      <button type="button" data-action="view" data-view="overlay" class="active" title="Mask over the image (M cycles)">Overlay</button>
      <button type="button" data-action="view" data-view="mask" title="The mask alone">Mask</button>
      <button type="button" data-action="view" data-view="cutout" title="The selected part alone">Cut-out</button>
    </span>
    <button type="button" data-action="mask-style" class="segfill-swatch-button" title="Mask colour and opacity" aria-label="Mask colour and opacity"><i class="segfill-swatch"></i></button>
    <span class="segfill-group">
      <button type="button" data-action="undo" title="Undo (Ctrl+Z)" aria-label="Undo" disabled>{icon("undo")}</button>
      <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z)" aria-label="Redo" disabled>{icon("redo")}</button>
    </span>
    <button type="button" data-action="menu" title="Selection and downloads" aria-label="Selection and downloads">{icon("more")}</button>
    <button type="button" data-action="help" title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">?</button>
  </div>
  <div class="segfill-body">
    <div class="segfill-tools" role="toolbar" aria-orientation="vertical" aria-label="Tools">
      {_tool("select", "Select", "V", "Point and box: left-click includes, right-click excludes, drag draws a box", True)}
      {_tool("segments", "Segments", "S", "Segment map: click or scribble to add SAM's automatic segments")}
      {_tool("brush", "Brush", "B", "Paint the mask")}
      {_tool("eraser", "Eraser", "E", "Erase from the mask")}
      {_tool("pan", "Pan", "H", "Drag to pan; Space+drag or the middle button pans in any tool")}
      {_tool("frame", "Frame", "F", "Outpaint frame: drag its edges to extend the canvas")}
      <span class="segfill-tools-gap"></span>
      <button type="button" data-action="fit" title="Fit the image (0)" aria-label="Fit">{icon("fit")}<span>Fit</span></button>
      <output class="segfill-zoom" data-role="zoom" title="Zoom (1: 100 %)">100%</output>
    </div>
    <div class="segfill-stage" data-role="stage">
      <canvas class="segfill-canvas"></canvas>
      <div class="segfill-empty" data-role="empty">
        <p class="segfill-empty-title">Drop an image here</p>
        <p>or <button type="button" data-action="open">open one</button>, or paste it (Ctrl+V).</p>
        {notice_html}
      </div>
      <div class="segfill-busy" data-role="busy" hidden><span class="segfill-spinner"></span><span data-role="busy-text"></span><progress data-role="busy-progress" max="1" hidden></progress><button type="button" data-action="cancel-task" data-role="busy-cancel" title="Stop this job; the image and the mask stay" hidden>Cancel</button></div>
      <div class="segfill-resultbar" data-role="resultbar" hidden>
        <span data-role="result-label" class="segfill-result-label"></span>
        <span class="segfill-group" data-group="compare" role="group" aria-label="Compare">
          <button type="button" data-action="compare" data-compare="split" class="active" title="Before | after with a divider (C)">Split</button>
          <button type="button" data-action="compare" data-compare="before" title="The image before">Before</button>
          <button type="button" data-action="compare" data-compare="after" title="The result">After</button>
        </span>
        <button type="button" data-action="accept" class="segfill-primary" title="Keep editing on the result (Enter)">Accept</button>
        <button type="button" data-action="discard" title="Put the result aside (Esc); it stays in the results strip">Discard</button>
        <button type="button" data-action="download-result" title="Download the result as PNG" aria-label="Download the result">{icon("download")}</button>
        <button type="button" data-action="result-info" title="Generation parameters" aria-label="Generation parameters">i</button>
        <pre class="segfill-result-info" data-role="result-info" hidden></pre>
      </div>
      <div class="segfill-popover" data-role="mask-style" hidden>
        <div class="segfill-colours" role="group" aria-label="Mask colour">
          <button type="button" data-color="#1e90ff" style="background:#1e90ff" aria-label="blue"></button>
          <button type="button" data-color="#ff2d55" style="background:#ff2d55" aria-label="red"></button>
          <button type="button" data-color="#34c759" style="background:#34c759" aria-label="green"></button>
          <button type="button" data-color="#ff9f0a" style="background:#ff9f0a" aria-label="orange"></button>
          <button type="button" data-color="#bf5af2" style="background:#bf5af2" aria-label="violet"></button>
          <button type="button" data-color="#ffffff" style="background:#ffffff" aria-label="white"></button>
        </div>
        <label>Opacity <input type="range" min="0" max="100" value="45" data-role="mask-opacity"></label>
      </div>
      <div class="segfill-menu" data-role="menu" hidden role="menu">
        <button type="button" data-action="clear" role="menuitem">Clear selection <kbd>Esc</kbd></button>
        <button type="button" data-action="commit" role="menuitem">New selection <kbd>Enter</kbd></button>
        <button type="button" data-action="reset" role="menuitem">Clear the whole mask</button>
        <hr>
        <button type="button" data-action="download" data-what="mask" role="menuitem">Download mask PNG</button>
        <button type="button" data-action="download" data-what="cutout" role="menuitem">Download cut-out PNG</button>
      </div>
      <div class="segfill-help" data-role="help" hidden role="dialog" aria-label="Keyboard shortcuts">
        <h4>Keyboard shortcuts <button type="button" data-action="help" aria-label="Close">×</button></h4>
        <dl>{shortcuts}</dl>
      </div>
    </div>
  </div>
  <div class="segfill-bottombar">
    <div class="segfill-candidates" data-role="candidates" aria-label="SAM's candidates"></div>
    <div class="segfill-statusline" data-role="status" aria-live="polite"></div>
    <div class="segfill-gallery" data-role="gallery" aria-label="Results of this session"></div>
  </div>
  <input type="file" accept="image/*" data-role="file" hidden>
</div>
"""


CANVAS_HTML = canvas_html()

RENDER_JS = "(payload) => { if (window.segfillRender) { window.segfillRender(payload); } return []; }"
COLLECT_JS = "(state, events) => (window.segfillCollectEvents ? window.segfillCollectEvents(state, events) : [state, events])"
#: "Select by text" goes through its own channel: its one listener shows gradio's progress (a detector's first-use
#: download) on a block of its own over the canvas' bottom bar, not over the panel's controls
COLLECT_DETECT_JS = ("(state, events) => (window.segfillCollectEvents ? window.segfillCollectEvents(state, events, 'detect')"
                     " : [state, events])")
SWITCH_JS = ("(state, payload) => { if (typeof switch_to_img2img_tab === 'function') { switch_to_img2img_tab(4); }"
             " return [state, payload]; }")
SEND_JS = "(data) => { if (window.segfillSendToInpaint) { window.segfillSendToInpaint(data); } return []; }"
DOWNLOAD_PROGRESS_HTML = '<div class="segfill-download"><progress max="100" value="{pct}"></progress> <span>{text}</span></div>'
#: while a download runs: its bar, the estimate and a Cancel button (javascript/segfill.js posts to the URL)
DOWNLOAD_RUNNING_HTML = ('<div class="segfill-download"><progress max="100" value="{pct}"></progress> <span>{text}</span> '
                         '<button type="button" class="segfill-cancel" data-segfill-cancel="{cancel_url}">Cancel</button>'
                         '</div>')


def _busy_js(text: str) -> str:
    """A job button's own front-end-only listener: the canvas shows ``text`` as busy until the answer."""
    return ("() => { if (window.segfillCanvas) { window.segfillCanvas.busy('generate', {text: "
            f"{text!r}}}); }} return []; }}")


def _mode_js(mode: str) -> str:
    return f"() => {{ if (window.segfillCanvas) {{ window.segfillCanvas.panelMode({mode!r}); }} return []; }}"


def _unwrap(values: tuple) -> list[Any]:
    return [no_change() if value is cb.NO_CHANGE else value for value in values]


def _known_model_choices(device: str | None = None) -> list[str]:
    """The download list, the model recommended on this device first (MobileSAM on a CPU)."""
    from segfill.sam.advice import download_choices  # cheap: no torch

    return [name for _label, name in download_choices(device)]


def _sam_device(host: Host) -> str | None:
    try:
        return str(host.sam.device)
    except Exception:  # a broken setting: the SAM call says what is wrong; no advice meanwhile
        return None


def _start_model_line(names: list[str]) -> str:
    from segfill.sam.registry import KNOWN_MODELS

    spec = KNOWN_MODELS.get(names[0]) if names else None
    if spec is None:
        return "sam_vit_b is a good start"
    size = f", {spec.size_bytes / 1e6:.0f} MB" if getattr(spec, "size_bytes", None) else ""
    return f"{names[0]}{size}, is a good start"


def model_advice_html(host: Host) -> str:
    """The Model panel's advice (MobileSAM when SAM runs on a CPU and it is not the model in use), or ""."""
    from segfill.sam.advice import model_advice

    device = _sam_device(host)
    try:
        families = [getattr(entry, "family", None) for entry in host.sam.list_models()]
    except Exception:
        families = []
    text = model_advice(device, families) if device else None
    return f'<div class="segfill-note segfill-advice">{html_lib.escape(text)}</div>' if text else ""


def _render(render_box: Any) -> dict[str, Any]:
    """``.then(**_render(render_box))``: hand the payload in the render box to the canvas (front-end only)."""
    return dict(fn=None, inputs=[render_box], outputs=None, **js_kwargs(RENDER_JS))


def takes_prompts(host: Host) -> bool:
    """Whether the host's inpainting uses prompt, seed, steps, CFG and strength (the OpenCV backend does not)."""
    declared = getattr(host, "takes_prompts", None)
    if declared is not None:
        return bool(declared)
    backend = getattr(host, "backend", None)
    return getattr(backend, "name", None) != "opencv"


NO_PROMPTS_NOTE = ("The OpenCV backend fills the area from its surroundings, so there is no prompt, seed, steps, "
                   "CFG or strength to set; start SegFill with <code>--backend diffusers --model …</code> (or use "
                   "it in the WebUI) to paint from a prompt.")


class _JobControls:
    """One job panel's generation controls (Inpaint and Outpaint have their own)."""

    def __init__(self, kind: str, prompts: bool, defaults: dict[str, Any]) -> None:
        prefix = "segfill" if kind == "inpaint" else "segfill_outpaint"
        self.kind = kind
        self.preset = gr.Dropdown(choices=actions.preset_choices(kind), value=actions.NO_PRESET, label="Preset",
                                  elem_id=f"{prefix}_preset")
        self.summary = gr.HTML("", elem_id=f"{prefix}_preset_summary", elem_classes=["segfill-preset-summary"])
        self.prompt = gr.Textbox(label="Prompt", lines=2, elem_id=f"{prefix}_prompt", visible=prompts,
                                 placeholder="What to paint (a preset fills in a template)")
        self.defaults = defaults
        self.prompts = prompts

    def sampling(self) -> None:
        """Negative prompt, seed, steps, CFG and strength, folded away (built where the panel wants them)."""
        prefix = "segfill" if self.kind == "inpaint" else "segfill_outpaint"
        with gr.Accordion("Negative prompt, seed, steps…", open=False, visible=self.prompts,
                          elem_id=f"{prefix}_sampling"):
            self.negative = gr.Textbox(label="Negative prompt", lines=1, elem_id=f"{prefix}_negative_prompt",
                                       visible=self.prompts)
            with gr.Row():
                self.seed = gr.Number(value=-1, label="Seed (-1 random)", precision=0, elem_id=f"{prefix}_seed",
                                      min_width=100)
                self.steps = gr.Slider(1, 150, value=20, step=1, label="Steps", elem_id=f"{prefix}_steps")
            with gr.Row():
                self.cfg = gr.Slider(1, 30, value=7.0, step=0.5, label="CFG scale", elem_id=f"{prefix}_cfg")
                self.strength = gr.Slider(0, 1, value=1.0, step=0.01, label="Denoising strength",
                                          elem_id=f"{prefix}_strength")

    @property
    def generation(self) -> list[Any]:
        """In actions.GENERATION_CONTROLS order."""
        return [self.prompt, self.negative, self.seed, self.steps, self.cfg, self.strength]


def build_tab_contents(host: Host) -> None:
    """Create the tab's components in the current Blocks context and wire them to ``host``."""
    defaults = host.defaults()
    try:
        model_choices = st.model_names(host)
    except Exception:  # a broken models folder must not break the whole tab
        model_choices = []
    default_model = defaults.sam_model if defaults.sam_model in model_choices else (model_choices[0] if model_choices else None)
    notice = "" if model_choices else st.NO_MODEL_MESSAGE
    prompts = takes_prompts(host)

    user_state = gr.State(None)
    with gr.Row(elem_id="segfill_main", equal_height=False):
        with gr.Column(scale=5, min_width=520, elem_id="segfill_canvas_column"):
            gr.HTML(canvas_html(notice), elem_id="segfill_canvas_host")
            events_box = gr.Textbox(value="", elem_id="segfill_events", elem_classes=HIDDEN, show_label=False)
            render_box = gr.Textbox(value="", elem_id="segfill_render", elem_classes=HIDDEN, show_label=False)
            event_button = gr.Button("events", elem_id="segfill_event_button", elem_classes=HIDDEN)
            detect_button = gr.Button("detect", elem_id="segfill_detect_button", elem_classes=HIDDEN)
            detect_progress = gr.HTML("", elem_id="segfill_detect_progress")
            file_input = gr.File(label="Image", elem_id="segfill_file", elem_classes=HIDDEN, **file_kwargs())
        with gr.Column(scale=2, min_width=300, elem_id="segfill_panel"):
            with gr.Tabs(elem_id="segfill_tabs", selected="mask" if model_choices else "model"):
                with gr.Tab("Mask", id="mask", elem_id="segfill_tab_mask") as mask_tab:
                    op_radio = gr.Radio(choices=list(cb.OP_LABELS.values()), value="Add", label="Combine selections",
                                        elem_id="segfill_op")
                    grow = gr.Slider(0, 256, value=0, step=1, label="Grow (px)", elem_id="segfill_grow")
                    shrink = gr.Slider(0, 256, value=0, step=1, label="Shrink (px)", elem_id="segfill_shrink")
                    feather = gr.Slider(0, 256, value=0, step=1, label="Feather (px)", elem_id="segfill_feather")
                    remove_specks = gr.Slider(0, 20000, value=0, step=10, label="Remove specks (px²)",
                                              elem_id="segfill_specks")
                    with gr.Row():
                        fill_holes = gr.Checkbox(value=False, label="Fill holes", elem_id="segfill_fill_holes")
                        invert = gr.Checkbox(value=False, label="Invert", elem_id="segfill_invert")
                with gr.Tab("Inpaint", id="inpaint", elem_id="segfill_tab_inpaint") as inpaint_tab:
                    warning = host.model_warning()
                    if warning and prompts:  # names checkpoint files: text, not markup
                        gr.HTML(f'<div class="segfill-warning">{html_lib.escape(warning)}</div>',
                                elem_id="segfill_model_warning")
                    inpaint = _JobControls("inpaint", prompts, {})
                    if not prompts:
                        gr.HTML(f'<div class="segfill-note">{NO_PROMPTS_NOTE}</div>', elem_id="segfill_backend_note")
                    with gr.Row(elem_classes=["segfill-job-actions"]):
                        inpaint_button = gr.Button("Inpaint", variant="primary", elem_id="segfill_inpaint")
                        send_button = None
                        if getattr(host, "supports_send_to_img2img", False):
                            send_button = gr.Button("Send to img2img inpaint", elem_id="segfill_send_inpaint")
                    inpaint_job = gr.HTML("", elem_id="segfill_inpaint_job", elem_classes=["segfill-job"])
                    inpaint.sampling()
                with gr.Tab("Outpaint", id="outpaint", elem_id="segfill_tab_outpaint") as outpaint_tab:
                    from segfill.outpaint.geometry import ANCHORS, ASPECT_PRESETS

                    with gr.Row():
                        aspect = gr.Dropdown(choices=[cb.FREE_ASPECT, *ASPECT_PRESETS], value=cb.FREE_ASPECT,
                                             label="Aspect", elem_id="segfill_aspect", min_width=90)
                        anchor = gr.Dropdown(choices=list(ANCHORS), value="center", label="Photo sits at",
                                             elem_id="segfill_anchor", min_width=110)
                    with gr.Row(elem_classes=["segfill-zoom-row"]):
                        zoom15 = gr.Button("Zoom out 1.5×", elem_id="segfill_zoom_15", size="sm", min_width=80)
                        zoom2 = gr.Button("Zoom out 2×", elem_id="segfill_zoom_2", size="sm", min_width=80)
                    with gr.Accordion("Exact padding (px)", open=False, elem_id="segfill_padding"):
                        with gr.Row():
                            pad_left = gr.Number(value=0, precision=0, label="Left", elem_id="segfill_pad_left",
                                                 min_width=80)
                            pad_right = gr.Number(value=0, precision=0, label="Right", elem_id="segfill_pad_right",
                                                  min_width=80)
                        with gr.Row():
                            pad_top = gr.Number(value=0, precision=0, label="Top", elem_id="segfill_pad_top",
                                                min_width=80)
                            pad_bottom = gr.Number(value=0, precision=0, label="Bottom", elem_id="segfill_pad_bottom",
                                                   min_width=80)
                    outpaint = _JobControls("outpaint", prompts, {})
                    with gr.Row(elem_classes=["segfill-job-actions"]):
                        outpaint_button = gr.Button("Outpaint", variant="primary", elem_id="segfill_outpaint", scale=3)
                        frame_clear = gr.Button("Clear", elem_id="segfill_frame_clear", scale=1, min_width=60)
                    outpaint_job = gr.HTML("", elem_id="segfill_outpaint_job", elem_classes=["segfill-job"])
                    outpaint.sampling()
                with gr.Tab("Model", id="model", elem_id="segfill_tab_model") as model_tab:
                    with gr.Row():
                        model_dropdown = gr.Dropdown(choices=model_choices, value=default_model, label="SAM model",
                                                     elem_id="segfill_model", scale=4)
                        refresh_button = gr.Button("Refresh", elem_id="segfill_model_refresh", scale=1, min_width=60)
                    model_advice = gr.HTML(model_advice_html(host), elem_id="segfill_model_advice")
                    with gr.Accordion("Download a SAM model", open=not model_choices, elem_id="segfill_download_accordion"):
                        download_names = _known_model_choices(_sam_device(host))
                        if not model_choices:
                            gr.HTML('<div class="segfill-warning">No SAM model is installed yet: pick one and press '
                                    f'Download ({html_lib.escape(_start_model_line(download_names))}).</div>',
                                    elem_id="segfill_no_model")
                        with gr.Row():
                            download_choice = gr.Dropdown(choices=download_names, label="Model",
                                                          value=download_names[0] if download_names else None,
                                                          elem_id="segfill_download_choice", scale=4)
                            download_button = gr.Button("Download", elem_id="segfill_download_button", scale=1,
                                                        min_width=80)
                        download_status = gr.HTML("", elem_id="segfill_download_status")
                    gr.HTML(f'<div class="segfill-note">{html_lib.escape(_host_line(host))}</div>',
                            elem_id="segfill_host_info")
            send_box = gr.Textbox(value="", elem_id="segfill_send_payload", elem_classes=HIDDEN, show_label=False)

    refinement = [op_radio, grow, shrink, feather, fill_holes, remove_specks, invert]
    frame_numbers = [pad_left, pad_right, pad_top, pad_bottom]
    render = _render(render_box)

    def events_fn(state, events):
        return tuple(_unwrap(cb.on_events(state, events, host)))

    event_button.click(events_fn, inputs=[user_state, events_box],
                       outputs=[user_state, render_box, *refinement, *frame_numbers, aspect],
                       **js_kwargs(COLLECT_JS), **QUIET).then(**render)

    def detect_fn(state, events, progress=gr.Progress()):
        # a detect event alone (segfillCollectEvents' 'detect' channel): it changes no panel control
        state, text, *_controls = cb.on_events(state, events, host, progress=progress)
        return state, text, ""

    detect_button.click(detect_fn, inputs=[user_state, events_box], outputs=[user_state, render_box, detect_progress],
                        **js_kwargs(COLLECT_DETECT_JS)).then(**render)

    # opening an image: read and show it, then SAM's embedding (the canvas shows the photo and a busy note)
    def file_fn(state, file):
        state, payload = cb.on_file(state, file, host)
        return state, payload, None

    def embed_fn(state, model_name):
        return tuple(_unwrap(cb.on_embed(state, model_name, host)))

    # (a front-end-only step reports no completion in gradio 3: both follow the Python step directly)
    opened = file_input.upload(file_fn, inputs=[user_state, file_input], outputs=[user_state, render_box, file_input],
                               **QUIET)
    opened.then(**render)
    opened.then(embed_fn, inputs=[user_state, model_dropdown], outputs=[user_state, render_box], **QUIET).then(**render)

    for control in refinement:
        control.input(cb.on_controls, inputs=[user_state, *refinement], outputs=[user_state, render_box],
                      **QUIET).then(**render)
    for name, slider in zip(cb.REFINEMENT_FIELDS, refinement[1:], strict=True):
        if isinstance(slider, gr.Slider):  # a drag is one undo step until the thumb is let go
            slider.release(lambda state, _value, key=name: cb.on_release(state, key), inputs=[user_state, slider],
                           outputs=[user_state], **QUIET)

    # models
    def model_fn(state, model_name):
        return cb.on_model(state, model_name, host)

    switching = model_dropdown.input(cb.on_model_starting, inputs=[user_state, model_dropdown],
                                     outputs=[user_state, render_box], **QUIET)
    switching.then(**render)
    switching.then(model_fn, inputs=[user_state, model_dropdown], outputs=[user_state, render_box],
                   **QUIET).then(**render)
    refresh_button.click(_refresh(host), inputs=[model_dropdown], outputs=[model_dropdown]).then(
        lambda: model_advice_html(host), inputs=None, outputs=[model_advice], **QUIET)

    def download_fn(name):
        yield from download_model_progress(host, name)

    download_button.click(download_fn, inputs=[download_choice], outputs=[download_status]).then(
        _refresh(host), inputs=[model_dropdown], outputs=[model_dropdown]).then(
        lambda: model_advice_html(host), inputs=None, outputs=[model_advice], **QUIET)

    # the panel's tabs: the Outpaint tab shows the frame on the canvas
    outpaint_tab.select(fn=None, inputs=None, outputs=None, **js_kwargs(_mode_js("frame")))
    for tab in (mask_tab, inpaint_tab, model_tab):
        tab.select(fn=None, inputs=None, outputs=None, **js_kwargs(_mode_js("select")))

    _wire_jobs(host, user_state, render_box, refinement[1:], inpaint, outpaint, inpaint_button, outpaint_button,
               inpaint_job, outpaint_job, frame_numbers)
    _wire_frame(host, user_state, render_box, frame_numbers, aspect, anchor, zoom15, zoom2, frame_clear)
    if send_button is not None:
        _wire_send(host, user_state, render_box, send_button, send_box)


def _refresh(host: Host) -> Callable[[Any], Any]:
    def refresh(current):
        names = st.model_names(host)
        value = current if current in names else (names[0] if names else None)
        return gr.update(choices=names, value=value)

    return refresh


def _host_line(host: Host) -> str:
    backend = getattr(getattr(host, "backend", None), "name", None)
    where = {"standalone": "the standalone app", "webui": "the WebUI", "forge": "Forge"}.get(host.name, host.name)
    return f"Running in {where}" + (f" with the {backend} backend." if backend else " with its loaded checkpoint.")


def _wire_jobs(host: Host, user_state: Any, render_box: Any, refinement: list, inpaint: _JobControls,
               outpaint: _JobControls, inpaint_button: Any, outpaint_button: Any, inpaint_job: Any,
               outpaint_job: Any, frame_numbers: list) -> None:
    render = _render(render_box)
    prompts = inpaint.prompts

    def inpaint_fn(state, preset, *values, progress=gr.Progress()):
        state, payload, _image, _info = actions.on_inpaint(state, *values, host=host, progress=_progress_adapter(progress),
                                                           preset=preset)
        return state, payload, ""

    def outpaint_fn(state, preset, *values, progress=gr.Progress()):
        state, payload, _image, _info = actions.on_outpaint(state, *values, host=host,
                                                            progress=_progress_adapter(progress), preset=preset)
        return state, payload, ""

    inpaint_button.click(fn=None, inputs=None, outputs=None, **js_kwargs(_busy_js("Inpainting…")))
    inpaint_button.click(inpaint_fn, inputs=[user_state, inpaint.preset, *inpaint.generation],
                         outputs=[user_state, render_box, inpaint_job]).then(**render)
    outpaint_button.click(fn=None, inputs=None, outputs=None, **js_kwargs(_busy_js("Outpainting…")))
    outpaint_button.click(outpaint_fn, inputs=[user_state, outpaint.preset, *outpaint.generation, *frame_numbers],
                          outputs=[user_state, render_box, outpaint_job]).then(**render)

    for job in (inpaint, outpaint):
        def preset_fn(state, name, kind=job.kind):
            values = _unwrap(actions.on_preset(state, name, kind, takes_prompts=prompts, host=host))
            if kind != "inpaint":  # outpaint presets have no mask refinement
                values = values[:3] + values[3 + len(actions.PRESET_REFINEMENT):]
            return tuple(values)

        targets = refinement if job.kind == "inpaint" else []
        job.preset.input(preset_fn, inputs=[user_state, job.preset],
                         outputs=[user_state, render_box, job.summary, *targets, *job.generation], **QUIET).then(**render)
        for name, control in zip(actions.GENERATION_CONTROLS, job.generation, strict=True):
            control.input(lambda state, _value, key=f"{job.kind}.{name}": cb.on_mark_edited(state, key),
                          inputs=[user_state, control], outputs=[user_state], **QUIET)


def _wire_frame(host: Host, user_state: Any, render_box: Any, frame_numbers: list, aspect: Any, anchor: Any,
                zoom15: Any, zoom2: Any, frame_clear: Any) -> None:
    render = _render(render_box)
    outputs = [user_state, render_box, *frame_numbers, aspect]

    def numbers_fn(state, *values):
        return tuple(_unwrap(actions.on_frame_numbers(state, *values, host=host)))

    def shape_fn(state, aspect_value, anchor_value):
        return tuple(_unwrap(actions.on_frame_shape(state, aspect_value, anchor_value, host=host)))

    def zoom_fn(factor):
        def zoom(state, anchor_value):
            return tuple(_unwrap(actions.on_frame_shape(state, None, anchor_value, host=host, zoom=factor)))

        return zoom

    def clear_fn(state):
        return tuple(_unwrap(actions.on_frame_clear(state, host=host)))

    for number in frame_numbers:
        number.input(numbers_fn, inputs=[user_state, *frame_numbers], outputs=outputs, **QUIET).then(**render)
    for control in (aspect, anchor):
        control.input(shape_fn, inputs=[user_state, aspect, anchor], outputs=outputs, **QUIET).then(**render)
    zoom15.click(zoom_fn(1.5), inputs=[user_state, anchor], outputs=outputs, **QUIET).then(**render)
    zoom2.click(zoom_fn(2.0), inputs=[user_state, anchor], outputs=outputs, **QUIET).then(**render)
    frame_clear.click(clear_fn, inputs=[user_state], outputs=outputs, **QUIET).then(**render)
    for trigger in (zoom15, zoom2, frame_clear):
        trigger.click(fn=None, inputs=None, outputs=None, **js_kwargs(_mode_js("frame")))


def _wire_send(host: Host, user_state: Any, render_box: Any, send_button: Any, send_box: Any) -> None:
    render = _render(render_box)
    send_targets = getattr(host, "send_to_inpaint_targets", None)
    targets = send_targets() if send_targets is not None else getattr(host, "inpaint_upload_components", None)
    if targets and send_targets is not None:
        # The WebUI host fills Inpaint upload and sets img2img's width/height (the image's aspect) and "Inpaint
        # area" (Only masked for a small mask), and labels a whole-image mask as such.
        def send_fn(state, _payload):
            state, text, image, mask = cb.send_images(state)
            return (state, text, *host.send_to_inpaint_values(image, mask))

        send_button.click(send_fn, inputs=[user_state, send_box], outputs=[user_state, render_box, *targets],
                          **js_kwargs(SWITCH_JS)).then(**render)
    elif targets:
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
    from segfill.errors import Cancelled
    from segfill.tasks import board_of, new_channel
    from segfill.ui.render import API_PREFIX

    channel = new_channel()  # this download's own: the Cancel button in this page's HTML is the only holder
    cancel_url = f"{API_PREFIX}/tasks/{channel}/cancel"
    updates: queue.Queue[tuple] = queue.Queue()
    outcome: dict = {}
    with board_of(host).run(channel, "download", f"Downloading {name}…") as task:

        def progress(done: int, total: int | None = None, *_: Any) -> None:
            task.progress(done, total or 0, "")
            updates.put((done, total))

        def run() -> None:
            try:
                outcome["path"] = download_model(spec, folder, progress=progress, should_stop=task.token)
            except Exception as exc:  # shown to the user below; SegFillError carries a readable sentence
                outcome["error"] = exc
            finally:
                updates.put(None)

        threading.Thread(target=run, name="segfill-download", daemon=True).start()
        yield DOWNLOAD_RUNNING_HTML.format(pct=0, text=html.escape(f"Connecting for {name}…"), cancel_url=cancel_url)
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
            eta = task.progress.report().eta_s
            if total and eta is not None and done:
                text += f", about {max(1, round(eta))} s left"
            if task.token.cancelled:
                text = "Cancelling…"
            yield DOWNLOAD_RUNNING_HTML.format(pct=pct, text=html.escape(text), cancel_url=cancel_url)
    if isinstance(outcome.get("error"), Cancelled):
        yield '<span class="segfill-download">Download cancelled; nothing was kept.</span>'
        return
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
