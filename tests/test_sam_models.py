"""SAM model management: registry, identification, safe loading, downloads, folders, manager, sam2 install.

No weights are downloaded: tiny random models (tests/tiny_models.py) and shape-only stand-ins of the
official files go through the real code paths.
"""

from __future__ import annotations

import builtins
import hashlib
import http.server
import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from segfill.errors import DownloadError, InputError, MissingDependencyError, ModelError, SegFillError
from segfill.sam import download, folders, loading, manager, registry, sam2_install
from tests.tiny_models import (
    build_tiny_sam,
    official_shaped_state_dict,
    save_official_shaped,
    save_tiny_sam,
    zero_state_dict_like,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("tiny") / "tiny_sam.pth")


# ---- registry ------------------------------------------------------------------------------------------------


def test_registry_entries_are_consistent():
    specs = list(registry.KNOWN_MODELS.values())
    assert len({s.filename for s in specs}) == len(specs)
    for spec in specs:
        assert spec.family in registry.FAMILIES
        assert spec.url.startswith("https://") and spec.url.endswith("/" + spec.filename)
        assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.md5 is None or re.fullmatch(r"[0-9a-f]{32}", spec.md5)
        assert spec.sha256 or spec.md5, f"{spec.name} has nothing to verify a download with"
        assert spec.package
    # the official SAM files: names carry the first 6 hex digits of their MD5
    for arch, size in (("vit_h", 2564550879), ("vit_l", 1249524607), ("vit_b", 375042383)):
        spec = registry.KNOWN_MODELS[f"sam_{arch}"]
        assert (spec.family, spec.arch, spec.size_bytes) == ("sam", arch, size)
        assert spec.filename[len(f"sam_{arch}_"):-4] == spec.md5[:6]
    sam2 = [s for s in specs if s.family == "sam2"]
    assert sorted(s.arch for s in sam2) == ["hiera_b+", "hiera_l", "hiera_s", "hiera_t"]
    assert all(s.sam2_config and s.sam2_config.startswith("configs/sam2.1/") for s in sam2)


@pytest.mark.parametrize("text, expected", [
    ("vit_b", ("sam", "vit_b")),
    ("VIT_H", ("sam", "vit_h")),
    ("default", ("sam", "vit_h")),
    ("sam_hq:vit_l", ("sam_hq", "vit_l")),
    ("sam_hq_vit_b", ("sam_hq", "vit_b")),
    ("vit_t", ("mobile_sam", "vit_t")),
    ("hiera_b+", ("sam2", "hiera_b+")),
    ("sam2.1_hiera_tiny", ("sam2", "hiera_t")),
])
def test_parse_model_type(text, expected):
    assert registry.parse_model_type(text) == expected


def test_parse_model_type_rejects_unknown():
    with pytest.raises(InputError, match="vit_x"):
        registry.parse_model_type("vit_x")


# ---- identification ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["vit_b", "vit_l", "vit_h"])
def test_renamed_official_file_is_identified_by_shapes(tmp_path, arch):
    path = save_official_shaped(tmp_path / "my favourite model.pth", arch)
    found = registry.identify_checkpoint(path)
    assert (found.family, found.arch, found.method) == ("sam", arch, "shapes")


def test_official_name_with_contradicting_size_is_not_trusted(tmp_path):
    # named like the vit_b file, but it holds vit_h tensors and is far smaller than the real vit_b file
    path = save_official_shaped(tmp_path / "sam_vit_b_01ec64.pth", "vit_h")
    found = registry.identify_checkpoint(path)
    assert (found.arch, found.method) == ("vit_h", "shapes")


def test_name_identifies_registry_file_of_unpublished_size(tmp_path):
    path = tmp_path / "sam_hq_vit_b.pth"
    path.write_bytes(b"not read at all")
    found = registry.identify_checkpoint(path, inspect=False)
    assert (found.family, found.arch, found.method) == ("sam_hq", "vit_b", "name")
    assert found.spec is registry.KNOWN_MODELS["sam_hq_vit_b"]


def test_hash_identifies_renamed_registry_file_and_is_cached(tmp_path, monkeypatch):
    payload = b"pretend checkpoint bytes" * 100
    fake = registry.ModelSpec("fake_vit_b", "sam", "vit_b", "fake_official.pth", "https://example.invalid/fake_official.pth",
                              len(payload), hashlib.sha256(payload).hexdigest(), "segment-anything")
    monkeypatch.setattr(registry, "_SPECS", registry._SPECS + (fake,))
    path = tmp_path / "renamed.bin.pth"
    path.write_bytes(payload)
    assert registry.cached_sha256(path) is None
    found = registry.identify_checkpoint(path)
    assert (found.family, found.arch, found.method, found.spec) == ("sam", "vit_b", "hash", fake)
    assert registry.cached_sha256(path) == fake.sha256
    # the cache is keyed by size and mtime: a changed file is hashed again and no longer matches
    path.write_bytes(payload[:-1] + b"!")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert registry.cached_sha256(path) is None
    with pytest.raises(ModelError):
        registry.identify_checkpoint(path)


def test_hash_is_not_computed_when_no_known_size_matches(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "file_sha256", lambda p, *a, **k: calls.append(p) or "0" * 64)
    path = save_official_shaped(tmp_path / "x.pth", "vit_b")
    assert registry.identify_checkpoint(path).arch == "vit_b"
    assert calls == []


def test_model_type_override_wins(tmp_path):
    path = tmp_path / "anything.pth"
    path.write_bytes(b"")
    found = registry.identify_checkpoint(path, model_type="vit_l")
    assert (found.arch, found.method, found.spec.name) == ("vit_l", "override", "sam_vit_l")


def test_shape_classification_of_other_families():
    hq = dict(official_shaped_state_dict("vit_l"))
    hq["mask_decoder.hf_token.weight"] = torch.zeros(1, 256)
    assert registry.identify_state_dict(hq) == ("sam_hq", "vit_l")

    tinyvit = {"image_encoder.layers.0.blocks.0.attn.qkv.weight": torch.zeros(192, 64),
               "mask_decoder.iou_token.weight": torch.zeros(1, 256)}
    assert registry.identify_state_dict(tinyvit) == ("mobile_sam", "vit_t")
    assert registry.identify_state_dict({**tinyvit, "mask_decoder.hf_token.weight": torch.zeros(1, 256)}) == (
        "sam_hq", "vit_tiny")

    trunk = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(96, 3, 7, 7)}
    trunk.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.zeros(96) for i in range(12)})
    assert registry.identify_state_dict({"model": trunk}) == ("sam2", "hiera_t")


def test_non_sam_state_dict_is_rejected_with_a_clear_error(tmp_path):
    path = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ModelError, match=r"linear\.pth is not a Segment Anything checkpoint"):
        registry.identify_checkpoint(path)


# ---- shape-derived configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch, heads, global_indexes", [
    ("vit_b", 12, (2, 5, 8, 11)),
    ("vit_l", 16, (5, 11, 17, 23)),
    ("vit_h", 16, (7, 15, 23, 31)),
])
def test_derived_config_reproduces_the_official_architectures(arch, heads, global_indexes):
    from segment_anything import sam_model_registry

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        official = sam_model_registry[arch]()
    shapes = registry.tensor_shapes(official.state_dict())
    config = loading.derive_sam_config(shapes)
    assert config.arch == arch
    assert (config.num_heads, config.global_attn_indexes, config.window_size) == (heads, global_indexes, 14)
    assert (config.img_size, config.patch_size, config.out_chans, config.prompt_embed_dim) == (1024, 16, 256, 256)
    assert (config.decoder_depth, config.decoder_mlp_dim, config.attention_downsample_rate) == (2, 2048, 2)
    with torch.device("meta"):
        rebuilt = loading.build_sam_from_config(config)
    assert registry.tensor_shapes(rebuilt.state_dict()) == shapes
    assert rebuilt.image_encoder.blocks[0].attn.num_heads == heads
    assert rebuilt.mask_decoder.transformer.num_heads == 8


# ---- loading ------------------------------------------------------------------------------------------------


def test_tiny_model_loads_through_the_real_path_and_predicts_like_the_original(tiny_file):
    loaded = loading.load_sam(tiny_file)
    assert (loaded.family, loaded.arch, loaded.identified_by) == ("sam", registry.CUSTOM_ARCH, "shapes")
    assert loaded.image_size == 128 and loaded.model.image_encoder.img_size == 128
    assert loaded.path == tiny_file and loaded.device == "cpu"
    assert not loaded.model.training
    reference = build_tiny_sam()
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert torch.equal(loaded.model.pixel_mean, reference.pixel_mean)
    assert torch.equal(loaded.model.pixel_std, reference.pixel_std)

    import numpy as np
    from segment_anything import SamPredictor

    image = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    results = []
    for model in (reference, loaded.model):
        predictor = SamPredictor(model)
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(point_coords=np.array([[60, 45]]), point_labels=np.array([1]))
        results.append((masks, scores))
    assert results[0][0].shape == (3, 90, 120)
    assert np.array_equal(results[0][0], results[1][0])
    assert np.allclose(results[0][1], results[1][1])


def test_model_key_is_stable_and_depends_on_content(tmp_path, tiny_file):
    a = loading.load_sam(tiny_file).model_key
    assert a == loading.load_sam(tiny_file).model_key
    other = save_tiny_sam(tmp_path / "other.pth", seed=1)
    assert loading.load_sam(other).model_key != a


def test_safetensors_file_loads(tmp_path):
    save_file = pytest.importorskip("safetensors.torch").save_file

    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in build_tiny_sam().state_dict().items()}, str(path))
    loaded = loading.load_sam(path)
    assert loaded.family == "sam" and loaded.image_size == 128


def test_wrong_model_type_names_the_file_and_both_types(tiny_file):
    with pytest.raises(ModelError, match=r"tiny_sam\.pth is not a SAM vit_b checkpoint: .*SAM vit_custom"):
        loading.load_sam(tiny_file, model_type="vit_b")


def test_missing_weights_are_reported_by_name(tmp_path):
    state = build_tiny_sam().state_dict()
    del state["image_encoder.neck.1.weight"]
    path = tmp_path / "sam_b_renamed.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"sam_b_renamed\.pth is not a SAM vit_custom checkpoint: missing keys "
                                         r"image_encoder\.neck\.1\.weight"):
        loading.load_sam(path)


def test_shape_only_official_file_is_incomplete(tmp_path):
    path = save_official_shaped(tmp_path / "half.pth", "vit_b")
    with pytest.raises(ModelError, match=r"half\.pth is not a complete SAM checkpoint"):
        loading.load_sam(path)


def test_corrupt_truncated_missing_and_foreign_files(tmp_path, tiny_file):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match=r"garbage\.pth is truncated or corrupt"):
        loading.load_sam(garbage)

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(tiny_file.read_bytes()[: tiny_file.stat().st_size // 2])
    with pytest.raises(ModelError, match=r"truncated\.pth is truncated or corrupt"):
        loading.load_sam(truncated)

    with pytest.raises(ModelError, match=r"nowhere\.pth does not exist"):
        loading.load_sam(tmp_path / "nowhere.pth")

    resnet = tmp_path / "classifier.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict(), resnet)
    with pytest.raises(ModelError, match=r"classifier\.pth is not a Segment Anything checkpoint"):
        loading.load_sam(resnet)

    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(ModelError, match=r"tensor\.pth does not hold a state dict"):
        loading.load_sam(not_a_dict)


class _Booby:
    """Unpickling this object would create a file: proof that arbitrary code would have run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def test_pickled_objects_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    state = dict(build_tiny_sam().state_dict())
    state["payload"] = _Booby(str(marker))
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"evil\.pth contains Python objects other than tensors"):
        loading.load_sam(path)
    assert not marker.exists()


def test_other_families_need_their_package(tmp_path, monkeypatch):
    state = dict(official_shaped_state_dict("vit_b"))
    state["mask_decoder.hf_token.weight"] = torch.zeros(1, 256)
    path = tmp_path / "hq.pth"
    torch.save(state, path)
    monkeypatch.setitem(sys.modules, "segment_anything_hq", None)  # import fails even if installed
    with pytest.raises(MissingDependencyError, match="segment-anything-hq"):
        loading.load_sam(path)


def test_full_size_official_architecture_loads_by_shapes(tmp_path):
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        official = sam_model_registry["vit_b"]()
    path = tmp_path / "renamed_b.pth"
    torch.save(zero_state_dict_like(official.state_dict()), path)
    assert path.stat().st_size < 200_000
    loaded = loading.load_sam(path)
    assert (loaded.family, loaded.arch, loaded.image_size) == ("sam", "vit_b", 1024)
    assert loaded.model.image_encoder.blocks[2].window_size == 0 and loaded.model.image_encoder.blocks[0].window_size == 14
    assert float(loaded.model.image_encoder.pos_embed.abs().sum()) == 0.0  # every weight came from the file
    assert torch.equal(loaded.model.pixel_mean.flatten(), torch.tensor(loading.SAM_PIXEL_MEAN))


def _sam_hq_file_with_fake_package(tmp_path, monkeypatch, package_source: str):
    """A SAM-HQ-shaped checkpoint, and a stand-in ``segment_anything_hq`` whose import runs ``package_source``."""
    fake = tmp_path / "fakepkgs" / "segment_anything_hq"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(package_source)
    monkeypatch.syspath_prepend(str(tmp_path / "fakepkgs"))
    monkeypatch.delitem(sys.modules, "segment_anything_hq", raising=False)
    state = dict(official_shaped_state_dict("vit_b"))
    state["mask_decoder.hf_token.weight"] = torch.zeros(1, 256)
    path = tmp_path / "hq.pth"
    torch.save(state, path)
    return path


def test_a_missing_dependency_of_the_family_package_is_named(tmp_path, monkeypatch):
    path = _sam_hq_file_with_fake_package(tmp_path, monkeypatch, "import timm_not_installed_here\n")
    with pytest.raises(MissingDependencyError, match="timm_not_installed_here"):
        loading.load_sam(path)


def test_a_family_package_that_breaks_on_import_gives_a_sentence(tmp_path, monkeypatch):
    path = _sam_hq_file_with_fake_package(
        tmp_path, monkeypatch, "raise AttributeError(\"module 'torch' has no attribute 'compiler'\")\n")
    with pytest.raises(ModelError, match="'segment-anything-hq' package does not work here .*SAM-HQ models"):
        loading.load_sam(path)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _importable("segment_anything_hq"), reason="the optional segment-anything-hq is not installed")
def test_sam_hq_checkpoint_loads_when_its_package_is_installed(tmp_path):
    import segment_anything_hq

    with torch.device("meta"):
        hq = segment_anything_hq.sam_model_registry["vit_b"]()
    path = tmp_path / "renamed_hq.pth"
    torch.save(zero_state_dict_like(hq.state_dict()), path)
    loaded = loading.load_sam(path)
    assert (loaded.family, loaded.arch, loaded.image_size) == ("sam_hq", "vit_b", 1024)
    assert type(loaded.model).__module__.startswith("segment_anything_hq")
    assert torch.equal(loaded.model.pixel_std.flatten(), torch.tensor(loading.SAM_PIXEL_STD))


def _sam2_importable() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _sam2_importable(), reason="the optional sam2 package is not installed")
def test_sam2_checkpoint_loads_when_sam2_is_installed(tmp_path):
    from sam2.build_sam import build_sam2

    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu", mode="eval")
    path = tmp_path / "renamed_sam2.pt"
    torch.save({"model": model.state_dict()}, path)
    loaded = loading.load_sam(path)
    assert (loaded.family, loaded.arch, loaded.image_size) == ("sam2", "hiera_t", 1024)
    key = "image_encoder.trunk.patch_embed.proj.weight"
    assert torch.equal(loaded.model.state_dict()[key], model.state_dict()[key])


# ---- downloads ------------------------------------------------------------------------------------------------


def _payload(n: int = 300_000) -> bytes:
    return os.urandom(n)


_CHECKPOINT: list[bytes] = []


def _checkpoint() -> bytes:
    """The bytes of a real (tiny) SAM checkpoint: what a download must hold to be kept."""
    if not _CHECKPOINT:
        buffer = io.BytesIO()
        torch.save(build_tiny_sam().state_dict(), buffer)
        _CHECKPOINT.append(buffer.getvalue())
    return _CHECKPOINT[0]


def test_download_from_file_url_verifies_and_renames(tmp_path):
    data = _checkpoint()
    source = tmp_path / "src" / "model.pth"
    source.parent.mkdir()
    source.write_bytes(data)
    seen = []
    out = download.download_model(source.as_uri(), tmp_path / "models", progress=lambda d, t: seen.append((d, t)),
                                  sha256=hashlib.sha256(data).hexdigest(), chunk_size=65536)
    assert out == tmp_path / "models" / "model.pth" and out.read_bytes() == data
    assert not (tmp_path / "models" / "model.pth.part").exists()
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == len(data)
    assert all(t == len(data) for _, t in seen)
    assert registry.cached_sha256(out) == hashlib.sha256(data).hexdigest()  # identification will not rehash


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    source = tmp_path / "model.pth"
    source.write_bytes(_payload())
    target = tmp_path / "models"
    with pytest.raises(DownloadError, match="SHA-256"):
        download.download_model(source.as_uri(), target, sha256="0" * 64)
    assert list(target.iterdir()) == []


def test_download_md5_is_checked_when_no_sha256_is_known(tmp_path):
    data = _checkpoint()
    source = tmp_path / "m.pt"
    source.write_bytes(data)
    with pytest.raises(DownloadError, match="MD5"):
        download.download_model(source.as_uri(), tmp_path / "a", md5="0" * 32)
    out = download.download_model(source.as_uri(), tmp_path / "b", md5=hashlib.md5(data).hexdigest())
    assert out.read_bytes() == data


class _FlakyResponse(io.BytesIO):
    def __init__(self, data: bytes, fail_after: int, declared: int | None = None) -> None:
        super().__init__(data)
        self.fail_after = fail_after
        self.headers = {"Content-Length": str(declared if declared is not None else len(data))}

    def read(self, n=-1):
        if self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(n, self.fail_after - self.tell()))


def test_interrupted_download_leaves_no_file(tmp_path):
    data = _payload()
    target = tmp_path / "models"
    with pytest.raises(DownloadError, match="interrupted"):
        download.download_model("https://example.invalid/x/sam_vit_b_01ec64.pth", target,
                                opener=lambda url, timeout: _FlakyResponse(data, 100_000), chunk_size=10_000)
    assert list(target.iterdir()) == []


def test_short_download_is_refused(tmp_path):
    data = _payload(50_000)

    class Short(io.BytesIO):
        headers = {"Content-Length": "80000"}

    with pytest.raises(DownloadError, match="cut short"):
        download.download_model("https://example.invalid/m.pth", tmp_path, opener=lambda u, t: Short(data))
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_during_download_removes_part(tmp_path):
    data = _payload()

    def progress(done, total):
        if done > 100_000:
            raise KeyboardInterrupt

    opener = lambda url, timeout: _FlakyResponse(data, len(data))  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        download.download_model("https://example.invalid/m.pth", tmp_path, opener=opener, progress=progress,
                                chunk_size=50_000)
    assert list(tmp_path.iterdir()) == []


def test_registry_spec_download_uses_spec_expectations(tmp_path):
    spec = registry.KNOWN_MODELS["sam_vit_b"]
    with pytest.raises(DownloadError, match=f"offers 12 bytes, expected {spec.size_bytes}"):
        download.download_model(spec, tmp_path, opener=lambda url, timeout: _FlakyResponse(b"x" * 12, 12))
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_when_valid_and_never_overwritten(tmp_path):
    data = _payload(1000)
    (tmp_path / "m.pth").write_bytes(data)
    fail = lambda url, timeout: pytest.fail("must not download")  # noqa: E731
    assert download.download_model("https://example.invalid/m.pth", tmp_path, opener=fail,
                                   sha256=hashlib.sha256(data).hexdigest()) == tmp_path / "m.pth"
    with pytest.raises(DownloadError, match="already exists"):
        download.download_model("https://example.invalid/m.pth", tmp_path, opener=fail, sha256="1" * 64)
    assert (tmp_path / "m.pth").read_bytes() == data


@pytest.mark.parametrize("url", ["https://example.invalid/", "https://example.invalid/notes.txt",
                                 "https://example.invalid/.hidden.pth", "ftp://example.invalid/m.pth"])
def test_unacceptable_download_targets(tmp_path, url):
    with pytest.raises(DownloadError):
        download.download_model(url, tmp_path, opener=lambda u, t: pytest.fail("must not download"))


def test_download_over_http_from_a_local_server(tmp_path):
    data = _checkpoint()
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "model.pt").write_bytes(data)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "served"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        out = download.download_model(f"{base}/model.pt", tmp_path / "models",
                                      sha256=hashlib.sha256(data).hexdigest())
        assert out.read_bytes() == data
        with pytest.raises(DownloadError, match="404"):
            download.download_model(f"{base}/missing.pt", tmp_path / "models")
        assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["model.pt"]
    finally:
        server.shutdown()
        server.server_close()


def test_tqdm_progress_tracks_bytes():
    bar = download.tqdm_progress("test")
    bar(0, 100)
    bar(40, 100)
    bar(100, 100)
    assert bar._bar is not None and bar._bar.n == 100
    bar.close()


def test_download_command(tmp_path, capsys):
    data = _checkpoint()
    source = tmp_path / "cli_model.pt"
    source.write_bytes(data)
    assert download.main([source.as_uri(), "--to", str(tmp_path / "out"), "--sha256", hashlib.sha256(data).hexdigest()]) == 0
    assert (tmp_path / "out" / "cli_model.pt").read_bytes() == data
    assert download.main([source.as_uri(), "--to", str(tmp_path / "bad"), "--sha256", "2" * 64]) == 2
    assert "SHA-256" in capsys.readouterr().err and not (tmp_path / "bad" / "cli_model.pt").exists()
    assert download.main(["--list"]) == 0 and "sam_vit_b" in capsys.readouterr().out


# ---- folders -----------------------------------------------------------------------------------------------


def test_default_folders_order(tmp_path):
    webui = tmp_path / "webui"
    extension = webui / "extensions" / "segfill"
    (webui / "models" / "sam").mkdir(parents=True)
    (webui / "extensions" / "sd-webui-inpaint-anything" / "models").mkdir(parents=True)
    extension.mkdir(parents=True)
    env = {folders.MODELS_ENV: os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])}
    found = folders.default_model_folders(extension_root=extension, environ=env)
    assert found == [tmp_path / "a", tmp_path / "b", webui / "models" / "sam",
                     webui / "extensions" / "sd-webui-inpaint-anything" / "models", extension / "models" / "sam"]
    standalone = folders.default_model_folders(extension_root=tmp_path / "alone", environ={})
    assert standalone == [tmp_path / "alone" / "models" / "sam"]


def test_list_model_files(tmp_path, tiny_file):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "b_model.pth").write_bytes(tiny_file.read_bytes())
    (first / "sam_hq_vit_l.pth").write_bytes(b"")
    (first / "half.pth.part").write_bytes(b"")
    (first / "notes.txt").write_text("x")
    (first / ".hidden.pt").write_bytes(b"")
    (second / "b_model.pth").write_bytes(b"shadowed by the first folder")
    (second / "A_model.safetensors").write_bytes(b"damaged")
    torch.save(torch.nn.Linear(2, 2).state_dict(), second / "classifier.pt")  # another kind of model: hidden
    torch.save({"net": _Booby(str(tmp_path / "code-ran"))}, second / "pickled.pt")  # never loadable: hidden
    torch.save(build_tiny_sam().state_dict(), second / "legacy.pth", _use_new_zipfile_serialization=False)
    listed = folders.list_model_files([first, second, tmp_path / "missing"])
    assert [m.name for m in listed] == ["A_model.safetensors", "b_model.pth", "legacy.pth", "sam_hq_vit_l.pth"]
    by_name = {m.name: m for m in listed}
    assert by_name["b_model.pth"].path == first / "b_model.pth"
    assert (by_name["b_model.pth"].family, by_name["b_model.pth"].arch) == ("sam", registry.CUSTOM_ARCH)
    # legacy files too: their pickles are walked with shape-only placeholders, their storages skipped
    assert (by_name["legacy.pth"].family, by_name["legacy.pth"].arch) == ("sam", registry.CUSTOM_ARCH)
    assert by_name["A_model.safetensors"].arch is None  # damaged: loading it will say so
    assert (by_name["sam_hq_vit_l.pth"].family, by_name["sam_hq_vit_l.pth"].arch) == ("sam_hq", "vit_l")
    assert by_name["sam_hq_vit_l.pth"].identification.method == "name"
    assert not (tmp_path / "code-ran").exists()
    plain = {m.name: m for m in folders.list_model_files([first, second], inspect=False)}
    assert plain["b_model.pth"].arch is None and "classifier.pt" in plain
    full = {m.name: m for m in folders.list_model_files([second], inspect=True)}
    assert full["legacy.pth"].arch == registry.CUSTOM_ARCH


def test_safetensors_shapes_are_read_from_the_header(tmp_path):
    save_file = pytest.importorskip("safetensors.torch").save_file

    path = tmp_path / "renamed.safetensors"
    save_file(zero_state_dict_like_contiguous(official_shaped_state_dict("vit_l")), str(path))
    assert registry.read_tensor_shapes(path)["image_encoder.patch_embed.proj.weight"] == (1024, 3, 16, 16)
    assert registry.identify_checkpoint(path, inspect="cheap").arch == "vit_l"


def zero_state_dict_like_contiguous(state):
    """Real (contiguous) zeros for safetensors, keeping only the small tensors identification reads."""
    keep = ("image_encoder.patch_embed.proj.weight", "rel_pos_h", "mask_decoder.iou_token.weight")
    return {k: torch.zeros(v.shape) for k, v in state.items() if k.endswith(keep)}


# ---- manager ------------------------------------------------------------------------------------------------


@pytest.fixture()
def model_dir(tmp_path, tiny_file):
    folder = tmp_path / "sam"
    folder.mkdir()
    (folder / "one.pth").write_bytes(tiny_file.read_bytes())
    save_tiny_sam(folder / "two.pth", seed=3)
    return folder


def test_manager_loads_once_and_switches_models(model_dir):
    sam = manager.SamManager([model_dir], device="cpu")
    assert [m.name for m in sam.list_models()] == ["one.pth", "two.pth"]
    first = sam.get("one.pth")
    assert sam.get("one.pth") is first and sam.load_count == 1
    second = sam.get("two.pth")
    assert second is not first and sam.loaded is second and sam.load_count == 2
    assert second.model_key != first.model_key
    assert sam.unload() is True and sam.loaded is None and sam.unload() is False


def test_manager_never_turns_names_into_paths(model_dir, tmp_path):
    outside = save_tiny_sam(tmp_path / "outside.pth")
    sam = manager.SamManager([model_dir], device="cpu")
    for name in ("../outside.pth", str(outside), "/etc/passwd", "one.pth/../two.pth"):
        with pytest.raises(ModelError, match="Unknown SAM model"):
            sam.get(name)
    assert sam.load_count == 0
    with pytest.raises(ModelError, match="not installed"):
        sam.get("sam_vit_b")
    assert sam.get_path(outside).path == outside  # the explicit, trusted-caller route


def test_manager_resolves_registry_names(tmp_path, tiny_file):
    (tmp_path / "sam_hq_vit_b.pth").write_bytes(b"x")
    sam = manager.SamManager([tmp_path], device="cpu", loader=lambda p, model_type=None, device="cpu": ("loaded", p))
    assert sam.get("sam_hq_vit_b") == ("loaded", tmp_path / "sam_hq_vit_b.pth")


def test_manager_offload_keeps_the_model(model_dir):
    sam = manager.SamManager([model_dir], device="cpu")
    loaded = sam.get("one.pth")
    assert sam.offload_to_cpu() is True and loaded.device == "cpu"
    assert sam.get("one.pth") is loaded and sam.load_count == 1
    sam.unload()
    assert sam.offload_to_cpu() is False


def test_manager_is_current_tells_holders_when_to_get_again(model_dir):
    sam = manager.SamManager([model_dir], device="cpu")
    loaded = sam.get("one.pth")
    assert sam.is_current(loaded) and not sam.is_current(None)
    sam.offload_to_cpu()
    assert not sam.is_current(loaded), "an offloaded model must be fetched again before use"
    assert sam.get("one.pth") is loaded and sam.is_current(loaded)
    sam.unload()
    assert not sam.is_current(loaded)


class _FakeLoaded:
    def __init__(self, path):
        self.path = path
        self.device = "cpu"
        self.moves = []

    def to(self, device):
        self.moves.append(device)
        self.device = device
        return self


def test_manager_moves_offloaded_model_back_to_its_device(tmp_path):
    (tmp_path / "m.pth").write_bytes(b"x")
    sam = manager.SamManager([tmp_path], device="cpu", loader=lambda p, model_type=None, device="cpu": _FakeLoaded(p))
    sam._device = "cuda"  # pretend a GPU, without needing one: only the bookkeeping is under test
    loaded = sam.get("m.pth")
    loaded.device = "cuda"
    sam.offload_to_cpu()
    assert loaded.moves == ["cpu"]
    assert sam.get("m.pth") is loaded and loaded.moves == ["cpu", "cuda"]


def test_idle_unload_with_an_injected_clock(model_dir):
    now = [100.0]
    sam = manager.SamManager([model_dir], device="cpu", idle_unload_s=3600, clock=lambda: now[0])
    sam.get("one.pth")
    now[0] += 3599
    assert sam.unload_if_idle() is False and sam.loaded is not None
    sam.get("one.pth")  # use resets the idle period
    now[0] += 3599
    assert sam.unload_if_idle() is False
    now[0] += 2
    assert sam.unload_if_idle() is True and sam.loaded is None
    sam.unload()  # cancels the pending timer


def test_idle_unload_timer_fires(model_dir):
    sam = manager.SamManager([model_dir], device="cpu", idle_unload_s=0.05)
    sam.get("one.pth")
    deadline = time.monotonic() + 10
    while sam.loaded is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sam.loaded is None


def test_concurrent_gets_load_once(tmp_path):
    (tmp_path / "m.pth").write_bytes(b"x")
    started = threading.Event()

    def slow_loader(path, model_type=None, device="cpu"):
        started.set()
        time.sleep(0.2)
        return _FakeLoaded(path)

    sam = manager.SamManager([tmp_path], device="cpu", loader=slow_loader)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sam.get("m.pth"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sam.load_count == 1 and len(results) == 4 and all(r is results[0] for r in results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_manager_offloads_from_the_gpu_and_back(model_dir):
    sam = manager.SamManager([model_dir], device="cuda")
    loaded = sam.get("one.pth")
    assert next(loaded.model.parameters()).is_cuda and loaded.device == "cuda"
    sam.offload_to_cpu()
    assert not next(loaded.model.parameters()).is_cuda and loaded.device == "cpu"
    assert sam.get("one.pth") is loaded and next(loaded.model.parameters()).is_cuda
    sam.unload()
    assert sam.loaded is None


def _fake_accelerators(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_resolve_device_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch):
    # on this machine: what torch reports decides, in that order
    has_cuda = torch.cuda.is_available()
    has_mps = torch.backends.mps.is_available()
    expected = "cuda" if has_cuda else "mps" if has_mps else "cpu"
    assert manager.resolve_device("auto") == manager.resolve_device(None) == expected
    for cuda, mps, picked in ((True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        _fake_accelerators(monkeypatch, cuda, mps)
        assert manager.resolve_device("auto") == manager.resolve_device(" AUTO ") == picked, (cuda, mps)


def test_resolve_device_explicit_choices(monkeypatch):
    assert manager.resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match="Unknown device"):
        manager.resolve_device("tpu")
    _fake_accelerators(monkeypatch, cuda=False, mps=False)
    with pytest.raises(InputError, match="no CUDA GPU"):
        manager.resolve_device("cuda")
    with pytest.raises(InputError, match="MPS is not available"):
        manager.resolve_device("mps")
    _fake_accelerators(monkeypatch, cuda=True, mps=True)
    assert manager.resolve_device("cuda") == "cuda" and manager.resolve_device("cuda:1") == "cuda:1"
    assert manager.resolve_device("mps") == "mps"


# ---- sam2 installation ----------------------------------------------------------------------------------------


def test_sam2_install_steps_never_let_pip_touch_torch(tmp_path):
    steps = sam2_install.sam2_install_steps("/py", tmp_path / "c.txt")
    deps, package = steps
    assert deps.argv[:4] == ["/py", "-m", "pip", "install"] and "-c" in deps.argv
    assert "hydra-core>=1.3.2" in deps.argv and "iopath>=0.1.10" in deps.argv
    assert not any(arg.startswith(("torch", "sam2")) for arg in deps.argv)
    assert package.argv[-1] == f"sam2=={sam2_install.SAM2_VERSION}"
    assert "--no-deps" in package.argv and "--no-build-isolation" in package.argv
    assert "--upgrade" not in package.argv + deps.argv
    assert package.env["SAM2_BUILD_CUDA"] == "0"


def test_install_sam2_pins_installed_torch_and_reports_failures(monkeypatch):
    calls = []

    def fake_run(argv, env=None, capture_output=True, text=True):
        constraints = argv[argv.index("-c") + 1] if "-c" in argv else None
        calls.append((argv, Path(constraints).read_text() if constraints else None))
        return subprocess.CompletedProcess(argv, 0, "ok", "")

    monkeypatch.setattr(sam2_install, "sam2_status", lambda smoke_test=False: "status")
    assert sam2_install.install_sam2("/py", run=fake_run) == "status"
    assert len(calls) == 2
    assert f"torch=={torch.__version__.split('+')[0]}" in calls[0][1]

    def failing_run(argv, env=None, capture_output=True, text=True):
        return subprocess.CompletedProcess(argv, 1, "", "error: invalid command 'bdist_wheel'\n")

    with pytest.raises(SegFillError, match="bdist_wheel"):
        sam2_install.install_sam2("/py", run=failing_run)


def test_sam2_status_when_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sam2" else real(name, *a))
    status = sam2_install.sam2_status()
    assert status.installed is False and status.works is None and "not installed" in status.message


# ---- import cost -------------------------------------------------------------------------------------------------


def test_light_modules_do_not_import_torch():
    code = ("import sys, segfill.sam, segfill.sam.registry, segfill.sam.folders, segfill.sam.download, "
            "segfill.sam.manager, segfill.sam.sam2_install; "
            "print(sorted(m for m in ('torch', 'segment_anything', 'sam2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_download_is_a_segfill_subcommand(tmp_path, capsys):
    from segfill.cli import main as segfill_main

    data = _checkpoint()
    source = tmp_path / "sub_model.pt"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert segfill_main(["download", source.as_uri(), "--to", str(tmp_path / "out"), "--sha256", digest]) == 0
    assert (tmp_path / "out" / "sub_model.pt").read_bytes() == data
    assert segfill_main(["download", source.as_uri(), "--to", str(tmp_path / "bad"), "--sha256", "3" * 64]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last_line.startswith("segfill download: error:") and "SHA-256" in last_line
    assert not list((tmp_path / "bad").glob("*"))
