"""``POST /segfill/v1/detect``, ``GET /segfill/v1/detectors``, ``/mask`` with ``text``, and the manifest the
standalone host writes for API results — TestClient on fastapi 0.94 + pydantic 1 and 0.104 + pydantic 2, a tiny
random-weight OWL-ViT folder installed in the host's detector folder, a tiny SAM, the OpenCV backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("transformers")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from segfill.api import register_routes  # noqa: E402
from segfill.api.codec import read_image_b64  # noqa: E402
from segfill.detect import registry  # noqa: E402
from tests import tiny_detectors  # noqa: E402
from tests._sam_fixtures import single_torch_thread, textured_image  # noqa: E402
from tests.test_api import b64, detail  # noqa: E402
from tests.tiny_models import save_tiny_sam  # noqa: E402

pytestmark = pytest.mark.skipif(not registry.family_status("owlvit").available,
                                reason=registry.family_status("owlvit").message)
PREFIX = "/segfill/v1"
WIDTH, HEIGHT = 96, 72


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from segfill.backends import create_backend
    from segfill.detect.manager import DetectorManager
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache

    root = tmp_path_factory.mktemp("api_detect")
    save_tiny_sam(root / "sam" / "tiny.pth")
    tiny_detectors.save_tiny_owlvit(root / "detectors" / "tiny-owlvit", seed=2)
    host = StandaloneHost(SamManager([root / "sam"], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"),
                          output_dir=root / "outputs", detectors=DetectorManager([root / "detectors"], device="cpu"))
    app = FastAPI()
    register_routes(app, host)
    return host, TestClient(app), root


@pytest.fixture(scope="module")
def image():
    return textured_image(WIDTH, HEIGHT)


def reference_detection(root, image, text, threshold):
    from segfill.detect.detector import detect
    from segfill.detect.loading import load_detector

    return detect(load_detector(root / "detectors" / "tiny-owlvit"), image, text, box_threshold=threshold)


def test_detectors_lists_families_installed_folders_and_the_default(setup):
    _host, client, _root = setup
    reply = client.get(f"{PREFIX}/detectors")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    families = {f["family"]: f for f in body["families"]}
    assert set(families) == {"grounding_dino", "owlvit", "owlv2", "sam3"}
    assert families["owlvit"]["available"] is True
    assert body["installed"] == ["tiny-owlvit"] and body["default"] == "tiny-owlvit"
    if not families["sam3"]["available"]:
        assert "SAM 3 needs transformers >= 5.0" in families["sam3"]["message"]


def test_detect_returns_the_detectors_boxes_labels_and_scores(setup, image):
    _host, client, root = setup
    reply = client.post(f"{PREFIX}/detect", json={"image": b64(image), "text": "a red ball, a dog",
                                                  "detector": "tiny-owlvit", "box_threshold": 0.0})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = reference_detection(root, image, "a red ball, a dog", 0.0)
    assert body["detections"] == [d.to_dict() for d in expected.detections] and len(expected) > 0
    assert body["boxes"] == [d["box"] for d in body["detections"]]
    assert set(body["labels"]) <= {"a red ball", "a dog"}
    assert body["family"] == "owlvit" and body["text_threshold"] is None
    assert (body["width"], body["height"]) == (WIDTH, HEIGHT)
    # without a detector the installed folder is used; a threshold above every score finds nothing (not an error)
    none = client.post(f"{PREFIX}/detect", json={"image": b64(image), "text": "a cup", "box_threshold": 1.0})
    assert none.status_code == 200 and none.json()["boxes"] == []


@pytest.mark.parametrize("change, status, words", [
    ({"detector": "../../etc"}, 404, "Unknown detector"),
    ({"detector": "/tmp"}, 404, "Unknown detector"),
    ({"box_threshold": 1.5}, 422, "between 0 and 1"),
    ({"text": " . "}, 422, "Type what to select"),
    ({"max_boxes": 0}, 422, "max_boxes"),
    ({"image": "bm90IGFuIGltYWdl"}, 400, "not a valid"),
    ({"texts": "typo"}, 422, "texts"),
])
def test_bad_detect_requests_get_a_4xx_with_one_sentence(setup, image, change, status, words):
    _host, client, _root = setup
    body = {"image": b64(image), "text": "a dog", "detector": "tiny-owlvit", **change}
    reply = client.post(f"{PREFIX}/detect", json=body)
    assert reply.status_code == status, reply.text
    assert words in detail(reply)


def test_mask_with_text_unites_sams_answers_to_every_box(setup, image):
    from segfill.detect.pipeline import predict_boxes
    from segfill.sam.session import SamSession

    host, client, root = setup
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(image), "text": "a red ball", "detector": "tiny-owlvit",
                                                "box_threshold": 0.0, "grow": 2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = reference_detection(root, image, "a red ball", 0.0)
    assert body["detections"] == [d.to_dict() for d in expected.detections] and body["chosen"] == -1
    session = SamSession(host.sam.get("tiny.pth"))
    session.set_image(image)
    predictions = predict_boxes(session, expected.detections)
    assert len(body["masks"]) == len(predictions)
    union = np.zeros((HEIGHT, WIDTH), bool)
    for text, prediction in zip(body["masks"], predictions, strict=True):
        np.testing.assert_array_equal(np.asarray(read_image_b64(text)) > 127, prediction.best_mask)
        union |= prediction.best_mask
    from segfill.masks import grow

    np.testing.assert_array_equal(np.asarray(read_image_b64(body["mask"])) > 127, grow(union, 2))

    nothing = client.post(f"{PREFIX}/mask", json={"image": b64(image), "text": "a cup", "box_threshold": 1.0})
    assert nothing.status_code == 422 and "found nothing for 'a cup'" in detail(nothing)
    both = client.post(f"{PREFIX}/mask", json={"image": b64(image), "text": "a cup", "points": [{"x": 1, "y": 1}]})
    assert both.status_code == 422 and "not both" in detail(both)


def test_api_results_are_saved_with_a_manifest_line_that_replays_bit_for_bit(setup, image, capsys):
    from segfill.cli import main

    host, client, root = setup
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[20:50, 30:60] = 255
    reply = client.post(f"{PREFIX}/inpaint", json={"image": b64(image), "mask": b64(mask), "seed": 3})
    assert reply.status_code == 200, reply.text
    saved = Path(reply.json()["info"]["path"])
    assert saved.parent == root / "outputs" and saved.name == "segfill-inpaint-00001.png"
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), np.asarray(read_image_b64(reply.json()["image"])))
    assert "SegFill: inpaint" in Image.open(saved).info["parameters"]
    out = client.post(f"{PREFIX}/outpaint", json={"image": b64(image), "right": 16})
    assert out.status_code == 200 and Path(out.json()["info"]["path"]).name == "segfill-outpaint-00001.png"

    lines = (root / "outputs" / "segfill-manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["source"] == "api" and first["mode"] == "inpaint" and first["seed"] == 3
    backend = host.backend
    assert first["backend"] == {"name": "opencv", "options": {"method": "telea", "radius": 5, "grain": 0.0,
                                                              "working_size": backend.working_size,
                                                              "tiled": backend.needs_tiles}}
    assert Path(first["mask_file"]).name == "segfill-inpaint-00001.mask.png"
    assert Path(first["input"]["path"]).name == "segfill-inpaint-00001.input.png"
    assert first["output"]["path"] == str(saved) and first["output"]["width"] == WIDTH
    for index in (0, 1):
        assert main(["replay", str(index), "--manifest", str(root / "outputs"), "--check"]) == 0
        assert "identical to the recorded output" in capsys.readouterr().out


def test_a_result_that_cannot_be_saved_is_still_returned_with_the_reason(tmp_path, image):
    from segfill.args import InpaintArgs
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    host = StandaloneHost(SamManager([tmp_path], device="cpu"), create_backend("opencv"), output_dir=blocker)
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    mask.paste(255, (10, 10, 40, 40))
    result = host.inpaint(Image.fromarray(image), mask, InpaintArgs())
    assert result.images[0].size == (WIDTH, HEIGHT)
    assert "path" not in result.info and result.info["save_error"]
