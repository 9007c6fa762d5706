"""One progress and cancel style for every long job: encoding an image, the segment map, loading a model,
downloading one.

- ``progress(done, total, message)``: ``done`` of ``total`` units (floats; ``total`` 0 when unknown), a short
  sentence for a person. Called from the worker thread; it must be cheap and must not raise.
- ``should_stop() -> bool``: polled between units; when it answers True the job raises
  :class:`segfill.errors.Cancelled` and leaves nothing half-made behind.

:class:`CancelToken` is a ready-made ``should_stop`` (``token.cancel()`` from any thread), :class:`Progress`
an object that records the last report with a time estimate (what a UI polls), and :func:`check` the one-line
cancellation point jobs call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from segfill.errors import Cancelled

ProgressCallback = Callable[[float, float, str], None]
ShouldStop = Callable[[], bool]

__all__ = ["CancelToken", "Progress", "ProgressCallback", "ProgressReport", "ShouldStop", "byte_progress", "check",
           "report"]


class CancelToken:
    """``should_stop`` for a job that another thread (the user's Cancel button) may stop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class ProgressReport:
    done: float
    total: float
    message: str
    elapsed_s: float
    eta_s: float | None  # None until there is something to estimate from

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


class Progress:
    """A progress callback that keeps the newest report with an estimate of the time left (linear in the units
    done so far, or from ``expected_s`` before the first unit is done). Thread-safe; poll :meth:`report`."""

    def __init__(self, expected_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._expected_s = expected_s
        self._lock = threading.Lock()
        self._last = ProgressReport(0.0, 0.0, "", 0.0, expected_s)

    def __call__(self, done: float, total: float, message: str = "") -> None:
        elapsed = self._clock() - self._started
        eta: float | None
        if total and done > 0:
            eta = max(0.0, elapsed * (total - done) / done)
        elif self._expected_s is not None:
            eta = max(0.0, self._expected_s - elapsed)
        else:
            eta = None
        with self._lock:
            self._last = ProgressReport(float(done), float(total), message, elapsed, eta)

    def report(self) -> ProgressReport:
        with self._lock:
            return self._last


def report(progress: ProgressCallback | None, done: float, total: float, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def check(should_stop: ShouldStop | None, what: str, done: float = 0, total: float = 0) -> None:
    """Raise :class:`Cancelled` when ``should_stop()`` says so (the cancellation point of every job)."""
    if should_stop is not None and should_stop():
        raise Cancelled(what, done, total)


def byte_progress(progress: ProgressCallback, what: str) -> Callable[[int, int | None], None]:
    """``segfill.sam.download``'s ``progress(done_bytes, total_bytes | None)`` in the common style."""

    def forward(done: int, total: int | None) -> None:
        size = f" of {total / 1e6:.1f}" if total else ""
        progress(float(done), float(total or 0), f"Downloading {what}: {done / 1e6:.1f}{size} MB")

    return forward
