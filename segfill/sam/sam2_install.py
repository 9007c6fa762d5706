"""Installing SAM 2.1's ``sam2`` package without breaking the WebUI's torch.

What is on PyPI (checked for ``sam2==1.1.0``): an sdist uploaded by a third party from a fork of Meta's
repository, which declares ``torch>=2.5.1`` / ``torchvision>=0.20.1`` (install and build requirements) and
tries to compile a CUDA extension. ``pip install sam2`` in a WebUI venv would therefore replace torch 2.1.2.
It also installs a second top-level package named ``training`` (its training code).

SegFill installs it only when the user picks a SAM 2.1 model, like this:

1. its light dependencies (``hydra-core``, ``iopath``, and ``wheel`` to build the sdist) with a constraints
   file pinning the installed torch / torchvision / numpy, so pip can never change them;
2. ``sam2`` itself with ``--no-deps --no-build-isolation`` and ``SAM2_BUILD_CUDA=0``: no torch pin is
   honoured, the build uses the installed torch, and the optional CUDA extension is skipped (it only serves
   hole filling in post-processing, which SegFill does with its own mask tools).

Tried on torch 2.1.2+cu121 / torchvision 0.16.2 / Python 3.10 (CPU): installing this way succeeds (without
``wheel`` in the venv the build stops at "invalid command 'bdist_wheel'", hence step 1 installs it);
``build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None)`` builds (39.0 M parameters) and
``SAM2ImagePredictor.set_image`` / ``predict`` return three masks for a point. If the package does not work
with the installed torch, :func:`sam2_status` says so and the UI shows that sentence instead of loading.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from segfill.errors import SegFillError

SAM2_VERSION = "1.1.0"
SAM2_LIGHT_DEPENDENCIES = ("hydra-core>=1.3.2", "iopath>=0.1.10", "wheel")
PINNED_DISTRIBUTIONS = ("torch", "torchvision", "numpy")


@dataclass(frozen=True)
class Sam2Status:
    """``installed``: importable; ``works``: True/False after a check, None when not checked."""

    installed: bool
    works: bool | None
    version: str | None
    message: str


@dataclass(frozen=True)
class InstallStep:
    argv: list[str]
    env: dict[str, str]


def installed_pins(distributions: Sequence[str] = PINNED_DISTRIBUTIONS) -> list[str]:
    """``name==version`` for each installed distribution (the constraints that keep pip off them)."""
    from importlib import metadata

    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def sam2_install_steps(python: str = sys.executable, constraints_file: str | os.PathLike | None = None,
                       version: str = SAM2_VERSION) -> list[InstallStep]:
    """The two pip commands (see the module docstring); ``constraints_file`` must hold :func:`installed_pins`."""
    env = dict(os.environ)
    env["SAM2_BUILD_CUDA"] = "0"
    env["SAM2_BUILD_ALLOW_ERRORS"] = "1"
    deps = [python, "-m", "pip", "install"]
    if constraints_file is not None:
        deps += ["-c", str(constraints_file)]
    deps += list(SAM2_LIGHT_DEPENDENCIES)
    package = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", f"sam2=={version}"]
    return [InstallStep(deps, env), InstallStep(package, env)]


def install_sam2(python: str = sys.executable, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 log: Callable[[str], None] | None = None) -> Sam2Status:
    """Install ``sam2`` without touching torch, then report :func:`sam2_status` (not smoke-tested)."""
    with tempfile.TemporaryDirectory(prefix="segfill-sam2-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(installed_pins()) + "\n", encoding="utf-8")
        for step in sam2_install_steps(python, constraints):
            if log:
                log(" ".join(step.argv))
            result = run(step.argv, env=step.env, capture_output=True, text=True)
            if result.returncode != 0:
                tail = (result.stdout or "")[-1500:] + (result.stderr or "")[-1500:]
                if log:
                    log(tail)
                last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")
                raise SegFillError(f"Installing the sam2 package failed ({last.strip()}); SAM 2.1 models stay "
                                   "unavailable, everything else is unchanged.")
    importlib.invalidate_caches()
    return sam2_status()


def sam2_status(smoke_test: bool = False) -> Sam2Status:
    """Whether ``sam2`` is importable and, with ``smoke_test``, whether it runs with the installed torch.

    The smoke test builds an untrained SAM 2.1 Hiera-Tiny and predicts one point on a small image (seconds on
    a GPU, up to a minute on a CPU).
    """
    if importlib.util.find_spec("sam2") is None:
        return Sam2Status(False, None, None, "SAM 2.1 models need the 'sam2' package, which is not installed; "
                                             "SegFill can install it without changing torch.")
    version = _distribution_version("sam2")
    try:
        from sam2.build_sam import build_sam2  # noqa: F401
        from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: F401
    except Exception as exc:  # any import-time failure means it does not work here
        return Sam2Status(True, False, version, f"The installed 'sam2' package cannot be imported with this torch "
                                                f"({type(exc).__name__}: {exc}); SAM 2.1 models are unavailable.")
    if not smoke_test:
        return Sam2Status(True, None, version, "The 'sam2' package is installed.")
    try:
        _smoke_test()
    except Exception as exc:
        return Sam2Status(True, False, version, f"The 'sam2' package does not run with this torch "
                                                f"({type(exc).__name__}: {exc}); SAM 2.1 models are unavailable.")
    return Sam2Status(True, True, version, "The 'sam2' package works with the installed torch.")


def _distribution_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _smoke_test() -> None:
    import numpy as np
    import torch
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu", mode="eval")
    predictor = SAM2ImagePredictor(model)
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    with torch.inference_mode():
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(point_coords=np.array([[32, 32]]), point_labels=np.array([1]))
    if masks.shape[-2:] != (64, 64) or len(scores) != len(masks):
        raise RuntimeError(f"unexpected prediction shapes {masks.shape}, {scores.shape}")
