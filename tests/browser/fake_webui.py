"""A stand-in for the WebUI around the SegFill tab, to test "Send to img2img inpaint" in a real browser.

It serves the SegFill tab next to two image boxes with the WebUI's elem_ids (``img_inpaint_base``,
``img_inpaint_mask``) and a ``switch_to_img2img_tab`` that records its argument, like the WebUI's. With
``--mode python`` the host carries the two components (what ``scripts/segfill_tab.py`` does); with
``--mode browser`` it does not, and the canvas script hands the files over. ``--mode glue`` is the WebUI's own
wiring: the real ``scripts/segfill_tab.py`` on the fakes of ``modules.*`` (``tests/webui/fakes.py``) builds the
``WebUIHost``, captures img2img's Inpaint upload image and mask, Width, Height and "Inpaint area" (components with
the WebUI's elem_ids, built in an img2img Blocks of their own) and builds the tab; the page renders both Blocks as
the WebUI does, so "Send to img2img inpaint" also sets the size and the inpaint area.

    python -m tests.browser.fake_webui --port 7999 --sam-checkpoint tiny.pth --mode browser

``--layout webui`` puts the tab where the WebUI does (below its quicksettings, in a row of tabs), for the layout
checks at 1024×768.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FAKE_WEBUI_JS = """<script>
window.switch_to_img2img_tab = function (n) { window.segfillFakeSwitchedTo = n; };
</script>
"""


WEBUI_HEADER_HTML = """<div id="fake_quicksettings" style="height:64px;display:flex;align-items:center;gap:12px">
<b>Stable Diffusion checkpoint</b><select><option>512-inpainting-ema.safetensors</option></select></div>"""


def build_glue(sam_checkpoint: Path, scratch: Path):
    """The page of ``--mode glue`` (see the module's doc)."""
    import shutil

    import gradio as gr

    from segfill.app import _inject_scripts_gradio3, css_source, script_tags
    from segfill.ui.compat import GRADIO4, blocks_kwargs, queue_kwargs
    from tests.webui.fakes import FakeModules, fake_ldm_model

    (scratch / "models" / "sam").mkdir(parents=True, exist_ok=True)
    shutil.copy(sam_checkpoint, scratch / "models" / "sam" / sam_checkpoint.name)
    modules = FakeModules(scratch, sd_model=fake_ldm_model(9, "hybrid", "512-inpainting-ema.safetensors"),
                          checkpoints=["512-inpainting-ema.safetensors"]).install()
    modules.opts.segfill_sam_default_model = sam_checkpoint.name
    glue = modules.load_script("segfill_tab.py")
    [capture] = modules.callbacks["after_component"]
    with gr.Blocks(analytics_enabled=False) as img2img:  # the WebUI builds img2img before the extension tabs
        with gr.Row():
            width = gr.Slider(64, 2048, value=512, step=8, label="Width", elem_id="img2img_width", interactive=True)
            height = gr.Slider(64, 2048, value=512, step=8, label="Height", elem_id="img2img_height", interactive=True)
        area = gr.Radio(["Whole picture", "Only masked"], value="Whole picture", type="index", label="Inpaint area",
                        elem_id="img2img_inpaint_full_res", interactive=True)
        with gr.Row():
            base = gr.Image(type="pil", label="Image for img2img", elem_id="img_inpaint_base", height=220,
                            interactive=True)
            mask = gr.Image(type="pil", label="Mask", image_mode="RGBA", elem_id="img_inpaint_mask", height=220,
                            interactive=True)
    for component in (width, height, area, base, mask):
        capture(component, elem_id=component.elem_id)
    [on_ui_tabs] = modules.callbacks["ui_tabs"]
    [(segfill_tab, title, tab_id)] = on_ui_tabs()
    head = FAKE_WEBUI_JS + script_tags()
    with gr.Blocks(**blocks_kwargs(css=css_source(), head=head, title="fake WebUI")) as demo:
        gr.HTML(WEBUI_HEADER_HTML)
        with gr.Tabs(elem_id="tabs", selected=tab_id):
            with gr.Tab("img2img", id="img2img", elem_id="tab_img2img"):
                img2img.render()
            with gr.Tab(title, id=tab_id, elem_id=f"tab_{tab_id}"):
                segfill_tab.render()
    if not GRADIO4:
        _inject_scripts_gradio3(head)
    demo.queue(**queue_kwargs(2))
    demo.segfill_glue = (glue, modules)  # kept alive with the page
    return demo


def build(sam_checkpoint: Path, mode: str, layout: str = "plain", scratch: Path | None = None):
    import gradio as gr

    if mode == "glue":
        if scratch is None:
            raise SystemExit("--mode glue needs --scratch DIR (the fake WebUI's models folder goes there)")
        return build_glue(sam_checkpoint, scratch)

    from segfill.app import _inject_scripts_gradio3, css_source, script_tags
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.ui.builder import build_tab_contents
    from segfill.ui.compat import GRADIO4, blocks_kwargs, queue_kwargs

    host = StandaloneHost(SamManager([sam_checkpoint.parent], device="cpu"), create_backend("opencv"),
                          defaults=HostDefaults(sam_model=sam_checkpoint.name))
    host.supports_send_to_img2img = True
    host.takes_prompts = True  # like the WebUI's checkpoint: the prompt, seed, steps, CFG controls are shown
    head = FAKE_WEBUI_JS + script_tags()
    with gr.Blocks(**blocks_kwargs(css=css_source(), head=head, title="fake WebUI")) as demo:
        if layout == "webui":  # like the WebUI's page: quicksettings above a row of tabs, SegFill's tab shown
            gr.HTML(WEBUI_HEADER_HTML)
            with gr.Tabs(elem_id="tabs", selected="segfill"):
                with gr.Tab("img2img", id="img2img"):
                    base = gr.Image(type="pil", label="Inpaint upload: image", elem_id="img_inpaint_base", height=160)
                    mask = gr.Image(type="pil", label="Inpaint upload: mask", elem_id="img_inpaint_mask", height=160)
                with gr.Tab("SegFill", id="segfill", elem_id="tab_segfill"):
                    if mode == "python":
                        host.inpaint_upload_components = [base, mask]
                    build_tab_contents(host)
        else:
            with gr.Row():
                base = gr.Image(type="pil", label="Inpaint upload: image", elem_id="img_inpaint_base", height=160)
                mask = gr.Image(type="pil", label="Inpaint upload: mask", elem_id="img_inpaint_mask", height=160)
            if mode == "python":
                host.inpaint_upload_components = [base, mask]
            build_tab_contents(host)
    if not GRADIO4:
        _inject_scripts_gradio3(head)
    demo.queue(**queue_kwargs(2))
    return demo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sam-checkpoint", type=Path, required=True)
    parser.add_argument("--mode", choices=("python", "browser", "glue"), required=True)
    parser.add_argument("--layout", choices=("plain", "webui"), default="plain")
    parser.add_argument("--scratch", type=Path, help="--mode glue: a folder for the fake WebUI's models")
    args = parser.parse_args()
    build(args.sam_checkpoint, args.mode, args.layout, args.scratch).launch(server_name="127.0.0.1", server_port=args.port, show_error=True)


if __name__ == "__main__":
    main()
