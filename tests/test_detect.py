"""Text -> boxes -> SAM masks with tiny random-weight detectors saved to folders and loaded through SegFill's
real loading code: GroundingDINO where transformers >= 4.40 (the Forge stack), OWL-ViT everywhere (the WebUI
stack's transformers 4.30.2 included), OWLv2 where transformers >= 4.35.

Random weights give arbitrary boxes, so the tests check that SegFill reports exactly what the family's own
post-processing returns (clipped to the image), and that the masks are SAM's answers to those boxes.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segfill.detect import registry
from tests import tiny_detectors
from tests._sam_fixtures import single_torch_thread, textured_image

pytest.importorskip("transformers")

needs = {name: pytest.mark.skipif(not registry.family_status(name).available,
                                  reason=registry.family_status(name).message)
         for name in ("grounding_dino", "owlvit", "owlv2")}
SAVERS = {"grounding_dino": tiny_detectors.save_tiny_grounding_dino, "owlvit": tiny_detectors.save_tiny_owlvit,
          "owlv2": tiny_detectors.save_tiny_owlv2}
FAMILIES = [pytest.param(name, marks=needs[name]) for name in SAVERS]
WIDTH, HEIGHT = 96, 72


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    made = {}
    root = tmp_path_factory.mktemp("detectors")
    for name, save in SAVERS.items():
        if registry.family_status(name).available:
            made[name] = save(root / f"tiny-{name}", seed=1)
    return made


@pytest.fixture(scope="module")
def image():
    return textured_image(WIDTH, HEIGHT)


def reference(name, folder, image, phrases, box_threshold, text_threshold):
    """The family's own post-processing run by hand (what SegFill must report)."""
    import torch
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(folder)
    model_class = getattr(transformers, registry.FAMILIES[name].model_class)
    model = model_class.from_pretrained(folder).eval()
    pil = Image.fromarray(image)
    with torch.inference_mode():
        if name == "grounding_dino":
            inputs = processor(images=pil, text=". ".join(phrases) + ".", return_tensors="pt")
            result = processor.post_process_grounded_object_detection(
                model(**inputs), inputs["input_ids"], box_threshold=box_threshold, text_threshold=text_threshold,
                target_sizes=[(HEIGHT, WIDTH)])[0]
            labels = list(result["labels"])
        else:
            inputs = processor(text=[phrases], images=pil, return_tensors="pt")
            result = processor.post_process_object_detection(
                model(**inputs), threshold=box_threshold, target_sizes=torch.tensor([(HEIGHT, WIDTH)]))[0]
            labels = [phrases[i] for i in result["labels"].tolist()]
    rows = []
    for box, score, label in zip(result["boxes"].tolist(), result["scores"].tolist(), labels, strict=True):
        x0, x1 = sorted(min(max(v, 0.0), WIDTH) for v in (box[0], box[2]))
        y0, y1 = sorted(min(max(v, 0.0), HEIGHT) for v in (box[1], box[3]))
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            rows.append(((x0, y0, x1, y1), score, label))
    rows.sort(key=lambda row: -row[1])
    return rows


@pytest.mark.parametrize("name", FAMILIES)
def test_boxes_are_exactly_the_post_processing_of_the_loaded_folder(name, folders, image):
    from segfill.detect.detector import clean_label, detect
    from segfill.detect.loading import load_detector

    loaded = load_detector(folders[name], device="cpu")
    assert loaded.family.name == name and loaded.model_key.startswith(name + ":")
    result = detect(loaded, image, "a red ball, the dog", box_threshold=0.0, text_threshold=0.0)
    expected = reference(name, folders[name], image, ["a red ball", "the dog"], 0.0, 0.0)
    assert len(result) == len(expected) > 0
    for detection, (box, score, label) in zip(result.detections, expected, strict=True):
        assert detection.box == pytest.approx(box, abs=1e-4)
        assert detection.score == pytest.approx(score, abs=1e-6)
        assert detection.label == clean_label(label, "a red ball")
        assert "[SEP]" not in detection.label and detection.label
    assert result.text_threshold == (0.0 if name == "grounding_dino" else None)
    again = detect(loaded, image, "a red ball, the dog", box_threshold=0.0, text_threshold=0.0)
    assert again.detections == result.detections, "same weights, same image: same boxes"


@pytest.mark.parametrize("name", FAMILIES)
def test_a_threshold_above_every_score_yields_no_box(name, folders, image):
    from segfill.detect.detector import detect
    from segfill.detect.loading import load_detector
    from segfill.detect.pipeline import NoDetectionError, require_detections

    result = detect(load_detector(folders[name]), image, "a cup", box_threshold=1.0)
    assert len(result) == 0
    with pytest.raises(NoDetectionError, match="found nothing for 'a cup' above the box threshold 1"):
        require_detections(result)


def test_masks_are_sams_answers_to_the_detected_boxes(folders, image, tmp_path):
    from segfill.detect.detector import detect
    from segfill.detect.loading import load_detector
    from segfill.detect.pipeline import chosen_index, predict_boxes, union_of
    from segfill.sam.session import SamSession
    from tests._sam_fixtures import load_tiny

    name = next(iter(folders))
    result = detect(load_detector(folders[name]), image, "a dog", box_threshold=0.0, text_threshold=0.0)
    sam = load_tiny(tmp_path / "sam.pth")
    session = SamSession(sam)
    session.set_image(image)
    predictions = predict_boxes(session, result.detections)
    reference_session = SamSession(sam)
    reference_session.set_image(image)
    for detection, prediction in zip(result.detections, predictions, strict=True):
        expected = reference_session.predict(box=detection.box, multimask=True, use_previous_logits=False)
        assert np.array_equal(prediction.masks, expected.masks) and len(prediction) == 3
    indexes = [chosen_index(p, None) for p in predictions]
    union = union_of(predictions, indexes, (WIDTH, HEIGHT))
    assert np.array_equal(union, np.logical_or.reduce([p.masks[i] for p, i in zip(predictions, indexes, strict=True)]))


def test_texts_and_thresholds_a_user_can_get_wrong():
    from segfill.detect.detector import check_threshold, split_phrases
    from segfill.errors import InputError

    assert split_phrases(" a red  ball, the dog.\nA cup; a red ball") == ["a red ball", "the dog", "A cup"]
    for bad in ("", "  ", ". , ;"):
        with pytest.raises(InputError, match="Type what to select"):
            split_phrases(bad)
    with pytest.raises(InputError, match="between 0 and 1"):
        check_threshold(1.5, "box threshold")


def test_availability_is_read_from_the_installed_transformers_without_importing_it():
    import subprocess
    import sys

    code = ("import sys; from segfill.detect import registry; s = registry.detector_status(); "
            "print('transformers' in sys.modules, [x.available for x in s])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False")
    import transformers

    version = registry.version_tuple(transformers.__version__)
    assert registry.transformers_version() == transformers.__version__
    assert registry.family_status("grounding_dino").available == (version >= (4, 40))
    assert registry.family_status("owlvit").available
    sam3 = registry.family_status("sam3")
    if not sam3.available:
        assert sam3.message == (f"SAM 3 needs transformers >= 5.0 (with torch >= 2.6); this installation has "
                                f"{transformers.__version__}.")


def test_a_family_the_installed_transformers_lacks_says_which_version_it_needs(tmp_path, monkeypatch):
    from segfill.detect.loading import DetectorUnavailableError, load_detector
    from segfill.errors import ModelError

    folder = tmp_path / "fake-sam3"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "sam3"}')
    monkeypatch.setattr(registry, "_transformers_folder", lambda: tmp_path / "no-such-transformers")
    monkeypatch.setattr(registry, "transformers_version", lambda: "4.30.2")
    with pytest.raises(DetectorUnavailableError, match=r"SAM 3 needs transformers >= 5.0 \(with torch >= 2.6\); "
                                                       r"this installation has 4.30.2"):
        load_detector(folder)
    other = tmp_path / "some-model"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    folder = other
    with pytest.raises(ModelError, match="not a detector SegFill knows"):
        load_detector(folder)


def test_transformers_5_on_an_old_torch_says_its_models_are_switched_off(tmp_path, monkeypatch):
    (tmp_path / "models" / "sam3").mkdir(parents=True)
    (tmp_path / "__init__.py").write_text('__version__ = "5.20.2"\n')
    monkeypatch.setattr(registry, "_transformers_folder", lambda: tmp_path)
    monkeypatch.setattr(registry, "torch_version", lambda: "2.1.2")
    status = registry.family_status("sam3")
    assert not status.available
    assert status.message == ("SAM 3 needs transformers >= 5.0 (with torch >= 2.6); transformers 5.20.2 is installed "
                              "but disables its models on torch 2.1.2.")
    monkeypatch.setattr(registry, "torch_version", lambda: "2.7.0")
    assert registry.family_status("sam3").available


def test_a_folder_with_only_pickled_weights_is_refused(folders, tmp_path):
    import shutil

    from segfill.detect.loading import load_detector
    from segfill.errors import ModelError

    name = next(iter(folders))
    copy = shutil.copytree(folders[name], tmp_path / "pickled")
    (copy / "model.safetensors").rename(copy / "pytorch_model.bin")
    with pytest.raises(ModelError, match="no .safetensors weights"):
        load_detector(copy)


def _hub_listing(folder):
    from segfill.detect.download import HubFile
    from segfill.provenance import file_sha256

    return [HubFile(p.name, p.stat().st_size, file_sha256(p) if p.suffix == ".safetensors" else None)
            for p in sorted(folder.iterdir())] + [HubFile("pytorch_model.bin", 5), HubFile("sub/extra.json", 2)]


def test_a_hub_id_is_downloaded_verified_into_a_plain_folder_once(folders, tmp_path):
    from segfill.detect.download import download_detector
    from segfill.detect.loading import load_detector, resolve_folder

    name = next(iter(folders))
    source = folders[name]
    seen = []
    urls = []

    def url_for(repo_id, filename):
        urls.append(filename)
        return (source / filename).as_uri()

    def download(repo_id, into):
        return download_detector(repo_id, into, progress=lambda d, t: seen.append((d, t)),
                                 lister=lambda _id: _hub_listing(source), url_for=url_for)

    target_root = tmp_path / "detectors"
    folder, canonical = resolve_folder("someone/tiny-detector", [target_root], download=download)
    assert folder == (target_root / "someone--tiny-detector").resolve() and canonical == "someone/tiny-detector"
    assert "pytorch_model.bin" not in urls and "sub/extra.json" not in urls, "no pickles, no sub-folders"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in source.iterdir())
    total = sum(p.stat().st_size for p in source.iterdir())
    assert seen[-1] == (total, total), "one bar over every file kept"
    assert not (target_root / "someone--tiny-detector.part").exists()
    assert load_detector(folder, source=canonical).family.name == name

    def never(repo_id, into):
        raise AssertionError("a downloaded detector must load offline")

    assert resolve_folder("someone/tiny-detector", [target_root], download=never)[0] == folder


def test_a_damaged_download_leaves_no_folder_that_looks_valid(folders, tmp_path):
    from segfill.detect.download import HubFile, download_detector
    from segfill.errors import DownloadError

    source = folders[next(iter(folders))]
    listing = [HubFile(f.name, f.size, "0" * 64 if f.name.endswith(".safetensors") else f.sha256)
               for f in _hub_listing(source)]
    with pytest.raises(DownloadError, match="damaged"):
        download_detector("a/b", tmp_path, lister=lambda _id: listing, url_for=lambda r, n: (source / n).as_uri())
    assert not (tmp_path / "a--b").exists()
    with pytest.raises(DownloadError, match="no .safetensors weights"):
        download_detector("a/c", tmp_path, lister=lambda _id: [HubFile("config.json", 2), HubFile("pytorch_model.bin", 9)])


def test_detector_manager_follows_sams_policy(folders, tmp_path):
    from segfill.detect.manager import DetectorManager, UnknownDetectorError

    name = next(iter(folders))
    clock = [100.0]
    manager = DetectorManager([folders[name].parent], device="cpu", idle_unload_s=30, clock=lambda: clock[0])
    assert [e.name for e in manager.list_installed()] == sorted(p.name for p in folders.values())
    first = manager.get(str(folders[name]))
    assert manager.get(str(folders[name])) is first and manager.load_count == 1
    assert manager.is_current(first)
    assert manager.offload_to_cpu() and not manager.is_current(first)
    assert manager.get(str(folders[name])) is first and manager.is_current(first) and manager.load_count == 1
    clock[0] += 10
    assert not manager.unload_if_idle()
    clock[0] += 31
    assert manager.unload_if_idle() and manager.loaded is None
    assert manager.resolve_name(folders[name].name) == str(folders[name])
    assert manager.resolve_name("owlvit") == "owlvit"
    for bad in ("../x", "/etc", "someone/unknown-model"):
        with pytest.raises(UnknownDetectorError):
            manager.resolve_name(bad)
    assert manager.choose(None) == str(manager.list_installed()[0].path), "an installed folder beats a download"
    manager.unload()


def test_a_detector_file_that_is_not_what_its_name_says_is_not_kept(folders, tmp_path):
    """Without a published hash the structure is the check: a safetensors header and JSON must read."""
    import shutil

    from segfill.detect.download import HubFile, download_detector
    from segfill.errors import DownloadError

    source = folders[next(iter(folders))]
    for broken, content in (("model.safetensors", b"<html>please sign in</html>"), ("config.json", b"{not json")):
        served = tmp_path / f"served-{broken}"
        shutil.copytree(source, served)
        weights = next(served.glob("*.safetensors"))
        (weights if broken.endswith(".safetensors") else served / "config.json").write_bytes(content)
        listing = [HubFile(p.name, p.stat().st_size, None) for p in sorted(served.iterdir())
                   if p.suffix in (".json", ".txt", ".safetensors")]
        with pytest.raises(DownloadError, match="the download was not kept"):
            download_detector("a/" + broken, tmp_path / "into", lister=lambda _id, ls=listing: ls,
                              url_for=lambda r, n, root=served: (root / n).as_uri())
        assert not any(p.name.startswith("a--") and not p.name.endswith(".part")
                       for p in (tmp_path / "into").iterdir())
