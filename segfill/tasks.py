"""Progress channels: how a page sees (and cancels) the long job its own request is waiting for.

A gradio event that encodes an image, loads a model or computes the segment map answers only at its end, so the
page would wait in silence. Each user's state holds a random channel id (sent to its page in every payload);
a long job of that user runs inside ``board.run(channel, kind)``, which gives it a
:class:`~segfill.progress.Progress` and a :class:`~segfill.progress.CancelToken` (:mod:`segfill.progress`). The
page polls ``GET /segfill/v1/tasks/{channel}`` while it waits (bar, estimate, what is being done) and its Cancel
button posts ``/segfill/v1/tasks/{channel}/cancel``. The id is a secret of that page: it only reads progress of,
and cancels, that user's own job. Only running jobs are held, so the board never grows with the number of users.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from segfill.progress import CancelToken, Progress

__all__ = ["RunningTask", "TaskBoard", "board_of", "new_channel"]


def new_channel() -> str:
    return secrets.token_urlsafe(16)


@dataclass
class RunningTask:
    kind: str  # "encoding", "loading", "segment_map", "download"
    progress: Progress
    token: CancelToken = field(default_factory=CancelToken)
    started: float = field(default_factory=time.monotonic)

    def snapshot(self) -> dict[str, Any]:
        report = self.progress.report()
        return {
            "running": True,
            "kind": self.kind,
            "message": report.message,
            "done": report.done,
            "total": report.total,
            "fraction": None if report.fraction is None else round(report.fraction, 4),
            "elapsed_s": round(time.monotonic() - self.started, 2),
            "eta_s": None if report.eta_s is None else round(report.eta_s, 1),
            "cancelling": self.token.cancelled,
        }


class TaskBoard:
    """The running long jobs, by channel (one per user at a time; a nested ``run`` shares its parent's cancel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, RunningTask] = {}

    @contextmanager
    def run(self, channel: str | None, kind: str, message: str = "",
            expected_s: float | None = None) -> Iterator[RunningTask]:
        task = RunningTask(kind, Progress(expected_s))
        task.progress(0, 0, message)
        if not channel:
            yield task
            return
        with self._lock:
            outer = self._running.get(channel)
            if outer is not None:
                task.token = outer.token  # Cancel stops the whole job, whichever step it is in
            self._running[channel] = task
        try:
            yield task
        finally:
            with self._lock:
                if self._running.get(channel) is task:
                    if outer is not None:
                        self._running[channel] = outer
                    else:
                        del self._running[channel]

    def status(self, channel: str) -> dict[str, Any]:
        with self._lock:
            task = self._running.get(channel)
        return task.snapshot() if task is not None else {"running": False}

    def cancel(self, channel: str) -> bool:
        with self._lock:
            task = self._running.get(channel)
        if task is None:
            return False
        task.token.cancel()
        return True


def board_of(host: Any) -> TaskBoard:
    """The host's board (SegFill's hosts make one; a host built elsewhere gets one on first use)."""
    board = getattr(host, "tasks", None)
    if board is None:
        board = TaskBoard()
        host.tasks = board
    return board
