"""onnxruntime-web's wasm is not in the repository: segfill.web_runtime fetches the pinned npm tarball once,
keeps a file only when the tarball's integrity and the file's SHA-256 both match, and the page is given no
browser-decoder URL while the runtime is missing (previews then come from the lean server route)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile

import pytest

from segfill import web_runtime
from segfill.web_runtime import WebRuntimeError, ensure_web_runtime, missing_files, runtime_ready

FILES = {"ort.wasm.min.js": b"// js", "ort-wasm-simd-threaded.mjs": b"// mjs", "ort-wasm-simd-threaded.wasm": b"\0asm wasm"}


def _tarball(tmp_path, files=FILES, name="pkg.tgz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(f"package/dist/{member}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(buffer.getvalue()).digest()).decode()
    return path, integrity


def _manifest(integrity, files=FILES):
    return {"package": "onnxruntime-web", "version": "9.9.9", "npm_integrity": integrity,
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}


def test_missing_files_are_fetched_once_verified_and_written_whole(tmp_path):
    tarball, integrity = _tarball(tmp_path)
    manifest = _manifest(integrity)
    folder = tmp_path / "vendor"
    folder.mkdir()
    (folder / "ort.wasm.min.js").write_bytes(FILES["ort.wasm.min.js"])  # the small files are in the repository
    (folder / "ort-wasm-simd-threaded.mjs").write_bytes(b"tampered")
    assert missing_files(folder, manifest) == ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
    written = ensure_web_runtime(folder, manifest, url=tarball.as_uri())
    assert written == ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == FILES  # no temporary files left
    assert ensure_web_runtime(folder, manifest, url=(tmp_path / "gone.tgz").as_uri()) == []  # offline afterwards


def test_a_tarball_or_file_that_does_not_verify_is_never_kept(tmp_path):
    folder = tmp_path / "vendor"
    tarball, integrity = _tarball(tmp_path)
    with pytest.raises(WebRuntimeError, match="does not match its integrity"):
        ensure_web_runtime(folder, _manifest("sha512-" + "A" * 88), url=tarball.as_uri())
    other = dict(FILES, **{"ort-wasm-simd-threaded.wasm": b"\0asm other"})
    swapped, swapped_integrity = _tarball(tmp_path, other, "swapped.tgz")
    with pytest.raises(WebRuntimeError, match="ort-wasm-simd-threaded.wasm from .* does not match its SHA-256"):
        ensure_web_runtime(folder, _manifest(swapped_integrity), url=swapped.as_uri())
    with pytest.raises(WebRuntimeError, match="Could not fetch"):
        ensure_web_runtime(folder, _manifest(integrity), url=(tmp_path / "nowhere.tgz").as_uri())
    assert not folder.exists() or not any(folder.iterdir())


def test_the_pinned_manifest_names_the_npm_tarball():
    manifest = web_runtime.load_manifest()
    assert web_runtime.tarball_url(manifest) == (
        "https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-1.30.0.tgz")
    assert manifest["npm_integrity"].startswith("sha512-") and len(manifest["files"]) == 3


def test_without_the_runtime_the_page_gets_no_browser_decoder(tmp_path, monkeypatch):
    from segfill.ui import render

    assert runtime_ready(tmp_path) is False
    calls = []

    def ready():
        calls.append(1)
        return False

    monkeypatch.setattr(web_runtime, "runtime_ready", ready)

    class Loaded:
        model_key, family, image_size, model = "k", "sam", 1024, None

    class Session:
        is_image_set, image_key, model = True, ("emb", "digest"), Loaded()

    class State:
        session = Session()
        import numpy as np

        image = np.zeros((30, 40, 3), np.uint8)

    monkeypatch.setattr("segfill.sam.onnx_decoder.exportable", lambda loaded: True)
    info = render.interactive_info(State())
    assert calls and info["decoder_url"] is None and info["embedding_url"] is None
    assert info["click_url"].endswith("/click")  # previews still come, from the lean route
