"""Hostile checkpoint files for the safety tests, built by the tests themselves.

- :func:`save_torchscript_archive`: a real ``torch.jit.save`` archive whose loading runs code: its module's
  ``__setstate__`` calls ``torch.from_file(marker, shared=True, size=4)``, which creates ``marker``. On torch
  < 2.6 ``torch.load(path, weights_only=True)`` dispatches such a file to ``torch.jit.load`` and runs it.
- :func:`save_zip_with_global` / :func:`save_legacy_with_global`: a plain-looking ``torch.save`` file whose
  pickle calls ``os.mkdir(marker)`` through ``REDUCE``.
- :func:`install_family_standins`: stand-ins for the optional ``segment_anything_hq``, ``mobile_sam`` and
  ``sam2`` packages whose builders record how they were called (and refuse a checkpoint path), with
  :func:`save_family_checkpoint` writing a file each one loads.
"""

from __future__ import annotations

import re
import sys
import textwrap
import zipfile
from pathlib import Path

MARKER_SIZE = 4


def save_torchscript_archive(path: str | Path, marker: str | Path) -> Path:
    """A TorchScript archive that creates ``marker`` when it is loaded (``torch.jit.load``)."""
    import torch

    class Payload(torch.nn.Module):
        def __init__(self, marker: str) -> None:
            super().__init__()
            self.marker = marker
            self.mapped = torch.zeros(MARKER_SIZE)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[str, bool]:
            return (self.marker, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, bool]) -> None:
            self.marker = state[0]
            self.training = state[1]
            self.mapped = torch.from_file(state[0], shared=True, size=4)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(Payload(str(marker))), str(path))
    return path


class _Call:
    """Pickles as a call of ``module.name(*args)`` (what a hostile pickle does)."""

    def __init__(self, module: str, name: str, args: tuple) -> None:
        self.module, self.name, self.args = module, name, args

    def __reduce__(self):
        return (_global(self.module, self.name), self.args)


def _global(module: str, name: str):
    __import__(module)
    return getattr(sys.modules[module], name)


def _payload_state(marker: Path) -> dict:
    import torch

    # unpickled by anything but a restricted unpickler, this creates the marker: proof that the file ran code
    return {"weight": torch.zeros(2), "run": _Call("os", "mkdir", (str(marker),))}


def save_zip_with_global(path: str | Path, marker: str | Path) -> Path:
    """A zip checkpoint with plain entries whose data.pkl calls ``os.mkdir(marker)``."""
    import torch

    path = Path(path)
    torch.save(_payload_state(Path(marker)), path)
    return path


def save_legacy_with_global(path: str | Path, marker: str | Path) -> Path:
    import torch

    path = Path(path)
    torch.save(_payload_state(Path(marker)), path, _use_new_zipfile_serialization=False)
    return path


def save_zip_with_extra_entry(path: str | Path, tiny_file: Path, entry: str) -> Path:
    """A copy of a plain zip checkpoint with one more entry (e.g. ``code/__torch__.py``)."""
    path = Path(path)
    with zipfile.ZipFile(tiny_file) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        prefix = source.namelist()[0].split("/")[0]
        for info in source.infolist():
            out.writestr(info, source.read(info))
        out.writestr(f"{prefix}/{entry}", b"print('hello')\n")
    return path


# --- stand-ins for the optional family packages -----------------------------------------------------------------

_HQ = '''
import torch
CALLS = []


class _Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.img_size = 1024
        self.patch_embed = torch.nn.Module()
        self.patch_embed.proj = torch.nn.Conv2d(3, 768, 16, 16)
        self.blocks = torch.nn.ModuleList(torch.nn.LayerNorm(4) for _ in range(12))


class _Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.iou_token = torch.nn.Embedding(1, 4)
        self.hf_token = torch.nn.Embedding(1, 4)


class StandInSamHQ(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.image_encoder = _Encoder()
        self.mask_decoder = _Decoder()


def _build(checkpoint=None):
    CALLS.append(checkpoint)
    assert checkpoint is None, "SegFill must pass tensors, never a file, to the family package"
    return StandInSamHQ()


sam_model_registry = {"vit_b": _build, "vit_l": _build, "vit_h": _build, "default": _build}
'''

_MOBILE = '''
import torch
CALLS = []


class _Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.img_size = 1024
        self.layers = torch.nn.ModuleList([torch.nn.LayerNorm(4)])


class _Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.iou_token = torch.nn.Embedding(1, 4)


class StandInMobileSam(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.image_encoder = _Encoder()
        self.mask_decoder = _Decoder()


def _build(checkpoint=None):
    CALLS.append(checkpoint)
    assert checkpoint is None, "SegFill must pass tensors, never a file, to the family package"
    return StandInMobileSam()


sam_model_registry = {"vit_t": _build}
'''

_SAM2_BUILD = '''
import torch
CALLS = []


class _Trunk(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = torch.nn.Module()
        self.patch_embed.proj = torch.nn.Conv2d(3, 96, 7)
        self.blocks = torch.nn.ModuleList(torch.nn.LayerNorm(4) for _ in range(12))


class StandInSam2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.image_size = 1024
        self.image_encoder = torch.nn.Module()
        self.image_encoder.trunk = _Trunk()


def build_sam2(config_file, ckpt_path=None, device="cpu", mode="eval", **kwargs):
    CALLS.append((config_file, ckpt_path))
    assert ckpt_path is None, "SegFill must pass tensors, never a file, to the family package"
    return StandInSam2()
'''

FAMILY_MODULES = {"sam_hq": "segment_anything_hq", "mobile_sam": "mobile_sam", "sam2": "sam2"}


def install_family_standins(root: Path) -> Path:
    """Write the three stand-in packages under ``root`` (put it first on sys.path to use them)."""
    packages = {
        "segment_anything_hq/__init__.py": _HQ,
        "mobile_sam/__init__.py": _MOBILE,
        "sam2/__init__.py": "",
        "sam2/build_sam.py": _SAM2_BUILD,
    }
    for relative, source in packages.items():
        file = root / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(source))
    return root


def standin_model(family: str):
    """An instance of the stand-in model of ``family`` (the stand-ins must be importable)."""
    import importlib

    if family == "sam2":
        return importlib.import_module("sam2.build_sam").StandInSam2()
    module = importlib.import_module(FAMILY_MODULES[family])
    return module.StandInSamHQ() if family == "sam_hq" else module.StandInMobileSam()


def save_family_checkpoint(path: Path, family: str) -> Path:
    """A checkpoint the stand-in of ``family`` loads (SAM 2 wrapped in {"model": ...} like the real files)."""
    import torch

    state = {k: torch.zeros(()).expand(v.shape) for k, v in standin_model(family).state_dict().items()}
    torch.save({"model": state} if family == "sam2" else state, path)
    return path


def one_sentence(message: str, name: str) -> bool:
    """True when ``message`` is one line, one sentence, and names ``name``."""
    body = message.replace(name, "NAME")
    return ("NAME" in body and "\n" not in message and message.rstrip().endswith(".")
            and not re.search(r"[.!?]\s+[A-Z]", body.rstrip()[:-1]))
