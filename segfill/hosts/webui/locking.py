"""The WebUI's queue lock, made re-entrant per thread for SegFill's own callers."""

from __future__ import annotations

import threading
from typing import Any


class ThreadReentrantLock:
    """Wraps the WebUI's (non-reentrant) queue lock so one thread may enter it again.

    The REST API holds the lock around ``host.inpaint``; the tab may call ``host.inpaint`` without it. Both
    go through this wrapper, so the host can always ask for the lock without deadlocking itself, while the
    WebUI's own generations (which take the raw lock) still never overlap with ours.
    """

    def __init__(self, lock: Any = None) -> None:
        self._lock = lock if lock is not None else threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> ThreadReentrantLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            if hasattr(self._lock, "acquire"):
                self._lock.acquire()
            else:
                self._lock.__enter__()
        self._local.depth = depth + 1
        return True

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth <= 0:
            raise RuntimeError("release of an unheld lock")
        self._local.depth = depth - 1
        if depth == 1:
            if hasattr(self._lock, "release"):
                self._lock.release()
            else:
                self._lock.__exit__(None, None, None)

    @property
    def held_here(self) -> bool:
        return getattr(self._local, "depth", 0) > 0
