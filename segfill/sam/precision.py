"""Which number format SAM's image encoder runs in: bf16 autocast where the hardware has it and it is accurate.

The image encoder is almost all of a first click's time. Under ``torch.autocast(dtype=torch.bfloat16)`` its
matrix products run in bf16 on CPUs with native bf16 (AVX512-BF16 or AMX: ``torch.ops.mkldnn.
_is_mkldnn_bf16_supported()``) and on CUDA GPUs that support it; elsewhere bf16 would be emulated and slower,
so it is never used there. The encoder's output is converted back to float32 right away: the embedding cache,
the prompt encoder and the mask decoder (and the browser decoder fed from the same embedding) stay fp32.

bf16 is chosen per model family, only where the embedding matches fp32 within :data:`BF16_TOLERANCE` (relative
L2 difference) and the encoder gets faster, as measured by ``benchmarks/first_click.py`` (figures in
BENCHMARKS.md). ``"auto"`` (the default, :data:`segfill.defaults.SAM_PRECISION`) applies that table; ``"fp32"``
turns bf16 off; ``"bf16"`` asks for it on any family, still only where the hardware has native bf16.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from segfill import defaults
from segfill.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")

#: the largest relative L2 difference ``|e_bf16 - e_fp32| / |e_fp32|`` of the image embedding accepted for bf16
BF16_TOLERANCE = 0.01

#: per family: does "auto" use bf16? (measured with benchmarks/first_click.py: embedding difference against
#: BF16_TOLERANCE and encoder speed-up; see BENCHMARKS.md for the figures behind each entry)
BF16_BY_FAMILY = {
    "sam": True,  # ViT-B: 0.82 % difference, mask IoU 0.998, first click 2.4-4.7x faster
    "sam_hq": True,  # ViT-B: 0.82 %, IoU 0.995, 2.8x faster
    "mobile_sam": False,  # TinyViT: 1.68 % difference, outside the tolerance (1.8x faster): fp32
    "sam2": True,  # Hiera-T: 0.94 %, IoU 0.999, 1.1-1.75x faster
}


def check_precision(setting: str | None) -> str:
    value = (setting or "auto").strip().lower()
    if value not in PRECISIONS:
        raise InputError(f"Unknown SAM precision '{setting}'; use one of {', '.join(PRECISIONS)}.")
    return value


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` ("cpu", "cuda", "mps") computes bf16 natively (not emulated)."""
    import torch

    if device_type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def device_type(device: Any) -> str:
    return str(device or "cpu").split(":")[0].lower()


def resolve_precision(setting: str | None, family: str, device: Any) -> str:
    """"bf16" or "fp32" for the encoder of a ``family`` model on ``device`` under ``setting``."""
    value = check_precision(setting)
    if value == "fp32" or not native_bf16(device_type(device)):
        return "fp32"
    if value == "bf16":
        return "bf16"
    return "bf16" if BF16_BY_FAMILY.get(family, False) else "fp32"


def model_precision(loaded: Any) -> str:
    """The encoder precision in force for a :class:`~segfill.sam.loading.LoadedSam` on its current device."""
    setting = getattr(loaded, "precision", None) or defaults.SAM_PRECISION
    return resolve_precision(setting, getattr(loaded, "family", "sam"), getattr(loaded, "device", "cpu"))


@contextlib.contextmanager
def encoder_autocast(precision: str, device: Any) -> Iterator[None]:
    """Autocast to bf16 inside the block when ``precision`` is "bf16"; nothing otherwise."""
    if precision != "bf16":
        yield
        return
    import torch

    with torch.autocast(device_type=device_type(device), dtype=torch.bfloat16):
        yield


def to_float32(value: Any) -> Any:
    """Tensors (also inside dicts, lists, tuples) of a reduced float type converted to float32; others unchanged."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {key: to_float32(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_float32(item) for item in value)
    import torch

    if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
        return value.float()
    return value
