"""A stand-in for the WebUI around the SegFill tab, to test "Send to img2img inpaint" in a real browser.

It serves the SegFill tab next to two image boxes with the WebUI's elem_ids (``img_inpaint_base``,
``img_inpaint_mask``) and a ``switch_to_img2img_tab`` that records its argument, like the WebUI's. With
``--mode python`` the host carries the two components (what ``scripts/segfill_tab.py`` does); with
``--mode browser`` it does not, and the canvas script hands the files over.

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


def build(sam_checkpoint: Path, mode: str, layout: str = "plain"):
    import gradio as gr

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
    parser.add_argument("--mode", choices=("python", "browser"), required=True)
    parser.add_argument("--layout", choices=("plain", "webui"), default="plain")
    args = parser.parse_args()
    build(args.sam_checkpoint, args.mode, args.layout).launch(server_name="127.0.0.1", server_port=args.port, show_error=True)


if __name__ == "__main__":
    main()
