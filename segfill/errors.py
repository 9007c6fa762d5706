"""One error family for everything a user can cause or fix.

The CLI turns a :class:`SegFillError` into a one-line message and a non-zero exit, the UI into a visible
message, the API into a 4xx response. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SegFillError(Exception):
    """A problem the user can understand and fix; ``str(err)`` is one sentence meant for a person."""


class InputError(SegFillError, ValueError):
    """Bad input: wrong sizes, odd image modes, out-of-range numbers, points outside the image."""


class ModelError(SegFillError):
    """A model file that is missing, corrupt, truncated or of the wrong architecture."""


class MissingDependencyError(ModelError):
    """An optional package is not installed; the message says what to install."""

    def __init__(self, package: str, feature: str, install_hint: str | None = None) -> None:
        self.package = package
        self.feature = feature
        hint = install_hint or f"pip install {package}"
        super().__init__(f"{feature} needs the optional package '{package}', which is not installed ({hint}).")


class DownloadError(SegFillError):
    """A download failed or its checksum did not match; no file that looks valid is left behind."""


class Cancelled(SegFillError):
    """A long job (encoding, segment map, model loading, download) stopped because its ``should_stop()`` said
    so; nothing it would have produced is kept. ``done`` / ``total`` say how far it got."""

    def __init__(self, what: str, done: float = 0, total: float = 0) -> None:
        self.what = what
        self.done = done
        self.total = total
        super().__init__(f"{what[:1].upper()}{what[1:]} was cancelled.")
