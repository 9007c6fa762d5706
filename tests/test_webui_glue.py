"""The WebUI glue with fakes of ``modules.*``: what lands on the processing object, how the script's one
JSON argument is read, infotext round trips, the queue lock, settings registration, install.py.

Fakes prove the mapping only; the same paths run for real in ``tests/webui/`` against a live WebUI.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segfill import infotext, settings
from segfill.args import InpaintArgs, OutpaintArgs
from segfill.errors import InputError
from segfill.hosts.webui.bindings import WebUIBindings
from segfill.hosts.webui.checkpoints import is_inpainting_model
from segfill.hosts.webui.host import WebUIHost, current_host
from segfill.hosts.webui.infotext_patch import patch_infotext
from segfill.hosts.webui.locking import ThreadReentrantLock
from segfill.hosts.webui.script import decode_script_args, outpaint_args_for_processing, script_args_from_controls
from segfill.hosts.webui.tile_backend import FILL_ORIGINAL, apply_tile_fields, copy_processing, feather_to_mask_blur
from tests.webui.fakes import (
    REPAINT_COLOUR,
    FakeImg2Img,
    FakeModules,
    FakeOpts,
    FakeProcessing,
    FakeState,
    SavedImages,
    fake_ldm_model,
)

REPO = Path(__file__).resolve().parents[1]


def _picture(w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------------------------------------
# processing fields


def test_tile_fields_map_onto_img2img_processing():
    p = FakeImg2Img(prompt="a lake", width=512, height=768, inpainting_fill=0, mask_blur=4, inpaint_full_res=True,
                    n_iter=3, batch_size=2)
    tile = Image.new("RGB", (96, 64), "white")
    mask = Image.new("L", (96, 64), 255)
    apply_tile_fields(p, tile, mask, seed=1234, strength=0.6)
    assert p.init_images[0].size == (96, 64)
    assert p.image_mask.mode == "L" and p.image_mask.size == (96, 64)
    assert (p.width, p.height) == (96, 64)
    assert p.inpainting_fill == FILL_ORIGINAL  # the engine pre-filled the new area
    assert (p.mask_blur_x, p.mask_blur_y) == (0, 0)  # the engine feathers the seam itself
    assert p.inpaint_full_res is False  # whole tile, not "only masked"
    assert p.denoising_strength == pytest.approx(0.6)
    assert p.seed == 1234 and (p.n_iter, p.batch_size) == (1, 1)
    assert p.do_not_save_samples is True
    assert p.prompt == "a lake"  # untouched unless the request carries a prompt


def test_copy_processing_isolates_mutable_fields():
    p = FakeImg2Img()
    p.extra_generation_params["User"] = "x"
    q = copy_processing(p)
    q.extra_generation_params["SegFill"] = "outpaint"
    assert "SegFill" not in p.extra_generation_params and q.extra_generation_params["User"] == "x"


# ---------------------------------------------------------------------------------------------------------
# which checkpoint


@pytest.mark.parametrize("model, expected", [
    (fake_ldm_model(9, "hybrid"), True),  # SD2-inpainting (1.10)
    (fake_ldm_model(4, "crossattn"), False),  # plain SD1/SD2
    (fake_ldm_model(8, "hybrid"), False),  # instruct-pix2pix: hybrid but 8 channels
    (types.SimpleNamespace(is_inpaint=True), True),  # Forge
    (types.SimpleNamespace(is_inpaint=False), False),
    (types.SimpleNamespace(model=types.SimpleNamespace(conditioning_key="hybrid")), True),  # no UNet reachable
    (None, None),
    (types.SimpleNamespace(), None),  # Forge placeholder before the first job
])
def test_inpainting_model_detection(model, expected):
    assert is_inpainting_model(model) is expected


def _host(sd_model=None, checkpoints=(), processing=None, state=None, lock=None, opts=None, saved=None, **kw):
    state = state or FakeState()
    bindings = WebUIBindings(
        process_images=processing or FakeProcessing(state), img2img_class=FakeImg2Img, state=state,
        opts=opts or FakeOpts(), get_sd_model=lambda: sd_model, queue_lock=lock,
        list_checkpoints=lambda: list(checkpoints), save_image=saved, **kw)
    return WebUIHost(bindings)


def test_model_warning_names_installed_inpainting_checkpoints():
    host = _host(fake_ldm_model(4, title="v2-1_512.safetensors [abc]"),
                 checkpoints=["v2-1_512.safetensors [abc]", "512-inpainting-ema.safetensors [def]", "sd15-Inpainting.ckpt"])
    warning = host.model_warning()
    assert "v2-1_512.safetensors [abc]" in warning and "not an inpainting model" in warning
    assert "512-inpainting-ema.safetensors [def]" in warning and "sd15-Inpainting.ckpt" in warning
    assert host.inpainting_checkpoints() == ["512-inpainting-ema.safetensors [def]", "sd15-Inpainting.ckpt"]
    assert _host(fake_ldm_model(9, "hybrid")).model_warning() is None


def test_switch_checkpoint_goes_through_the_binding_and_checks_the_title():
    switched = []
    host = _host(checkpoints=["a.safetensors", "b-inpainting.safetensors"], switch_checkpoint=switched.append)
    assert "b-inpainting" in host.switch_checkpoint("b-inpainting.safetensors")
    assert switched == ["b-inpainting.safetensors"]
    with pytest.raises(InputError):
        host.switch_checkpoint("missing.ckpt")


# ---------------------------------------------------------------------------------------------------------
# queue lock


def test_reentrant_wrapper_lets_one_thread_nest_and_blocks_others():
    raw = threading.Lock()
    lock = ThreadReentrantLock(raw)
    with lock:
        with lock:  # the API holds it, then the host asks again: no deadlock
            assert raw.locked() and lock.held_here
        assert raw.locked()
        got = []
        t = threading.Thread(target=lambda: got.append(raw.acquire(timeout=0.05)))
        t.start()
        t.join()
        assert got == [False]  # a WebUI generation on another thread waits
    assert not raw.locked() and not lock.held_here


def test_tab_inpaint_builds_masked_img2img_under_the_queue_lock_and_saves(tmp_path):
    raw = threading.Lock()
    state = FakeState()
    processing = FakeProcessing(state, lock=raw)
    saved = SavedImages()
    offloaded = []
    host = _host(fake_ldm_model(9, "hybrid"), processing=processing, state=state, lock=raw, saved=saved,
                 opts=FakeOpts(segfill_sam_unload_policy="before_generation", segfill_outdir=str(tmp_path)))
    host._sam = types.SimpleNamespace(offload_to_cpu=lambda: offloaded.append(True))
    image = _picture(64, 48)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (16, 8, 40, 32))
    args = InpaintArgs(prompt="a red ball", seed=77, steps=3, strength=0.9)
    result = host.inpaint(image, mask, args)

    assert offloaded == [True]  # SAM left the GPU before the checkpoint ran
    assert state.begun == ["segfill-inpaint"] and state.ended == 1
    [call] = processing.calls
    assert call["size"] == image.size and call["mask_size"] == image.size
    assert call["seed"] == 77 and call["steps"] == 3 and call["denoising_strength"] == pytest.approx(0.9)
    assert call["prompt"] == "a red ball"
    # "only masked" around the mask with the args' context, the args' feather as the WebUI's mask blur
    assert call["inpaint_full_res"] is True and call["padding"] == args.context
    blur = feather_to_mask_blur(args.feather)
    assert call["mask_blur"] == (blur, blur) and int(2.5 * blur + 0.5) <= args.feather
    assert call["inpainting_fill"] == FILL_ORIGINAL  # prefill "none" keeps what is under the mask
    assert call["extra"]["SegFill"] == "inpaint"
    assert result.images[0].size == image.size
    assert result.info["inpaint_model"] is True and result.info["warning"] is None
    out = np.array(result.images[0])
    assert (out[8:32, 16:40] == REPAINT_COLOUR).all()
    assert (out[:8] == np.array(image)[:8]).all()
    [save] = saved.saved
    assert save["path"] == str(tmp_path) and "Seed: 77" in save["info"]
    assert not raw.locked()


def test_tab_inpaint_with_a_plain_checkpoint_runs_but_says_so():
    host = _host(fake_ldm_model(4, title="plain.safetensors"), checkpoints=["plain.safetensors", "x-inpainting.ckpt"])
    image = _picture(32, 32)
    result = host.inpaint(image, Image.new("L", image.size, 255), InpaintArgs(seed=1, steps=1))
    assert result.images[0].size == image.size
    assert result.info["inpaint_model"] is False and "x-inpainting.ckpt" in result.info["warning"]


def test_tab_inpaint_rejects_a_mask_of_another_size():
    host = _host()
    with pytest.raises(InputError):
        host.inpaint(_picture(64, 48), Image.new("L", (32, 32)), InpaintArgs())


# ---------------------------------------------------------------------------------------------------------
# the script's one argument


def test_script_args_accept_dict_json_and_nothing():
    assert decode_script_args({"right": 64}) == {"right": 64}
    assert decode_script_args('{"right": 64}') == {"right": 64}
    assert decode_script_args(None) == {} and decode_script_args("") == {}
    with pytest.raises(InputError):
        decode_script_args("{not json")
    with pytest.raises(InputError):
        decode_script_args([1, 2])


def test_controls_assemble_the_json_argument():
    values = {"size_mode": "padding", "left": 0.0, "right": 256.0, "top": 0, "bottom": 0, "aspect": "16:9",
              "anchor": "center", "prefill": "edge", "strength": 0.8, "tile_size": 0, "overlap": 64.0,
              "band": 32, "feather": 24, "max_step": 0, "color_match": True, "seam_fix": False}
    data = json.loads(script_args_from_controls(values))
    assert data["right"] == 256 and isinstance(data["right"], int)
    assert "aspect" not in data and "tile_size" not in data and "max_step" not in data
    assert data["prefill"] == "edge" and data["color_match"] is True
    aspect = json.loads(script_args_from_controls({**values, "size_mode": "aspect"}))
    assert aspect["aspect"] == "16:9" and "right" not in aspect
    OutpaintArgs.parse_obj(data)  # every key is a real OutpaintArgs field


def test_outpaint_args_take_tile_size_and_seed_from_p_and_settings():
    p = FakeImg2Img(width=512, height=768, seed=99, prompt="sky")
    args = outpaint_args_for_processing({"right": 128}, p, {"segfill_overlap": 48})
    assert args.right == 128 and args.tile_size == 512 and args.seed == 99 and args.overlap == 48
    assert args.prompt == "sky"
    args = outpaint_args_for_processing({"right": 128, "tile_size": 256, "overlap": 16}, p,
                                              {"segfill_overlap": 48, "segfill_tile_size": 640})
    assert args.tile_size == 256 and args.overlap == 16
    assert outpaint_args_for_processing({}, p, {"segfill_tile_size": 640}).tile_size == 640
    with pytest.raises(InputError):
        outpaint_args_for_processing({"rigth": 128}, p)  # typos are errors, not silently ignored


# ---------------------------------------------------------------------------------------------------------
# infotext


def test_infotext_table_drops_defaults_and_round_trips():
    args = OutpaintArgs(right=96, top=32, prefill="edge", color_match=True, seed=5, prompt="x")
    params = infotext.segfill_params(args)
    assert params == {"SegFill pad right": "96", "SegFill pad top": "32", "SegFill pre-fill": "edge",
                      "SegFill colour match": "True"}
    text = "a prompt\nSteps: 20, Seed: 5, " + infotext.params_to_text({"Script": "SegFill outpaint", **params})
    parsed = infotext.parse_infotext(text)
    back = infotext.args_from_infotext(parsed, OutpaintArgs)
    assert (back.right, back.top, back.prefill, back.color_match) == (96, 32, "edge", True)
    assert back.left == 0 and back.feather == OutpaintArgs.__fields__["feather"].default


def test_infotext_quotes_values_with_commas_and_parses_them_back():
    args = OutpaintArgs(anchor="0.25,0.75", right=8)
    text = infotext.params_to_text(infotext.segfill_params(args))
    assert 'SegFill anchor: "0.25,0.75"' in text
    assert infotext.args_from_infotext(infotext.parse_infotext(text), OutpaintArgs).anchor == "0.25,0.75"


def test_every_outpaint_field_has_a_distinct_label():
    table = infotext.label_table(OutpaintArgs)
    assert len(set(table.values())) == len(table)
    assert all(label.startswith("SegFill ") for label in table.values())
    assert "prompt" not in table and "seed" not in table  # the WebUI's own infotext has those


def test_patch_infotext_sets_job_seed_and_final_size_and_each_key_once():
    tile = "p\nSteps: 2, Seed: 123, Size: 64x64, Script: SegFill outpaint, SegFill pad right: 8, Version: 1.10.1"
    out = patch_infotext(tile, seed=7, size=(200, 100),
                               params={"Script": "SegFill outpaint", "SegFill pad right": "8", "SegFill band": "4"})
    assert "Seed: 7" in out and "Size: 200x100" in out
    assert out.count("Script: SegFill outpaint") == 1 and out.count("SegFill pad right") == 1
    assert out.endswith("Version: 1.10.1, SegFill band: 4")
    assert patch_infotext("", params={"SegFill band": "4"}) == "SegFill band: 4"


# ---------------------------------------------------------------------------------------------------------
# settings


def test_settings_table_is_complete_and_host_defaults_follow_it():
    keys = [s.key for s in settings.SETTINGS]
    assert len(keys) == len(set(keys)) and all(k.startswith("segfill_") for k in keys)
    for needed in ("segfill_sam_model_dirs", "segfill_sam_default_model", "segfill_sam_device",
                   "segfill_sam_unload_policy", "segfill_embedding_cache_mib", "segfill_tile_size",
                   "segfill_overlap", "segfill_feather", "segfill_outdir"):
        assert needed in keys
    values = settings.read_all(FakeOpts(segfill_overlap=80, segfill_sam_default_model="sam_vit_b.pth"))
    defaults = settings.host_defaults(values, fallback_tile_size=768)
    assert (defaults.tile_size, defaults.overlap, defaults.sam_model) == (768, 80, "sam_vit_b.pth")
    assert settings.split_folders("/a; /b\n\n/c") == ["/a", "/b", "/c"]


def test_sam_folders_start_with_the_webui_models_folder(tmp_path):
    host = _host(opts=FakeOpts(segfill_sam_model_dirs=f"{tmp_path}/x;{tmp_path}/y"),
                 models_path=str(tmp_path / "models"))
    assert host.sam_folders() == [str(tmp_path / "models" / "sam"), f"{tmp_path}/x", f"{tmp_path}/y"]


# ---------------------------------------------------------------------------------------------------------
# scripts/*.py imported against fake modules


@pytest.fixture
def fake_modules(tmp_path):
    fakes = FakeModules(tmp_path, sd_model=fake_ldm_model(9, "hybrid"),
                        checkpoints=["sd2-inpainting.safetensors"]).install()
    yield fakes
    fakes.uninstall()


def test_tab_script_registers_settings_tab_and_routes(fake_modules):
    module = fake_modules.load_script("segfill_tab.py")
    assert [len(v) for v in fake_modules.callbacks.values()] == [1, 1, 1, 1]
    fake_modules.callbacks["ui_settings"][0]()
    registered = fake_modules.opts.data_labels
    assert set(registered) == {s.key for s in settings.SETTINGS}
    assert all(info.section == ("segfill", "SegFill") for info in registered.values())

    host = current_host()
    assert isinstance(host, WebUIHost) and host.name == "webui"
    assert host.bindings.queue_lock is fake_modules.queue_lock
    assert host.model_warning() is None  # the fake checkpoint is a 9-channel one

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    fake_modules.callbacks["app_started"][0](None, app)
    paths = {route.path for route in app.routes}
    assert any(path.startswith("/segfill/v1/") for path in paths)
    response = TestClient(app).get("/segfill/v1/health")
    assert response.status_code == 200 and response.json()["host"] == "webui"
    assert module.HOST_NAME == "webui"


def test_tab_gets_img2img_inpaint_upload_components(fake_modules):
    import gradio as gr

    fake_modules.load_script("segfill_tab.py")
    [after_component] = fake_modules.callbacks["after_component"]
    with gr.Blocks():
        base = gr.Image(elem_id="img_inpaint_base")
        mask = gr.Image(elem_id="img_inpaint_mask")
        other = gr.Image(elem_id="img2img_image")
    for component in (base, mask, other):
        after_component(component, elem_id=component.elem_id)
    [(blocks, title, elem_id)] = fake_modules.callbacks["ui_tabs"][0]()
    assert (title, elem_id) == ("SegFill", "segfill")
    assert current_host().inpaint_upload_components == [base, mask]
    elem_ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    assert "segfill_send_inpaint" in elem_ids  # the real tab, not the fallback message


def test_outpaint_script_ui_and_run_through_fake_processing(fake_modules):
    import gradio as gr

    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    script = module.SegFillOutpaintScript()
    assert script.title() == "SegFill outpaint" and script.show(True) and not script.show(False)
    with gr.Blocks():
        components = script.ui(True)
    assert len(components) == 1  # one JSON argument: adding controls never shifts API positions
    assert json.loads(components[0].value) == json.loads(script_args_from_controls(
        {"size_mode": "padding", "left": 0, "right": 0, "top": 0, "bottom": 0, "aspect": "", "anchor": "center",
         "prefill": "blur_extend", "strength": 1.0, "tile_size": 0, "overlap": 64, "band": 32, "feather": 24,
         "max_step": 0, "color_match": False, "seam_fix": False}))
    labels = {label for _, label in script.infotext_fields if isinstance(label, str)}
    assert {"SegFill pad left", "SegFill pad right", "SegFill pre-fill", "SegFill tile size",
            "SegFill colour match", "SegFill seam fix"} <= labels
    elem_ids = {c.elem_id for c, _ in script.infotext_fields}
    assert "script_img2img_segfill_outpaint_right" in elem_ids


def test_outpaint_script_run_keeps_original_pixels_and_counts_tiles(fake_modules):
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    script = module.SegFillOutpaintScript()
    image = _picture(64, 48)
    p = FakeImg2Img(prompt="a beach", init_images=[image], width=64, height=64, seed=11, steps=2,
                    outpath_samples="out")
    processed = script.run(p, {"right": 40, "bottom": 16, "prefill": "edge", "overlap": 16, "band": 8,
                               "feather": 4})
    out = processed.images[0]
    assert out.size == (104, 64)
    assert (np.array(out)[:, :64][:48 - 8, :64 - 8] == np.array(image)[:40, :56]).all()  # away from the band
    calls = fake_modules.processing.calls
    assert calls and fake_modules.state.job_count == len(calls)
    for call in calls:
        assert call["inpainting_fill"] == FILL_ORIGINAL and call["mask_blur"] == (0, 0)
        assert call["inpaint_full_res"] is False and call["n_iter"] == 1 and call["batch_size"] == 1
        assert call["do_not_save_samples"] and call["prompt"] == "a beach" and call["steps"] == 2
        assert call["size"] == (call["width"], call["height"]) and max(call["size"]) <= 64
        assert call["extra"]["Script"] == "SegFill outpaint"
    text = processed.infotexts[0]
    assert text.count("SegFill pad right") == 1
    assert "Seed: 11" in text and "Size: 104x64" in text and "SegFill pad right: 40" in text
    back = infotext.args_from_infotext(infotext.parse_infotext(text), OutpaintArgs)
    assert (back.right, back.bottom, back.prefill) == (40, 16, "edge")
    assert fake_modules.saved.saved[0]["path"] == "out"


def test_interrupt_stops_between_tiles(fake_modules):
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    fake_modules.processing.interrupt_after = 1
    p = FakeImg2Img(init_images=[_picture(64, 64)], width=64, height=64, seed=3)
    processed = module.SegFillOutpaintScript().run(p, {"right": 192, "overlap": 8, "band": 8, "feather": 4})
    assert fake_modules.state.job_count > 1
    assert len(fake_modules.processing.calls) == 1  # nothing ran after the Interrupt
    assert "Stopped by the user after 1 of" in processed.comments
    [partial] = processed.images  # what was finished, at the requested size
    assert partial.size == (256, 64)


# ---------------------------------------------------------------------------------------------------------
# install.py


def _run_install(launch):
    sys.modules["launch"] = launch
    try:
        spec = importlib.util.spec_from_file_location("segfill_install_under_test", REPO / "install.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("launch", None)


def _fake_launch(installed):
    calls = []
    launch = types.ModuleType("launch")
    launch.is_installed = lambda name: name in installed
    launch.run_pip = lambda command, desc=None, live=False: calls.append(command)
    return launch, calls


def test_install_installs_segment_anything_and_mobilesam_from_pypi_when_missing(monkeypatch):
    monkeypatch.delenv("SEGFILL_EXTRAS", raising=False)
    launch, calls = _fake_launch(installed={"torch", "cv2", "numpy", "gradio", "timm"})  # the WebUI ships timm
    _run_install(launch)
    assert calls == ['install --no-deps "segment-anything>=1.0"', 'install --no-deps "mobilesam-mirror"']
    assert not any("git+" in call or "github" in call for call in calls)  # no git URL: installs offline-capable
    for pinned in ("torch", "gradio", "opencv", "numpy", "pillow"):
        assert all(pinned not in call.lower().replace("segment-anything", "") for call in calls)


def test_install_adds_timm_for_mobilesam_only_where_it_is_missing(monkeypatch):
    monkeypatch.delenv("SEGFILL_EXTRAS", raising=False)
    launch, calls = _fake_launch(installed={"segment_anything", "mobile_sam"})
    _run_install(launch)
    assert calls == ['install --no-deps "timm"']


def test_install_second_start_runs_no_pip(monkeypatch):
    monkeypatch.delenv("SEGFILL_EXTRAS", raising=False)
    launch, calls = _fake_launch(installed={"segment_anything", "mobile_sam", "timm"})
    _run_install(launch)
    assert calls == []


def test_install_optional_extras_only_when_asked(monkeypatch):
    monkeypatch.setenv("SEGFILL_EXTRAS", "sam_hq, unknown")
    launch, calls = _fake_launch(installed={"segment_anything", "mobile_sam", "timm"})
    _run_install(launch)
    assert calls == ['install --no-deps "segment-anything-hq"']


def test_install_sam2_extra_goes_through_the_torch_safe_installer(monkeypatch):
    """sam2's sdist pins torch>=2.5.1: it must never reach a plain ``pip install sam2``."""
    import segfill.sam.sam2_install as sam2_install

    monkeypatch.setenv("SEGFILL_EXTRAS", "sam2")
    used = []
    monkeypatch.setattr(sam2_install, "install_sam2",
                        lambda **kwargs: used.append(kwargs) or sam2_install.Sam2Status(True, None, "1.1.0", "ok"))
    launch, calls = _fake_launch(installed={"segment_anything", "mobile_sam", "timm"})
    _run_install(launch)
    assert calls == [] and len(used) == 1


def test_batch_count_gives_one_outpaint_per_image_with_consecutive_seeds(fake_modules):
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    p = FakeImg2Img(init_images=[_picture(64, 48)], width=64, height=64, seed=41, n_iter=2, batch_size=1)
    processed = module.SegFillOutpaintScript().run(p, {"right": 32, "band": 8, "feather": 4, "overlap": 16})
    assert [im.size for im in processed.images] == [(96, 48), (96, 48)]
    assert ["Seed: 41" in processed.infotexts[0], "Seed: 42" in processed.infotexts[1]] == [True, True]
    calls = fake_modules.processing.calls
    assert fake_modules.state.job_count == len(calls) and len(calls) % 2 == 0
    half = len(calls) // 2
    assert [c["seed"] for c in calls[:half]] != [c["seed"] for c in calls[half:]]  # tile seeds follow the image seed
    assert len(fake_modules.saved.saved) == 2


def test_tab_and_script_load_without_segment_anything(fake_modules, monkeypatch):
    import gradio as gr

    for name in [n for n in sys.modules if n == "segment_anything" or n.startswith("segment_anything.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # import fails like a missing package
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    [(blocks, title, _)] = fake_modules.callbacks["ui_tabs"][0]()
    assert title == "SegFill"
    assert "segfill_inpaint" in {getattr(b, "elem_id", None) for b in blocks.blocks.values()}  # the real tab
    with gr.Blocks():
        assert len(module.SegFillOutpaintScript().ui(True)) == 1
