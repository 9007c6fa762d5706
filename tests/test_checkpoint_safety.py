"""Nothing a user loads may run code (issue 8, section 1).

A real TorchScript archive whose loading creates a marker file (``torch.from_file(MARKER, shared=True)`` in
its ``__setstate__``) is put on every path a checkpoint reaches SegFill: the registry and loader, a folder
listing, the manager, ``segfill mask --sam-checkpoint``, ``segfill serve --sam-checkpoint`` and
``--models-dir``, the REST API by model name, the tab's model list and session, the WebUI host's folder scan,
a finished download, the SAM-HQ / MobileSAM / SAM 2 loaders and the diffusers backend's shape check. The
marker must never appear, and the refusal is one sentence naming the file. The control test proves the
archive really runs its code under ``torch.load(weights_only=True)`` on this torch.
"""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from segfill.errors import DownloadError, ModelError, SegFillError
from segfill.sam import folders, loading, registry, safe_load
from tests.checkpoint_attacks import (
    FAMILY_MODULES,
    install_family_standins,
    one_sentence,
    save_family_checkpoint,
    save_legacy_with_global,
    save_torchscript_archive,
    save_zip_with_extra_entry,
    save_zip_with_global,
)
from tests.tiny_models import build_tiny_sam, save_tiny_sam

# names the registry knows (so identification by name is tried first) and a plain one
ARCHIVE_NAMES = ("evil.pth", "sam_vit_b_01ec64.pth", "sam_hq_vit_b.pth", "mobile_sam.pt", "sam2.1_hiera_tiny.pt",
                 "renamed.safetensors")


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    """(archive bytes, marker path): every test copies the same archive wherever it needs it."""
    root = tmp_path_factory.mktemp("attack")
    marker = root / "MARKER-code-ran"
    archive = save_torchscript_archive(root / "payload.pt", marker)
    return archive.read_bytes(), marker


def plant(attack, folder: Path, name: str = "evil.pth") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(attack[0])
    return path


@pytest.fixture(autouse=True)
def _marker_never_appears(attack):
    yield
    assert not attack[1].exists(), "a checkpoint ran code"


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("tiny") / "tiny.pth")


def test_control_the_archive_runs_code_under_torch_load_weights_only(tmp_path):
    marker = tmp_path / "control-marker"
    path = save_torchscript_archive(tmp_path / "control.pt", marker)
    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6):
        with pytest.warns(UserWarning):
            torch.load(str(path), weights_only=True)  # what SegFill did before: it runs the archive's code
    else:
        torch.jit.load(str(path))
    assert marker.exists()


@pytest.mark.parametrize("name", ARCHIVE_NAMES)
def test_registry_and_loader_refuse_the_archive(attack, tmp_path, name):
    path = plant(attack, tmp_path, name)
    for read in (registry.read_state_dict, registry.read_tensor_shapes, safe_load.check_file):
        with pytest.raises(ModelError) as caught:
            read(path)
        assert one_sentence(str(caught.value), name), str(caught.value)
        if name.endswith(".pth") or name.endswith(".pt"):
            assert "TorchScript" in str(caught.value)
    for model_type in (None, "vit_b", "sam_hq:vit_b", "vit_t", "hiera_t"):
        with pytest.raises(ModelError) as caught:
            loading.load_sam(path, model_type=model_type)
        assert one_sentence(str(caught.value), name), str(caught.value)
    try:
        found = registry.identify_checkpoint(path)
        assert found.method == "name"  # a registry name of unpublished size: identified without reading it
    except ModelError as exc:
        assert one_sentence(str(exc), name)


def test_listing_and_the_manager_leave_the_archive_out_and_say_why(attack, tmp_path, tiny_zip):
    from segfill.sam.manager import SamManager

    folder = tmp_path / "models"
    for name in ARCHIVE_NAMES:
        plant(attack, folder, name)
    shutil.copy(tiny_zip, folder / "good.pth")
    assert [m.name for m in folders.list_model_files([folder])] == ["good.pth"]
    assert [m.name for m in folders.list_model_files([folder], inspect=True)] == ["good.pth"]
    manager = SamManager([folder], device="cpu")
    assert [m.name for m in manager.list_models()] == ["good.pth"]
    for name in ("evil.pth", "sam_hq_vit_b.pth"):
        with pytest.raises(ModelError) as caught:
            manager.get(name)
        assert one_sentence(str(caught.value), name) and "TorchScript" in str(caught.value)
    with pytest.raises(ModelError, match="TorchScript"):
        manager.get("sam_hq_vit_b")  # the registry name of a hidden file
    with pytest.raises(ModelError) as caught:
        manager.get_path(folder / "evil.pth")
    assert one_sentence(str(caught.value), "evil.pth")
    assert manager.load_count == 0


@pytest.mark.parametrize("name", ["evil.pth", "sam_vit_b_01ec64.pth"])
def test_mask_command_refuses_with_one_line(attack, tmp_path, capsys, name):
    from PIL import Image

    from segfill.cli import main

    checkpoint = plant(attack, tmp_path, name)
    Image.new("RGB", (32, 24), (90, 120, 40)).save(tmp_path / "in.png")
    code = main(["mask", "--image", str(tmp_path / "in.png"), "--sam-checkpoint", str(checkpoint),
                 "--point", "5,5", "--output", str(tmp_path / "out.png"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not (tmp_path / "out.png").exists()
    assert err.startswith("segfill mask: error: ") and one_sentence(err.split(": error: ", 1)[1], name), err


def _serve_args(*argv: str):
    from segfill.cli import build_parser

    return build_parser().parse_args(["serve", *argv])


def test_serve_refuses_the_archive_at_start(attack, tmp_path, capsys, monkeypatch):
    import segfill.app
    from segfill.cli import main

    monkeypatch.setattr(segfill.app, "serve", lambda *a, **k: pytest.fail("the server must not start"))
    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path / "none"))
    checkpoint = plant(attack, tmp_path / "ckpt", "sam_vit_b_01ec64.pth")
    assert main(["serve", "--sam-checkpoint", str(checkpoint), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert one_sentence(err.split(": error: ", 1)[1], "sam_vit_b_01ec64.pth"), err


def test_serve_models_dir_api_and_tab_never_load_the_archive(attack, tmp_path, monkeypatch, tiny_zip):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from PIL import Image

    from segfill.api.routes import register_routes
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st
    from segfill.ui.cli import build_host
    from tests.test_api import b64

    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path / "none"))
    folder = tmp_path / "models"
    for name in ARCHIVE_NAMES:
        plant(attack, folder, name)
    host = build_host(_serve_args("--models-dir", str(folder), "--device", "cpu"))
    assert host.sam.list_models() == [] and st.model_names(host) == []

    app = FastAPI()
    register_routes(app, host)
    client = TestClient(app)
    assert client.get("/segfill/v1/models").json()["models"] == []
    image = b64(Image.new("RGB", (32, 24), (200, 30, 30)))
    for name in ("evil.pth", "sam_vit_b_01ec64.pth", "sam_hq_vit_b"):
        reply = client.post("/segfill/v1/mask", json={"image": image, "model": name, "points": [{"x": 3, "y": 3}]})
        assert reply.status_code in (404, 422), reply.text
        assert "evil" in reply.json()["detail"] or "sam_" in reply.json()["detail"]
    reply = client.post("/segfill/v1/mask", json={"image": image, "model": "evil.pth", "points": [{"x": 3, "y": 3}]})
    assert reply.status_code == 422 and one_sentence(reply.json()["detail"], "evil.pth")

    # the tab: the model list leaves it out, choosing it by name explains why
    state, payload, *_ = cb.on_image(None, Image.new("RGB", (32, 24)), "evil.pth", host)
    message = json.loads(payload)["error"]
    assert one_sentence(message, "evil.pth") and "TorchScript" in message
    with pytest.raises(ModelError):
        st.ensure_session(state, host, "evil.pth")

    shutil.copy(tiny_zip, folder / "good.pth")
    assert [m.name for m in host.sam.list_models()] == ["good.pth"]


def test_webui_host_folder_scan_leaves_the_archive_out(attack, tmp_path):
    from segfill.hosts.webui.bindings import WebUIBindings
    from segfill.hosts.webui.host import WebUIHost
    from tests.webui.fakes import FakeImg2Img, FakeOpts, FakeProcessing, FakeState

    models = tmp_path / "webui" / "models"
    extra = tmp_path / "extra"
    for name in ARCHIVE_NAMES:
        plant(attack, models / "sam", name)
        plant(attack, extra, name)
    state = FakeState()
    host = WebUIHost(WebUIBindings(
        process_images=FakeProcessing(state), img2img_class=FakeImg2Img, state=state,
        opts=FakeOpts(segfill_sam_model_dirs=str(extra), segfill_sam_device="cpu"), get_sd_model=lambda: None,
        queue_lock=None, list_checkpoints=list, save_image=None, models_path=str(models)))
    assert host.sam.list_models() == []
    with pytest.raises(ModelError, match="TorchScript"):
        host.sam.get("evil.pth")


def _serve_directory(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_downloaded_archive_is_checked_safely_and_removed(attack, tmp_path):
    from segfill.sam.download import download_model

    served = tmp_path / "served"
    plant(attack, served, "sam_vit_b_01ec64.pth")
    plant(attack, served, "model.pth")
    server = _serve_directory(served)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for name in ("model.pth", "sam_vit_b_01ec64.pth"):
            with pytest.raises(DownloadError) as caught:
                download_model(f"{base}/{name}", tmp_path / "models")
            assert one_sentence(str(caught.value), name) and "TorchScript" in str(caught.value), str(caught.value)
        assert list((tmp_path / "models").iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def standins(tmp_path, monkeypatch):
    """The stand-in family packages, importable for this test only (real ones, if installed, are hidden)."""
    root = install_family_standins(tmp_path / "standins")
    monkeypatch.syspath_prepend(str(root))
    names = ("segment_anything_hq", "mobile_sam", "sam2", "sam2.build_sam")
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield root
    for name in names:
        sys.modules.pop(name, None)


def test_family_loaders_refuse_the_archive_before_importing_their_package(attack, tmp_path, standins):
    for family, name in (("sam_hq", "sam_hq_vit_b.pth"), ("mobile_sam", "mobile_sam.pt"),
                         ("sam2", "sam2.1_hiera_tiny.pt")):
        path = plant(attack, tmp_path, name)
        with pytest.raises(ModelError) as caught:
            loading.load_sam(path)
        assert one_sentence(str(caught.value), name) and "TorchScript" in str(caught.value)
        assert FAMILY_MODULES[family] not in sys.modules  # refused before the package was even imported


@pytest.fixture()
def no_torch_load(monkeypatch):
    """torch.load and torch.jit.load fail the test if anything calls them."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load / torch.jit.load must never see a user's file")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(torch.jit, "load", refuse)


def test_every_family_loads_through_safe_load_and_never_torch_load(tmp_path, standins, no_torch_load, tiny_zip):
    import importlib

    loaded = loading.load_sam(tiny_zip)
    assert loaded.family == "sam"
    legacy = tmp_path / "legacy.pth"
    torch.save(build_tiny_sam().state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert loading.load_sam(legacy).family == "sam"
    for family, name in (("sam_hq", "renamed_hq.pth"), ("mobile_sam", "renamed_mobile.pt"), ("sam2", "renamed_sam2.pt")):
        path = save_family_checkpoint(tmp_path / name, family)
        result = loading.load_sam(path)
        assert result.family == family, (family, result.label)
        if family == "sam2":
            calls = importlib.import_module("sam2.build_sam").CALLS
            assert calls and all(ckpt is None for _config, ckpt in calls)
        else:
            calls = importlib.import_module(FAMILY_MODULES[family]).CALLS
            assert calls == [None]


def test_the_diffusers_backend_shape_check_refuses_the_archive(attack, tmp_path):
    from segfill.backends.diffusers_backend import read_checkpoint_shapes

    path = plant(attack, tmp_path, "inpainting.ckpt")
    with pytest.raises(ModelError) as caught:
        read_checkpoint_shapes(path, ("model.diffusion_model.input_blocks.0.0.weight",))
    assert "TorchScript" in str(caught.value) and one_sentence(str(caught.value), str(path))


# ---- pickles that call functions, archives with extra entries ------------------------------------------------


@pytest.mark.parametrize("save", [save_zip_with_global, save_legacy_with_global], ids=["zip", "legacy"])
def test_a_pickle_that_calls_a_function_is_refused_everywhere(tmp_path, save):
    from segfill.sam.manager import SamManager

    marker = tmp_path / "mkdir-ran"
    (tmp_path / "models").mkdir()
    path = save(tmp_path / "models" / "calls.pth", marker)
    for read in (registry.read_state_dict, registry.read_tensor_shapes, loading.load_sam):
        with pytest.raises(registry.UnsafeCheckpoint) as caught:
            read(path)
        assert one_sentence(str(caught.value), "calls.pth") and "mkdir" in str(caught.value)
    assert SamManager([tmp_path / "models"], device="cpu").list_models() == []
    assert not marker.exists()


@pytest.mark.parametrize("entry, what", [
    ("code/__torch__.py", "TorchScript"),
    ("constants.pkl", "TorchScript"),
    (".data/version", "TorchScript"),
    ("extra/notes.txt", "TorchScript"),
    ("data/../../x", "not a plain PyTorch checkpoint"),
    ("readme.txt", "not a plain PyTorch checkpoint"),
])
def test_zip_entries_are_checked_before_anything_is_unpickled(tmp_path, tiny_zip, entry, what, monkeypatch):
    path = save_zip_with_extra_entry(tmp_path / "extra.pth", tiny_zip, entry)
    monkeypatch.setattr(safe_load.RestrictedUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(registry.UnsafeCheckpoint, match=what) as caught:
        safe_load.check_file(path)
    assert one_sentence(str(caught.value), "extra.pth")
    with pytest.raises(registry.UnsafeCheckpoint):
        registry.read_tensor_shapes(path)


def test_two_top_level_folders_or_a_duplicate_entry_are_refused(tmp_path, tiny_zip):
    two = tmp_path / "two.pth"
    with zipfile.ZipFile(tiny_zip) as source, zipfile.ZipFile(two, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        out.writestr("other/data.pkl", b"\x80\x02}.")
    with pytest.raises(registry.UnsafeCheckpoint, match="several top-level folders"):
        safe_load.check_file(two)


# ---- what the restricted reader reads, and how ------------------------------------------------------------------


def test_restricted_reader_matches_torch_on_plain_files(tmp_path):
    state = dict(build_tiny_sam().state_dict())
    state.update({"bf16": torch.randn(3, 4).to(torch.bfloat16), "t": torch.randn(4, 5).t(), "flags": torch.tensor([True, False]),
                  "ids": torch.arange(7), "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.ones(2))})
    shared = torch.arange(12.0)
    state.update({"first_half": shared[:6], "second_half": shared[6:]})  # one storage, two views
    for kwargs in ({}, {"_use_new_zipfile_serialization": False}):
        path = tmp_path / f"plain{len(kwargs)}.pth"
        torch.save({"model": state, "epoch": 3, "note": "x"}, path, **kwargs)
        expected = torch.load(str(path), weights_only=True)
        got = safe_load.read_state_dict(path)
        shapes = safe_load.read_shapes(path)
        assert got["epoch"] == 3 and got["note"] == "x" and shapes["epoch"] == 3
        assert list(got["model"]) == list(expected["model"])
        for key, tensor in expected["model"].items():
            assert got["model"][key].dtype == tensor.dtype and torch.equal(got["model"][key], tensor), key
            assert shapes["model"][key].shape == tuple(tensor.shape), key
            assert shapes["model"][key].dtype == str(tensor.dtype).removeprefix("torch.")


def test_shapes_are_read_without_torch_and_without_reading_storages(tmp_path):
    import subprocess

    path = tmp_path / "big.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1, 64, 64, 768)}, path)  # 12 MB of storage
    legacy = tmp_path / "big_legacy.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1, 64, 64, 768)}, legacy, _use_new_zipfile_serialization=False)
    code = ("import sys, builtins; from segfill.sam import registry\n"
            "real_open = builtins.open; reads = []\n"
            "class Counting:\n"
            "    def __init__(self, f): self.f = f\n"
            "    def __getattr__(self, n): return getattr(self.f, n)\n"
            "    def __enter__(self): return self\n"
            "    def __exit__(self, *a): self.f.close()\n"
            "    def read(self, n=-1):\n"
            "        data = self.f.read(n); reads.append(len(data)); return data\n"
            "builtins.open = lambda *a, **k: Counting(real_open(*a, **k))\n"
            f"for p in ({str(path)!r}, {str(legacy)!r}):\n"
            "    print(registry.read_tensor_shapes(p)['image_encoder.pos_embed'])\n"
            "print(sum(reads) < 1_000_000, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["(1,", "64,", "64,", "768)", "(1,", "64,", "64,", "768)", "True", "False"], out


@pytest.mark.parametrize("damage", ["truncate_zip", "truncate_legacy", "garbage", "empty", "html", "safetensors_header",
                                    "safetensors_short", "storage_size"])
def test_damaged_files_give_one_sentence(tmp_path, tiny_zip, damage):
    path = tmp_path / ("bad.safetensors" if damage.startswith("safetensors") else "bad.pth")
    data = tiny_zip.read_bytes()
    if damage == "truncate_zip":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "truncate_legacy":
        torch.save(build_tiny_sam().state_dict(), path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:-1000])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "html":
        path.write_bytes(b"<!DOCTYPE html><html><body>Please sign in</body></html>")
    elif damage == "safetensors_header":
        path.write_bytes((20).to_bytes(8, "little") + b'{"a": {"dtype": "F3' + b"\x00" * 40)
    elif damage == "safetensors_short":
        header = json.dumps({"a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}).encode()
        path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 100)
    elif damage == "storage_size":  # a zip whose storage record is shorter than its tensors say
        with zipfile.ZipFile(tiny_zip) as source, zipfile.ZipFile(path, "w") as out:
            for info in source.infolist():
                payload = source.read(info)
                out.writestr(info, payload[:-4] if info.filename.endswith("/data/0") else payload)
    for read in (registry.read_tensor_shapes, registry.read_state_dict, loading.load_sam):
        with pytest.raises(ModelError) as caught:
            read(path)
        assert one_sentence(str(caught.value), "bad."), str(caught.value)
        assert not isinstance(caught.value, registry.UnsafeCheckpoint)


# ---- serve refuses at start whatever the loader refuses ------------------------------------------------------


def _mismatched_shapes(path: Path) -> Path:
    state = dict(build_tiny_sam().state_dict())
    state["mask_decoder.output_upscaling.0.weight"] = torch.zeros(32, 9, 2, 2)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("make", ["torchscript", "objects", "truncated", "bad_safetensors", "shape_mismatch",
                                  "not_sam"])
def test_serve_sam_checkpoint_refuses_at_start_what_the_loader_refuses(attack, tmp_path, tiny_zip, make, monkeypatch):
    from segfill.ui.cli import build_host

    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path / "none"))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    if make == "torchscript":
        path = plant(attack, folder, "model.pth")
    elif make == "objects":
        path = save_zip_with_global(folder / "model.pth", tmp_path / "marker")
    elif make == "truncated":
        path = folder / "model.pth"
        path.write_bytes(tiny_zip.read_bytes()[:-3000])
    elif make == "bad_safetensors":
        path = folder / "model.safetensors"
        path.write_bytes((10).to_bytes(8, "little") + b"{not json}" + b"\x00" * 16)
    elif make == "shape_mismatch":
        path = _mismatched_shapes(folder / "model.pth")
    else:
        path = folder / "model.pth"
        torch.save({"weight": torch.zeros(2, 2)}, path)
    with pytest.raises(SegFillError) as caught:
        build_host(_serve_args("--sam-checkpoint", str(path), "--device", "cpu"))
    assert one_sentence(str(caught.value), path.name), str(caught.value)
    assert not (tmp_path / "marker").exists()


def test_serve_sam_checkpoint_loads_a_good_file_once_at_start(tmp_path, tiny_zip, monkeypatch):
    from segfill.ui.cli import build_host

    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path / "none"))
    path = tmp_path / "ckpt" / "good.pth"
    path.parent.mkdir()
    shutil.copy(tiny_zip, path)
    host = build_host(_serve_args("--sam-checkpoint", str(path), "--device", "cpu"))
    assert host.defaults().sam_model == "good.pth" and host.sam.load_count == 1
    assert host.sam.get("good.pth") is host.sam.loaded and host.sam.load_count == 1  # the first click is free


# ---- shapes that do not match (issue 12) ---------------------------------------------------------------------


def test_a_checkpoint_whose_shapes_do_not_match_gives_one_sentence(tmp_path):
    mismatched = _mismatched_shapes(tmp_path / "sam_b_finetune.pth")
    with pytest.raises(ModelError) as caught:
        loading.load_sam(mismatched)
    message = str(caught.value)
    assert one_sentence(message, "sam_b_finetune.pth") and "output_upscaling.0.weight" in message, message

    # named like a registry file whose size is not published: the name is trusted until the tensors say otherwise
    renamed = save_tiny_sam(tmp_path / "sam_hq_vit_b.pth")
    with pytest.raises(ModelError) as caught:
        loading.load_sam(renamed)
    assert one_sentence(str(caught.value), "sam_hq_vit_b.pth") and "SAM-HQ vit_b" in str(caught.value)

    extra = dict(build_tiny_sam().state_dict())
    extra["mask_decoder.something_new.weight"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra_keys.pth")
    with pytest.raises(ModelError) as caught:
        loading.load_sam(tmp_path / "extra_keys.pth")
    assert one_sentence(str(caught.value), "extra_keys.pth") and "unexpected keys" in str(caught.value)

    missing = dict(build_tiny_sam().state_dict())
    del missing["mask_decoder.iou_token.weight"]
    torch.save(missing, tmp_path / "missing_keys.pth")
    with pytest.raises(ModelError) as caught:
        loading.load_sam(tmp_path / "missing_keys.pth")
    assert one_sentence(str(caught.value), "missing_keys.pth") and "iou_token" in str(caught.value)
