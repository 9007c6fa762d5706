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


# -- what --help says, and that it is true ----------------------------------------------------------------------

#: options that have no default by nature (alternatives to another option, or a file to name)
NO_DEFAULT = {"--aspect", "--width", "--height", "--plan-json", "--point", "--box", "--sha256"}


def _subparsers():
    import argparse

    from segfill.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", ["outpaint", "inpaint", "mask", "serve", "download"])
def test_help_states_every_default(command):
    for action in _subparsers()[command]._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None or action.nargs == 0 or action.required or flag in NO_DEFAULT:
            continue  # flags (off unless given), required options
        assert "default" in (action.help or ""), f"{command} {flag}: {action.help!r}"


def test_help_defaults_are_the_engines():
    from segfill.args import InpaintArgs, OutpaintArgs

    parsers = _subparsers()
    for command, model in (("outpaint", OutpaintArgs()), ("inpaint", InpaintArgs())):
        helps = {a.option_strings[0]: a.help for a in parsers[command]._actions if a.option_strings}
        for flag, field in (("--feather", "feather"), ("--band", "band"), ("--overlap", "overlap"),
                            ("--blend", "blend"), ("--steps", "steps"), ("--prefill", "prefill")):
            assert f"default {getattr(model, field)})" in helps[flag], (command, flag, helps[flag])


def test_help_names_the_options_opencv_ignores_and_they_are_ignored(files):
    from segfill.outpaint.cli import OPENCV_IGNORES

    description = next(g for g in _subparsers()["outpaint"]._action_groups if g.title == "backend").description
    assert all(flag in description for flag in OPENCV_IGNORES + ("--max-step",))
    base = ["outpaint", "--image", str(files / "in.png"), "--left", "40", "--bottom", "24", "--quiet"]
    assert main([*base, "--output", str(files / "plain.png")]) == 0
    ignored = ["--prompt", "a boat", "--negative-prompt", "fog", "--seed", "9", "--steps", "3", "--guidance", "2",
               "--tile-size", "64", "--overlap", "8", "--blend", "gaussian", "--tile-mode", "independent",
               "--max-step", "16"]
    assert set(ignored[::2]) == set(OPENCV_IGNORES + ("--max-step",))
    assert main([*base, *ignored, "--output", str(files / "ignored.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(files / "plain.png")), np.asarray(Image.open(files / "ignored.png")))
    # ... while what it does use changes the result
    assert main([*base, "--band", "2", "--output", str(files / "band.png")]) == 0
    assert not np.array_equal(np.asarray(Image.open(files / "plain.png")), np.asarray(Image.open(files / "band.png")))


def test_download_help_names_the_folder_it_writes_to(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path))
    to = next(a for a in _subparsers()["download"]._actions if "--to" in a.option_strings)
    assert f"default: {tmp_path}," in to.help


def test_progress_bar_counts_whole_tiles(capsys):
    from segfill.outpaint.cli import _ProgressBar

    bar = _ProgressBar(enabled=True)
    bar(2.5, 6, "pass 1/1, tile 3/6")
    assert "2/6 tiles" in capsys.readouterr().err
    bar(6, 6, "pass 1/1, tile 6/6")
    bar.close()
    err = capsys.readouterr().err
    assert "6/6 tiles" in err and "6.0" not in err and "2.5" not in err


def test_a_whole_image_mask_comes_back_changed_everywhere_with_one_warning(tmp_path, capsys):
    from skimage import data

    photo = data.coffee()  # 600x400
    Image.fromarray(photo).save(tmp_path / "coffee.png")
    Image.new("L", (600, 400), 255).save(tmp_path / "all.png")
    code = main(["inpaint", "--image", str(tmp_path / "coffee.png"), "--mask", str(tmp_path / "all.png"),
                 "--output", str(tmp_path / "out.png"), "--quiet"])
    assert code == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert (out != photo).any(axis=-1).reshape(50, 8, 75, 8).any(axis=(1, 3)).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segfill inpaint: warning: The mask covers the whole image"), err


@pytest.mark.parametrize("command", ["outpaint", "inpaint", "mask"])
def test_ctrl_c_is_one_line_and_exit_130(files, tmp_path, capsys, monkeypatch, command):
    import segfill.outpaint.cli
    import segfill.sam.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(segfill.outpaint.cli, "load_image", interrupted)
    monkeypatch.setattr(segfill.sam.cli, "read_rgb", interrupted)
    argv = {"outpaint": ["--left", "8"], "inpaint": ["--mask", str(files / "mask.png")],
            "mask": ["--sam-checkpoint", str(files / "mask.png"), "--point", "1,1"]}[command]
    code = main([command, "--image", str(files / "in.png"), *argv, "--output", str(tmp_path / "o.png")])
    assert code == 130
    assert capsys.readouterr().err == f"segfill {command}: interrupted\n"
