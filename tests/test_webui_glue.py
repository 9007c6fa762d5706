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


def test_webui_results_get_a_manifest_line_beside_the_file_save_image_wrote(tmp_path, capsys):
    """The WebUI saves the result (its folder, name and format); SegFill keeps the input and mask beside that file
    and appends the manifest line there, naming the WebUI checkpoint as the backend; the detector follows SAM's
    offload policy."""
    from segfill.cli import main

    written = []

    def save_image(image, path, basename, seed=None, prompt=None, extension="png", info=None, p=None, **kw):
        target = Path(path) / f"{len(written):05d}-{seed}.{extension}"
        image.save(target)
        written.append(target)
        return str(target), None

    host = _host(fake_ldm_model(9, "hybrid", title="sd2-inpainting.safetensors [abc]"), saved=save_image,
                 opts=FakeOpts(segfill_sam_unload_policy="before_generation", segfill_outdir=str(tmp_path)))
    offloaded = []
    host._sam = types.SimpleNamespace(offload_to_cpu=lambda: offloaded.append("sam"))
    host._detectors = types.SimpleNamespace(offload_to_cpu=lambda: offloaded.append("detector"))
    image = _picture(64, 48)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (16, 8, 40, 32))
    selection = {"text": "a red ball", "detections": [{"box": [16, 8, 40, 32], "score": 0.9, "label": "a red ball"}]}
    result = host.inpaint(image, mask, InpaintArgs(seed=5, steps=1),
                          provenance={"source": "tab", "selection": selection})
    assert offloaded == ["sam", "detector"]
    [saved] = written
    assert result.info["path"] == str(saved)
    entry = json.loads((tmp_path / "segfill-manifest.jsonl").read_text())
    assert entry["source"] == "tab" and entry["selection"] == selection and entry["seed"] == 5
    assert entry["backend"] == {"name": "webui", "host": "webui", "checkpoint": "sd2-inpainting.safetensors [abc]"}
    assert entry["output"]["path"] == str(saved.resolve())
    assert Path(entry["mask_file"]).name == saved.stem + ".mask.png"
    assert np.array_equal(np.asarray(Image.open(entry["mask_file"])), np.asarray(mask))
    assert entry["infotext"] == result.infotext
    assert main(["replay", "0", "--manifest", str(tmp_path)]) == 2
    assert "made by the WebUI with sd2-inpainting.safetensors [abc]" in capsys.readouterr().err


def test_the_final_save_honours_the_batch_tabs_per_input_name_settings():
    """img2img's Batch tab names each output after its input through p.override_settings, which process_images
    applies only while it runs; the script saves its finished outpaint after the tiles, so save_result applies
    the saving settings itself and restores them."""
    from segfill.hosts.webui.host import save_result

    seen = []
    opts = FakeOpts(samples_filename_pattern="[seed]", save_to_dirs=True)

    def save_image(image, path, basename, **kw):
        seen.append((opts.samples_filename_pattern, opts.save_to_dirs))
        return None, None

    bindings = WebUIBindings(process_images=None, img2img_class=FakeImg2Img, state=FakeState(), opts=opts,
                             get_sd_model=lambda: None, queue_lock=None, list_checkpoints=list, save_image=save_image)
    p = types.SimpleNamespace(override_settings={"samples_filename_pattern": "photo7", "save_to_dirs": False,
                                                 "sd_model_checkpoint": "other.safetensors"})
    assert save_result(bindings, _picture(8, 8), "out", "", 1, "", p) is None
    assert seen == [("photo7", False)]
    assert (opts.samples_filename_pattern, opts.save_to_dirs) == ("[seed]", True)
    assert not hasattr(opts, "sd_model_checkpoint"), "only saving settings are applied"


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
    by_id = {c.elem_id.rsplit("segfill_outpaint_", 1)[1]: read for c, read in script.infotext_fields}
    assert {"left", "right", "prefill", "tile_size", "color_match", "seam_fix", "feather", "size_mode"} <= set(by_id)
    # pasting this script's infotext: what it says, and the default for every key it leaves out
    pasted = {"Script": "SegFill outpaint", "SegFill pad right": "40", "SegFill pre-fill": "edge",
              "SegFill colour match": "True"}
    assert (by_id["right"](pasted), by_id["prefill"](pasted), by_id["color_match"](pasted)) == ("40", "edge", "True")
    assert (by_id["left"](pasted), by_id["feather"](pasted), by_id["tile_size"](pasted)) == (0, 24, 512)
    assert (by_id["aspect"](pasted), by_id["max_step"](pasted), by_id["seam_fix"](pasted)) == ("", 0, False)
    # another script's (or plain img2img's) infotext leaves the controls alone
    assert {name: read({"Steps": "20", "SegFill pad right": "8"}) for name, read in by_id.items()
            if name != "size_mode"} == {name: None for name in by_id if name != "size_mode"}
    strength = next(c for c in script_components(script) if c.elem_id.endswith("_strength"))
    assert "not used" in strength.label and "img2img" in strength.label


def script_components(script):
    return [c for c, _ in script.infotext_fields]


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
    [text] = processed.infotexts
    assert "SegFill stopped: after 1 of" in text and "Size: 256x64" in text and "Seed: 3" in text


# ---------------------------------------------------------------------------------------------------------
# install.py


def _run_install(launch, fetch=lambda: []):
    """Run install.py with a fake ``launch``; ``fetch`` stands in for the onnxruntime-web fetch (no network)."""
    from segfill import web_runtime

    sys.modules["launch"] = launch
    original = web_runtime.ensure_web_runtime
    web_runtime.ensure_web_runtime = fetch
    try:
        spec = importlib.util.spec_from_file_location("segfill_install_under_test", REPO / "install.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("launch", None)
        web_runtime.ensure_web_runtime = original


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


def test_install_fetches_the_browser_runtime_and_goes_on_when_it_cannot(monkeypatch, capsys):
    from segfill.web_runtime import WebRuntimeError

    monkeypatch.delenv("SEGFILL_EXTRAS", raising=False)
    fetched = []
    launch, calls = _fake_launch(installed={"segment_anything", "mobile_sam", "timm"})
    _run_install(launch, fetch=lambda: fetched.append(1) or ["ort-wasm-simd-threaded.wasm"])
    assert fetched == [1] and "fetched onnxruntime-web" in capsys.readouterr().out

    def offline():
        raise WebRuntimeError("Could not fetch onnxruntime-web 1.30.0 from https://registry.npmjs.org/…: offline.")

    launch, calls = _fake_launch(installed={"torch"})
    _run_install(launch, fetch=offline)
    assert "SegFill: Could not fetch onnxruntime-web" in capsys.readouterr().out
    assert calls  # the requirements are still installed: the tab loads, previews use the server route


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


# ---------------------------------------------------------------------------------------------------------
# issue 8: a user's mistake in the script is a 4xx from the API and one console line


class _Runner:
    """``p.scripts`` as the WebUI sets it: the script runner whose scripts' ``args_to`` size ``p.script_args``."""

    def __init__(self, *args_to):
        self.scripts = [types.SimpleNamespace(args_to=n) for n in args_to]


def _api_p(image, script_args, **kw):
    # our script owns slot 3:4 of a 6-long list (an always-on script owns 4:6), like the WebUI's API builds it
    p = FakeImg2Img(init_images=[image], width=64, height=64, seed=7, **kw)
    p.is_api = True
    p.scripts = _Runner(1, 3, 4, 6)
    p.script_args = script_args
    return p


def _script(fake_modules):
    fake_modules.load_script("segfill_tab.py")
    script = fake_modules.load_script("segfill_outpaint.py").SegFillOutpaintScript()
    script.args_from, script.args_to = 3, 4
    return script


@pytest.mark.parametrize("args, sentence", [
    ([{"rigth": 40}], "rigth"),
    (["{not json"], "not valid JSON"),
    ([{"right": 0}], "padding"),  # nothing to add: the planner's sentence
])
def test_bad_script_argument_from_the_api_is_a_4xx_with_one_console_line(fake_modules, capsys, args, sentence):
    from fastapi.exceptions import HTTPException

    script = _script(fake_modules)
    p = _api_p(_picture(32, 32), [1, "x", "y", *args, True, 0.5])
    with pytest.raises(HTTPException) as caught:
        script.run(p, *p.script_args[3:4])
    error = caught.value
    # what the WebUI's API handler reads: isinstance HTTPException (no traceback), status_code, detail, str(e)
    assert vars(error)["status_code"] in (400, 422) and sentence.lower() in vars(error)["detail"].lower()
    assert str(error) == vars(error)["detail"] and "\n" not in str(error)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"SegFill outpaint: {error.detail}"]
    assert fake_modules.processing.calls == []
    assert p.seed == 7  # left as it came


def test_two_script_arguments_are_an_error_not_silently_dropped(fake_modules, capsys):
    from fastapi.exceptions import HTTPException

    script = _script(fake_modules)
    # the API spliced two objects into our one slot: the list is one longer than the runner's args_to says
    p = _api_p(_picture(32, 32), [1, "x", "y", {"right": 8}, {"left": 8}, True, 0.5])
    with pytest.raises(HTTPException) as caught:
        script.run(p, *p.script_args[3:4])  # the WebUI hands run only the first
    assert "takes one argument" in caught.value.detail and "not 2" in caught.value.detail
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    with pytest.raises(HTTPException):  # a caller handing run two values directly
        script.run(_api_p(_picture(32, 32), [1, "x", "y", {}, True, 0.5]), {"right": 8}, {"left": 8})


def test_no_script_argument_means_defaults_and_the_slot_is_repaired(fake_modules):
    from segfill.hosts.webui.script import script_argument

    # "script_args": [] removed our slot: run would get the always-on script's True; the list is put right
    p = _api_p(_picture(32, 32), [1, "x", "y", True, 0.5])
    assert script_argument(p, (True,), 3, 4) is None
    assert p.script_args == [1, "x", "y", None, True, 0.5]
    p = _api_p(_picture(32, 32), (1, "x", "y", {"right": 8}, True, 0.5))
    assert script_argument(p, ({"right": 8},), 3, 4) == {"right": 8} and isinstance(p.script_args, tuple)


def test_bad_script_argument_in_the_page_is_a_note_under_an_empty_result(fake_modules, capsys):
    script = _script(fake_modules)
    p = FakeImg2Img(init_images=[_picture(32, 32)], width=64, height=64, seed=-1)
    processed = script.run(p, '{"rigth": 40}')
    assert processed.images == [] and "rigth" in processed.comments
    assert capsys.readouterr().out.strip().splitlines() == [f"SegFill outpaint: {processed.comments}"]
    assert p.seed == -1  # a random seed stays random for the next image of a batch


# ---------------------------------------------------------------------------------------------------------
# issue 9: the img2img Batch tab


def test_batch_tab_saves_one_outpaint_per_input_named_by_its_override_settings(fake_modules, tmp_path):
    """What modules/img2img.py:process_batch does per input: new init_images, outpath = the output folder and
    p.override_settings naming the file after the input; the script saves after its tiles, so it must apply
    them itself (process_images applies them only around its own saving)."""
    script = _script(fake_modules)
    opts = fake_modules.opts
    opts.samples_filename_pattern = "[seed]"
    opts.save_to_dirs = True
    seen = []
    real_save = fake_modules.saved

    def save_image(image, path, basename, **kw):
        seen.append((path, opts.samples_filename_pattern, opts.save_to_dirs, image.size))
        return real_save(image, path, basename, **kw)

    host = current_host()
    host.bindings.save_image = save_image
    p = FakeImg2Img(width=64, height=64, seed=5, outpath_samples=str(tmp_path / "out"))
    for stem, size in (("cat", (64, 48)), ("dog", (48, 64))):
        p.init_images = [_picture(*size)]
        p.override_settings.update(save_to_dirs=False, samples_filename_pattern=stem,
                                   save_images_replace_action="Add number suffix")
        processed = script.run(p, {"right": 16, "band": 8, "feather": 4, "overlap": 16})
        assert [im.size for im in processed.images] == [(size[0] + 16, size[1])]
    assert seen == [(str(tmp_path / "out"), "cat", False, (80, 48)), (str(tmp_path / "out"), "dog", False, (64, 64))]
    assert (opts.samples_filename_pattern, opts.save_to_dirs) == ("[seed]", True)  # restored after each save


# ---------------------------------------------------------------------------------------------------------
# issue 11: the WebUI host


def _safetensors(path, tensors):
    header = {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]} for name, shape in tensors.items()}
    blob = json.dumps(header).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob)
    return str(path)


def test_checkpoint_facts_come_from_the_safetensors_header_only(tmp_path):
    from segfill.hosts.webui.checkpoints import read_checkpoint_facts

    unet = "model.diffusion_model.input_blocks.0.0.weight"
    facts = read_checkpoint_facts(_safetensors(tmp_path / "a.safetensors", {unet: [320, 9, 3, 3]}))
    assert (facts.inpainting, facts.native_size) == (True, 512)
    facts = read_checkpoint_facts(_safetensors(tmp_path / "b.safetensors", {unet: [320, 4, 3, 3]}))
    assert (facts.inpainting, facts.native_size) == (False, 512)
    sdxl = read_checkpoint_facts(_safetensors(tmp_path / "c.safetensors", {
        unet: [320, 9, 3, 3], "model.diffusion_model.label_emb.0.0.weight": [1280, 2816]}))
    assert (sdxl.inpainting, sdxl.native_size) == (True, 1024)
    (tmp_path / "d.safetensors").write_bytes(b"\xff" * 64)
    (tmp_path / "e.ckpt").write_bytes(b"PK\x03\x04 a pickle is never opened for this")
    for name in ("d.safetensors", "e.ckpt", "missing.safetensors"):
        facts = read_checkpoint_facts(str(tmp_path / name))
        assert (facts.inpainting, facts.native_size) == (None, None)


def test_check_checkpoint_always_says_something(tmp_path):
    from segfill.hosts.webui.checkpoints import ModelStatus

    unet = "model.diffusion_model.input_blocks.0.0.weight"
    inpaint_file = _safetensors(tmp_path / "sd2-inpainting.safetensors", {unet: [320, 9, 3, 3]})
    plain_file = _safetensors(tmp_path / "plain.safetensors", {unet: [320, 4, 3, 3]})
    installed = ["sd2-inpainting.safetensors [1]", "plain.safetensors [2]", "old.ckpt [3]"]

    def status(sd_model, selected):
        return _host(sd_model, checkpoints=installed, selected_checkpoint=lambda: selected).model_status()

    loaded = fake_ldm_model(9, "hybrid", title="sd2-inpainting.safetensors [1]")
    s = status(loaded, None)
    assert s.loaded and s.inpainting and "is an inpainting model" in s.sentence and s.warning is None
    s = status(fake_ldm_model(4, title="plain.safetensors [2]"), None)
    assert "not an inpainting model" in s.sentence and "sd2-inpainting.safetensors [1]" in s.sentence
    # Forge before its first job (placeholder model) or after switching: the selected file's header speaks
    placeholder = types.SimpleNamespace(cond_stage_model=None)
    s = status(placeholder, ("plain.safetensors [2]", plain_file))
    assert not s.loaded and "not loaded yet" in s.sentence and "not an inpainting model" in s.warning
    assert "sd2-inpainting.safetensors [1]" in s.warning and "plain.safetensors [2]," not in s.warning.split("Installed")[-1]
    s = status(placeholder, ("sd2-inpainting.safetensors [1]", inpaint_file))
    assert s.warning is None and "not loaded yet" in s.sentence and "inpainting model" in s.sentence
    s = status(placeholder, ("old.ckpt [3]", str(tmp_path / "old.ckpt")))
    assert s.warning is None and "shows once it is loaded" in s.sentence
    assert "No checkpoint is loaded yet" in status(None, None).sentence
    # Forge switched to plain.safetensors while the inpainting model is still the loaded one
    loaded.sd_checkpoint_info.filename = inpaint_file
    s = status(loaded, ("plain.safetensors [2]", plain_file))
    assert not s.loaded and "not an inpainting model" in s.warning
    assert all(isinstance(status(m, None), ModelStatus) for m in (None, placeholder))


def test_script_panel_shows_the_status_and_the_settings_defaults(fake_modules):
    import gradio as gr

    fake_modules.opts.segfill_feather = 40
    fake_modules.opts.segfill_overlap = 48
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    assert module.model_status_markdown().startswith("✓ ") and "is an inpainting model" in module.model_status_markdown()
    with gr.Blocks():
        [args_json] = module.SegFillOutpaintScript().ui(True)
    data = json.loads(args_json.value)
    assert (data["feather"], data["overlap"]) == (40, 48)  # the same defaults as the API and the tab


@pytest.mark.parametrize("size, native, expected", [
    ((600, 400), 512, (512, 344)), ((400, 600), 512, (344, 512)), ((200, 100), 512, (200, 104)),
    ((1400, 1000), 1024, (1024, 728)), ((512, 512), 512, (512, 512)), ((30, 20), 512, (64, 64)),
])
def test_generation_size_keeps_the_aspect_ratio_in_multiples_of_8(size, native, expected):
    from segfill.hosts.webui.checkpoints import generation_size

    assert generation_size(size, native) == expected


def test_tab_inpaint_keeps_the_aspect_ratio_and_records_the_size_produced():
    processing = FakeProcessing()
    host = _host(fake_ldm_model(9, "hybrid"), processing=processing)
    image = _picture(600, 400)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (200, 100, 300, 200))
    result = host.inpaint(image, mask, InpaintArgs(seed=3, steps=1))
    [call] = processing.calls
    assert (call["width"], call["height"]) == (512, 344)  # was 512x400: each side capped on its own
    assert result.images[0].size == (600, 400) and result.info["render_size"] == [512, 344]
    assert "Size: 600x400" in result.infotext and "512x344" not in result.infotext
    assert result.images[0].info["parameters"] == result.infotext
    # only values that differ from the defaults: no "SegFill tile size: 512", no "SegFill feather: 8"
    assert "SegFill tile size" not in result.infotext and "SegFill feather" not in result.infotext
    sdxl = types.SimpleNamespace(is_sdxl=True, is_inpaint=True)
    sdxl_host = _host(sdxl, processing=processing)
    sdxl_host.inpaint(image, mask, InpaintArgs(seed=3, steps=1))
    assert (processing.calls[-1]["width"], processing.calls[-1]["height"]) == (600, 400)  # under 1024: as it is
    assert sdxl_host.defaults().tile_size == 1024 and host.defaults().tile_size == 512  # outpaint tiles too


def test_tab_outpaint_on_the_webui_host(tmp_path):
    """The WebUI host's outpaint as the tab (and /segfill/v1/outpaint) call it: tiles at the model's size
    under the queue lock, the original kept away from the seam, one save, an infotext of what differs."""
    raw = threading.Lock()
    state = FakeState()
    processing = FakeProcessing(state, lock=raw)
    job_counts = []

    def process_images(p):
        job_counts.append(state.job_count)  # what the WebUI's progress bar shows during each tile
        return processing(p)

    saved = SavedImages()
    host = _host(fake_ldm_model(9, "hybrid"), processing=process_images, state=state, lock=raw, saved=saved,
                 opts=FakeOpts(segfill_outdir=str(tmp_path)))
    image = _picture(600, 200)
    args = OutpaintArgs(right=384, seed=21, steps=2, prompt="the sea")  # tile size unset: the host's (512)
    progress = []
    result = host.outpaint(image, args, progress=lambda done, total, message: progress.append((done, total)))
    out = result.images[0]
    assert out.size == (984, 200) and result.info["mode"] == "outpaint"
    band = args.band
    assert (np.array(out)[:, : 600 - band] == np.array(image)[:, : 600 - band]).all()  # bit-exact beyond the band
    assert (np.array(out)[:, 600:] == REPAINT_COLOUR).any()  # the new area went through process_images
    assert processing.calls and all(max(c["size"]) <= 512 for c in processing.calls)  # not the 600-px image side
    assert set(job_counts) == {len(processing.calls)} and result.info["tiles"] == len(processing.calls) >= 2
    assert state.begun == ["segfill-outpaint"] and state.ended == 1 and not raw.locked()
    assert all(c["prompt"] == "the sea" and c["steps"] == 2 and c["extra"]["SegFill"] == "outpaint"
               for c in processing.calls)
    text = result.infotext
    assert "SegFill: outpaint" in text and "Size: 984x200" in text and "Seed: 21" in text
    assert "SegFill pad right: 384" in text
    assert "SegFill tile size" not in text and "SegFill feather" not in text and "SegFill overlap" not in text
    [save] = saved.saved
    assert save["path"] == str(tmp_path) and save["info"] == text and save["image"] is out
    assert progress and progress[-1][0] == progress[-1][1] == len(processing.calls)


def test_one_feather_default_the_setting_fills_what_the_caller_left_out():
    processing = FakeProcessing()
    host = _host(fake_ldm_model(9, "hybrid"), processing=processing,
                 opts=FakeOpts(segfill_feather=12, segfill_overlap=32))
    assert host.with_host_defaults(OutpaintArgs(right=64)).feather == 12
    assert host.with_host_defaults(OutpaintArgs(right=64)).overlap == 32
    explicit = OutpaintArgs.parse_obj({"right": 64, "feather": 24, "overlap": 64})
    assert (host.with_host_defaults(explicit).feather, host.with_host_defaults(explicit).overlap) == (24, 64)
    assert _host().with_host_defaults(OutpaintArgs(right=64)).feather == OutpaintArgs().feather == 24
    assert settings.SETTINGS_BY_KEY["segfill_feather"].default == 24


# ---------------------------------------------------------------------------------------------------------
# issue 11: "Send to img2img inpaint" sets img2img's size and inpaint area


def test_inpaint_upload_settings():
    from segfill.hosts.webui.send_to_img2img import inpaint_upload_settings

    small = np.zeros((400, 600), bool)
    small[180:220, 280:320] = True
    s = inpaint_upload_settings((600, 400), small, 512)
    assert (s.width, s.height, s.only_masked, s.whole_image, s.inpaint_area) == (512, 344, True, False, "Only masked")
    large = np.zeros((400, 600), bool)
    large[50:350, 50:550] = True
    assert inpaint_upload_settings((600, 400), large, 512).inpaint_area == "Whole picture"
    full = inpaint_upload_settings((600, 400), Image.new("L", (600, 400), 255), 512)
    assert full.whole_image and not full.only_masked
    assert inpaint_upload_settings((600, 400), Image.new("L", (600, 400), 0), 512).empty


def test_send_to_img2img_fills_size_inpaint_area_and_labels_a_whole_image_mask(fake_modules):
    import gradio as gr

    fake_modules.load_script("segfill_tab.py")
    [after_component] = fake_modules.callbacks["after_component"]
    with gr.Blocks():
        made = {
            "img_inpaint_base": gr.Image(elem_id="img_inpaint_base"),
            "img_inpaint_mask": gr.Image(label="Mask", elem_id="img_inpaint_mask"),
            "img2img_width": gr.Slider(64, 2048, value=512, elem_id="img2img_width"),
            "img2img_height": gr.Slider(64, 2048, value=512, elem_id="img2img_height"),
            "img2img_inpaint_full_res": gr.Radio(["Whole picture", "Only masked"], type="index",
                                                 elem_id="img2img_inpaint_full_res"),
            "txt2img_width": gr.Slider(64, 2048, elem_id="txt2img_width"),
        }
    for component in made.values():
        after_component(component, elem_id=component.elem_id)
    fake_modules.callbacks["ui_tabs"][0]()
    host = current_host()
    assert host.inpaint_upload_components == [made["img_inpaint_base"], made["img_inpaint_mask"]]
    assert host.send_to_inpaint_targets() == [made[k] for k in ("img_inpaint_base", "img_inpaint_mask",
                                                                "img2img_width", "img2img_height",
                                                                "img2img_inpaint_full_res")]
    image = _picture(600, 400)
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (280, 180, 320, 220))
    base, mask_update, width, height, area = host.send_to_inpaint_values(image, mask)
    assert base["value"] is image and mask_update["value"] is mask and mask_update["label"] == "Mask"
    assert (width["value"], height["value"], area["value"]) == (512, 344, "Only masked")
    whole = host.send_to_inpaint_values(image, Image.new("L", image.size, 255))
    assert "whole image" in whole[1]["label"] and whole[4]["value"] == "Whole picture"
    assert all(u == gr.update() for u in host.send_to_inpaint_values(None, None))  # nothing to send: no change


def test_interrupt_before_a_tile_samples_still_returns_what_was_finished(fake_modules):
    """Interrupt pressed while a tile's process_images starts: the WebUI returns no image for it; the job
    still hands back the finished tiles (it used to end with no image at all)."""
    fake_modules.load_script("segfill_tab.py")
    module = fake_modules.load_script("segfill_outpaint.py")
    state, processing = fake_modules.state, fake_modules.processing
    calls = []

    def process_images(p):
        calls.append(p)
        if len(calls) == 2:
            state.interrupted = True  # pressed before this tile sampled anything
        return processing(p)

    current_host().bindings.process_images = process_images
    p = FakeImg2Img(init_images=[_picture(64, 64)], width=64, height=64, seed=3)
    processed = module.SegFillOutpaintScript().run(p, {"right": 192, "overlap": 8, "band": 8, "feather": 4})
    [partial] = processed.images
    assert partial.size == (256, 64) and len(calls) == 2
    assert (np.array(partial)[:, 64:128] == REPAINT_COLOUR).any()  # the first tile's work is there
    assert "Stopped by the user after 2 of" in processed.comments


def test_the_rest_api_outpaint_takes_the_settings_feather_unless_the_caller_sends_one():
    """/segfill/v1/outpaint hands the host only the fields the caller sent, so the WebUI setting's feather
    applies to an API job as to the tab's and the script's."""
    import base64
    import io

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from segfill.api import register_routes

    seen = []
    host = _host(fake_ldm_model(9, "hybrid"), processing=FakeProcessing(), opts=FakeOpts(segfill_feather=12))
    real = host.outpaint

    def recording(image, args, progress=None, provenance=None):
        seen.append(args)
        return real(image, args, progress=progress, provenance=provenance)

    host.outpaint = recording
    app = FastAPI()
    register_routes(app, host, queue_lock=host.lock)
    buffer = io.BytesIO()
    _picture(64, 48).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    client = TestClient(app)
    assert client.post("/segfill/v1/outpaint", json={"image": image, "right": 32}).status_code == 200
    assert client.post("/segfill/v1/outpaint", json={"image": image, "right": 32, "feather": 24}).status_code == 200
    assert [host.with_host_defaults(args).feather for args in seen] == [12, 24]


def test_the_tabs_overlay_plan_is_the_plan_the_webui_host_runs():
    processing = FakeProcessing()
    host = _host(fake_ldm_model(9, "hybrid"), processing=processing, opts=FakeOpts(segfill_tile_size=256))
    args = OutpaintArgs(right=384, seed=2)
    planned = host.plan_outpaint((600, 200), args)
    result = host.outpaint(_picture(600, 200), args)
    assert planned.total_tiles == result.info["tiles"] == len(processing.calls)
    assert all(max(call["size"]) <= 256 for call in processing.calls)
