"""Writes never leave half a file; nothing is silently dropped (issue 8, section 3).

Every CLI output goes through segfill.fileio (temporary file in the target folder, then one rename); a bad
output path is one line before any work; an RGBA/LA input keeps its alpha (unmasked pixels keep theirs,
repainted and outpainted pixels become opaque) in the runner, the CLI and the API; a 16-bit input says in
one line that the result is 8-bit.
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from segfill.args import InpaintArgs, OutpaintArgs
from segfill.cli import main
from segfill.outpaint.runner import plan_inpaint, plan_outpaint
from tests.tiny_models import save_tiny_sam

WORKING = 512  # the OpenCV backend's working size (the CLI's default backend)


def _rgba(width: int = 80, height: int = 60, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = np.zeros((height, width), dtype=np.uint8)
    alpha[:, width // 2:] = 255  # half transparent, half opaque, a ramp in between rows
    alpha[: height // 3, : width // 2] = rng.integers(1, 255, (height // 3, width // 2), dtype=np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def _mask(width: int = 80, height: int = 60) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[20:40, 25:55] = 255
    return mask


@pytest.fixture()
def files(tmp_path):
    _rgba().save(tmp_path / "rgba.png")
    _rgba().convert("LA").save(tmp_path / "la.png")
    Image.fromarray(_mask()).save(tmp_path / "mask.png")
    Image.fromarray(np.asarray(_rgba().convert("RGB"))).save(tmp_path / "rgb.png")
    return tmp_path


def _one_line(capsys, code: int, needle: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    return err[0]


# ---- bad output paths: one line, before any work ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["mask", "inpaint", "outpaint", "plan-json"])
@pytest.mark.parametrize("where, needle", [("folder", "is a folder"), ("missing", "does not exist"),
                                           ("under_a_file", "is a file, not a folder")])
def test_bad_output_paths_are_one_line_before_any_work(files, capsys, monkeypatch, command, where, needle):
    import segfill.outpaint.runner as runner
    import segfill.sam.loading as loading

    monkeypatch.setattr(loading, "load_sam", lambda *a, **k: pytest.fail("loaded a model for a bad output"))
    monkeypatch.setattr(runner, "execute_plan", lambda *a, **k: pytest.fail("ran a job for a bad output"))
    (files / "a_folder.png").mkdir()
    (files / "plain.txt").write_text("x")
    bad = {"folder": files / "a_folder.png", "missing": files / "no" / "such" / "out.png",
           "under_a_file": files / "plain.txt" / "out.png"}[where]
    good = files / "good.png"
    if command == "mask":
        checkpoint = save_tiny_sam(files / "tiny.pth")
        argv = ["mask", "--image", str(files / "rgb.png"), "--sam-checkpoint", str(checkpoint), "--point", "5,5",
                "--device", "cpu", "--output", str(bad)]
    elif command == "inpaint":
        argv = ["inpaint", "--image", str(files / "rgb.png"), "--mask", str(files / "mask.png"), "--output", str(bad)]
    elif command == "outpaint":
        argv = ["outpaint", "--image", str(files / "rgb.png"), "--left", "16", "--output", str(bad)]
    else:
        argv = ["outpaint", "--image", str(files / "rgb.png"), "--left", "16", "--output", str(good),
                "--plan-json", str(bad)]
    _one_line(capsys, main([*argv, "--quiet"] if command != "mask" else argv), needle)
    assert not good.exists()


def test_a_crash_while_saving_leaves_the_old_output_and_no_temporary(files, capsys, monkeypatch):
    from PIL import PngImagePlugin

    out = files / "out.png"
    out.write_bytes(b"the previous result")
    real_save = PngImagePlugin._save

    def crash(image, handle, filename, *args, **kwargs):
        handle.write(b"\x89PNG half")
        raise KeyboardInterrupt  # the user pressed Ctrl+C, or the machine went down, mid-write

    monkeypatch.setattr(PngImagePlugin, "_save", crash)
    Image.register_save("PNG", crash)
    try:
        code = main(["inpaint", "--image", str(files / "rgb.png"), "--mask", str(files / "mask.png"),
                     "--output", str(out), "--quiet"])
    finally:
        Image.register_save("PNG", real_save)
    assert code == 130
    assert out.read_bytes() == b"the previous result"
    assert sorted(p.name for p in files.iterdir() if p.name.startswith(".")) == []


def test_outputs_are_written_through_fileio(files, monkeypatch):
    import segfill.fileio as fileio

    written = []
    real = fileio.atomic_write

    def recording(path, write, make_parents=False):
        written.append(str(path))
        return real(path, write, make_parents)

    monkeypatch.setattr(fileio, "atomic_write", recording)
    checkpoint = save_tiny_sam(files / "tiny.pth")
    before = {p.name for p in files.iterdir()}
    assert main(["mask", "--image", str(files / "rgb.png"), "--sam-checkpoint", str(checkpoint), "--point", "5,5",
                 "--device", "cpu", "--output", str(files / "m.png")]) == 0
    assert main(["outpaint", "--image", str(files / "rgb.png"), "--left", "16", "--output", str(files / "o.png"),
                 "--plan-json", str(files / "plan.json"), "--quiet"]) == 0
    assert main(["inpaint", "--image", str(files / "rgb.png"), "--mask", str(files / "mask.png"),
                 "--output", str(files / "i.png"), "--quiet"]) == 0
    names = [p.rsplit("/", 1)[-1] for p in written]
    outputs = [n for n in names if n in ("m.png", "o.png", "plan.json", "i.png")]
    assert outputs == ["m.png", "o.png", "plan.json", "i.png"]
    # everything the commands made (outputs, mask files beside them, the manifest) went through fileio
    assert {p.name for p in files.iterdir()} - before <= set(names)
    assert "segfill-manifest.jsonl" in names and "i.mask.png" in names


# ---- alpha ------------------------------------------------------------------------------------------------


def _composite_inpaint(mask: np.ndarray, **args) -> np.ndarray:
    plan = plan_inpaint((mask.shape[1], mask.shape[0]), mask > 0, InpaintArgs(**args), working_size=WORKING)
    return plan.full_mask("composite")


@pytest.mark.parametrize("source", ["rgba.png", "la.png"])
def test_inpaint_cli_keeps_alpha_outside_the_mask_and_makes_repainted_pixels_opaque(files, source):
    out = files / "out.png"
    assert main(["inpaint", "--image", str(files / source), "--mask", str(files / "mask.png"), "--band", "6",
                 "--feather", "4", "--output", str(out), "--quiet"]) == 0
    result = Image.open(out)
    assert result.mode == "RGBA"
    original = Image.open(files / source).convert("RGBA")
    got, want = np.asarray(result), np.asarray(original)
    composite = _composite_inpaint(_mask(), band=6, feather=4)
    keep = composite == 0
    assert keep.any() and (composite == 1).any()
    assert np.array_equal(got[keep], want[keep])  # colour and alpha bit-exact where nothing changed
    assert (got[composite == 1][:, 3] == 255).all()  # repainted pixels are opaque
    band = (composite > 0) & (composite < 1)
    expected = np.rint(want[..., 3] * (1 - composite) + 255 * composite)
    assert np.abs(got[..., 3][band].astype(int) - expected[band]).max() <= 1  # the soft band blends


def test_outpaint_cli_keeps_the_originals_alpha_and_the_new_area_is_opaque(files):
    out = files / "out.png"
    assert main(["outpaint", "--image", str(files / "rgba.png"), "--left", "24", "--top", "8", "--band", "8",
                 "--feather", "4", "--output", str(out), "--quiet"]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (68, 104, 4)
    plan = plan_outpaint((80, 60), OutpaintArgs(left=24, top=8, band=8, feather=4), working_size=WORKING)
    composite = plan.full_mask("composite")
    original = np.asarray(_rgba())
    x0, y0, x1, y1 = plan.original_rect
    inside = np.zeros(composite.shape, dtype=bool)
    inside[y0:y1, x0:x1] = True
    assert (result[~inside][:, 3] == 255).all()  # the new area
    keep = (composite == 0)[y0:y1, x0:x1]
    assert keep.any() and not keep.all()
    assert np.array_equal(result[y0:y1, x0:x1][keep], original[keep])  # colour and alpha bit-exact
    assert (result[y0:y1, x0:x1][~keep][:, 3] >= original[~keep][:, 3]).all()  # the band only grows opaque


def test_jpeg_output_of_an_rgba_result_says_the_alpha_is_dropped(files, capsys):
    out = files / "out.jpg"
    assert main(["inpaint", "--image", str(files / "rgba.png"), "--mask", str(files / "mask.png"),
                 "--output", str(out), "--quiet"]) == 0
    assert Image.open(out).mode == "RGB"
    assert "JPEG has no transparency" in capsys.readouterr().err


def test_a_16_bit_input_says_the_result_is_8_bit(files, capsys):
    cv2.imwrite(str(files / "deep.png"), np.random.default_rng(1).integers(0, 65535, (60, 80, 3), dtype=np.uint16))
    cv2.imwrite(str(files / "deep_grey.png"), np.random.default_rng(2).integers(0, 65535, (60, 80), dtype=np.uint16))
    for name in ("deep.png", "deep_grey.png"):
        assert main(["inpaint", "--image", str(files / name), "--mask", str(files / "mask.png"),
                     "--output", str(files / f"out_{name}"), "--quiet"]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["segfill inpaint: note: The input has more than 8 bits per channel; the result has 8 bits "
                       "per channel."]
    assert main(["inpaint", "--image", str(files / "rgb.png"), "--mask", str(files / "mask.png"),
                 "--output", str(files / "plain_out.png"), "--quiet"]) == 0
    assert "bits" not in capsys.readouterr().err


# ---- the API ----------------------------------------------------------------------------------------------


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from segfill.api import register_routes
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    folder = tmp_path_factory.mktemp("models")
    save_tiny_sam(folder / "tiny.pth")
    host = StandaloneHost(SamManager([folder], device="cpu"), create_backend("opencv"))
    app = FastAPI()
    register_routes(app, host)
    return TestClient(app), host


def test_api_inpaint_and_outpaint_keep_alpha(api):
    client, _host = api
    image, mask = _rgba(), _mask()
    reply = client.post("/segfill/v1/inpaint", json={"image": _b64(image), "mask": _b64(Image.fromarray(mask)),
                                                      "band": 6, "feather": 4})
    assert reply.status_code == 200, reply.text
    got = _png(reply.json()["image"])
    assert got.shape == (60, 80, 4)
    composite = _composite_inpaint(mask, band=6, feather=4)
    assert np.array_equal(got[composite == 0], np.asarray(image)[composite == 0])
    assert (got[composite == 1][:, 3] == 255).all()

    reply = client.post("/segfill/v1/outpaint", json={"image": _b64(image), "right": 16, "band": 8, "feather": 4})
    assert reply.status_code == 200, reply.text
    got = _png(reply.json()["image"])
    assert got.shape == (60, 96, 4) and (got[:, 80:, 3] == 255).all()
    assert np.array_equal(got[:, :40], np.asarray(image)[:, :40])  # far from the seam: bit-exact, alpha too

    plain = client.post("/segfill/v1/outpaint", json={"image": _b64(image.convert("RGB")), "right": 16})
    assert _png(plain.json()["image"]).shape == (60, 96, 3)


def test_api_restores_alpha_for_a_host_that_repaints_in_rgb(api):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from segfill.api import register_routes
    from segfill.hosts.base import GenerationResult

    _client, standalone = api

    class RGBHost:  # like the WebUI host: the WebUI's pipeline returns RGB
        name = "webui"
        sam = standalone.sam
        embeddings = standalone.embeddings
        defaults = standalone.defaults

        def model_warning(self):
            return None

        def inpaint(self, image, mask, args, progress=None, provenance=None):
            rgb = np.asarray(image.convert("RGB")).copy()
            rgb[np.asarray(mask) > 127] = (255, 0, 255)
            return GenerationResult(images=[Image.fromarray(rgb)], infotext="", info={})

    app = FastAPI()
    register_routes(app, RGBHost())
    image, mask = _rgba(), _mask()
    reply = TestClient(app).post("/segfill/v1/inpaint", json={"image": _b64(image), "mask": _b64(Image.fromarray(mask))})
    got = _png(reply.json()["image"])
    assert got.shape == (60, 80, 4)
    assert (got[mask > 0][:, 3] == 255).all() and np.array_equal(got[mask == 0], np.asarray(image)[mask == 0])


def test_api_says_a_16_bit_input_comes_back_8_bit(api, tmp_path):
    client, _host = api
    cv2.imwrite(str(tmp_path / "deep.png"), np.random.default_rng(1).integers(0, 65535, (60, 80, 3), dtype=np.uint16))
    text = base64.b64encode((tmp_path / "deep.png").read_bytes()).decode()
    reply = client.post("/segfill/v1/inpaint", json={"image": text, "mask": _b64(Image.fromarray(_mask()))})
    assert reply.status_code == 200, reply.text
    assert reply.json()["info"]["notes"] == ["The input has more than 8 bits per channel; the result has 8 bits per "
                                             "channel."]
    plain = client.post("/segfill/v1/inpaint", json={"image": _b64(_rgba().convert("RGB")),
                                                      "mask": _b64(Image.fromarray(_mask()))})
    assert "notes" not in plain.json()["info"]
