"""Clicks without the gradio round trip: the ONNX decoder, the embedding route and the lean click route give the
masks the server's SamSession gives, for the same model, image and points."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
ort = pytest.importorskip("onnxruntime")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from segfill.api import register_routes  # noqa: E402
from segfill.api.interactive import VENDOR_DIR, WEB_FILES  # noqa: E402
from segfill.sam import onnx_decoder  # noqa: E402
from segfill.sam.session import EmbeddingCache, SamSession  # noqa: E402
from segfill.ui.dataurl import decode_data_url  # noqa: E402
from tests._sam_fixtures import single_torch_thread, textured_image  # noqa: E402
from tests.tiny_models import save_tiny_sam  # noqa: E402

PREFIX = "/segfill/v1"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    folder = tmp_path_factory.mktemp("models")
    save_tiny_sam(folder / "tiny.pth")
    host = StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"))
    app = FastAPI()
    register_routes(app, host)
    return host, TestClient(app)


@pytest.fixture(scope="module")
def session(setup):
    host, _ = setup
    session = SamSession(host.sam.get("tiny.pth"), host.embeddings)
    session.set_image(textured_image(160, 120))
    return session


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SEGFILL_CACHE", str(tmp_path_factory.getbasetemp() / "segfill-cache"))


def _embedding(client, session):
    key, digest = session.image_key
    response = client.get(f"{PREFIX}/embedding/{key}/{digest}")
    assert response.status_code == 200, response.text
    dtype = response.headers["x-segfill-dtype"]
    shape = tuple(int(v) for v in response.headers["x-segfill-shape"].split(","))
    array = np.frombuffer(response.content, dtype="<f2" if dtype == "float16" else "<f4").reshape(shape)
    sizes = [tuple(int(v) for v in response.headers[h].split(",")) for h in ("x-segfill-input-size", "x-segfill-original-size")]
    return array.astype(np.float32), dtype, sizes[0], sizes[1]


def test_the_browser_decoder_gives_the_servers_masks(setup, session):
    host, client = setup
    loaded = session.model
    response = client.get(f"{PREFIX}/decoder/{loaded.model_key}.onnx")
    assert response.status_code == 200 and len(response.content) > 10_000
    decoder = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    assert [i.name for i in decoder.get_inputs()] == list(onnx_decoder.INPUT_NAMES)
    embedding, dtype, input_size, original_size = _embedding(client, session)
    assert dtype in ("float16", "float32") and original_size == (120, 160)
    for points, box in (([(90.5, 60.5, 1)], None), ([(90.5, 60.5, 1), (20.5, 100.5, 0)], None),
                        ([], (30, 20, 120, 100)), ([(70.5, 50.5, 1)], (30, 20, 120, 100))):
        expected = session.predict(points=points, box=box, use_previous_logits=False)
        multimask = len(points) == 1 and box is None
        tokens = [-1, 1, 2, 3] if multimask else [0]  # -1: the decoder picks the best multimask candidate
        for token in tokens:
            inputs = onnx_decoder.decoder_inputs(embedding, points, box, input_size, original_size, original_size,
                                                 candidate=token)
            masks, scores, _, chosen = decoder.run(None, inputs)
            index = int(chosen[0]) - (1 if multimask else 0)
            assert index == (expected.best_index if token == -1 else token - (1 if multimask else 0))
            differing = int(((masks[0, 0] > 0) != expected.mask(index)).sum())
            assert differing <= 2, f"{differing} pixels differ for {points}, {box}"  # logits right at 0, if any
            np.testing.assert_allclose(scores[0, 1:4] if multimask else scores[0, :1], expected.scores, atol=2e-3)


def test_the_export_is_cached_per_model_content(setup, session, tmp_path):
    first = onnx_decoder.export_decoder(session.model, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert onnx_decoder.export_decoder(session.model, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert session.model.model_key in first.name  # the key holds a fingerprint of the checkpoint's bytes


def test_the_export_works_without_the_onnx_package(setup, session, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # a WebUI whose protobuf is too old for current onnx
    path = onnx_decoder.export_decoder(session.model, tmp_path)
    decoder = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert len(decoder.get_outputs()) == len(onnx_decoder.OUTPUT_NAMES)


def test_the_lean_click_route_answers_with_the_display_mask(setup, session):
    host, client = setup
    key, digest = session.image_key
    body = {"embedding_key": key, "digest": digest, "points": [[90.5, 60.5, 1]]}
    response = client.post(f"{PREFIX}/click", json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    expected = session.predict(points=[(90.5, 60.5, 1)], use_previous_logits=False)
    mask = np.asarray(Image.open(io.BytesIO(decode_data_url(reply["mask"])))) > 127
    np.testing.assert_array_equal(mask, expected.mask(expected.best_index))
    assert (reply["width"], reply["height"], reply["candidate"]) == (160, 120, expected.best_index)
    np.testing.assert_allclose(reply["scores"], expected.scores, atol=1e-4)  # rounded to 4 decimals

    # a refinement: the previous answer's logits are fed back as the tab's kept session does
    kept = SamSession(session.model, host.embeddings)
    kept.set_image(textured_image(160, 120))
    kept.predict(points=[(90.5, 60.5, 1)])
    refined = kept.predict(points=[(90.5, 60.5, 1), (20.5, 100.5, 0)])
    body.update(points=[[90.5, 60.5, 1], [20.5, 100.5, 0]], previous_points=[[90.5, 60.5, 1]])
    reply = client.post(f"{PREFIX}/click", json=body).json()
    mask = np.asarray(Image.open(io.BytesIO(decode_data_url(reply["mask"])))) > 127
    np.testing.assert_array_equal(mask, refined.best_mask)

    # bit-packed (what the tab asks for): the same mask, no image codec
    bits = client.post(f"{PREFIX}/click", json=dict(body, mask_format="bits")).json()
    assert "mask" not in bits
    import base64

    unpacked = np.unpackbits(np.frombuffer(base64.b64decode(bits["mask_bits"]), np.uint8))[: 160 * 120]
    np.testing.assert_array_equal(unpacked.reshape(120, 160).astype(bool), refined.best_mask)
    assert client.post(f"{PREFIX}/click", json=dict(body, mask_format="jpeg")).status_code == 422


def test_the_lean_route_refuses_what_it_cannot_answer(setup, session):
    _, client = setup
    key, digest = session.image_key
    assert client.post(f"{PREFIX}/click", json={"embedding_key": key, "digest": "0" * 32, "points": [[1, 1, 1]]}).status_code == 404
    assert client.post(f"{PREFIX}/click", json={"embedding_key": "other", "digest": digest, "points": [[1, 1, 1]]}).status_code == 404
    outside = client.post(f"{PREFIX}/click", json={"embedding_key": key, "digest": digest, "points": [[500, 1, 1]]})
    assert outside.status_code == 422 and "outside the 160×120 image" in outside.json()["detail"]
    assert client.post(f"{PREFIX}/click", json={"embedding_key": key, "digest": digest, "points": [[1, 1, 1]],
                                                 "typo": 1}).status_code == 422
    assert client.get(f"{PREFIX}/decoder/not-loaded.onnx").status_code == 404
    assert client.get(f"{PREFIX}/embedding/{key}/{'0' * 32}").status_code == 404


def test_onnxruntime_web_is_there_with_its_checksums_and_served(setup):
    _, client = setup
    manifest = json.loads((VENDOR_DIR / "manifest.json").read_text())
    assert manifest["package"] == "onnxruntime-web" and set(manifest["files"]) == set(WEB_FILES)
    for name, digest in manifest["files"].items():  # the wasm was fetched by dev.sh (segfill.web_runtime)
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, name
        response = client.get(f"{PREFIX}/web/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(WEB_FILES[name])
    for bad in ("../README.md", "LICENSE", "ort.min.js"):
        assert client.get(f"{PREFIX}/web/{bad}").status_code == 404


def test_the_payload_tells_the_browser_where_the_decoder_and_embedding_are(setup):
    from segfill.ui import state as st
    from segfill.ui.render import build_payload

    host, client = setup
    state = st.UserState()
    st.set_image(state, Image.fromarray(textured_image(160, 120)), host)
    info = build_payload(state)["sam"]
    assert info["digest"] == state.session.image_key[1] and info["display"] == [160, 120]
    assert client.get(info["decoder_url"]).status_code == 200
    assert client.get(info["embedding_url"]).status_code == 200
    assert info["click_url"] == f"{PREFIX}/click" and Path(info["web_url"]).name == "web"
