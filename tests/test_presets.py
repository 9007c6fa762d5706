"""Presets as data: one table, used the same way by the tab, the REST API (``preset``) and the CLI (``--preset``).
A preset fills in values; whatever the caller sets itself wins."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from segfill.args import InpaintArgs, MaskRefinement, OutpaintArgs, parse_args_model
from segfill.errors import InputError
from segfill.presets import PRESETS, apply_preset, apply_refinement, get_preset, presets_for

EXPECTED = {"remove_object", "replace_background", "retouch_portrait", "complete_sketch", "repair_damage",
            "product_colour", "extend_landscape"}


def test_the_table_holds_the_common_jobs_and_every_value_is_valid_for_its_model():
    assert EXPECTED <= set(PRESETS)
    for preset in PRESETS.values():
        assert preset.title and preset.description and preset.kinds
        parse_args_model(MaskRefinement, dict(preset.refinement))  # raises on a bad field or value
        for kind in preset.kinds:
            model = InpaintArgs if kind == "inpaint" else OutpaintArgs
            assert set(preset.args) <= set(model.__fields__), preset.name
            parse_args_model(model, preset.job_args(kind))
    portrait = PRESETS["retouch_portrait"]
    assert portrait.args["strength"] == pytest.approx(0.55) and portrait.refinement["feather"] >= 16
    assert PRESETS["replace_background"].refinement["invert"] is True
    assert [p.name for p in presets_for("outpaint")] == ["extend_landscape"]


def test_given_values_win_and_the_summary_says_what_was_set_and_kept():
    values = apply_preset("retouch_portrait", "inpaint", {"strength": 0.8})
    assert values["strength"] == 0.8 and values["steps"] == PRESETS["retouch_portrait"].args["steps"]
    assert apply_refinement("retouch_portrait", {"feather": 2})["feather"] == 2
    assert apply_preset(None, "inpaint", {"steps": 3}) == {"steps": 3}
    text = PRESETS["retouch_portrait"].summary(kept=("strength",))
    assert text.startswith("Retouch a portrait: set ") and "strength 0.55" in text and "feather 24 px" in text
    assert text.endswith("Kept your strength.")
    assert get_preset("Retouch a portrait") is PRESETS["retouch_portrait"] and get_preset("") is None
    with pytest.raises(InputError, match="Unknown preset 'sharpen'; choose one of"):
        get_preset("sharpen")


# -- the REST API -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from segfill.api import register_routes
    from segfill.backends import create_backend
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    class RecordingHost(StandaloneHost):
        def inpaint(self, image, mask, args, progress=None, provenance=None):
            self.last = ("inpaint", args, np.asarray(mask))
            return super().inpaint(image, mask, args, progress)

        def outpaint(self, image, args, progress=None, provenance=None):
            self.last = ("outpaint", args, None)
            return super().outpaint(image, args, progress)

    host = RecordingHost(SamManager([tmp_path_factory.mktemp("no_models")], device="cpu"), create_backend("opencv"))
    app = FastAPI()
    register_routes(app, host)
    return TestClient(app), host


def _b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_api_lists_presets_and_applies_one_under_the_request_fields(client):
    http, host = client
    listed = http.get("/segfill/v1/presets").json()["presets"]
    assert {p["name"] for p in listed} == set(PRESETS)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[16:32, 20:40] = 255
    reply = http.post("/segfill/v1/inpaint", json={"image": _b64(image), "mask": _b64(mask),
                                                   "preset": "remove_object", "steps": 5})
    assert reply.status_code == 200, reply.text
    kind, args, sent_mask = host.last
    preset = PRESETS["remove_object"]
    assert args.steps == 5, "a field the request sets wins over the preset"
    assert args.prefill == preset.args["prefill"] and args.guidance == preset.args["guidance"]
    assert args.prompt == preset.args["prompt"]
    # the preset grows the mask by 12 px (then feathers it): pixels 10 px outside the box are repainted now
    assert sent_mask[16:32, 20:40].min() == 255 and sent_mask[24, 20 - 10] > 127

    reply = http.post("/segfill/v1/outpaint", json={"image": _b64(image), "right": 32, "preset": "extend_landscape"})
    assert reply.status_code == 200, reply.text
    assert host.last[1].color_match is True and host.last[1].band == 48 and host.last[1].right == 32
    reply = http.post("/segfill/v1/inpaint", json={"image": _b64(image), "mask": _b64(mask), "preset": "sharpen"})
    assert reply.status_code == 422 and "Unknown preset 'sharpen'" in reply.json()["detail"]


# -- the CLI ------------------------------------------------------------------------------------------------


def test_cli_preset_fills_in_and_flags_win(tmp_path, monkeypatch):
    from segfill.cli import build_parser
    from segfill.outpaint import cli as outpaint_cli

    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(image)
    ns = build_parser().parse_args(["inpaint", "--image", str(image), "--mask", str(image), "--output", "o.png",
                                    "--preset", "retouch_portrait", "--steps", "7"])
    args = outpaint_cli.inpaint_args_from(ns)
    assert args.steps == 7 and args.strength == pytest.approx(0.55) and args.prompt.startswith("natural skin")
    ns = build_parser().parse_args(["outpaint", "--image", str(image), "--right", "16", "--output", "o.png",
                                    "--preset", "extend_landscape", "--prefill", "edge"])
    args = outpaint_cli.outpaint_args_from(ns)
    assert args.prefill == "edge" and args.color_match and args.band == 48
    ns = build_parser().parse_args(["outpaint", "--image", str(image), "--right", "16", "--output", "o.png"])
    assert outpaint_cli.outpaint_args_from(ns).prefill == "blur_extend", "without a preset the defaults are the model's"

    mask = np.zeros((40, 48), bool)
    mask[10:20, 10:20] = True
    ns = build_parser().parse_args(["inpaint", "--image", str(image), "--mask", str(image), "--output", "o.png",
                                    "--preset", "replace_background"])
    refined = outpaint_cli.preset_refined_mask(ns, mask)
    assert refined[0, 0] > 0.5 and refined[15, 15] < 0.5, "replace_background repaints everything but the subject"


def test_cli_unknown_preset_is_refused_by_the_parser(capsys):
    from segfill.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["inpaint", "--image", "a.png", "--mask", "b.png", "--output", "c.png", "--preset", "sharpen"])
    assert exc.value.code == 2 and "invalid choice: 'sharpen'" in capsys.readouterr().err
