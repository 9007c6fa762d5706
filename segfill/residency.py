"""One model in memory at a time, on a device, for as long as it is used: the policy SAM and the text detector
share (:class:`segfill.sam.manager.SamManager`, :class:`segfill.detect.manager.DetectorManager`).

A :class:`ModelSlot` holds at most one loaded model (anything with ``.device`` and ``.to(device)``) under a
key saying what it was loaded from. Asking for another key drops the held model first (checkpoints are
large); ``offload_to_cpu()`` moves it off the GPU before an image generation and the next ``get`` moves it
back; ``unload()`` forgets it; with ``idle_unload_s`` it is forgotten after that many seconds without a
``get`` (a timer thread, and ``unload_if_idle()`` for callers with their own clock). Thread-safe: one lock
guards loading, moving and dropping, so concurrent requests for the same model load it once.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


def free_device_memory(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class ModelSlot:
    def __init__(self, idle_unload_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 name: str = "model") -> None:
        self.idle_unload_s = idle_unload_s if idle_unload_s and idle_unload_s > 0 else None
        self.lock = threading.RLock()
        self.load_count = 0  # how many times a model was actually loaded (tests, diagnostics)
        self._clock = clock
        self._name = name
        self._loaded: Any = None
        self._key: Hashable | None = None
        self._offloaded = False
        self._last_used = 0.0
        self._timer: threading.Timer | None = None

    @property
    def loaded(self) -> Any:
        """The model held (possibly offloaded to the CPU), or None."""
        return self._loaded

    def is_current(self, loaded: Any) -> bool:
        """Whether ``loaded`` (a model a caller kept) is still the one held, on its device: False after an
        unload, an idle unload, a switch to another model or an offload (the holder calls ``get`` again)."""
        return loaded is not None and loaded is self._loaded and not self._offloaded

    def get(self, key: Hashable, device: str, load: Callable[[], Any]) -> Any:
        """The model for ``key`` on ``device``: the held one (moved back if it was offloaded or the device
        changed), else ``load()`` after dropping whatever was held."""
        with self.lock:
            if self._loaded is not None and self._key == key:
                if self._offloaded or self._loaded.device != device:
                    self._loaded.to(device)
                    self._offloaded = False
            else:
                self._drop_locked()
                self._loaded = load()
                self._key = key
                self._offloaded = False
                self.load_count += 1
            self._touch_locked()
            return self._loaded

    def mark_to_move(self) -> None:
        """The device policy changed: the held model moves on the next ``get``."""
        with self.lock:
            if self._loaded is not None:
                self._offloaded = True

    def unload(self) -> bool:
        """Forget the held model and free its memory; True if one was held."""
        with self.lock:
            was_loaded = self._loaded is not None
            self._drop_locked()
            self._cancel_timer_locked()
            return was_loaded

    def offload_to_cpu(self) -> bool:
        """Move the held model to the CPU (e.g. before an image generation); the next ``get`` moves it back."""
        with self.lock:
            if self._loaded is None:
                return False
            previous = self._loaded.device
            if previous != "cpu":
                self._loaded.to("cpu")
                free_device_memory(previous)
            self._offloaded = True
            return True

    def unload_if_idle(self, now: float | None = None) -> bool:
        """Unload when ``idle_unload_s`` has passed since the last ``get``; True if it unloaded."""
        with self.lock:
            if self._loaded is None or self.idle_unload_s is None:
                return False
            now = self._clock() if now is None else now
            if now - self._last_used < self.idle_unload_s:
                return False
            self._drop_locked()
            return True

    def _drop_locked(self) -> None:
        if self._loaded is None:
            return
        device = self._loaded.device
        self._loaded = None
        self._key = None
        self._offloaded = False
        free_device_memory(device)

    def _touch_locked(self) -> None:
        self._last_used = self._clock()
        if self.idle_unload_s is None:
            return
        self._start_timer_locked(self.idle_unload_s)

    def _start_timer_locked(self, seconds: float) -> None:
        self._cancel_timer_locked()
        timer = threading.Timer(seconds, self._on_timer)
        timer.daemon = True
        timer.name = f"segfill-{self._name}-idle-unload"
        self._timer = timer
        timer.start()

    def _cancel_timer_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        with self.lock:
            if not self.unload_if_idle() and self._loaded is not None and self.idle_unload_s is not None:
                # used again meanwhile (the timer raced a get): check again when the new idle period ends
                self._start_timer_locked(max(0.01, self._last_used + self.idle_unload_s - self._clock()))
