"""``python -m segfill mask`` end to end with a tiny random SAM saved to a temporary file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segfill.cli import main
from tests._sam_fixtures import single_torch_thread, textured_image
from tests.tiny_models import save_tiny_sam

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mask_cli")
    checkpoint = save_tiny_sam(folder / "tiny_sam.pth")
    image = folder / "photo.png"
    Image.fromarray(textured_image(160, 120)).save(image)
    return folder, checkpoint, image


def _run(*args: str):
    return main(["mask", *args])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("segfill mask: error: ")
    return err


def test_mask_command_writes_an_l_png_of_the_input_size(files, tmp_path):
    _folder, checkpoint, image = files
    out = tmp_path / "mask.png"
    assert _run("--image", str(image), "--sam-checkpoint", str(checkpoint), "--point", "90,60", "--output", str(out)) == 0
    with Image.open(out) as written:
        assert written.mode == "L" and written.size == (160, 120)
        values = set(np.unique(np.asarray(written)).tolist())
    assert values <= {0, 255}


def test_candidate_invert_and_refinement_reach_the_mask(files, tmp_path):
    from segfill.args import MaskRefinement
    from segfill.masks import grow, invert, mask_to_image, refine
    from segfill.sam.loading import load_sam
    from segfill.sam.session import SamSession

    _folder, checkpoint, image = files
    rgb = np.asarray(Image.open(image).convert("RGB"))
    session = SamSession(load_sam(checkpoint, device="cpu"))
    session.set_image(rgb)
    prediction = session.predict(points=[(40, 30, 1), (120, 90, 0)], multimask=True)

    plain = tmp_path / "plain.png"
    args = ["--image", str(image), "--sam-checkpoint", str(checkpoint), "--point", "40,30", "--point", "120,90,0"]
    assert _run(*args, "--candidate", "2", "--output", str(plain)) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(plain)) > 127, prediction.masks[2])

    refined = tmp_path / "refined.png"
    assert _run(*args, "--candidate", "1", "--grow", "3", "--invert", "--output", str(refined)) == 0
    expected = invert(grow(prediction.masks[1], 3))
    np.testing.assert_array_equal(np.asarray(Image.open(refined)) > 127, expected)

    feathered = tmp_path / "feathered.png"
    assert _run(*args, "--candidate", "0", "--feather", "4", "--output", str(feathered)) == 0
    expected_image = mask_to_image(refine(prediction.masks[0], MaskRefinement(feather=4)))
    np.testing.assert_array_equal(np.asarray(Image.open(feathered)), np.asarray(expected_image))


def test_box_prompt(files, tmp_path):
    _folder, checkpoint, image = files
    out = tmp_path / "box.png"
    assert _run("--image", str(image), "--sam-checkpoint", str(checkpoint), "--box", "20,10,140,100", "--output", str(out)) == 0
    assert Image.open(out).size == (160, 120)
    # the box reached SAM: the file is the session's answer to that box (one mask, no candidates)
    from segfill.sam.loading import load_sam
    from segfill.sam.session import SamSession

    session = SamSession(load_sam(checkpoint, device="cpu"))
    session.set_image(np.asarray(Image.open(image).convert("RGB")))
    expected = session.predict(box=(20, 10, 140, 100)).best_mask
    np.testing.assert_array_equal(np.asarray(Image.open(out)) > 127, expected)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--point", "160,50"], "Point (160, 50) lies outside the 160×120 image."),
        (["--point", "12;40"], "Cannot read --point '12;40'"),
        (["--point", "12,40,7"], "must be 1 (add) or 0 (subtract)"),
        (["--box", "1,2,3"], "Cannot read --box '1,2,3'"),
        (["--point", "10,10", "--candidate", "5"], "--candidate must be best, 0, 1 or 2"),
        ([], "Give --text, or at least one --point or a --box."),
        (["--point", "10,10", "--grow", "-3"], "grow"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(files, tmp_path, capsys, extra, message):
    _folder, checkpoint, image = files
    out = tmp_path / "never.png"
    assert _run("--image", str(image), "--sam-checkpoint", str(checkpoint), *extra, "--output", str(out)) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_missing_files_and_unknown_model_type(files, tmp_path, capsys):
    folder, checkpoint, image = files
    out = str(tmp_path / "never.png")
    assert _run("--image", str(image), "--sam-checkpoint", str(folder / "nope.pth"), "--point", "1,1", "--output", out) == 2
    assert "nope.pth" in _one_error_line(capsys)
    assert _run("--image", str(folder / "nope.jpg"), "--sam-checkpoint", str(checkpoint), "--point", "1,1", "--output", out) == 2
    assert "nope.jpg" in _one_error_line(capsys)
    assert _run("--image", str(image), "--sam-checkpoint", str(checkpoint), "--model-type", "vit_zz", "--point", "1,1", "--output", out) == 2
    assert "vit_zz" in _one_error_line(capsys)
    assert _run("--image", str(image), "--sam-checkpoint", str(checkpoint), "--device", "tpu", "--point", "1,1", "--output", out) == 2
    assert "tpu" in _one_error_line(capsys)
    not_an_image = folder / "notes.png"
    not_an_image.write_text("hello")
    assert _run("--image", str(not_an_image), "--sam-checkpoint", str(checkpoint), "--point", "1,1", "--output", out) == 2
    assert "Cannot read image" in _one_error_line(capsys)
    assert not Path(out).exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["mask", "--image", "x.png"])
    assert exited.value.code == 2


def test_runs_as_a_module(files, tmp_path):
    _folder, checkpoint, image = files
    out = tmp_path / "module.png"
    done = subprocess.run(
        [sys.executable, "-m", "segfill", "mask", "--image", str(image), "--sam-checkpoint", str(checkpoint),
         "--point", "300,5", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "segfill mask: error: Point (300, 5) lies outside the 160×120 image."
