"""dev.sh picks a Python torch 2.1.2 can be installed on (3.10 or 3.11) and refuses any other in one line,
before it makes a virtualenv. Nothing here builds one: the refusals come first, and the copies of dev.sh
run on empty requirement files with pip's index switched off, so a broken check could not download anything."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="dev.sh is a bash script")


def _too_new_python() -> str | None:
    """A Python 3.12 or later on this machine (torch 2.1.2 has no wheels for it), if there is one."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python3.{minor}") for minor in (12, 13, 14)]
    candidates += sorted(glob.glob(f"{pyenv}/versions/3.1[234]*/bin/python3.1[234]"))
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                              capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == "True":
            return candidate
    return None


TOO_NEW = _too_new_python()
needs_too_new = pytest.mark.skipif(TOO_NEW is None, reason="no Python 3.12+ on this machine")


def _dev_sh(folder: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("SEGFILL_PYTHON", None)
    if python is not None:
        env["SEGFILL_PYTHON"] = python
    return subprocess.run(["bash", str(folder / "dev.sh"), *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture()
def copy(tmp_path) -> Path:
    """dev.sh beside empty requirement files (what a broken check would install: nothing)."""
    shutil.copy(REPO / "dev.sh", tmp_path / "dev.sh")
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-webui.txt", "requirements-forge.txt",
                 "segfill/sam/sam2_install.py"):  # what the virtualenv stamp is made of
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    return tmp_path


def test_the_python_running_the_tests_is_accepted():
    assert sys.version_info[:2] in ((3, 10), (3, 11))
    done = _dev_sh(REPO, "which-python", python=sys.executable)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{sys.executable} (Python {sys.version_info[0]}.{sys.version_info[1]})"


@needs_too_new
def test_a_python_torch_cannot_install_on_is_refused_in_one_line():
    done = _dev_sh(REPO, "which-python", python=TOO_NEW)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"dev.sh: SEGFILL_PYTHON={TOO_NEW} is Python 3.1")
    assert "SegFill needs Python 3.10 or 3.11" in done.stderr


@needs_too_new
@pytest.mark.parametrize("command", ["setup", "serve", "test", "python"])
def test_every_command_refuses_before_making_a_virtualenv(copy, command):
    done = _dev_sh(copy, command, python=TOO_NEW)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dev.sh: SEGFILL_PYTHON={TOO_NEW} is Python 3.1"), lines
    assert not (copy / ".venv").exists() and not (copy / ".venv-forge").exists()


@needs_too_new
def test_a_virtualenv_made_with_such_a_python_is_named_not_used(copy):
    (copy / ".venv-forge" / "bin").mkdir(parents=True)
    (copy / ".venv-forge" / "bin" / "python").symlink_to(TOO_NEW)
    done = _dev_sh(copy, "python", "-c", "print('ran')", python=sys.executable)
    assert done.returncode == 1 and "ran" not in done.stdout
    assert done.stderr.strip().splitlines() == [
        f"dev.sh: .venv-forge/bin/python is Python 3.{_minor(TOO_NEW)}; SegFill needs Python 3.10 or 3.11: "
        "delete .venv-forge and run again"]


def _minor(python: str) -> int:
    return int(subprocess.run([python, "-c", "import sys; print(sys.version_info[1])"], capture_output=True,
                              text=True).stdout)
