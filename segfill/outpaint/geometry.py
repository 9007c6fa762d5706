"""Outpaint geometry: how much to add on each side, where the original sits, how to split it into passes.

Everything here is integer pixel arithmetic on ``(x, y)`` / ``(width, height)`` (PIL order). Nothing of the
original is ever resized: the canvas is the original plus padding, exactly the size asked for. The *work*
canvas, on which tiles are planned, is that canvas rounded up to multiples of 8 (the latent grid); the extra
rows/columns are cropped off at the end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from segfill.errors import InputError

#: largest canvas side we accept (px); beyond this, memory and time are no longer sane for a WebUI job.
MAX_CANVAS_SIDE = 16384
#: padding on one side may be at most this many times the original's side along that axis.
MAX_PADDING_FACTOR = 8
#: the latent grid: work sizes and tile sizes are multiples of this.
ALIGN = 8

Rect = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive

ASPECT_PRESETS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "21:9": (21, 9),
    "9:21": (9, 21),
    "5:4": (5, 4),
    "4:5": (4, 5),
}

#: the nine named anchors as (fx, fy): where the original sits inside the canvas (0 = left/top, 1 = right/bottom).
ANCHORS: dict[str, tuple[float, float]] = {
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}


def round_up(value: int, multiple: int = ALIGN) -> int:
    return -(-int(value) // multiple) * multiple


def round_down(value: int, multiple: int = ALIGN) -> int:
    return (int(value) // multiple) * multiple


@dataclass(frozen=True)
class Padding:
    """Pixels added on each side of the original."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        if min(self.left, self.right, self.top, self.bottom) < 0:
            raise InputError(f"Padding cannot be negative (got {self.as_tuple()}).")

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.right, self.top, self.bottom)

    @property
    def is_zero(self) -> bool:
        return not any(self.as_tuple())

    def canvas_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        w, h = image_size
        return (w + self.left + self.right, h + self.top + self.bottom)

    def original_rect(self, image_size: tuple[int, int]) -> Rect:
        w, h = image_size
        return (self.left, self.top, self.left + w, self.top + h)


def parse_aspect(aspect: str) -> tuple[int, int]:
    """``"16:9"`` (or ``"16x9"``, ``"1.5"``) -> ``(16, 9)``; presets and any positive ratio are accepted."""
    text = aspect.strip().lower()
    if text in ASPECT_PRESETS:
        return ASPECT_PRESETS[text]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)", text)
    if match:
        a, b = float(match.group(1)), float(match.group(2))
    else:
        try:
            a, b = float(text), 1.0
        except ValueError:
            raise InputError(f"Aspect ratio {aspect!r} is not of the form W:H (e.g. 16:9).") from None
    if a <= 0 or b <= 0 or a / b > 64 or b / a > 64:
        raise InputError(f"Aspect ratio {aspect!r} must be positive and between 1:64 and 64:1.")
    scale = 1000
    num, den = round(a * scale), round(b * scale)
    g = math.gcd(num, den)
    return (num // g, den // g)


def parse_anchor(anchor: str | tuple[float, float]) -> tuple[float, float]:
    """A named anchor (``"top-left"`` … ``"bottom-right"``, ``"center"``) or ``"fx,fy"`` fractions in [0, 1]."""
    if isinstance(anchor, (tuple, list)):
        fx, fy = float(anchor[0]), float(anchor[1])
    else:
        text = anchor.strip().lower().replace("_", "-").replace(" ", "-")
        aliases = {"centre": "center", "middle": "center", "upper-left": "top-left", "upper-right": "top-right",
                   "lower-left": "bottom-left", "lower-right": "bottom-right"}
        text = aliases.get(text, text)
        if text in ANCHORS:
            return ANCHORS[text]
        try:
            fx_text, fy_text = text.split(",")
            fx, fy = float(fx_text), float(fy_text)
        except ValueError:
            names = ", ".join(ANCHORS)
            raise InputError(f"Anchor {anchor!r} is not one of {names} or 'x,y' fractions.") from None
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InputError(f"Anchor fractions must lie in [0, 1] (got {fx}, {fy}).")
    return (fx, fy)


def padding_for_target(image_size: tuple[int, int], target_size: tuple[int, int],
                       anchor: tuple[float, float]) -> Padding:
    """Padding that places the original inside a ``target_size`` canvas at ``anchor`` (fractions)."""
    w, h = image_size
    tw, th = target_size
    if tw < w or th < h:
        raise InputError(f"Target size {tw}x{th} is smaller than the image {w}x{h}; outpainting never shrinks it.")
    fx, fy = anchor
    left = int(round((tw - w) * fx))
    top = int(round((th - h) * fy))
    return Padding(left=left, right=tw - w - left, top=top, bottom=th - h - top)


def target_for_aspect(image_size: tuple[int, int], aspect: tuple[int, int]) -> tuple[int, int]:
    """The smallest canvas with ``aspect`` (W:H, rounded to whole pixels) that contains the image unscaled."""
    w, h = image_size
    aw, ah = aspect
    if w * ah >= h * aw:  # image is wider than the aspect: grow the height
        return (w, max(h, int(round(w * ah / aw))))
    return (max(w, int(round(h * aw / ah))), h)


def validate_padding(image_size: tuple[int, int], padding: Padding) -> None:
    """Reject zero padding and padding beyond the sane limits, with one sentence each."""
    w, h = image_size
    if w <= 0 or h <= 0:
        raise InputError("The image is empty.")
    if padding.is_zero:
        raise InputError("Nothing to outpaint: the padding is zero on every side (or the image already has that aspect ratio).")
    cw, ch = padding.canvas_size(image_size)
    if max(cw, ch) > MAX_CANVAS_SIDE:
        raise InputError(f"The result would be {cw}x{ch} px; SegFill outpaints up to {MAX_CANVAS_SIDE} px per side.")
    for name, value, side in (("left", padding.left, w), ("right", padding.right, w),
                              ("top", padding.top, h), ("bottom", padding.bottom, h)):
        if value > MAX_PADDING_FACTOR * side:
            raise InputError(f"Padding {name}={value} px is more than {MAX_PADDING_FACTOR}x the image side ({side} px).")


def resolve_padding(image_size: tuple[int, int], *, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0,
                    aspect: str | None = None, target_size: tuple[int, int] | None = None,
                    anchor: str | tuple[float, float] = "center") -> Padding:
    """One entry point for the three ways of asking: per-side padding, a target size, or an aspect ratio.

    Exactly one way may be used; the result is validated (:func:`validate_padding`).
    """
    per_side = any((left, right, top, bottom))
    ways = sum((per_side, aspect is not None, target_size is not None))
    if ways > 1:
        raise InputError("Give either per-side padding, a target size or an aspect ratio, not several.")
    if aspect is not None:
        target_size = target_for_aspect(image_size, parse_aspect(aspect))
    if target_size is not None:
        padding = padding_for_target(image_size, target_size, parse_anchor(anchor))
    else:
        padding = Padding(left=left, right=right, top=top, bottom=bottom)
    validate_padding(image_size, padding)
    return padding


def split_into_passes(padding: Padding, max_step: int) -> list[Padding]:
    """Split the padding into passes that each extend every side by at most ``max_step`` px.

    Pass ``k`` extends each side by ``min(max_step, what is left on that side)``, so every pass keeps the
    previous content in view and only the newest band is denoised.
    """
    if max_step <= 0:
        raise InputError("The maximum step per pass must be positive.")
    remaining = list(padding.as_tuple())
    passes: list[Padding] = []
    while any(remaining):
        step = [min(max_step, r) for r in remaining]
        remaining = [r - s for r, s in zip(remaining, step, strict=True)]
        passes.append(Padding(*step))
    return passes


def grow_rect(rect: Rect, padding: Padding) -> Rect:
    x0, y0, x1, y1 = rect
    return (x0 - padding.left, y0 - padding.top, x1 + padding.right, y1 + padding.bottom)


@dataclass(frozen=True)
class WorkCanvas:
    """The output canvas rounded up to multiples of 8, and where the output sits inside it.

    The extra rows/columns go on a side that is padded anyway (so they never border the original) when there is
    one; they are context only (never denoised) and cropped off at the end.
    """

    size: tuple[int, int]
    output_rect: Rect

    @property
    def offset(self) -> tuple[int, int]:
        return (self.output_rect[0], self.output_rect[1])


def work_canvas_for(canvas_size: tuple[int, int], padding: Padding, align: int = ALIGN) -> WorkCanvas:
    cw, ch = canvas_size
    ww, wh = round_up(cw, align), round_up(ch, align)
    extra_x, extra_y = ww - cw, wh - ch
    # put the extra on the right/bottom unless only the left/top is padded
    ox = extra_x if (padding.left > 0 and padding.right == 0) else 0
    oy = extra_y if (padding.top > 0 and padding.bottom == 0) else 0
    return WorkCanvas(size=(ww, wh), output_rect=(ox, oy, ox + cw, oy + ch))


def offset_rect(rect: Rect, dx: int, dy: int) -> Rect:
    x0, y0, x1, y1 = rect
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
