"""Text -> boxes -> SAM masks -> inpaint end to end through the CLI, the batch and replay (OpenCV backend),
with a tiny random-weight OWL-ViT (every stack, transformers 4.30.2 included) saved to a folder and a tiny SAM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segfill.cli import main
from segfill.detect import registry
from tests import tiny_detectors
from tests._sam_fixtures import single_torch_thread, textured_image
from tests.tiny_models import save_tiny_sam

pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not registry.family_status("owlvit").available,
                                reason=registry.family_status("owlvit").message)
WIDTH, HEIGHT = 96, 72


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_models")
    return tiny_detectors.save_tiny_owlvit(root / "owlvit", seed=3), save_tiny_sam(root / "sam.pth")


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(textured_image(WIDTH, HEIGHT, seed=index)).save(folder / f"photo{index}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    return folder


def expected_text_mask(detector_folder, sam_file, rgb, text, box_threshold):
    from segfill.detect.detector import detect
    from segfill.detect.loading import load_detector
    from segfill.detect.pipeline import predict_boxes
    from segfill.sam.loading import load_sam
    from segfill.sam.session import SamSession

    result = detect(load_detector(detector_folder), rgb, text, box_threshold=box_threshold)
    session = SamSession(load_sam(sam_file))
    session.set_image(rgb)
    predictions = predict_boxes(session, result.detections)
    union = np.zeros(rgb.shape[:2], bool)
    for prediction in predictions:
        union |= prediction.best_mask
    return result, predictions, union


def test_mask_by_text_writes_sams_union_of_the_detected_boxes_and_the_boxes_json(models, tmp_path):
    detector, sam = models
    rgb = textured_image(WIDTH, HEIGHT)
    image = tmp_path / "in.png"
    Image.fromarray(rgb).save(image)
    out, boxes = tmp_path / "mask.png", tmp_path / "boxes.json"
    assert main(["mask", "--image", str(image), "--sam-checkpoint", str(sam), "--text", "a red ball. a dog",
                 "--detector", str(detector), "--box-threshold", "0", "--boxes-json", str(boxes),
                 "--output", str(out)]) == 0
    result, predictions, union = expected_text_mask(detector, sam, rgb, "a red ball. a dog", 0.0)
    assert len(result) > 1
    np.testing.assert_array_equal(np.asarray(Image.open(out)) > 127, union)
    written = json.loads(boxes.read_text())
    assert written["detections"] == [d.to_dict() for d in result.detections]
    assert written["sam_scores"] == pytest.approx([float(p.scores[p.best_index]) for p in predictions])
    assert written["detector_family"] == "owlvit" and written["box_threshold"] == 0.0

    (entry,) = [json.loads(line) for line in (tmp_path / "segfill-manifest.jsonl").read_text().splitlines()]
    assert entry["status"] == "ok" and entry["mode"] == "mask" and entry["source"] == "cli"
    assert entry["input"]["path"] == str(image.resolve()) and len(entry["input"]["sha256"]) == 64
    selection = entry["selection"]
    assert selection["text"] == "a red ball. a dog" and selection["detector"] == str(detector)
    assert selection["detections"] == written["detections"]
    assert selection["sam_model"] == "sam.pth" and len(selection["sam_sha256"]) == 64
    assert selection["candidate"] == "best" and selection["refinement"]["grow"] == 0
    assert entry["output"]["path"] == str(out.resolve()) and entry["seconds"] >= 0


def test_no_box_above_the_threshold_and_a_missing_detector_end_with_one_line(models, tmp_path, capsys):
    detector, sam = models
    image = tmp_path / "in.png"
    Image.fromarray(textured_image(WIDTH, HEIGHT)).save(image)
    out = tmp_path / "mask.png"
    base = ["mask", "--image", str(image), "--sam-checkpoint", str(sam), "--text", "a cup", "--output", str(out)]
    assert main([*base, "--detector", str(detector), "--box-threshold", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "found nothing for 'a cup' above the box threshold 1" in err
    assert not out.exists()
    failed = json.loads((tmp_path / "segfill-manifest.jsonl").read_text().splitlines()[-1])
    assert failed["status"] == "failed" and "found nothing" in failed["error"]

    assert main([*base, "--detector", str(tmp_path / "no-such-detector")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "neither a folder nor a Hugging Face id" in err
    assert main([*base[:-2], "--text", " . ", "--output", str(out), "--detector", str(detector)]) == 2
    assert "Type what to select" in capsys.readouterr().err


def _batch(photos, out_dir, detector, sam, *extra):
    return main(["batch", "inpaint", "--input", str(photos), "--output", str(out_dir), "--sam-checkpoint", str(sam),
                 "--text", "a red ball", "--detector", str(detector), "--box-threshold", "0", "--quiet", *extra])


def test_batch_skips_a_corrupt_file_resumes_and_replays_bit_for_bit(models, photos, tmp_path, capsys):
    from segfill.args import InpaintArgs
    from segfill.backends import create_backend
    from segfill.outpaint.runner import run_inpaint

    detector, sam = models
    out_dir = tmp_path / "out"
    assert _batch(photos, out_dir, detector, sam) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.err
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith("segfill batch inpaint: 2 done, 0 skipped (already done), 1 failed of 3")

    entries = [json.loads(line) for line in (out_dir / "segfill-manifest.jsonl").read_text().splitlines()]
    assert [e["status"] for e in entries] == ["failed", "ok", "ok"]
    assert "Cannot read image" in entries[0]["error"] and entries[0]["input"]["path"].endswith("broken.png")
    for index in range(2):
        rgb = textured_image(WIDTH, HEIGHT, seed=index)
        output, mask_file = out_dir / f"photo{index}.png", out_dir / f"photo{index}.mask.png"
        written = Image.open(output)
        assert written.size == (WIDTH, HEIGHT) and written.mode == "RGB"
        _result, _predictions, union = expected_text_mask(detector, sam, rgb, "a red ball", 0.0)
        np.testing.assert_array_equal(np.asarray(Image.open(mask_file)) > 127, union)
        expected = run_inpaint(Image.fromarray(rgb), union, InpaintArgs(), create_backend("opencv")).image
        np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
        assert "SegFill text: a red ball" in written.info["parameters"]
        entry = entries[1 + index]
        assert entry["mask_file"] == str(mask_file.resolve()) and entry["seed"] == 0
        assert entry["backend"]["name"] == "opencv" and entry["args"]["band"] == InpaintArgs().band

    # a second run with the same arguments redoes nothing that is done (outputs untouched)
    stamps = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("photo*.png")}
    assert _batch(photos, out_dir, detector, sam) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "segfill batch inpaint: 0 done, 2 skipped (already done), 1 failed of 3")
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out_dir.glob("photo*.png")}
    # a damaged output, or other arguments, are redone
    (out_dir / "photo1.png").write_bytes(b"damaged")
    (photos / "broken.png").unlink()
    assert _batch(photos, out_dir, detector, sam) == 0
    assert capsys.readouterr().out.strip().startswith("segfill batch inpaint: 1 done, 1 skipped (already done), 0 failed of 2")
    assert _batch(photos, out_dir, detector, sam, "--seed", "5") == 0
    assert capsys.readouterr().out.strip().startswith("segfill batch inpaint: 2 done, 0 skipped")

    # replay the last entry by index, and the first good one from its JSON line: bit for bit
    manifest = out_dir / "segfill-manifest.jsonl"
    assert main(["replay", "-1", "--manifest", str(manifest), "--check"]) == 0
    assert "identical to the recorded output" in capsys.readouterr().out
    last = json.loads(manifest.read_text().splitlines()[-1])
    replayed = Path(last["output"]["path"]).with_name("photo1.replay.png")
    assert replayed.read_bytes() == Path(last["output"]["path"]).read_bytes()
    line = manifest.read_text().splitlines()[1]
    target = tmp_path / "again.png"
    assert main(["replay", line, "--output", str(target), "--check"]) == 0
    assert "identical" in capsys.readouterr().out


def test_batch_outpaint_and_mask_dir_give_exact_sizes(photos, tmp_path, capsys):
    (photos / "broken.png").unlink()
    out_dir = tmp_path / "outpainted"
    assert main(["batch", "outpaint", "--input", str(photos), "--output", str(out_dir), "--left", "16",
                 "--bottom", "8", "--quiet"]) == 0
    for index in range(2):
        assert Image.open(out_dir / f"photo{index}.png").size == (WIDTH + 16, HEIGHT + 8)
    masks = tmp_path / "masks"
    masks.mkdir()
    square = np.zeros((HEIGHT, WIDTH), np.uint8)
    square[10:30, 20:50] = 255
    Image.fromarray(square).save(masks / "photo0.png")
    out_dir = tmp_path / "inpainted"
    assert main(["batch", "inpaint", "--input", str(photos), "--output", str(out_dir), "--mask-dir", str(masks),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "photo1.png: No mask for photo1.png" in err
    original = np.asarray(Image.open(photos / "photo0.png").convert("RGB"))
    result = np.asarray(Image.open(out_dir / "photo0.png"))
    assert result.shape == original.shape
    far = np.ones((HEIGHT, WIDTH), bool)
    far[0:50, 0:70] = False
    np.testing.assert_array_equal(result[far], original[far])


def test_batch_arguments_are_checked_before_anything_runs(photos, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["batch", "inpaint", "--input", str(photos), "--output", str(out), "--quiet"]) == 2
    assert "exactly one way to make masks" in capsys.readouterr().err
    assert main(["batch", "inpaint", "--input", str(tmp_path / "nothing"), "--output", str(out), "--text", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["batch", "outpaint", "--input", str(photos), "--output", str(photos), "--left", "8"]) == 2
    assert "another folder than the inputs" in capsys.readouterr().err
    assert main(["replay", "3", "--manifest", str(tmp_path)]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert not os.path.exists(out / "segfill-manifest.jsonl")
