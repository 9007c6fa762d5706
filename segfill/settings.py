"""The "SegFill" settings section, described once as data.

The WebUI glue (``scripts/segfill_tab.py``) loops over :data:`SETTINGS` and registers each entry with
``shared.opts.add_option``; the standalone app can read the same defaults. Keys are what ``shared.opts.<key>``
answers to, so they carry the ``segfill_`` prefix to stay clear of the WebUI's and other extensions' keys.
Nothing here imports gradio or the WebUI: ``component`` is the *name* of a gradio component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segfill import defaults
from segfill.hosts.base import HostDefaults

SECTION: tuple[str, str] = ("segfill", "SegFill")

SAM_DEVICES = ["auto", "cuda", "cpu", "mps"]
#: when SAM leaves the GPU: "never" keeps it resident, "before_generation" moves it to the CPU before every
#: diffusion job (frees VRAM for the checkpoint), "idle" unloads after the idle timeout.
UNLOAD_POLICIES = ["never", "before_generation", "idle"]


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    label: str
    component: str = "Textbox"  # gradio component class name
    component_args: dict[str, Any] = field(default_factory=dict)


def _mib(value: int) -> int:
    return value // (1024 * 1024)


_DEFAULTS = HostDefaults()

SETTINGS: list[Setting] = [
    Setting("segfill_sam_model_dirs", "", "SAM model folders (one per line or separated by ';'; the WebUI's "
            "models/sam is always searched)", "Textbox", {"lines": 2}),
    Setting("segfill_sam_default_model", "", "Default SAM model (file name; empty = the first one found)",
            "Textbox"),
    Setting("segfill_sam_device", "auto", "SAM device", "Radio", {"choices": SAM_DEVICES}),
    Setting("segfill_sam_precision", defaults.SAM_PRECISION, "SAM image encoder precision (auto: bf16 where the "
            "device has native bf16 and the model matches fp32 within 1 %)", "Radio",
            {"choices": ["auto", "fp32", "bf16"]}),
    Setting("segfill_sam_unload_policy", "before_generation", "When to move SAM off the GPU", "Radio",
            {"choices": UNLOAD_POLICIES}),
    Setting("segfill_sam_idle_unload_s", 300, "Unload SAM after this many idle seconds (policy 'idle')",
            "Slider", {"minimum": 10, "maximum": 3600, "step": 10}),
    Setting("segfill_embedding_cache_mib", _mib(defaults.EMBEDDING_CACHE_BYTES),
            "SAM embedding cache size (MiB, shared by all sessions)", "Slider",
            {"minimum": 16, "maximum": 4096, "step": 16}),
    Setting("segfill_tile_size", 0, "Default outpaint tile size (0 = the img2img width/height)", "Slider",
            {"minimum": 0, "maximum": 2048, "step": 64}),
    Setting("segfill_overlap", _DEFAULTS.overlap, "Default tile overlap (px)", "Slider",
            {"minimum": 0, "maximum": 512, "step": 8}),
    Setting("segfill_feather", _DEFAULTS.feather, "Default seam feather (px)", "Slider",
            {"minimum": 0, "maximum": 256, "step": 1}),
    Setting("segfill_outdir", "", "Output folder for the SegFill tab (empty = where img2img saves)", "Textbox"),
]

SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


def read(opts: Any, key: str) -> Any:
    """``opts.<key>`` with the table's default when the option is missing (API-only mode, old config)."""
    setting = SETTINGS_BY_KEY[key]
    value = getattr(opts, key, None) if opts is not None else None
    if value is None:
        return setting.default
    return value


def read_all(opts: Any) -> dict[str, Any]:
    return {s.key: read(opts, s.key) for s in SETTINGS}


def split_folders(text: str) -> list[str]:
    """The folders setting as a list: one per line or separated by ';', blanks dropped."""
    parts: list[str] = []
    for line in str(text or "").replace(";", "\n").splitlines():
        line = line.strip()
        if line:
            parts.append(line)
    return parts


def host_defaults(values: Mapping[str, Any], fallback_tile_size: int = 512) -> HostDefaults:
    """HostDefaults from settings values; a tile size of 0 means ``fallback_tile_size``."""
    tile = int(values.get("segfill_tile_size") or 0) or int(fallback_tile_size)
    return HostDefaults(
        tile_size=tile,
        overlap=int(values.get("segfill_overlap", _DEFAULTS.overlap)),
        feather=int(values.get("segfill_feather", _DEFAULTS.feather)),
        sam_model=(str(values.get("segfill_sam_default_model") or "").strip() or None),
    )
