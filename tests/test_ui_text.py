"""The tab's "Select by text" as plain callbacks: a ``detect`` event -> boxes with labels and scores in the
user's state, ``keep``/``drop`` per box, SAM's candidates per box, the union through the combine modes, undo/
redo and refinement; first-use download progress; the manifest line of a generation started from the tab.
Tiny random-weight OWL-ViT (any stack) and SAM through the real loaders; the OpenCV backend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segfill.detect import registry
from segfill.ui import actions
from segfill.ui import callbacks as cb
from tests import tiny_detectors
from tests._sam_fixtures import single_torch_thread, textured_image

pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not registry.family_status("owlvit").available,
                                reason=registry.family_status("owlvit").message)
WIDTH, HEIGHT = 96, 72
HUB_ID = "google/owlvit-base-patch32"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def tiny_owlvit(tmp_path_factory):
    return tiny_detectors.save_tiny_owlvit(tmp_path_factory.mktemp("owl") / "tiny-owlvit", seed=4)


@pytest.fixture()
def downloads():
    return []


@pytest.fixture()
def host(tmp_path, tiny_owlvit, downloads):
    from segfill.backends import create_backend
    from segfill.detect.download import folder_name
    from segfill.detect.manager import DetectorManager
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache
    from tests.tiny_models import save_tiny_sam

    save_tiny_sam(tmp_path / "sam" / "tiny.pth")
    installed = tmp_path / "detectors"
    shutil.copytree(tiny_owlvit, installed / "tiny-owlvit")

    def fake_hub_download(repo_id, into, progress=None):  # what download_detector does, minus the network
        downloads.append(repo_id)
        for done in (50, 100):
            progress(done, 100)
        return Path(shutil.copytree(tiny_owlvit, Path(into) / folder_name(repo_id)))

    return StandaloneHost(SamManager([tmp_path / "sam"], device="cpu"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"),
                          output_dir=tmp_path / "outputs",
                          detectors=DetectorManager([installed], device="cpu", downloader=fake_hub_download))


@pytest.fixture(scope="module")
def image():
    return textured_image(WIDTH, HEIGHT, seed=2)


def events(state, host, *items, progress=None):
    out = cb.on_events(state, json.dumps(list(items)), host, progress)
    return out[0], json.loads(out[1])


def loaded(host, image):
    state, payload = cb.on_image(None, Image.fromarray(image), None, host)
    assert json.loads(payload)["error"] == ""
    return state


def reference(host, image, text="a red ball", threshold=0.0, folder=None):
    from segfill.detect.detector import detect
    from segfill.detect.loading import load_detector
    from segfill.detect.pipeline import predict_boxes
    from segfill.sam.session import SamSession

    folder = folder or host.detectors.folders[0] / "tiny-owlvit"
    result = detect(load_detector(folder), image, text, box_threshold=threshold)
    session = SamSession(host.sam.get("tiny.pth"))
    session.set_image(image)
    return result, predict_boxes(session, result.detections, multimask=True)


def test_detect_keep_drop_candidates_undo_redo(host, image):
    state = loaded(host, image)
    state, payload = events(state, host, {"type": "detect", "text": "a red ball", "detector": "tiny-owlvit",
                                          "box_threshold": 0})
    assert payload["error"] == "", payload["error"]
    result, predictions = reference(host, image)
    assert len(result) >= 2
    boxes = payload["text_boxes"]
    assert [b["box"] for b in boxes] == [[round(v, 2) for v in d.box] for d in result.detections]
    assert [b["label"] for b in boxes] == [d.label for d in result.detections]
    assert [b["score"] for b in boxes] == [round(d.score, 3) for d in result.detections]
    assert all(b["kept"] for b in boxes) and [b["candidate"] for b in boxes] == [p.best_index for p in predictions]
    assert [b["sam_scores"] for b in boxes] == [[round(float(s), 3) for s in p.scores] for p in predictions]
    assert payload["text"] == {"text": "a red ball", "detector": "tiny-owlvit", "family": "owlvit",
                               "box_threshold": 0.0, "text_threshold": None}
    assert payload["detectors"]["available"] and "OWL-ViT" in payload["detectors"]["message"]
    union = np.logical_or.reduce([p.best_mask for p in predictions])
    np.testing.assert_array_equal(state.final_mask(), union)
    assert payload["mask_area"] == int(union.sum())

    state, payload = events(state, host, {"type": "drop", "index": 0})
    assert [b["kept"] for b in payload["text_boxes"]][:2] == [False, True]
    without_first = np.logical_or.reduce([p.best_mask for p in predictions[1:]])
    np.testing.assert_array_equal(state.final_mask(), without_first)
    other = (predictions[1].best_index + 1) % 3
    state, payload = events(state, host, {"type": "text_candidate", "index": 1, "candidate": other})
    assert payload["text_boxes"][1]["candidate"] == other
    expected = np.logical_or.reduce([predictions[1].masks[other], *[p.best_mask for p in predictions[2:]]])
    np.testing.assert_array_equal(state.final_mask(), expected)
    state, payload = events(state, host, {"type": "undo"}, {"type": "undo"})
    np.testing.assert_array_equal(state.final_mask(), union)
    state, payload = events(state, host, {"type": "redo"})
    np.testing.assert_array_equal(state.final_mask(), without_first)
    state, payload = events(state, host, {"type": "keep", "index": 0})
    np.testing.assert_array_equal(state.final_mask(), union)

    # points can still be added: SAM's answer to them joins the kept boxes
    state, payload = events(state, host, {"type": "point", "x": 10, "y": 60, "label": 1})
    np.testing.assert_array_equal(state.final_mask(), union | state.edit.prediction.best_mask)
    state, payload = events(state, host, {"type": "clear"})
    assert payload["text_boxes"] == [] and payload["text"] is None and payload["mask_area"] == 0


def test_the_union_goes_through_combine_modes_and_refinement(host, image):
    from segfill.masks import grow

    state = loaded(host, image)
    state, _ = events(state, host, {"type": "box", "x0": 0, "y0": 0, "x1": 60, "y1": 50}, {"type": "commit"})
    base = state.edit.base.unpack()
    cb.on_controls(state, "Subtract", 3, 0, 0, False, 0, False)
    state, payload = events(state, host, {"type": "detect", "text": "a red ball", "box_threshold": 0})
    assert payload["error"] == ""
    _result, predictions = reference(host, image)
    union = np.logical_or.reduce([p.best_mask for p in predictions])
    np.testing.assert_array_equal(state.final_mask(), grow(base & ~union, 3))


def test_nothing_found_or_a_bad_detector_keeps_the_users_mask(host, image):
    state = loaded(host, image)
    state, payload = events(state, host, {"type": "point", "x": 40, "y": 30, "label": 1})
    mask = state.final_mask().copy()
    for event, words in (
        ({"type": "detect", "text": "a cup", "box_threshold": 1}, "found nothing for 'a cup'"),
        ({"type": "detect", "text": "a cup", "detector": "/etc"}, "Unknown detector"),
        ({"type": "detect", "text": "   "}, "Type what to select"),
        ({"type": "detect", "text": "a cup", "box_threshold": "high"}, "numeric"),
        ({"type": "drop", "index": 0}, "no detected boxes"),
    ):
        state, payload = events(state, host, event)
        assert words in payload["error"]
        np.testing.assert_array_equal(state.final_mask(), mask)


def test_a_hub_detector_is_downloaded_once_with_progress_then_loaded_offline(host, image, downloads):
    seen = []

    def progress(fraction, desc=""):
        seen.append((fraction, desc))

    state = loaded(host, image)
    state, payload = events(state, host, {"type": "detect", "text": "a dog", "detector": HUB_ID, "box_threshold": 0},
                            progress=progress)
    assert payload["error"] == "" and downloads == [HUB_ID]
    assert seen == [(0.5, f"Downloading {HUB_ID}: 0 of 0 MB"), (1.0, f"Downloading {HUB_ID}: 0 of 0 MB")]
    assert payload["text"]["detector"] == HUB_ID
    host.detectors.unload()
    state, payload = events(state, host, {"type": "detect", "text": "a dog", "detector": HUB_ID, "box_threshold": 0})
    assert payload["error"] == "" and downloads == [HUB_ID], "the second use loads the folder, offline"


def test_inpaint_from_the_tab_records_the_text_selection_in_the_manifest(host, image):
    state = loaded(host, image)
    state, payload = events(state, host, {"type": "detect", "text": "a red ball", "box_threshold": 0},
                            {"type": "drop", "index": 1})
    out = actions.on_inpaint(state, "", "", 7, 20, 7.5, 1.0, host)
    assert json.loads(out[1])["error"] == ""
    (entry,) = [json.loads(line) for line in (host.output_dir / "segfill-manifest.jsonl").read_text().splitlines()]
    assert entry["source"] == "tab" and entry["mode"] == "inpaint" and entry["seed"] == 7
    selection = entry["selection"]
    assert selection["text"] == "a red ball" and selection["detector"] == "tiny-owlvit"
    assert [d["kept"] for d in selection["detections"]][:2] == [True, False]
    assert selection["detections"][0]["box"] == list(state.edit.text_boxes[0].box)
    assert selection["sam_model"] == "tiny.pth" and selection["refinement"]["grow"] == 0
    np.testing.assert_array_equal(np.asarray(Image.open(entry["mask_file"])) > 127, state.final_mask())
    np.testing.assert_array_equal(np.asarray(Image.open(entry["output"]["path"])), np.asarray(out[2]))


def _thumb(url: str) -> np.ndarray:
    import base64
    import io

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_the_candidate_strip_shows_the_focused_boxs_candidates(host, image):
    from segfill.ui.render import THUMB_SIDE

    state = loaded(host, image)
    state, payload = events(state, host, {"type": "detect", "text": "a red ball", "box_threshold": 0})
    _result, predictions = reference(host, image)
    # after a detection the strip shows the best box's three candidates: its region, each candidate tinted
    assert payload["text_focus"] == 0
    thumbs = payload["text_candidates"]
    assert [t["index"] for t in thumbs] == [0, 1, 2]
    assert [t["score"] for t in thumbs] == [round(float(s), 3) for s in predictions[0].scores]
    pictures = [_thumb(t["url"]) for t in thumbs]
    assert max(pictures[0].shape[:2]) == THUMB_SIDE
    assert len({p.tobytes() for p in pictures}) > 1, "each thumbnail shows its own candidate"
    # the next answer leaves the pictures out: the browser has them
    state, payload = events(state, host, {"type": "drop", "index": 2})
    assert payload["text_candidates_same"] and "url" not in payload["text_candidates"][0]
    # a box's label picked: its candidates; choosing one there focuses that box and changes only its mask
    depth, rev = state.history.depth, payload["rev"]
    state, payload = events(state, host, {"type": "text_focus", "index": 1})
    assert payload["text_focus"] == 1 and "url" in payload["text_candidates"][0]
    assert [t["score"] for t in payload["text_candidates"]] == [round(float(s), 3) for s in predictions[1].scores]
    assert state.history.depth == depth and payload["rev"] > rev, "looking at a box is drawn, not an undo step"
    other = (predictions[1].best_index + 1) % 3
    state, payload = events(state, host, {"type": "text_candidate", "index": 1, "candidate": other})
    assert payload["text_focus"] == 1 and payload["text_boxes"][1]["candidate"] == other
    # a click: the strip shows the click's candidates again; boxes stay
    state, payload = events(state, host, {"type": "point", "x": 10, "y": 60, "label": 1})
    assert payload["text_focus"] is None and payload["text_candidates"] == [] and len(payload["candidates"]) == 3
    state, payload = events(state, host, {"type": "text_focus", "index": 99})
    assert "Box 100 does not exist" in payload["error"]
    state, payload = events(state, host, {"type": "clear"})
    assert payload["text_focus"] is None


def test_the_payload_offers_the_detectors_and_their_defaults(host, image):
    from segfill.defaults import DETECT_BOX_THRESHOLD, DETECT_TEXT_THRESHOLD

    state = loaded(host, image)
    state, payload = events(state, host, {"type": "noop"})
    info = payload["detectors"]
    assert info["box_thresholds"]["owlvit"] == DETECT_BOX_THRESHOLD["owlvit"]
    assert info["text_threshold"] == DETECT_TEXT_THRESHOLD and info["titles"]["owlvit"] == "OWL-ViT"
    assert set(info["text_threshold_families"]) == ({"grounding_dino"} & set(info["families"]))
    choices = info["choices"]
    assert choices[0] == {"value": "", "label": "Automatic", "family": None}
    assert {"value": "tiny-owlvit", "label": "tiny-owlvit (OWL-ViT)", "family": "owlvit"} in choices
    hub = [c for c in choices if c["value"] == HUB_ID]
    assert hub and "downloaded on first use" in hub[0]["label"]
    # each choice is a name the detect event accepts
    for choice in choices[1:]:
        assert host.detectors.resolve_name(choice["value"])
    assert "choices" not in cb.payload_json(state) and '"choices"' not in cb.payload_json(state)


def test_the_tabs_detect_channel_shows_gradios_progress_of_a_download(host, image, downloads):
    """builder.py: "Select by text" goes through its own listener, which passes a gr.Progress to on_events and
    shows it on a block of its own (the canvas' other events show no gradio progress)."""
    import inspect

    import gradio as gr

    from segfill.ui.builder import build_tab

    tab = build_tab(host)
    by_id = {getattr(b, "elem_id", None): b for b in tab.blocks.values()}
    config = tab.get_config_file()

    def listener(elem_id):
        target = by_id[elem_id]._id
        (found,) = [(i, d) for i, d in enumerate(config["dependencies"])
                    if target in [t if isinstance(t, int) else t[0] for t in d.get("targets", [])] and d.get("backend_fn")]
        return found

    index, detect = listener("segfill_detect_button")
    assert by_id["segfill_detect_progress"]._id in detect["outputs"]
    assert detect["show_progress"] != "hidden" and "'detect'" in (detect.get("js") or detect.get("_js"))
    _, events_listener = listener("segfill_event_button")
    assert events_listener["show_progress"] == "hidden"
    fn = tab.fns[index].fn
    assert isinstance(inspect.signature(fn).parameters["progress"].default, gr.Progress)

    seen = []
    state = loaded(host, image)
    state, text, progress_html = fn(state, json.dumps([{"type": "detect", "text": "a dog", "detector": HUB_ID,
                                                        "box_threshold": 0}]),
                                    progress=lambda fraction, desc="": seen.append((fraction, desc)))
    payload = json.loads(text)
    assert payload["error"] == "" and payload["text_boxes"] and progress_html == ""
    assert seen and all(desc.startswith(f"Downloading {HUB_ID}") for _f, desc in seen) and downloads == [HUB_ID]
