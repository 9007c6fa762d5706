"""Pydantic argument models shared by the CLI, the UI, the REST API and the infotext.

Like adetailer's ``args.py``: one model per feature validates every value in one place. The same code runs
on pydantic 1 (WebUI 1.10.x, fastapi 0.94) and pydantic 2 (Forge): with pydantic 2 installed we use its
``pydantic.v1`` compatibility namespace, so validators and ``Config`` look the same everywhere.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

try:  # pydantic 2 ships the v1 API under pydantic.v1
    from pydantic.v1 import BaseModel, Field, ValidationError, confloat, conint, validator
except ImportError:  # pydantic 1
    from pydantic import BaseModel, Field, ValidationError, confloat, conint, validator  # type: ignore[no-redef]

from segfill import defaults
from segfill.errors import InputError

__all__ = ["BaseModel", "Field", "confloat", "conint", "StrictArgs", "MaskRefinement", "parse_args_model"]


class StrictArgs(BaseModel):
    """Base for argument models: unknown keys are an error, assignments are validated."""

    class Config:
        extra = "forbid"
        validate_assignment = True

    def to_dict(self) -> dict[str, Any]:
        return self.dict()


def parse_args_model(model: type, data: dict[str, Any]) -> Any:
    """Build ``model`` from ``data``; a validation failure becomes one readable :class:`InputError`."""
    try:
        return model.parse_obj(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())) or model.__name__
            parts.append(f"{where}: {err.get('msg')}")
        raise InputError("Invalid arguments: " + "; ".join(parts) + ".") from None


class MaskRefinement(StrictArgs):
    """Refinements applied to a selected mask, always in this order:
    fill holes -> remove specks -> grow -> shrink -> invert -> feather."""

    grow: conint(ge=0, le=512) = 0
    shrink: conint(ge=0, le=512) = 0
    fill_holes: bool = False
    remove_specks: conint(ge=0, le=10_000_000) = Field(0, description="drop islands and holes smaller than this area (px²)")
    invert: bool = False
    feather: confloat(ge=0, le=512) = 0.0
    feather_method: Literal["gaussian", "linear"] = "gaussian"
    feather_direction: Literal["outward", "inward", "centered"] = "outward"
    feather_relative: Optional[confloat(gt=0, le=1)] = Field(  # noqa: UP045 - evaluated by pydantic 1
        None, description="feather width as a fraction of sqrt(w·h) of the mask's box; replaces feather when set"
    )


# --- outpainting and large-image inpainting (segfill.outpaint) -------------------------------------------------

PrefillMethod = Literal["blur_extend", "edge", "reflect", "telea", "navier_stokes", "noise", "grey", "none"]
BlendWindow = Literal["cosine", "gaussian"]


class TiledRepaintArgs(StrictArgs):
    """What outpaint and inpaint share: the request sent for every tile and how tiles are laid out and blended."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: conint(ge=0, le=2**32 - 1) = Field(0, description="one seed for the whole job; tile seeds derive from it")
    steps: conint(ge=1, le=150) = 20
    guidance: confloat(ge=0, le=50) = 7.5
    strength: confloat(ge=0, le=1) = 1.0
    prefill_noise: confloat(ge=0, le=4) = Field(0.5, description="grain of blur_extend, x the image's fine contrast")
    tile_size: Optional[conint(ge=64, le=4096)] = Field(None, description="tile side (px); default: the backend's working size")  # noqa: UP045 - evaluated by pydantic 1
    overlap: conint(ge=0, le=2048) = Field(defaults.TILE_OVERLAP, description="px shared by neighbouring tiles")
    blend: BlendWindow = "cosine"
    tile_mode: Literal["continue", "independent"] = Field(
        "continue", description="continue: a tile keeps its neighbours' results as unmasked context and repaints "
        "only its new pixels plus half the overlap (for diffusion models); independent: every tile repaints its "
        "whole share from the known content and overlaps are averaged (smoother with OpenCV Telea previews)")
    seam_fix: bool = False
    seam_fix_width: conint(ge=4, le=512) = 32
    seam_fix_strength: confloat(ge=0, le=1) = 0.35
    color_match: bool = False
    color_ring: conint(ge=2, le=512) = Field(24, description="width (px) of the rings compared by the colour match")


class OutpaintArgs(TiledRepaintArgs):
    """Every outpaint parameter. Ask for the result size in one of three ways: per-side padding, a target size
    (``target_width`` and ``target_height``) or an ``aspect`` ratio; the last two use ``anchor`` (a named
    position or ``"fx,fy"`` fractions) to place the original."""

    left: conint(ge=0, le=131072) = 0
    right: conint(ge=0, le=131072) = 0
    top: conint(ge=0, le=131072) = 0
    bottom: conint(ge=0, le=131072) = 0
    aspect: Optional[str] = Field(None, description="W:H, e.g. 16:9")  # noqa: UP045 - evaluated by pydantic 1
    target_width: Optional[conint(ge=1, le=131072)] = None  # noqa: UP045 - evaluated by pydantic 1
    target_height: Optional[conint(ge=1, le=131072)] = None  # noqa: UP045 - evaluated by pydantic 1
    anchor: str = "center"
    prefill: PrefillMethod = "blur_extend"
    band: conint(ge=0, le=512) = Field(defaults.OUTPAINT_BAND, description="px of the original regenerated and blended at the seam")
    feather: conint(ge=0, le=512) = Field(defaults.OUTPAINT_FEATHER, description="soft edge (px) of the masks, at most the band")
    max_step: Optional[conint(ge=16, le=16384)] = Field(None, description="max px added per side per pass; default tile_size/2")  # noqa: UP045 - evaluated by pydantic 1

    @validator("aspect")
    def _check_aspect(cls, value):  # noqa: N805
        if value is not None:
            from segfill.outpaint.geometry import parse_aspect

            try:
                parse_aspect(value)
            except InputError as exc:
                raise ValueError(str(exc).rstrip(".")) from None
        return value

    @validator("anchor")
    def _check_anchor(cls, value):  # noqa: N805
        from segfill.outpaint.geometry import parse_anchor

        try:
            parse_anchor(value)
        except InputError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
        return value

    @validator("target_height", always=True)
    def _check_target(cls, value, values):  # noqa: N805
        if (value is None) != (values.get("target_width") is None):
            raise ValueError("give both target_width and target_height, or neither")
        return value


class InpaintArgs(TiledRepaintArgs):
    """Large-image inpainting: crops around the mask (with ``context`` px of surroundings), tiled when a crop
    is larger than the working size, pasted back with a feathered composite."""

    prefill: PrefillMethod = Field("none", description="'none' keeps the original under the mask")
    band: conint(ge=0, le=512) = Field(defaults.INPAINT_BAND, description="px beyond the mask that are regenerated and blended")
    feather: conint(ge=0, le=512) = Field(defaults.INPAINT_FEATHER, description="soft edge (px) of the masks, at most the band")
    context: conint(ge=0, le=4096) = Field(defaults.INPAINT_CONTEXT, description="px of surroundings around each masked region")
