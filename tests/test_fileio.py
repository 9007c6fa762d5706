"""Atomic outputs: a failed write leaves the old file (or nothing), and bad paths are one sentence."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from segfill.fileio import OutputError, atomic_write, atomic_write_text, check_output_path, save_image


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(handle):
        handle.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_save_image_by_suffix_and_bad_paths(tmp_path):
    image = Image.new("RGB", (8, 6), (10, 20, 30))
    path = save_image(image, tmp_path / "a.png")
    assert Image.open(path).size == (8, 6)
    with pytest.raises(OutputError, match="is a folder"):
        save_image(image, tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        save_image(image, tmp_path / "missing" / "a.png")
    assert save_image(image, tmp_path / "made" / "a.png", make_parents=True).exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        save_image(image, tmp_path / "file" / "a.png")
    with pytest.raises(OutputError, match="image format"):
        save_image(image, tmp_path / "a.unknown")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_is_one_sentence(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_path(folder / "x.png")
    finally:
        folder.chmod(0o700)


def _umask() -> int:
    value = os.umask(0)
    os.umask(value)
    return value
