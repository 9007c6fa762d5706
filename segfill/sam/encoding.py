"""Image encoding that says how far it is, can be cancelled, and can run in the background.

SAM's image encoder is a stack of blocks (ViT blocks for SAM / SAM-HQ, TinyViT stages' blocks for MobileSAM,
Hiera blocks for SAM 2); a forward hook on each block reports ``progress(done_blocks, total_blocks, message)``
and checks ``should_stop()`` (:mod:`segfill.progress`), so the wait of a first click on a CPU is a bar with an
estimate, and a Cancel button stops it within one block. The hooks are installed once per model and dispatch
to the listener of the calling thread, so two users encoding at the same time on one shared model each see
their own progress (and a cancel stops only its own encoding).

:func:`encode_in_background` runs ``SamSession.set_image`` in a worker thread and returns an
:class:`EncodingJob` (a future with progress and cancel): the tab keeps the user editing (strokes, refinements,
the previous image) while the embedding of the next image — e.g. an inpainting result the user will
"continue with" — fills the shared embedding cache; the click that needs it waits on the job or finds it cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segfill.errors import Cancelled
from segfill.progress import CancelToken, Progress, ProgressCallback, ProgressReport, ShouldStop

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from segfill.sam.loading import LoadedSam
    from segfill.sam.session import EmbeddingCache

__all__ = ["EncodingJob", "encode_in_background", "encoder_blocks", "encoding_listener", "expected_encoding_s"]

_local = threading.local()
_HOOKED = "_segfill_progress_hooks"
_durations: dict[str, float] = {}  # embedding key -> seconds the last encoding took (the next estimate)
_durations_lock = threading.Lock()
_hooks_lock = threading.Lock()


def encoder_blocks(loaded: Any) -> list[Any]:
    """The image encoder's blocks in execution order (empty when the architecture is unknown)."""
    model = getattr(loaded, "model", loaded)
    encoder = getattr(model, "image_encoder", None)
    if encoder is None:
        return []
    trunk = getattr(encoder, "trunk", None)  # SAM 2: Hiera
    if trunk is not None and hasattr(trunk, "blocks"):
        return list(trunk.blocks)
    if hasattr(encoder, "blocks"):  # SAM, SAM-HQ ViT
        return list(encoder.blocks)
    layers = getattr(encoder, "layers", None)  # TinyViT (MobileSAM, SAM-HQ tiny): stages of blocks
    if layers is not None:
        blocks = []
        for layer in layers:
            inner = getattr(layer, "blocks", None)
            blocks.extend(inner if inner is not None else [layer])
        return blocks
    return []


@dataclass
class _Listener:
    progress: ProgressCallback | None
    should_stop: ShouldStop | None
    total: int
    done: int = 0


def _hook(_module: Any, _inputs: Any, _output: Any) -> None:
    listener: _Listener | None = getattr(_local, "listener", None)
    if listener is None:
        return
    listener.done += 1
    if listener.should_stop is not None and listener.should_stop():
        raise Cancelled("encoding the image", listener.done, listener.total)
    if listener.progress is not None:
        listener.progress(listener.done, listener.total, f"Encoding the image: block {listener.done} of {listener.total}")


def _ensure_hooks(blocks: list[Any], model: Any) -> None:
    if getattr(model, _HOOKED, False):
        return
    with _hooks_lock:
        if getattr(model, _HOOKED, False):
            return
        for block in blocks:
            block.register_forward_hook(_hook)
        try:
            setattr(model, _HOOKED, True)
        except AttributeError:  # pragma: no cover - a model that refuses attributes: hooks stay, harmless
            pass


class encoding_listener:
    """Context manager: while it is active, this thread's encodings with ``loaded`` report to ``progress`` and
    stop when ``should_stop()`` says so (raising :class:`Cancelled` out of the encoder)."""

    def __init__(self, loaded: Any, progress: ProgressCallback | None, should_stop: ShouldStop | None) -> None:
        self.loaded = loaded
        self.listener: _Listener | None = None
        if progress is None and should_stop is None:
            return
        blocks = encoder_blocks(loaded)
        if blocks:
            _ensure_hooks(blocks, getattr(loaded, "model", loaded))
        self.listener = _Listener(progress, should_stop, len(blocks))

    def __enter__(self) -> encoding_listener:
        self._previous = getattr(_local, "listener", None)
        self._started = time.perf_counter()
        if self.listener is not None:
            _local.listener = self.listener
            if self.listener.should_stop is not None and self.listener.should_stop():
                _local.listener = self._previous
                raise Cancelled("encoding the image", 0, self.listener.total)
            if self.listener.progress is not None:
                self.listener.progress(0, self.listener.total, "Encoding the image…")
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        _local.listener = self._previous
        if exc_type is None:
            remember_encoding_s(self.loaded, time.perf_counter() - self._started)


def _duration_key(loaded: Any) -> str:
    return str(getattr(loaded, "embedding_key", None) or getattr(loaded, "model_key", id(loaded)))


def remember_encoding_s(loaded: Any, seconds: float) -> None:
    with _durations_lock:
        _durations[_duration_key(loaded)] = float(seconds)


def expected_encoding_s(loaded: Any) -> float | None:
    """How long the last encoding with this model (and precision) took, or None: the estimate shown before the
    first block is done (afterwards the estimate follows the blocks)."""
    with _durations_lock:
        return _durations.get(_duration_key(loaded))


@dataclass
class EncodingJob:
    """A background ``set_image``: poll :meth:`done` / :meth:`report`, :meth:`wait` for it, :meth:`cancel` it."""

    image_key: tuple[str, str]
    future: Future
    progress: Progress
    token: CancelToken = field(default_factory=CancelToken)

    def done(self) -> bool:
        return self.future.done()

    def report(self) -> ProgressReport:
        return self.progress.report()

    def cancel(self) -> None:
        self.token.cancel()
        self.future.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def wait(self, timeout: float | None = None) -> None:
        """Block until the embedding is in the cache; re-raises what the encoding raised (e.g. Cancelled)."""
        self.future.result(timeout)


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _default_executor() -> ThreadPoolExecutor:
    """One worker: background encodings queue behind each other instead of fighting for the CPU cores."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segfill-encode")
        return _executor


def encode_in_background(loaded: LoadedSam, image: np.ndarray, cache: EmbeddingCache,
                         executor: Any = None, on_progress: Callable[[float, float, str], None] | None = None
                         ) -> EncodingJob:
    """Start encoding ``image`` (RGB uint8) with ``loaded`` into ``cache``; returns at once.

    Free when the embedding is already cached (the job is done immediately). ``on_progress`` additionally
    receives every report (e.g. to push it to a browser)."""
    from segfill.sam.session import SamSession, _as_rgb_uint8, embedding_key, image_digest

    rgb = _as_rgb_uint8(image)
    key = (embedding_key(loaded), image_digest(rgb))
    progress = Progress(expected_s=expected_encoding_s(loaded))
    token = CancelToken()

    def report(done: float, total: float, message: str) -> None:
        progress(done, total, message)
        if on_progress is not None:
            on_progress(done, total, message)

    def run() -> None:
        if key in cache:
            report(1, 1, "The image's embedding is ready.")
            return
        session = SamSession(loaded, cache)
        session.set_image(rgb, progress=report, should_stop=token)

    future = (executor or _default_executor()).submit(run)
    return EncodingJob(key, future, progress, token)
