"""Writing outputs so that a crash never leaves half a file.

Every output (CLI, batch, API saves, manifests, downloads) goes to a temporary file in the target folder and is
renamed over the target in one step (``os.replace``), so a reader sees the old file or the new one, never a
truncated one. Problems a user can fix (the path is a folder, the folder is missing or read-only) raise
:class:`OutputError` with one sentence naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from segfill.errors import SegFillError


class OutputError(SegFillError):
    """An output cannot be written where the user asked (a folder, a missing or read-only place)."""


def check_output_path(path: str | os.PathLike, make_parents: bool = False) -> Path:
    """``path`` as a Path, after checking it can be written: not a folder, its folder exists (or is created
    when ``make_parents``) and is writable. Call it before expensive work so a typo costs nothing."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputError(f"The output {target} is a folder; give a file name such as {target / 'out.png'}.")
    folder = target.parent
    if make_parents:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Cannot create the folder {folder}: {exc.strerror or exc}.") from None
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"Cannot write {target}: {folder} is a file, not a folder.")
    if not folder.is_dir():
        raise OutputError(f"The folder {folder} does not exist; create it first or choose another output.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"The folder {folder} is not writable.")
    return target


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", make_parents: bool = False,
                **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one step, on any
    error (KeyboardInterrupt included) it is removed and ``path`` is untouched."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    target = check_output_path(path, make_parents=make_parents)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write into {target.parent}: {exc.strerror or exc}.") from None
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _keep_permissions_like_a_new_file(temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], make_parents: bool = False) -> Path:
    """Call ``write(binary_file)`` on a temporary file and move it over ``path``; returns the path."""
    with atomic_open(path, "wb", make_parents=make_parents) as handle:
        write(handle)
    return Path(path).expanduser()


def atomic_write_text(path: str | os.PathLike, text: str, make_parents: bool = False) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), make_parents=make_parents)


def save_image(image: Any, path: str | os.PathLike, format: str | None = None, make_parents: bool = False,
               **save_options: Any) -> Path:
    """``PIL.Image.save`` through :func:`atomic_write`; the format comes from the suffix unless given."""
    from PIL import Image

    target = check_output_path(path, make_parents=make_parents)
    fmt = format or Image.registered_extensions().get(target.suffix.lower())
    if fmt is None:
        raise OutputError(f"Cannot tell the image format of {target}; use a name ending in .png, .jpg or .webp.")
    return atomic_write(target, lambda handle: image.save(handle, format=fmt, **save_options), make_parents)


def _keep_permissions_like_a_new_file(path: Path) -> None:
    # mkstemp creates 0600; an output should get the permissions open() would have given it
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)
