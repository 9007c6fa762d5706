"""No silent waits: encoding, the segment map, model loading and downloads report progress in one style
(``progress(done, total, message)``) and stop on ``should_stop()``; background encoding keeps the user editing."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from segfill.errors import Cancelled
from segfill.progress import CancelToken, Progress
from segfill.sam import encoding
from segfill.sam.session import EmbeddingCache, SamSession, image_digest
from tests._sam_fixtures import load_tiny, single_torch_thread, textured_image
from tests.tiny_models import TINY_SAM_DEPTH, save_tiny_sam


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny(tmp_path_factory.mktemp("sam") / "tiny.pth")


def test_progress_estimates_the_time_left():
    now = [100.0]
    progress = Progress(expected_s=8.0, clock=lambda: now[0])
    assert progress.report().eta_s == 8.0  # before anything is done: the last encoding's duration
    now[0] = 102.0
    progress(1, 4, "block 1 of 4")
    report = progress.report()
    assert (report.done, report.total, report.fraction, report.message) == (1, 4, 0.25, "block 1 of 4")
    assert report.eta_s == pytest.approx(6.0)  # 2 s per block, 3 blocks to go


def test_encoding_reports_every_encoder_block_and_remembers_its_duration(tiny):
    seen = []
    session = SamSession(tiny)
    session.set_image(textured_image(), progress=lambda d, t, m: seen.append((d, t, m)))
    assert [(d, t) for d, t, _ in seen] == [(i, TINY_SAM_DEPTH) for i in range(TINY_SAM_DEPTH + 1)]
    assert seen[-1][2] == f"Encoding the image: block {TINY_SAM_DEPTH} of {TINY_SAM_DEPTH}"
    assert encoding.expected_encoding_s(tiny) > 0  # the estimate shown before the next encoding's first block


def test_cancelling_an_encoding_stops_it_and_leaves_no_image(tiny):
    cache = EmbeddingCache()
    session = SamSession(tiny, cache)
    token = CancelToken()

    def progress(done, total, message):
        if done == 1:
            token.cancel()  # the user pressed Cancel during the first block

    with pytest.raises(Cancelled, match="Encoding the image was cancelled"):
        session.set_image(textured_image(), progress=progress, should_stop=token)
    assert not session.is_image_set and session.image_key is None and len(cache) == 0
    session.set_image(textured_image())  # nothing stuck: the next encoding works
    assert session.is_image_set and len(cache) == 1


def test_progress_goes_to_the_encoding_thread_only(tiny):
    mine, theirs = [], []
    other = threading.Thread(target=lambda: SamSession(tiny).set_image(textured_image(seed=4),
                                                                       progress=lambda *a: theirs.append(a)))
    other.start()
    SamSession(tiny).set_image(textured_image(seed=5), progress=lambda *a: mine.append(a))
    other.join()
    assert len(mine) == len(theirs) == TINY_SAM_DEPTH + 1


def test_encoder_blocks_of_every_family():
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        assert len(encoding.encoder_blocks(sam_model_registry["vit_b"]())) == 12
    try:
        from mobile_sam import sam_model_registry as mobile_registry
    except ImportError:
        return
    assert len(encoding.encoder_blocks(mobile_registry["vit_t"]())) == 2 + 2 + 6 + 2  # TinyViT's blocks


def test_model_loading_reports_its_steps_and_can_be_cancelled(tmp_path):
    from segfill.sam.loading import LOAD_STEPS, load_sam
    from segfill.sam.manager import SamManager

    path = save_tiny_sam(tmp_path / "tiny.pth")
    steps = []
    load_sam(path, progress=lambda d, t, m: steps.append((d, t)))
    assert steps == [(i, LOAD_STEPS) for i in range(LOAD_STEPS + 1)]
    token = CancelToken()
    with pytest.raises(Cancelled, match="Loading tiny.pth was cancelled"):
        load_sam(path, progress=lambda d, t, m: token.cancel() if d == 1 else None, should_stop=token)
    manager = SamManager([tmp_path], device="cpu")
    seen = []
    assert manager.get("tiny.pth", progress=lambda *a: seen.append(a)).family == "sam" and len(seen) == LOAD_STEPS + 1
    with pytest.raises(Cancelled):
        SamManager([tmp_path], device="cpu").get("tiny.pth", should_stop=lambda: True)


def test_a_download_can_be_cancelled_and_leaves_no_part_file(tmp_path):
    from segfill.progress import byte_progress
    from segfill.sam.download import download_model

    source = tmp_path / "src" / "model.pth"
    source.parent.mkdir()
    source.write_bytes(b"x" * 300_000)
    reports = []
    token = CancelToken()

    def progress(done, total, message):
        reports.append((done, total, message))
        if done >= 65536:
            token.cancel()

    with pytest.raises(Cancelled, match="The download of model.pth was cancelled"):
        download_model(source.as_uri(), tmp_path / "models", progress=byte_progress(progress, "model.pth"),
                       chunk_size=65536, should_stop=token)
    assert list((tmp_path / "models").iterdir()) == []
    assert reports[0] == (0.0, 300000.0, "Downloading model.pth: 0.0 of 0.3 MB")


def test_segment_map_reports_batches_and_can_be_cancelled(tiny):
    from segfill.sam.segment_map import compute_segment_map

    seen = []
    compute_segment_map(tiny, textured_image(), points_per_side=4, points_per_batch=4, pred_iou_thresh=0,
                        stability_score_thresh=0, progress=lambda d, t, m: seen.append((d, t)))
    assert seen == [(0, 16), (4, 16), (8, 16), (12, 16), (16, 16)]
    with pytest.raises(Cancelled, match="The segment map was cancelled"):
        compute_segment_map(tiny, textured_image(), points_per_side=4, points_per_batch=4,
                            should_stop=lambda: len(seen) > 6, progress=lambda d, t, m: seen.append((d, t)))


def test_background_encoding_fills_the_cache_and_reports(tiny):
    cache = EmbeddingCache()
    image = textured_image(seed=7)
    job = encoding.encode_in_background(tiny, image, cache)
    job.wait(timeout=60)
    assert job.done() and (tiny.model_key, image_digest(image)) in cache
    assert job.report().fraction == 1.0
    again = encoding.encode_in_background(tiny, image, cache)  # already cached: nothing to compute
    again.wait(timeout=60)
    assert again.report().message == "The image's embedding is ready."


# -- the tab's state: keep editing while the embedding is computed -------------------------------------------
@pytest.fixture()
def gated_host(tmp_path, monkeypatch):
    """A host whose background encodings wait for ``gate`` (so the test decides when they finish)."""
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    save_tiny_sam(tmp_path / "tiny.pth")
    gate = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1)

    class GatedExecutor:
        def submit(self, fn):
            return pool.submit(lambda: (gate.wait(30), fn())[1])

    original = encoding.encode_in_background
    monkeypatch.setattr(encoding, "encode_in_background",
                        lambda loaded, image, cache, executor=None, on_progress=None:
                        original(loaded, image, cache, GatedExecutor(), on_progress))
    host = StandaloneHost(SamManager([tmp_path], device="cpu", precision="fp32"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"))
    yield host, gate
    gate.set()
    pool.shutdown(wait=True)


def test_a_new_image_is_editable_while_its_embedding_is_computed(gated_host):
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st

    host, gate = gated_host
    state = st.UserState()
    image = textured_image(seed=9)
    st.set_image(state, image, host, background=True)  # returns at once
    assert st.encoding_report(state) is not None and host.embeddings.stats().entries == 0
    from segfill.ui.render import build_payload

    assert build_payload(state)["encoding"]["total"] in (0, 2)  # the canvas can show a bar while it waits
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "stroke", "points": [[10, 10], [60, 10]], "radius": 4}]), host)
    assert json.loads(text)["error"] == "" and json.loads(text)["mask_area"] > 0  # editing goes on
    gate.set()  # the encoding finishes; the click uses its embedding, no second encoder run
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "point", "x": 90, "y": 60, "label": 1}]), host)
    assert json.loads(text)["error"] == ""
    assert state.session.encoder_calls == 0 and host.embeddings.stats().entries == 1
    assert st.encoding_report(state) is None


def test_a_result_can_be_encoded_before_the_user_continues_with_it(gated_host):
    from segfill.ui import state as st

    host, gate = gated_host
    state = st.UserState()
    st.set_image(state, textured_image(seed=1), host)
    calls = state.session.encoder_calls
    result = np.ascontiguousarray(textured_image(seed=2)[::-1])
    job = st.start_encoding(state, host, result)  # e.g. right after an inpaint, before "Continue with the result"
    gate.set()
    job.wait(timeout=60)
    st.set_image(state, result, host)  # "Continue with the result": the embedding is already cached
    assert state.session.encoder_calls == calls and state.session.is_image_set


def test_cancelling_a_background_encoding_falls_back_to_encoding_on_the_click(gated_host):
    from segfill.ui import state as st

    host, gate = gated_host
    state = st.UserState()
    st.set_image(state, textured_image(seed=3), host, background=True)
    assert st.cancel_encoding(state) is True
    gate.set()
    session = st.ensure_session(state, host)
    assert session.is_image_set and session.encoder_calls == 1
