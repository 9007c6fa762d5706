"""REST API tests: FastAPI's TestClient on an app carrying SegFill's routes over a real StandaloneHost
(tiny random-weight SAM loaded from a file through the real loader, OpenCV inpainting backend).

Runs on fastapi 0.94 + pydantic 1 (the WebUI 1.10 stack) and fastapi 0.104 + pydantic 2 (Forge's).
Only the last test (the standalone app with its gradio UI) imports gradio; the routes themselves never need it.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from segfill.api import models as api_models  # noqa: E402
from segfill.api import register_routes  # noqa: E402
from segfill.api.codec import read_image_b64  # noqa: E402
from segfill.hosts.base import HostDefaults  # noqa: E402
from segfill.hosts.standalone import StandaloneHost  # noqa: E402
from tests._sam_fixtures import single_torch_thread  # noqa: E402
from tests.tiny_models import save_tiny_sam  # noqa: E402

PREFIX = "/segfill/v1"
MODEL_FILE = "tiny_sam_vit.pth"


# -- fixtures --------------------------------------------------------------------------------------------


class CountingLock:
    """A threading.Lock that counts how often it was taken, standing in for the WebUI's queue lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquired = 0

    def __enter__(self):
        self._lock.acquire()
        self.acquired += 1
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False


def _make_manager(folder: Path):
    from segfill.sam.manager import SamManager

    return SamManager([folder], device="cpu")


def _make_host(folder: Path) -> StandaloneHost:
    from segfill.backends import create_backend
    from segfill.sam.session import EmbeddingCache

    return StandaloneHost(
        _make_manager(folder),
        create_backend("opencv"),
        embeddings=EmbeddingCache(64 * 1024 * 1024),
        defaults=HostDefaults(tile_size=64, overlap=16),
    )


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sam_models")
    save_tiny_sam(folder / MODEL_FILE, seed=0)
    return folder


@pytest.fixture(scope="module")
def host(sam_folder) -> StandaloneHost:
    return _make_host(sam_folder)


@pytest.fixture(scope="module")
def lock() -> CountingLock:
    return CountingLock()


@pytest.fixture(scope="module")
def client(host, lock) -> TestClient:
    app = FastAPI()
    register_routes(app, host, queue_lock=lock, max_image_pixels=600 * 600, max_request_bytes=4 * 1024 * 1024)
    return TestClient(app)


@pytest.fixture(scope="module")
def model_name(client) -> str:
    reply = client.get(f"{PREFIX}/models")
    assert reply.status_code == 200, reply.text
    return reply.json()["models"][0]["name"]


# -- helpers ---------------------------------------------------------------------------------------------


def textured(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """RGB uint8: a bright disc on a noisy gradient (distinct content per seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 60)], axis=-1)
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.25) ** 2
    base[disc] = (240, 230, 40)
    return np.clip(base + rng.integers(-10, 11, size=base.shape), 0, 255).astype(np.uint8)


def b64(image, fmt: str = "PNG", **save_args) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decoded(text: str) -> Image.Image:
    return read_image_b64(text)


def detail(reply) -> str:
    """The error reason as one string (ours are strings, FastAPI's validation errors are lists)."""
    value = reply.json()["detail"]
    return value if isinstance(value, str) else str(value)


# -- health, models, docs ----------------------------------------------------------------------------------


def test_health_reports_version_host_and_limits(client):
    import segfill

    reply = client.get(f"{PREFIX}/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["version"] == segfill.__version__
    assert body["host"] == "standalone"
    assert body["max_image_pixels"] == 600 * 600
    assert body["max_request_bytes"] == 4 * 1024 * 1024


def test_models_lists_the_installed_file_and_a_default(client, model_name):
    body = client.get(f"{PREFIX}/models").json()
    names = [entry["name"] for entry in body["models"]]
    assert names == [model_name]
    assert "tiny_sam" in model_name
    assert body["default"] == model_name
    assert body["host"] == "standalone"
    assert body["inpaint_warning"]  # the OpenCV backend says that prompts are ignored


def test_openapi_documents_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/health", "/models", "/presets", "/mask", "/segment-map", "/inpaint", "/outpaint"):
        assert PREFIX + route in paths
    assert "Segment Anything" in paths[f"{PREFIX}/mask"]["post"]["description"]


def test_api_fields_mirror_the_engine_models_and_their_defaults():
    from segfill.args import InpaintArgs, MaskRefinement, OutpaintArgs

    for api_model, engine_model, extra in (
        (api_models.MaskRequest, MaskRefinement, {"image", "model", "points", "box", "multimask", "candidate",
                                                    "text", "detector", "box_threshold", "text_threshold"}),
        (api_models.InpaintRequest, InpaintArgs, {"image", "mask", "preset"}),
        (api_models.OutpaintRequest, OutpaintArgs, {"image", "preset"}),
    ):
        api_defaults = api_models.model_fields(api_model)
        assert set(api_defaults) == set(engine_model.__fields__) | extra
        for name, field in engine_model.__fields__.items():
            assert api_defaults[name] == field.default, name


# -- /mask -----------------------------------------------------------------------------------------------


def test_mask_returns_three_candidates_and_the_best_one(client, model_name, lock):
    rgb = textured(seed=1)
    taken_before = lock.acquired
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(rgb), "points": [{"x": 57, "y": 36, "label": 1}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["width"], body["height"]) == (96, 72)
    assert body["model"] == model_name
    assert len(body["masks"]) == len(body["scores"]) == 3
    assert body["chosen"] == int(np.argmax(body["scores"]))
    candidates = [np.asarray(decoded(text)) for text in body["masks"]]
    for candidate in candidates:
        assert candidate.shape == (72, 96)
        assert set(np.unique(candidate)) <= {0, 255}
    mask = decoded(body["mask"])
    assert mask.mode == "L" and mask.size == (96, 72)
    # no refinement asked: the mask is the chosen candidate itself
    assert np.array_equal(np.asarray(mask), candidates[body["chosen"]])
    assert lock.acquired > taken_before  # SAM ran under the queue lock


def test_mask_candidate_index_and_refinement_are_applied(client):
    rgb = textured(seed=2)
    common = {"image": b64(rgb), "points": [{"x": 57, "y": 36}]}
    plain = client.post(f"{PREFIX}/mask", json=common).json()
    reply = client.post(f"{PREFIX}/mask", json={**common, "candidate": 2, "invert": True})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["chosen"] == 2
    assert body["masks"] == plain["masks"]  # same image, same prompt, same model: same candidates
    candidate = np.asarray(decoded(body["masks"][2]))
    assert np.array_equal(np.asarray(decoded(body["mask"])), 255 - candidate)

    grown = client.post(f"{PREFIX}/mask", json={**common, "candidate": 2, "grow": 4}).json()
    grown_mask = np.asarray(decoded(grown["mask"])) > 127
    selected = candidate > 127
    # the seeded tiny SAM gives candidate 2 as a partial mask here, so growing it must add pixels
    assert 0.05 < selected.mean() < 0.95, selected.mean()
    from segfill.masks import grow

    assert np.array_equal(grown_mask, grow(selected, 4))
    assert grown_mask.sum() > selected.sum()


def test_mask_with_box_and_single_output(client):
    reply = client.post(
        f"{PREFIX}/mask",
        json={"image": b64(textured(seed=3)), "box": [30, 10, 90, 60], "multimask": False, "feather": 3},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["masks"]) == 1 and body["chosen"] == 0
    assert decoded(body["mask"]).size == (96, 72)


def test_repeated_requests_on_one_image_encode_it_once(client, host, model_name):
    rgb = textured(seed=4)
    loaded = host.sam.get(model_name)
    calls = []
    hook = loaded.model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        for x in (20, 60):
            reply = client.post(f"{PREFIX}/mask", json={"image": b64(rgb), "points": [{"x": x, "y": 30}]})
            assert reply.status_code == 200, reply.text
        assert len(calls) == 1
        other = client.post(f"{PREFIX}/mask", json={"image": b64(textured(seed=5)), "points": [{"x": 5, "y": 5}]})
        assert other.status_code == 200
        assert len(calls) == 2  # a different image is encoded
    finally:
        hook.remove()


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_mask_accepts_jpeg_webp_and_data_urls(client, fmt):
    text = b64(textured(seed=6), fmt)
    reply = client.post(
        f"{PREFIX}/mask",
        json={"image": f"data:image/{fmt.lower()};base64,{text}", "points": [{"x": 10, "y": 10, "label": 1}]},
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["width"], reply.json()["height"]) == (96, 72)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16"])
def test_mask_converts_odd_image_modes(client, mode):
    image = Image.fromarray(textured(seed=7))
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L")).astype(np.uint16) * 257), mode="I;16")
    else:
        image = image.convert(mode)
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(image), "points": [{"x": 50, "y": 40}]})
    assert reply.status_code == 200, reply.text
    assert decoded(reply.json()["mask"]).size == (96, 72)


# -- /segment-map ------------------------------------------------------------------------------------------


def test_segment_map_returns_labels_colours_and_touched_union(client):
    rgb = textured(160, 120, seed=8)
    reply = client.post(
        f"{PREFIX}/segment-map",
        json={"image": b64(rgb), "max_side": 80, "points_per_side": 4, "pred_iou_thresh": 0.0,
              "stability_score_thresh": 0.0, "points": [{"x": 96, "y": 60}, {"x": 10, "y": 10}]},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["width"], body["height"]) == (160, 120)
    assert (body["working_width"], body["working_height"]) == (80, 60)
    labels = np.asarray(decoded(body["labels"])).astype(np.int64)
    assert labels.shape == (60, 80)
    ids = set(np.unique(labels).tolist()) - {0}
    assert len(ids) == body["segment_count"]
    colours = decoded(body["color_map"])
    assert colours.mode == "RGB" and colours.size == (80, 60)
    assert set(body["touched"]) <= ids
    union = np.asarray(decoded(body["mask"])) > 127
    assert union.shape == (120, 160)
    assert union.any() == bool(body["touched"])


def test_segment_map_rejects_out_of_range_parameters(client):
    reply = client.post(f"{PREFIX}/segment-map", json={"image": b64(textured()), "max_side": 10})
    assert reply.status_code == 422
    assert "max_side" in detail(reply)
    reply = client.post(f"{PREFIX}/segment-map", json={"image": b64(textured()), "points": [{"x": 500, "y": 1}]})
    assert reply.status_code == 422
    assert "outside" in detail(reply)


# -- /inpaint and /outpaint -------------------------------------------------------------------------------


def test_inpaint_repaints_only_the_mask(client, lock):
    rgb = textured(96, 72, seed=9)
    mask = np.zeros((72, 96), dtype=np.uint8)
    mask[20:40, 30:60] = 255
    taken_before = lock.acquired
    reply = client.post(f"{PREFIX}/inpaint", json={"image": b64(rgb), "mask": b64(mask), "band": 0, "feather": 0})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    result = np.asarray(decoded(body["image"]).convert("RGB"))
    assert result.shape == rgb.shape
    assert (body["width"], body["height"]) == (96, 72)
    far = np.ones((72, 96), dtype=bool)
    far[12:48, 22:68] = False  # outside the mask and any blending margin: bit-exact
    assert np.array_equal(result[far], rgb[far])
    assert not np.array_equal(result[20:40, 30:60], rgb[20:40, 30:60])
    assert "inpaint" in body["infotext"]
    assert lock.acquired > taken_before


def test_inpaint_rejects_a_mask_of_another_size_or_an_empty_mask(client):
    rgb = textured()
    reply = client.post(f"{PREFIX}/inpaint", json={"image": b64(rgb), "mask": b64(np.full((10, 10), 255, np.uint8))})
    assert reply.status_code == 422
    assert "Mask is" in detail(reply)
    reply = client.post(f"{PREFIX}/inpaint", json={"image": b64(rgb), "mask": b64(np.zeros((72, 96), np.uint8))})
    assert reply.status_code == 422
    assert "empty" in detail(reply)


def test_outpaint_gives_the_exact_size_and_keeps_the_original_bit_exact(client, lock):
    rgb = textured(64, 48, seed=10)
    taken_before = lock.acquired
    reply = client.post(
        f"{PREFIX}/outpaint",
        json={"image": b64(rgb), "left": 16, "right": 24, "top": 8, "bottom": 0, "seed": 7, "tile_size": 64,
              "overlap": 16, "band": 0, "feather": 0, "prefill": "edge"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    result = np.asarray(decoded(body["image"]).convert("RGB"))
    assert (body["width"], body["height"]) == (64 + 40, 48 + 8)
    assert result.shape == (56, 104, 3)
    assert np.array_equal(result[8:56, 16:80], rgb)
    assert body["infotext"]
    assert isinstance(body["plan"], dict) and body["plan"]
    assert lock.acquired > taken_before


def test_outpaint_to_an_aspect_ratio(client):
    rgb = textured(64, 48, seed=11)
    reply = client.post(
        f"{PREFIX}/outpaint",
        json={"image": b64(rgb), "aspect": "16:9", "anchor": "left", "tile_size": 64, "overlap": 16, "band": 0,
              "feather": 0},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["width"], body["height"]) == (85, 48)  # 48 * 16 / 9 = 85.3
    result = np.asarray(decoded(body["image"]).convert("RGB"))
    assert np.array_equal(result[:, :64], rgb)  # anchored left


def test_outpaint_to_a_target_size_anchored_bottom_right(client):
    rgb = textured(64, 48, seed=12)
    reply = client.post(
        f"{PREFIX}/outpaint",
        json={"image": b64(rgb), "target_width": 80, "target_height": 60, "anchor": "bottom-right",
              "tile_size": 64, "overlap": 16, "band": 0, "feather": 0},
    )
    assert reply.status_code == 200, reply.text
    result = np.asarray(decoded(reply.json()["image"]).convert("RGB"))
    assert result.shape == (60, 80, 3)
    assert np.array_equal(result[12:, 16:], rgb)


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({}, "zero"),
        ({"target_width": 80}, "target"),
        ({"target_width": 32, "target_height": 32}, "smaller"),
        ({"left": 0, "right": 0, "top": 0, "bottom": 0}, "zero"),
        ({"right": 100000}, "result would be"),
        ({"right": 600}, "right=600"),
        ({"right": 10**9}, "right"),
        ({"aspect": "wide"}, "aspect"),
        ({"aspect": "0:9"}, "aspect"),
        ({"aspect": "16:9", "anchor": "somewhere"}, "anchor"),
        ({"right": 8, "aspect": "16:9"}, "either"),
        ({"right": 8, "steps": 0}, "steps"),
        ({"right": 8, "prefill": "glitter"}, "prefill"),
        ({"right": -8}, "right"),
    ],
)
def test_outpaint_rejects_bad_geometry_and_parameters(client, fields, reason):
    reply = client.post(f"{PREFIX}/outpaint", json={"image": b64(textured(64, 48)), **fields})
    assert reply.status_code == 422, reply.text
    assert reason.lower() in detail(reply).lower()


def test_outpaint_refuses_results_beyond_the_pixel_limit(client):
    # 500x500 input is allowed (limit 600x600), but +300 px on the right makes 800x500 > 360000 px
    reply = client.post(f"{PREFIX}/outpaint", json={"image": b64(np.zeros((500, 500, 3), np.uint8)), "right": 300})
    assert reply.status_code == 422
    assert "pixels" in detail(reply)


# -- malformed input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/mask", "/segment-map", "/inpaint", "/outpaint"])
def test_malformed_json_and_missing_image_are_422(client, route):
    reply = client.post(PREFIX + route, content=b'{"image": "abc",', headers={"content-type": "application/json"})
    assert reply.status_code == 422
    reply = client.post(PREFIX + route, json={"points": [{"x": 1, "y": 1}], "right": 8})
    assert reply.status_code == 422
    assert "image" in detail(reply)
    reply = client.post(PREFIX + route, json=[1, 2, 3])
    assert reply.status_code == 422


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"points": [{"x": 500, "y": 10}]}, "outside"),
        ({"points": [{"x": -1, "y": 10}]}, "outside"),
        ({"points": [{"x": 10, "y": 10, "label": 5}]}, "label"),
        ({"points": []}, "point or a box"),
        ({"box": [1, 2, 3]}, "box"),
        ({"box": [200, 200, 300, 300]}, "outside"),
        ({"points": [{"x": 10, "y": 10}], "candidate": 3}, "candidate"),
        ({"points": [{"x": 10, "y": 10}], "candidate": 1, "multimask": False}, "candidate"),
        ({"points": [{"x": 10, "y": 10}], "candidate": "worst"}, "candidate"),
        ({"points": [{"x": 10, "y": 10}], "grow": -1}, "grow"),
        ({"points": [{"x": 10, "y": 10}], "feather": 100000}, "feather"),
        ({"points": [{"x": 10, "y": 10}], "feather_method": "zigzag"}, "feather_method"),
        ({"points": [{"x": "left", "y": 10}]}, "x"),
        ({"points": [{"x": 10, "y": 10}], "colour": "red"}, "colour"),
    ],
)
def test_mask_rejects_bad_prompts_and_parameters(client, body, reason):
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), **body})
    assert reply.status_code == 422, reply.text
    assert reason.lower() in detail(reply).lower()


def test_points_and_boxes_off_the_image_are_refused_before_any_model_work(client, lock):
    before = lock.acquired
    for route, body in (
        ("mask", {"points": [{"x": 500, "y": 10}]}),
        ("mask", {"box": [200, 200, 300, 300]}),
        ("segment-map", {"points": [{"x": 10, "y": 500}]}),
    ):
        reply = client.post(f"{PREFIX}/{route}", json={"image": b64(textured()), **body})
        assert reply.status_code == 422, reply.text
        assert "outside" in detail(reply)
    assert lock.acquired == before  # no model loaded, no image encoded


@pytest.mark.parametrize(
    "image",
    [
        "not base64 at all!",
        "/etc/passwd",
        "../../etc/passwd",
        "/etc/hostname1",  # valid base64 alphabet and length: decodes to garbage, still not an image
        base64.b64encode(b"just some text, not a picture").decode(),
        "",
    ],
)
def test_undecodable_images_are_400_and_never_read_from_disk(client, image, monkeypatch):
    opened = []
    real_open = Image.open

    def spy_open(fp, *args, **kwargs):
        opened.append(fp)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy_open)
    reply = client.post(f"{PREFIX}/mask", json={"image": image, "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 400, reply.text
    assert "image" in detail(reply)
    assert all(not isinstance(fp, (str, Path)) for fp in opened)  # only in-memory bytes were ever opened


def test_other_formats_and_truncated_files_are_400(client):
    gif = b64(Image.fromarray(textured()), "GIF")
    reply = client.post(f"{PREFIX}/mask", json={"image": gif, "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 400
    assert "PNG/JPEG/WebP" in detail(reply)
    png = base64.b64decode(b64(textured()))
    truncated = base64.b64encode(png[: len(png) // 2]).decode()
    reply = client.post(f"{PREFIX}/mask", json={"image": truncated, "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 400


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "nonexistent_model.pth", MODEL_FILE + "/.."])
def test_unknown_models_are_404_and_never_loaded(client, host, model_name, name, monkeypatch):
    asked = []
    real_get = host.sam.get
    monkeypatch.setattr(host.sam, "get", lambda key, *a, **k: asked.append(key) or real_get(key, *a, **k))
    for route, extra in (("/mask", {"points": [{"x": 1, "y": 1}]}), ("/segment-map", {})):
        reply = client.post(PREFIX + route, json={"image": b64(textured()), "model": name, **extra})
        assert reply.status_code == 404, reply.text
        assert "Unknown SAM model" in detail(reply)
        assert model_name in detail(reply)  # the reason lists what is installed
    assert asked == []


def test_a_known_but_missing_registry_model_is_404_saying_so(client, model_name):
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(textured()), "model": "sam_vit_h", "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 404
    assert "not installed" in detail(reply) and model_name in detail(reply)


def test_oversized_images_are_413_before_decoding(client):
    big = Image.new("RGB", (700, 700))  # 490000 px > 360000
    reply = client.post(f"{PREFIX}/mask", json={"image": b64(big), "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 413
    assert "490000" in detail(reply)


def test_oversized_bodies_are_413(client):
    padding = "A" * (4 * 1024 * 1024 + 10)
    reply = client.post(f"{PREFIX}/mask", json={"image": padding, "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 413
    assert "bytes" in detail(reply)

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(5):
            yield b"A" * (1024 * 1024)

    reply = client.post(f"{PREFIX}/mask", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413


def test_routes_added_to_a_running_app_work_like_the_webui_does_it(host):
    # The WebUI calls on_app_started after its app has started serving: no middleware can be added then,
    # so the body limit must work without it, and /docs must show routes added late.
    app = FastAPI()
    with TestClient(app) as running:
        assert running.get("/openapi.json").status_code == 200
        register_routes(app, host, max_request_bytes=1000)
        assert f"{PREFIX}/outpaint" in running.get("/openapi.json").json()["paths"]
        assert running.get(f"{PREFIX}/health").json()["max_request_bytes"] == 1000
        reply = running.post(f"{PREFIX}/outpaint", json={"image": "A" * 2000, "right": 8})
        assert reply.status_code == 413


def test_no_installed_model_is_a_clear_404(tmp_path):
    app = FastAPI()
    register_routes(app, _make_host(tmp_path))
    reply = TestClient(app).post(f"{PREFIX}/mask", json={"image": b64(textured()), "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 404
    assert "No SAM model is installed" in detail(reply)


def test_the_standalone_app_serves_the_same_routes(host):
    """`python -m segfill serve`'s app (gradio UI at /, API beside it). Only this test needs gradio, so it
    is imported here and the test is skipped where gradio is not installed."""
    pytest.importorskip("gradio")  # only a missing gradio skips: any other import error in segfill.app fails
    from segfill.app import create_server_app
    running = TestClient(create_server_app(host))
    assert running.get(f"{PREFIX}/health").json()["host"] == "standalone"
    reply = running.post(f"{PREFIX}/mask", json={"image": b64(textured(seed=13)), "points": [{"x": 40, "y": 30}]})
    assert reply.status_code == 200, reply.text
    assert decoded(reply.json()["mask"]).size == (96, 72)
    reply = running.post(f"{PREFIX}/mask", json={"image": "../../etc/passwd", "points": [{"x": 1, "y": 1}]})
    assert reply.status_code == 400
    assert running.get("/").status_code == 200  # the UI is mounted too
