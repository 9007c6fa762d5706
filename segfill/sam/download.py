"""Download a checkpoint: streamed to ``<name>.part``, hashed on the fly, renamed only once verified.

A file is kept only when it passes every check available: its SHA-256 (else MD5) when one is known, the byte
count the server announced (Content-Length) or the registry knows, and always a structural check that it is
a checkpoint of a known SAM family (read by :mod:`segfill.sam.safe_load`, which never runs code in a file; a
registry model must also be the architecture it is listed as). A failed, interrupted or unverifiable download
removes its ``.part`` file and raises one sentence, so nothing that looks like a model is left behind. An
existing file of the same name is never silently kept or replaced: it is kept when it matches the expected
hash (or, with no hash known, the downloaded bytes), otherwise the download fails unless ``force``.
Plain ``urllib`` (no extra dependency); the opener is injectable for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import posixpath
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segfill.errors import Cancelled, DownloadError, ModelError
from segfill.sam.registry import (
    KNOWN_MODELS,
    MODEL_FILE_SUFFIXES,
    ModelSpec,
    classify_shapes,
    family_arch_label,
    file_sha256,
    read_tensor_shapes,
    remember_sha256,
)

#: progress(done_bytes, total_bytes or None when the server does not say)
ProgressCallback = Callable[[int, int | None], None]
Opener = Callable[..., Any]

USER_AGENT = "SegFill-model-download/1 (+urllib)"

_active: set[str] = set()
_active_lock = threading.Lock()


def _filename_from_url(url: str) -> str:
    name = urllib.parse.unquote(posixpath.basename(urllib.parse.urlparse(url).path))
    return name


def _check_filename(name: str, suffixes: tuple[str, ...] = MODEL_FILE_SUFFIXES) -> str:
    if (not name or name != os.path.basename(name) or "\\" in name or name.startswith(".")
            or Path(name).suffix.lower() not in suffixes):
        raise DownloadError(f"'{name}' is not an acceptable model file name (expected a plain "
                            f"{', '.join(suffixes)} name).")
    return name


def normalise_hash(value: str | None, kind: str = "SHA-256") -> str | None:
    """A hex digest in lower case, or None; anything but 64 (SHA-256) / 32 (MD5) hex digits is a DownloadError."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().lower()
    digits = 64 if kind == "SHA-256" else 32
    if not re.fullmatch(f"[0-9a-f]{{{digits}}}", text):
        raise DownloadError(f"A {kind} checksum is {digits} hexadecimal digits; {str(value)[:80]!r} is not one.")
    return text


def check_checkpoint(path: Path, filename: str, spec: ModelSpec | None = None) -> tuple[str, str]:
    """(family, arch) of a downloaded file, or DownloadError: it must be a checkpoint of a known SAM family
    (and, for a registry model, that model's family and architecture). Reads headers and pickle structure
    only, through the restricted reader: nothing in the file runs, no weights are read."""
    try:
        shapes = read_tensor_shapes(path, name=filename)
        family, arch = classify_shapes(shapes, filename)
        if family == "sam":
            from segfill.sam.loading import derive_sam_config

            derive_sam_config(shapes, filename)
    except ModelError as exc:
        raise DownloadError(f"{str(exc).rstrip('.')}; the download was not kept.") from None
    if spec is not None and (family, arch) != (spec.family, spec.arch):
        raise DownloadError(f"The downloaded {filename} holds a {family_arch_label(family, arch)} model, not "
                            f"{spec.title or family_arch_label(spec.family, spec.arch)}; the download was not kept.")
    return family, arch


def _default_opener(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) and file URLs only, checked below


def verify_file(path: Path, sha256: str | None = None, md5: str | None = None,
                size_bytes: int | None = None) -> str | None:
    """None when ``path`` matches every expectation given, else a sentence saying what differs."""
    size = path.stat().st_size
    if size_bytes is not None and size != size_bytes:
        return f"it has {size} bytes, expected {size_bytes}"
    if sha256:
        digest = file_sha256(path)
        if digest != sha256:
            return f"its SHA-256 is {digest}, expected {sha256}"
    elif md5:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(4 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != md5:
            return f"its MD5 is {digest.hexdigest()}, expected {md5}"
    return None


def download_model(
    source: ModelSpec | str,
    folder: str | os.PathLike,
    progress: ProgressCallback | None = None,
    opener: Opener | None = None,
    filename: str | None = None,
    sha256: str | None = None,
    size_bytes: int | None = None,
    md5: str | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    suffixes: tuple[str, ...] = MODEL_FILE_SUFFIXES,
    force: bool = False,
    check: Callable[[Path, str, ModelSpec | None], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Download ``source`` (a ModelSpec, a registry name or a URL) into ``folder`` and return the final path.

    Expectations (SHA-256, else MD5; size) come from the spec unless given; ``sha256`` / ``md5`` must be hex
    digests (checked before anything is downloaded). The downloaded file is always checked to be a SAM
    checkpoint of a known family (:func:`check_checkpoint`). An existing file of the same name is returned
    when it matches the expected hash, or when no hash is known and it holds exactly the downloaded bytes;
    otherwise it is refused, or replaced (atomically, after verification) when ``force``.
    ``opener(url, timeout)`` must return a file-like response with ``read(n)`` and ``headers``.
    Raises :class:`DownloadError` with one sentence; the ``.part`` file is removed on every failure,
    including KeyboardInterrupt. ``suffixes``: the file name endings accepted; ``check(part, filename, spec)``
    the structural check of the received file (default :func:`check_checkpoint`; a detector folder's
    ``config.json``, vocabulary and safetensors files come through here with their own check); a cancellation
    (``should_stop()`` True between chunks) raises :class:`segfill.errors.Cancelled`. ``segfill.progress.byte_progress``
    adapts the common ``progress(done, total, message)`` style to this module's ``progress(done_bytes, total_bytes)``.
    """
    sha256 = normalise_hash(sha256)
    md5 = normalise_hash(md5, "MD5")
    spec: ModelSpec | None = None
    if isinstance(source, str) and source in KNOWN_MODELS:
        source = KNOWN_MODELS[source]
    if isinstance(source, ModelSpec):
        spec = source
        url = source.url
        filename = filename or source.filename
        sha256 = sha256 or source.sha256
        md5 = md5 or source.md5
        size_bytes = size_bytes if size_bytes is not None else source.size_bytes
    else:
        url = str(source)
        filename = filename or _filename_from_url(url)
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"Cannot download from '{url}': only http, https and file URLs are supported.")
    filename = _check_filename(filename, suffixes)

    folder = Path(folder)
    target = folder / filename
    part = folder / (filename + ".part")
    existing = target.exists()
    if existing and not target.is_file():
        raise DownloadError(f"{target} exists and is not a file; move it away to download {filename}.")
    if existing and (sha256 or md5):
        problem = verify_file(target, sha256, md5, size_bytes)
        if problem is None:
            return target
        if not force:
            raise DownloadError(f"{target} already exists but {problem}; pass --force to replace it (or delete or "
                                "rename it).")

    key = str(target.resolve())
    with _active_lock:
        if key in _active:
            raise DownloadError(f"{filename} is already being downloaded.")
        _active.add(key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        digest = _stream_to_part(url, part, opener or _default_opener, progress, sha256, md5, size_bytes,
                                 chunk_size, timeout, filename, should_stop)
        (check or check_checkpoint)(part, filename, spec)
        if existing and not force and not (sha256 or md5):
            # nothing to verify the existing file with but the bytes just downloaded
            same = file_sha256(target) == digest
            part.unlink(missing_ok=True)
            if same:
                return target
            raise DownloadError(f"{target} already exists with other content than {url}; pass --force to "
                                "replace it (or delete or rename it).")
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        with _active_lock:
            _active.discard(key)
    remember_sha256(target, digest)  # hashed while streaming: identifying the fresh file costs nothing
    return target


def _interrupted(filename: str, done: int, exc: BaseException) -> DownloadError:
    if isinstance(exc, http.client.IncompleteRead):
        reason = "the server closed the connection before the end of the file"
    elif isinstance(exc, TimeoutError) or "timed out" in str(exc):
        reason = "the server stopped sending data"
    else:
        reason = str(exc) or type(exc).__name__
    return DownloadError(f"Downloading {filename} was interrupted after {done} bytes ({reason}).")


def _stream_to_part(url: str, part: Path, opener: Opener, progress: ProgressCallback | None, sha256: str | None,
                    md5: str | None, size_bytes: int | None, chunk_size: int, timeout: float, filename: str,
                    should_stop: Callable[[], bool] | None = None) -> str:
    """Stream ``url`` into ``part``, checking size and hashes; returns the SHA-256 of what was received."""
    sha = hashlib.sha256()
    md = hashlib.md5(usedforsecurity=False) if md5 and not sha256 else None
    done = 0
    try:
        response = opener(url, timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"Downloading {filename} failed: the server answered {exc.code} {exc.reason}.") from exc
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"Downloading {filename} failed: {reason}.") from exc
    try:
        header = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        announced = int(header) if header and str(header).strip().isdigit() else None
        total = announced if announced is not None else size_bytes
        if size_bytes is not None and announced is not None and announced != size_bytes:
            raise DownloadError(f"Downloading {filename} failed: the server offers {announced} bytes, "
                                f"expected {size_bytes}.")
        if progress:
            progress(0, total)
        with open(part, "wb") as out:
            while True:
                try:
                    block = response.read(chunk_size)
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    received = done + len(getattr(exc, "partial", b"") or b"")
                    raise _interrupted(filename, received, exc) from exc
                if not block:
                    break
                if should_stop is not None and should_stop():
                    raise Cancelled(f"the download of {filename}", done, total or 0)
                out.write(block)
                sha.update(block)
                if md is not None:
                    md.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
    finally:
        close = getattr(response, "close", None)
        if callable(close):
            close()
    for expected, what in ((announced, "the server announced"), (size_bytes, "expected")):
        if expected is not None and done != expected:
            raise DownloadError(f"Downloading {filename} was cut short: got {done} of the {expected} bytes {what}.")
    if sha256 and sha.hexdigest() != sha256:
        raise DownloadError(f"The downloaded {filename} is damaged: its SHA-256 is {sha.hexdigest()}, expected {sha256}.")
    if md is not None and md.hexdigest() != md5:
        raise DownloadError(f"The downloaded {filename} is damaged: its MD5 is {md.hexdigest()}, expected {md5}.")
    return sha.hexdigest()


class TqdmProgress:
    """A download progress callback drawing a tqdm bar on stderr (plain text when tqdm is missing)."""

    def __init__(self, description: str = "download") -> None:
        self.description = description
        self._bar = None
        self._last_text = -1

    def __call__(self, done: int, total: int | None) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            step = done // (50 << 20)
            if step != self._last_text or (total and done >= total):
                self._last_text = step
                suffix = f" / {total / 1e6:.0f} MB" if total else " MB"
                print(f"\r{self.description}: {done / 1e6:.0f}{suffix}", end="", file=sys.stderr, flush=True)
            return
        if self._bar is None:
            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=self.description)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._last_text >= 0:
            print(file=sys.stderr)

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tqdm_progress(description: str = "download") -> TqdmProgress:
    return TqdmProgress(description)


def _default_download_folder() -> Path:
    from segfill.sam.folders import default_model_folders, download_folder

    return download_folder(default_model_folders())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a known model name (see --list) or an http(s) URL")
    parser.add_argument("--to", type=Path, default=None,
                        help=f"target folder (default: {_default_download_folder()}, the first existing one of "
                        "$SEGFILL_MODELS, the WebUI's models/sam and SegFill's models/sam)")
    parser.add_argument("--sha256", default=None, help="expected SHA-256 (64 hex digits) for a URL (default: the "
                        "registry's for a known model, none for another URL)")
    parser.add_argument("--force", action="store_true", help="replace an existing file of the same name that differs")
    parser.add_argument("--list", action="store_true", help="list the known models and exit")


def run(args: argparse.Namespace) -> int:
    """Download with a tqdm bar; a :class:`SegFillError` (bad checksum, network) propagates to the caller."""
    from segfill.sam.folders import default_model_folders, download_folder

    if args.list or not args.model:
        for spec in KNOWN_MODELS.values():
            print(f"{spec.name:24} {spec.title}")
        return 0
    sha256 = normalise_hash(args.sha256)  # before anything is downloaded or drawn
    folder = args.to if args.to is not None else download_folder(default_model_folders())
    with tqdm_progress(args.model) as bar:
        path = download_model(args.model, folder, progress=bar, sha256=sha256, force=getattr(args, "force", False))
    print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``python -m segfill download NAME_OR_URL [--to FOLDER]``."""
    parser = subparsers.add_parser("download", help="download a SAM checkpoint, verified before it is kept",
                                   description="Download a SAM checkpoint, verified before it is kept.")
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m segfill.sam.download NAME_OR_URL [--to FOLDER]``: download with a progress bar."""
    from segfill.errors import SegFillError

    parser = argparse.ArgumentParser(prog="python -m segfill.sam.download",
                                     description="Download a SAM checkpoint, verified before it is kept.")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except SegFillError as exc:
        print(f"download: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
