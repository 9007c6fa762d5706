"""No silent waits in the tab: the long job a page's request waits for (loading SAM, encoding, the segment map)
reports to that user's progress channel, which the page polls (GET /segfill/v1/tasks/{channel}) and cancels
(POST …/cancel); a cancel keeps the image and the mask and says what happens next."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from segfill.api import register_routes  # noqa: E402
from segfill.errors import Cancelled  # noqa: E402
from segfill.progress import check  # noqa: E402
from segfill.sam.session import EmbeddingCache  # noqa: E402
from segfill.tasks import TaskBoard, board_of  # noqa: E402
from tests._sam_fixtures import single_torch_thread, textured_image  # noqa: E402
from tests.tiny_models import TINY_SAM_DEPTH, save_tiny_sam  # noqa: E402

PREFIX = "/segfill/v1"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


def test_board_reports_only_running_jobs_and_nested_steps_share_the_cancel():
    board = TaskBoard()
    assert board.status("nobody") == {"running": False}
    assert board.cancel("nobody") is False
    with board.run("me", "segment_map", "Computing the segment map…") as outer:
        outer.progress(2, 8, "batch 2 of 8")
        status = board.status("me")
        assert status["running"] and status["kind"] == "segment_map" and status["fraction"] == 0.25
        assert status["message"] == "batch 2 of 8" and status["eta_s"] is not None
        with board.run("me", "encoding", "Encoding the image…") as inner:
            assert board.status("me")["kind"] == "encoding"  # the step being done now
            assert board.status("someone else") == {"running": False}
            assert board.cancel("me") is True
            assert inner.token.cancelled and outer.token.cancelled  # Cancel stops the whole job
            assert board.status("me")["cancelling"] is True
            with pytest.raises(Cancelled):
                check(inner.token, "encoding the image")
        assert board.status("me")["kind"] == "segment_map"
    assert board.status("me") == {"running": False}  # nothing kept once done: the board never grows
    assert board._running == {}


def test_a_job_without_a_channel_still_gets_progress_and_cancel():
    with TaskBoard().run(None, "encoding") as task:
        task.progress(1, 2, "half")
        assert task.progress.report().fraction == 0.5 and not task.token.cancelled


@pytest.fixture()
def app_host(tmp_path):
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager

    save_tiny_sam(tmp_path / "tiny.pth")
    host = StandaloneHost(SamManager([tmp_path], device="cpu", precision="fp32"), create_backend("opencv"),
                          embeddings=EmbeddingCache(64 << 20), defaults=HostDefaults(sam_model="tiny.pth"))
    app = FastAPI()
    register_routes(app, host)
    return host, TestClient(app)


def _gate(module):
    """Make ``module``'s forward wait for the returned event (the test decides when a block finishes)."""
    gate = threading.Event()
    entered = threading.Event()

    def hold(*_args):
        entered.set()
        assert gate.wait(60)

    handle = module.register_forward_pre_hook(hold)
    return gate, entered, handle


def _poll(client, channel, kind, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"{PREFIX}/tasks/{channel}").json()
        if status.get("running") and status.get("kind") == kind:
            return status
        time.sleep(0.02)
    raise AssertionError(f"no running {kind} job on the channel")


def test_the_page_sees_the_encoding_and_cancels_it_keeping_the_image(app_host):
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st

    host, client = app_host
    loaded = host.sam.get("tiny.pth")
    gate, entered, handle = _gate(loaded.model.image_encoder.blocks[1])
    state = st.UserState()
    image = textured_image(seed=21)
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(out=cb.on_image(state, image, "tiny.pth", host)))
    worker.start()
    try:
        assert entered.wait(60)
        status = _poll(client, state.channel, "encoding")
        # block 0 is done, block 1 waits: the bar, the step and an estimate
        assert status["total"] == TINY_SAM_DEPTH and status["done"] == 1
        assert status["message"] == f"Encoding the image: block 1 of {TINY_SAM_DEPTH}"
        assert status["fraction"] == pytest.approx(1 / TINY_SAM_DEPTH) and status["eta_s"] is not None
        # another page's channel sees nothing and cannot cancel this job
        assert client.post(f"{PREFIX}/tasks/{st.UserState().channel}/cancel").json() == {"cancelled": False}
        assert client.post(f"{PREFIX}/tasks/{state.channel}/cancel").json() == {"cancelled": True}
    finally:
        gate.set()
        worker.join(60)
        handle.remove()
    state, text = answer["out"][:2]
    payload = json.loads(text)
    assert payload["error"] == ""
    assert payload["message"].startswith("Encoding the image was cancelled. Nothing was changed; the next click")
    assert np.array_equal(state.image, image)  # the photo stays on the canvas
    assert payload["width"] == image.shape[1] and "sam" not in payload
    assert client.get(f"{PREFIX}/tasks/{state.channel}").json() == {"running": False}
    assert payload["tasks_url"] == f"{PREFIX}/tasks/{state.channel}"
    # the next click encodes again and works
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "point", "x": 40, "y": 30, "label": 1}]), host)
    payload = json.loads(text)
    assert payload["error"] == "" and payload["points"] == [[40, 30, 1]] and payload["sam"]["digest"]


def test_model_loading_shows_on_the_channel_and_can_be_cancelled(app_host, monkeypatch):
    from segfill.sam import loading
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st

    host, client = app_host
    gate = threading.Event()
    entered = threading.Event()
    original = loading.read_state_dict

    def slow_read(path):
        entered.set()
        assert gate.wait(60)
        return original(path)

    monkeypatch.setattr(loading, "read_state_dict", slow_read)
    state = st.UserState()
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(
        out=cb.on_image(state, textured_image(seed=22), "tiny.pth", host)))
    worker.start()
    try:
        assert entered.wait(60)
        status = _poll(client, state.channel, "loading")
        assert status["message"].startswith("Reading tiny.pth")
        client.post(f"{PREFIX}/tasks/{state.channel}/cancel")
    finally:
        gate.set()
        worker.join(60)
    payload = json.loads(answer["out"][1])
    assert payload["error"] == "" and "was cancelled. Nothing was changed; the next click loads" in payload["message"]
    assert host.sam.loaded is None  # nothing half-loaded is kept


def test_waiting_for_a_background_encoding_forwards_its_progress(app_host):
    from segfill.ui import state as st

    host, _ = app_host
    loaded = host.sam.get("tiny.pth")
    state = st.UserState()
    image = textured_image(seed=23)
    gate, entered, handle = _gate(loaded.model.image_encoder.blocks[0])
    try:
        st.set_image(state, image, host, "tiny.pth", background=True)  # e.g. "Continue with the result"
        assert entered.wait(60)
        seen = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(board_of(host).status(state.channel))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        threading.Timer(0.5, gate.set).start()
        session = st.ensure_session(state, host)  # the click waits for the job, not silently
        stop.set()
        watcher.join()
    finally:
        gate.set()
        handle.remove()
    assert session.is_image_set and session.encoder_calls == 0  # the job's embedding, no second encoder run
    assert any(s.get("running") and s["kind"] == "encoding" for s in seen)


def test_cancelling_the_wait_for_a_background_encoding_cancels_it(app_host):
    from segfill.ui import state as st

    host, _ = app_host
    loaded = host.sam.get("tiny.pth")
    state = st.UserState()
    gate, entered, handle = _gate(loaded.model.image_encoder.blocks[0])
    try:
        st.set_image(state, textured_image(seed=24), host, "tiny.pth", background=True)
        assert entered.wait(60)
        threading.Timer(0.3, lambda: board_of(host).cancel(state.channel)).start()
        with pytest.raises(Cancelled):
            st.ensure_session(state, host)
        job = next(iter(state.encoding_jobs.values()))
        assert job.cancelled
    finally:
        gate.set()
        handle.remove()
    assert not state.session.is_image_set


def test_the_segment_map_shows_on_the_channel_and_can_be_cancelled(app_host):
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st

    host, client = app_host
    loaded = host.sam.get("tiny.pth")
    state = st.UserState()
    state, _ = cb.on_image(state, textured_image(seed=25), "tiny.pth", host)[:2]
    gate, entered, handle = _gate(loaded.model.mask_decoder)
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(
        out=cb.on_events(state, json.dumps([{"type": "segment_map"}]), host)))
    worker.start()
    try:
        assert entered.wait(60)
        status = _poll(client, state.channel, "segment_map")
        assert status["total"] > 0
        client.post(f"{PREFIX}/tasks/{state.channel}/cancel")
    finally:
        gate.set()
        worker.join(120)
        handle.remove()
    payload = json.loads(answer["out"][1])
    assert payload["error"] == ""
    assert payload["message"] == ("The segment map was cancelled. Nothing was changed; press Segment map again to "
                                  "start over.")
    assert state.segment_map is None and "segment_map" not in payload


def test_task_routes_refuse_overlong_channels(app_host):
    _, client = app_host
    assert client.get(f"{PREFIX}/tasks/{'x' * 65}").status_code == 404
    assert client.post(f"{PREFIX}/tasks/{'x' * 65}/cancel").status_code == 404


def test_a_download_in_the_tab_shows_an_estimate_and_its_cancel_button_stops_it(tmp_path, monkeypatch):
    import re

    from segfill.backends import create_backend
    from segfill.errors import Cancelled
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam import download, registry
    from segfill.sam.manager import SamManager
    from segfill.ui.builder import download_model_progress

    spec = registry.ModelSpec(name="tiny_slow", family="sam", arch="vit_custom", filename="tiny_slow.pth",
                              url="http://127.0.0.1:9/tiny_slow.pth", size_bytes=4_000_000, sha256="0" * 64,
                              package="segment-anything")
    monkeypatch.setitem(registry.KNOWN_MODELS, "tiny_slow", spec)
    reached = threading.Event()

    def fake_download(source, folder, progress=None, should_stop=None, **_):
        for done in range(0, 4_000_000, 500_000):
            progress(done, 4_000_000)
            time.sleep(0.05)
            if done >= 1_000_000:
                reached.set()
                for _ in range(600):
                    if should_stop():
                        raise Cancelled("the download of tiny_slow.pth", done, 4_000_000)
                    time.sleep(0.05)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(download, "download_model", fake_download)
    host = StandaloneHost(SamManager([tmp_path / "models"], device="cpu"), create_backend("opencv"))
    app = FastAPI()
    register_routes(app, host)
    client = TestClient(app)
    steps = []
    for step in download_model_progress(host, "tiny_slow"):
        steps.append(step)
        if reached.is_set() and "Cancel" in step and not any("Cancelling" in s for s in steps):
            url = re.search(r'data-segfill-cancel="([^"]+)"', step).group(1)
            assert url.startswith(f"{PREFIX}/tasks/") and url.endswith("/cancel")
            assert client.get(url.removesuffix("/cancel")).json()["kind"] == "download"
            assert client.post(url).json() == {"cancelled": True}
    assert any(re.search(r"MB, about \d+ s left", s) for s in steps)  # the bar has an estimate
    assert steps[-1] == '<span class="segfill-download">Download cancelled; nothing was kept.</span>'


def test_a_result_is_encoded_while_the_user_compares_it_and_accept_keeps_editing(app_host):
    from segfill.ui import actions
    from segfill.ui import callbacks as cb
    from segfill.ui import state as st

    host, _ = app_host
    state = st.UserState()
    state, _ = cb.on_image(state, textured_image(seed=26), "tiny.pth", host)[:2]
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "point", "x": 50, "y": 40, "label": 1}]), host)
    assert json.loads(text)["mask_area"] > 0
    state, text, result, _info = actions.on_inpaint(state, "", "", 3, 20, 7, 1.0, host=host)
    assert json.loads(text)["error"] == "" and result is not None
    jobs = list(state.encoding_jobs.values())
    assert len(jobs) == 1  # the result's embedding is being computed while the user looks at it
    jobs[0].wait(timeout=60)
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "accept"}]), host)
    assert json.loads(text)["error"] == "" and np.array_equal(state.image, np.asarray(result.convert("RGB")))
    calls = state.session.encoder_calls
    state, text, *_ = cb.on_events(state, json.dumps([{"type": "point", "x": 20, "y": 20, "label": 1}]), host)
    payload = json.loads(text)
    assert payload["error"] == "" and payload["sam"]["digest"]
    assert state.session.encoder_calls == calls  # the click found the result's embedding ready
