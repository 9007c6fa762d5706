"""The tab builder and the standalone app, without a browser: components, JS/CSS loading, API mounting."""

from __future__ import annotations

import pytest

from segfill.hosts.base import HostDefaults
from segfill.hosts.standalone import StandaloneHost


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.sam.manager import SamManager
    from tests.tiny_models import save_tiny_sam

    folder = tmp_path_factory.mktemp("app_models")
    save_tiny_sam(folder / "tiny.pth")
    return StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv"),
                          defaults=HostDefaults(sam_model="tiny.pth"))


class WebUILikeHost(StandaloneHost):
    name = "webui"
    supports_send_to_img2img = True


def elem_ids(blocks) -> set:
    return {getattr(block, "elem_id", None) for block in blocks.blocks.values()} - {None}


def test_tab_has_its_channel_components_and_no_send_button_standalone(host):
    from segfill.ui.builder import build_tab

    ids = elem_ids(build_tab(host))
    for required in ("segfill_events", "segfill_render", "segfill_event_button", "segfill_canvas_host", "segfill_file",
                     "segfill_model", "segfill_model_refresh", "segfill_download_button", "segfill_op", "segfill_grow",
                     "segfill_shrink", "segfill_feather", "segfill_fill_holes", "segfill_specks", "segfill_invert",
                     "segfill_inpaint", "segfill_outpaint", "segfill_preset", "segfill_outpaint_preset", "segfill_aspect",
                     "segfill_anchor", "segfill_zoom_15", "segfill_zoom_2", "segfill_pad_left", "segfill_pad_right",
                     "segfill_pad_top", "segfill_pad_bottom"):
        assert required in ids, required
    assert "segfill_image" not in ids and "segfill_result" not in ids, "one image input (the canvas), results on it"
    assert "segfill_send_inpaint" not in ids


def test_webui_host_gets_the_send_to_inpaint_button(host):
    from segfill.ui.builder import build_tab

    webui = WebUILikeHost(host.sam, host.backend, host.embeddings, host.defaults())
    assert "segfill_send_inpaint" in elem_ids(build_tab(webui))


def test_hidden_channel_is_hidden_by_css_not_visible_false(host):
    from segfill.ui.builder import build_tab

    tab = build_tab(host)
    channel = [b for b in tab.blocks.values() if getattr(b, "elem_id", None) in ("segfill_events", "segfill_render",
                                                                                   "segfill_file")]
    assert len(channel) == 3
    for block in channel:
        assert block.visible is not False
        assert "segfill-hidden" in (block.elem_classes or [])
    from segfill.app import css_source

    assert ".segfill-hidden" in css_source()


def test_standalone_page_loads_our_script_and_mounts_the_api(host):
    from fastapi.testclient import TestClient

    from segfill.app import create_server_app, javascript_source

    assert "segfillCollectEvents" in javascript_source() and "segfillSendToInpaint" in javascript_source()
    app = create_server_app(host)
    paths = {getattr(route, "path", "") for route in app.routes}
    assert any(path.startswith("/segfill/v1") for path in paths), sorted(paths)
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200
        config = client.get("/config")
        assert "segfillCollectEvents" in page.text + config.text
        assert "segfill-hidden" in page.text + config.text  # our CSS


def test_serve_command_options(tmp_path, monkeypatch):
    import torch

    from segfill.cli import build_parser
    from segfill.errors import InputError, ModelError
    from segfill.ui.cli import build_host, model_folders
    from tests.tiny_models import save_tiny_sam

    checkpoint = save_tiny_sam(tmp_path / "ckpt" / "mine.pth")
    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path / "env_models"))
    args = build_parser().parse_args(["serve", "--sam-checkpoint", str(checkpoint), "--port", "9999",
                                      "--models-dir", str(tmp_path / "extra"), "--output-dir", str(tmp_path / "out")])
    assert args.port == 9999 and args.host == "127.0.0.1" and args.backend == "opencv"
    folders = [p.resolve() for p in model_folders(args)]
    assert folders[0] == checkpoint.parent.resolve()
    assert (tmp_path / "extra").resolve() in folders and (tmp_path / "env_models").resolve() in folders
    built = build_host(args)
    assert built.defaults().sam_model == "mine.pth"
    assert built.backend.name == "opencv"
    assert built.output_dir == tmp_path / "out" and not built.output_dir.exists()  # made on the first save
    assert build_parser().parse_args(["serve"]).output_dir.name == "outputs"
    missing = build_parser().parse_args(["serve", "--sam-checkpoint", str(tmp_path / "nope.pth")])
    with pytest.raises(InputError):
        model_folders(missing)
    not_sam = tmp_path / "ckpt" / "notes.pth"
    torch.save({"weight": torch.zeros(2, 2)}, not_sam)
    wrong = build_parser().parse_args(["serve", "--sam-checkpoint", str(not_sam)])
    with pytest.raises(ModelError, match="notes.pth"):
        build_host(wrong)


def test_send_to_inpaint_fills_captured_img2img_components_from_python(host):
    import gradio as gr

    from segfill.ui.builder import build_tab_contents

    with gr.Blocks(analytics_enabled=False) as demo:
        base = gr.Image(type="pil", elem_id="img_inpaint_base")
        mask = gr.Image(type="pil", elem_id="img_inpaint_mask")
        webui = WebUILikeHost(host.sam, host.backend, host.embeddings, host.defaults())
        webui.inpaint_upload_components = (base, mask)
        build_tab_contents(webui)
    send = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "segfill_send_inpaint")
    config = demo.get_config_file()
    wired = [d for d in config["dependencies"]
             if send._id in [t if isinstance(t, int) else t[0] for t in d.get("targets", [])]]
    assert wired, "the send button has a listener"
    assert {base._id, mask._id} <= set(wired[0]["outputs"])
    assert "switch_to_img2img_tab(4)" in (wired[0].get("js") or wired[0].get("_js") or "")


def test_serve_checks_its_output_folder_without_making_it(tmp_path):
    from segfill.fileio import OutputError
    from segfill.ui.cli import check_output_folder

    later = tmp_path / "not" / "yet"
    check_output_folder(later)  # made on the first save, not at start
    assert not (tmp_path / "not").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(OutputError, match="not a writable folder"):
        check_output_folder(tmp_path / "file" / "below")
