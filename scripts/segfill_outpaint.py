"""WebUI glue: the img2img "SegFill outpaint" script. Thin on purpose: the run is
``segfill.hosts.webui.run_outpaint_script``; this file only lays out the controls.

The script has ONE argument: a JSON object of ``segfill.args.OutpaintArgs`` fields, held by a hidden
textbox that the visible controls rewrite on every change. API callers send ``script_args: [{...}]``, and
adding a control never shifts anyone's argument positions (see docs/WEBUI.md).
"""

from typing import get_args

import gradio as gr
from modules import processing, scripts

from segfill import settings as segfill_settings
from segfill.args import OutpaintArgs, PrefillMethod
from segfill.hosts.webui.host import current_host
from segfill.hosts.webui.script import (
    SCRIPT_TITLE,
    run_outpaint_script,
    script_args_from_controls,
    script_infotext_fields,
)
from segfill.outpaint.geometry import ANCHORS, ASPECT_PRESETS
from segfill.ui.compat import GRADIO4

QUIET = {"show_progress": "hidden" if GRADIO4 else False}
PREFILL_CHOICES = list(get_args(PrefillMethod))


def make_processed(p, images, seeds, infotexts, comments):
    seed = seeds[0] if seeds else p.seed
    return processing.Processed(p, images, seed=seed, info=infotexts[0] if infotexts else "",
                                all_seeds=seeds or None, infotexts=infotexts, comments=comments)


def model_status_markdown():
    """Always a sentence: inpainting model loaded, not loaded yet (Forge), or which one to switch to."""
    host = current_host()
    if host is None:
        return ""
    status = host.model_status()
    if status.warning:
        return f"⚠ {status.warning}"
    return ("✓ " if status.loaded and status.inpainting else "") + status.sentence


def inpainting_checkpoints():
    host = current_host()
    return host.inpainting_checkpoints() if host is not None else []


class SegFillOutpaintScript(scripts.Script):
    def title(self):
        return SCRIPT_TITLE

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        d = OutpaintArgs.__fields__
        host = current_host()
        # the SegFill settings are the defaults the API and the tab use too (segfill.defaults before any change)
        setting = segfill_settings.read_all(host.bindings.opts) if host is not None else {}
        slider = lambda name, label, lo, hi, step, value: gr.Slider(  # noqa: E731
            minimum=lo, maximum=hi, step=step, value=value, label=label, elem_id=self.elem_id(name))
        controls = {}
        with gr.Group(elem_id=self.elem_id("group")):
            status = gr.Markdown(model_status_markdown(), elem_id=self.elem_id("model_status"))
            with gr.Row():
                choices = inpainting_checkpoints()
                inpaint_models = gr.Dropdown(label="Inpainting checkpoint", choices=choices,
                                             value=choices[0] if choices else None,
                                             elem_id=self.elem_id("inpaint_checkpoint"))
                check = gr.Button("Check checkpoint", elem_id=self.elem_id("check_model"))
                switch = gr.Button("Switch", elem_id=self.elem_id("switch_model"))
            controls["size_mode"] = gr.Radio(["padding", "aspect"], value="padding", label="Size by",
                                             elem_id=self.elem_id("size_mode"))
            with gr.Row():
                for side in ("left", "right", "top", "bottom"):
                    controls[side] = slider(side, f"Pad {side}", 0, 2048, 8, d[side].default)
            with gr.Row():
                controls["aspect"] = gr.Dropdown([""] + list(ASPECT_PRESETS), value="", label="Aspect preset",
                                                 elem_id=self.elem_id("aspect"))
                controls["anchor"] = gr.Dropdown(list(ANCHORS), value=d["anchor"].default, label="Anchor",
                                                 elem_id=self.elem_id("anchor"))
                controls["prefill"] = gr.Dropdown(PREFILL_CHOICES, value=d["prefill"].default, label="Pre-fill",
                                                  elem_id=self.elem_id("prefill"))
                controls["strength"] = slider("strength", "SegFill denoising strength of the new area (img2img's "
                                              "Denoising strength slider is not used)", 0, 1, 0.01,
                                              d["strength"].default)
            with gr.Row():
                controls["tile_size"] = slider("tile_size", "Tile size (0 = img2img width/height)", 0, 2048, 64,
                                               int(setting.get("segfill_tile_size") or 0))
                controls["overlap"] = slider("overlap", "Tile overlap", 0, 512, 8,
                                             int(setting.get("segfill_overlap", d["overlap"].default)))
                controls["band"] = slider("band", "Seam band", 0, 256, 4, d["band"].default)
                controls["feather"] = slider("feather", "Feather", 0, 256, 1,
                                             int(setting.get("segfill_feather", d["feather"].default)))
            with gr.Row():
                controls["max_step"] = slider("max_step", "Max px per side per pass (0 = half a tile)", 0, 2048, 16, 0)
                controls["color_match"] = gr.Checkbox(value=d["color_match"].default, label="Colour match",
                                                      elem_id=self.elem_id("color_match"))
                controls["seam_fix"] = gr.Checkbox(value=d["seam_fix"].default, label="Seam-fix pass",
                                                   elem_id=self.elem_id("seam_fix"))
            names = list(controls)
            initial = script_args_from_controls({n: c.value for n, c in controls.items()})
            args_json = gr.Textbox(value=initial, visible=False, label="SegFill arguments (JSON)",
                                   elem_id=self.elem_id("args"))

        def assemble(*values):
            return script_args_from_controls(dict(zip(names, values, strict=True)))

        for component in controls.values():
            component.change(assemble, inputs=list(controls.values()), outputs=[args_json], **QUIET)

        def refresh_model():
            choices = inpainting_checkpoints()
            return model_status_markdown(), gr.update(choices=choices, value=choices[0] if choices else None)

        def switch_model(title):
            host = current_host()
            if host is None or not title:
                return model_status_markdown()
            try:
                host.switch_checkpoint(title)
            except Exception as exc:
                return f"⚠ {exc}"
            return model_status_markdown() or f"Loaded {title}."

        check.click(refresh_model, inputs=[], outputs=[status, inpaint_models], **QUIET)
        switch.click(switch_model, inputs=[inpaint_models], outputs=[status])

        self.infotext_fields = script_infotext_fields(controls) + [
            (controls["size_mode"], lambda params: "aspect" if "SegFill aspect" in params else "padding")]
        return [args_json]

    def run(self, p, *args):
        host = current_host()
        slot = (getattr(self, "args_from", None), getattr(self, "args_to", None))
        return run_outpaint_script(p, args, host.bindings, make_processed, slot)
