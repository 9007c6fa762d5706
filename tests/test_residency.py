"""ModelSlot: the one-model policy SamManager and DetectorManager share."""

from __future__ import annotations

import threading
import time

from segfill.residency import ModelSlot


class FakeModel:
    def __init__(self, name, device):
        self.name, self.device, self.moves = name, device, []

    def to(self, device):
        self.moves.append(device)
        self.device = device
        return self


def test_one_model_per_key_moved_back_after_an_offload_and_dropped_for_another_key():
    slot = ModelSlot()
    a = slot.get("a", "cuda", lambda: FakeModel("a", "cuda"))
    assert slot.get("a", "cuda", lambda: FakeModel("again", "cuda")) is a and slot.load_count == 1
    assert slot.offload_to_cpu() and a.device == "cpu" and not slot.is_current(a)
    assert slot.get("a", "cuda", lambda: FakeModel("again", "cuda")) is a and a.moves == ["cpu", "cuda"]
    assert slot.is_current(a)
    b = slot.get("b", "cuda", lambda: FakeModel("b", "cuda"))
    assert b is not a and slot.loaded is b and slot.load_count == 2 and not slot.is_current(a)
    slot.mark_to_move()
    assert slot.get("b", "cpu", lambda: FakeModel("x", "cpu")) is b and b.device == "cpu"
    assert slot.unload() and slot.loaded is None and not slot.unload()


def test_idle_unload_by_clock_and_by_timer():
    now = [0.0]
    slot = ModelSlot(idle_unload_s=10, clock=lambda: now[0])
    slot.get("a", "cpu", lambda: FakeModel("a", "cpu"))
    now[0] = 9.0
    assert not slot.unload_if_idle()
    now[0] = 10.5
    assert slot.unload_if_idle() and slot.loaded is None
    slot.unload()  # cancels the pending timer

    timed = ModelSlot(idle_unload_s=0.05)
    timed.get("a", "cpu", lambda: FakeModel("a", "cpu"))
    deadline = time.monotonic() + 5
    while timed.loaded is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert timed.loaded is None


def test_concurrent_gets_load_once():
    slot = ModelSlot()
    calls = []

    def load():
        calls.append(1)
        time.sleep(0.05)
        return FakeModel("a", "cpu")

    results = []
    threads = [threading.Thread(target=lambda: results.append(slot.get("a", "cpu", load))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
