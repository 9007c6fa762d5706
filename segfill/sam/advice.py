"""Which SAM model to suggest, in words for the tab's model and download area. Cheap to import (no torch).

On a CPU the image encoder dominates the first click on every new image: MobileSAM's TinyViT (10 M
parameters) encodes a 1024×768 photo several times faster than SAM ViT-B (1.2 s against 9.3 s on a quiet 2-core
CPU as measured for issue 10; 5–6 s against 35–60 s on our busy one), ViT-H takes far longer (BENCHMARKS.md,
``benchmarks/first_click.py``). The UI shows :func:`model_advice` next to the model choice and
lists :func:`download_choices` with the recommendation first.
"""

from __future__ import annotations

from collections.abc import Iterable

from segfill import defaults
from segfill.sam.registry import KNOWN_MODELS

RECOMMENDED_SUFFIX = " (recommended on this CPU)"


def is_cpu(device: str | None) -> bool:
    return (device or "cpu").split(":")[0].lower() == "cpu"


def recommended_model(device: str | None) -> str | None:
    """The registry name to suggest on ``device`` ("mobile_sam" on a CPU), or None where any model is quick."""
    return defaults.CPU_RECOMMENDED_SAM_MODEL if is_cpu(device) else None


def model_advice(device: str | None, installed_families: Iterable[str | None] = ()) -> str | None:
    """One sentence for the tab when SAM runs on a CPU, or None (GPU, or MobileSAM already installed)."""
    name = recommended_model(device)
    if name is None:
        return None
    spec = KNOWN_MODELS[name]
    if spec.family in set(installed_families):
        return ("SAM runs on the CPU here: choose MobileSAM for the first click on each new image, several times "
                "faster than SAM ViT-B (ViT-H is slower still).")
    return (f"SAM runs on the CPU here: download {spec.title} ('{name}' under 'Download a SAM model'); its first "
            "click on each new image is several times faster than SAM ViT-B's (ViT-H is slower still).")


def download_choices(device: str | None) -> list[tuple[str, str]]:
    """``(label, registry name)`` for the download list, the recommended model first and marked as such."""
    recommended = recommended_model(device)
    names = sorted(KNOWN_MODELS)
    if recommended in KNOWN_MODELS:
        names.remove(recommended)
        names.insert(0, recommended)
    return [(KNOWN_MODELS[n].title + (RECOMMENDED_SUFFIX if n == recommended else ""), n) for n in names]
