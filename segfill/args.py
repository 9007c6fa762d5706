"""Pydantic argument models shared by the CLI, the UI, the REST API and the infotext.

Like adetailer's ``args.py``: one model per feature validates every value in one place. The same code runs
on pydantic 1 (WebUI 1.10.x, fastapi 0.94) and pydantic 2 (Forge): with pydantic 2 installed we use its
``pydantic.v1`` compatibility namespace, so validators and ``Config`` look the same everywhere.
"""

from __future__ import annotations

from typing import Any, Dict, Literal, Optional

try:  # pydantic 2 ships the v1 API under pydantic.v1
    from pydantic.v1 import BaseModel, Field, confloat, conint
except ImportError:  # pydantic 1
    from pydantic import BaseModel, Field, confloat, conint  # type: ignore[no-redef]

from segfill.errors import InputError

__all__ = ["BaseModel", "Field", "confloat", "conint", "StrictArgs", "MaskRefinement", "parse_args_model"]


class StrictArgs(BaseModel):
    """Base for argument models: unknown keys are an error, assignments are validated."""

    class Config:
        extra = "forbid"
        validate_assignment = True

    def to_dict(self) -> Dict[str, Any]:
        return self.dict()


def parse_args_model(model: type, data: Dict[str, Any]) -> Any:
    """Build ``model`` from ``data``; a validation failure becomes one readable :class:`InputError`."""
    try:
        from pydantic.v1 import ValidationError
    except ImportError:  # pragma: no cover - pydantic 1
        from pydantic import ValidationError  # type: ignore[no-redef]
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
