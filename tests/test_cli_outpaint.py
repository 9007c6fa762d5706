"""``python -m segfill outpaint`` / ``inpaint``: results of the right size, one-line errors, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segfill.cli import main


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)).save(image)
    mask = np.zeros((60, 80), dtype=np.uint8)
    mask[20:40, 30:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(mask[:50]).save(tmp_path / "mask_small.png")
    return tmp_path


def _one_line_error(capsys, code, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("segfill ") and needle in err[0], err


def test_outpaint_per_side(files, capsys):
    out = files / "out.png"
    code = main(["outpaint", "--image", str(files / "in.png"), "--left", "20", "--top", "12", "--bottom", "3",
                 "--tile-size", "64", "--seed", "5", "--band", "8", "--feather", "4", "--output", str(out),
                 "--plan-json", str(files / "plan.json"), "--quiet"])
    assert code == 0
    result = Image.open(out)
    assert result.size == (100, 75)
    original = np.asarray(Image.open(files / "in.png"))
    # outside the 8 px band (left, top, bottom are padded) the original is bit-exact
    assert (np.asarray(result)[12 + 8:12 + 60 - 8, 20 + 8:] == original[8:52, 8:]).all()
    plan = json.loads((files / "plan.json").read_text())
    assert plan["output_size"] == [100, 75] and plan["seed"] == 5 and plan["tile_count"] > 0
    assert "wrote" in capsys.readouterr().out


def test_outpaint_aspect_anchor_with_progress_bar(files, capsys):
    out = files / "wide.png"
    code = main(["outpaint", "--image", str(files / "in.png"), "--aspect", "16:9", "--anchor", "left",
                 "--prefill", "telea", "--color-match", "--seam-fix", "--output", str(out)])
    assert code == 0
    assert Image.open(out).size == (107, 60)
    assert "tiles" in capsys.readouterr().err  # the tqdm bar


def test_inpaint(files):
    out = files / "inpainted.png"
    code = main(["inpaint", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"), "--band", "4",
                 "--output", str(out), "--quiet"])
    assert code == 0
    a, b = np.asarray(Image.open(out)), np.asarray(Image.open(files / "in.png"))
    assert a.shape == b.shape
    assert (a[:10] == b[:10]).all() and (a[25:35, 35:45] != b[25:35, 35:45]).any()


@pytest.mark.parametrize("argv,needle", [
    (["--left", "0"], "padding is zero"),
    (["--left", "5000"], "more than 8x"),
    (["--left", "20000"], "16384"),
    (["--left", "8", "--aspect", "1:1"], "not several"),
    (["--aspect", "wide"], "aspect"),
    (["--left", "8", "--anchor", "nowhere"], "anchor"),
    (["--left", "8", "--backend", "diffusers", "--model", "/no/such/model.safetensors"], "does not exist"),
    (["--left", "8", "--backend", "diffusers"], "needs --model"),
    (["--left", "8", "--steps", "0"], "steps"),
])
def test_outpaint_errors_are_one_line(files, capsys, argv, needle):
    code = main(["outpaint", "--image", str(files / "in.png"), *argv, "--output", str(files / "x.png"), "--quiet"])
    _one_line_error(capsys, code, needle)
    assert not (files / "x.png").exists()


def test_inpaint_errors_are_one_line(files, capsys):
    code = main(["inpaint", "--image", str(files / "in.png"), "--mask", str(files / "mask_small.png"),
                 "--output", str(files / "x.png")])
    _one_line_error(capsys, code, "80×50")
    code = main(["inpaint", "--image", str(files / "nope.png"), "--mask", str(files / "mask.png"),
                 "--output", str(files / "x.png")])
    _one_line_error(capsys, code, "does not exist")
    code = main(["outpaint", "--image", str(files / "in.png"), "--left", "8", "--output", str(files / "no" / "x.png")])
    _one_line_error(capsys, code, "folder")
