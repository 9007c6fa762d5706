"""Request and response bodies of SegFill's REST API (``/segfill/v1/...``).

These are models of the pydantic that FastAPI itself uses (pydantic 1 on the WebUI 1.10.x, pydantic 2 on
Forge): FastAPI 0.100+ does not accept ``pydantic.v1`` models as bodies. The engine's argument models in
:mod:`segfill.args` stay on the v1 API; routes convert with :func:`segfill.args.parse_args_model`, so every
value is range-checked in one place and a bad one becomes a 422 naming the field.

Only features common to both pydantic versions are used here (plain types, ``Field`` with defaults and
descriptions); the two config spellings are chosen once in :class:`ApiModel`. Images are base64 strings of
PNG/JPEG/WebP file content, never file names.
"""

# Optional[...] is kept: these annotations are evaluated by pydantic 1 as well as 2.
# ruff: noqa: UP045

from __future__ import annotations

import json
import types
from typing import Any, Literal, Optional, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel, Field

from segfill import defaults
from segfill.args import Field as ArgsField  # pydantic v1 API, for engine argument models
from segfill.args import InpaintArgs, MaskRefinement, OutpaintArgs, StrictArgs, confloat, conint, parse_args_model

PYDANTIC_V2 = int(pydantic.VERSION.split(".")[0]) >= 2

IMAGE_DESCRIPTION = "base64 of a PNG, JPEG or WebP file (a data:image/...;base64, prefix is allowed); never a path"

#: at most this many points per request (each point costs SAM's decoder; 10,000 took minutes on a CPU)
MAX_POINTS = 100
#: a box is exactly four numbers; one box per request
BOX_LENGTH = 4


def _describe_expected(annotation: Any) -> str | None:
    """What JSON value ``annotation`` takes, for the error message (None: anything)."""
    if annotation is bool:
        return "true or false"
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return "true or false"
        if issubclass(annotation, int):
            return "an integer"
        if issubclass(annotation, float):
            return "a number"
        if issubclass(annotation, str):
            return "a string"
        if issubclass(annotation, BaseModel):
            return "an object"
    return None


def json_type_error(value: Any, annotation: Any) -> str | None:
    """None when the JSON ``value`` fits ``annotation`` exactly as it is, else what was expected.

    Strict like JSON itself: an integer field takes an integer (not 1.5, "3" or true), a number field an
    integer or a decimal (not a string or a boolean), a boolean field true or false (not "yes" or 1), a string
    field a string, a list a list. Literal values must match in type too (1 is not "1")."""
    if value is None:
        return None if annotation is Any or _allows_none(annotation) else "a value, not null"
    origin = get_origin(annotation)
    if annotation is Any or annotation is object:
        return None
    if origin in _UNIONS:
        options = [a for a in get_args(annotation) if a is not type(None)]
        problems = [json_type_error(value, option) for option in options]
        return None if any(p is None for p in problems) else " or ".join(dict.fromkeys(p for p in problems if p))
    if origin is Literal:
        allowed = get_args(annotation)
        if any(type(value) is type(a) and value == a for a in allowed):
            return None
        return "one of " + ", ".join(json.dumps(a) for a in allowed)
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, (list, tuple)):
            return "a list"
        args = get_args(annotation)
        item = args[0] if args else Any
        for index, element in enumerate(value):
            problem = json_type_error(element, item)
            if problem:
                return f"{problem} at item {index}"
        return None
    if origin is dict:
        return None if isinstance(value, dict) else "an object"
    if isinstance(annotation, type) and issubclass(annotation, list):  # pydantic 1's constrained lists
        return json_type_error(value, list[getattr(annotation, "item_type", Any)])
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            ok = isinstance(value, bool)
        elif issubclass(annotation, int):
            ok = type(value) is int
        elif issubclass(annotation, float):
            ok = type(value) in (int, float)
        elif issubclass(annotation, str):
            ok = isinstance(value, str)
        elif issubclass(annotation, BaseModel):
            ok = isinstance(value, (dict, annotation))
        else:
            return None
        return None if ok else _describe_expected(annotation)
    return None


_UNIONS = (Union, types.UnionType)


def _allows_none(annotation: Any) -> bool:
    return get_origin(annotation) in _UNIONS and type(None) in get_args(annotation)


def _field_annotations(model_class: type) -> dict[str, Any]:
    if PYDANTIC_V2:
        return {name: info.annotation for name, info in model_class.model_fields.items()}  # type: ignore[attr-defined]
    return {name: field.annotation for name, field in model_class.__fields__.items()}


def check_json_types(model_class: type, data: Any) -> Any:
    """The strictness every request model shares: each field's raw JSON value must already have the field's
    type (see :func:`json_type_error`); the first mismatch is a ValueError naming the field and the value."""
    if not isinstance(data, dict):
        return data
    for name, annotation in _field_annotations(model_class).items():
        if name in data:
            problem = json_type_error(data[name], annotation)
            if problem:
                shown = json.dumps(data[name]) if isinstance(data[name], (str, int, float, bool)) else type(data[name]).__name__
                raise ValueError(f"{name} must be {problem}, not {shown[:60]}")
    return data


def list_field(default_factory: Any = None, *, max_items: int, min_items: int = 0, description: str = "",
               default: Any = ...) -> Any:
    """A ``Field`` for a list with a bounded length, spelled for the installed pydantic."""
    bounds = ({"max_length": max_items, "min_length": min_items} if PYDANTIC_V2
              else {"max_items": max_items, "min_items": min_items})
    if default_factory is not None:
        return Field(default_factory=default_factory, description=description, **bounds)
    return Field(default, description=description, **bounds)


if PYDANTIC_V2:

    class ApiModel(BaseModel):
        """Base of request bodies: unknown keys are rejected (a misspelt field is a 422, not silently ignored)
        and every value must already have its field's JSON type (:func:`check_json_types`: 1.5 is no label,
        "3" or true no grow, "yes" no multimask), so nothing is coerced. Models built on this base, by
        subclassing or ``create_model(__base__=ApiModel)``, inherit both rules."""

        model_config = pydantic.ConfigDict(extra="forbid", protected_namespaces=())

        @pydantic.model_validator(mode="before")
        @classmethod
        def _strict_json_types(cls, data: Any) -> Any:
            return check_json_types(cls, data)

else:

    class ApiModel(BaseModel):  # type: ignore[no-redef]
        """Base of request bodies: unknown keys are rejected (a misspelt field is a 422, not silently ignored)
        and every value must already have its field's JSON type (:func:`check_json_types`: 1.5 is no label,
        "3" or true no grow, "yes" no multimask), so nothing is coerced. Models built on this base, by
        subclassing or ``create_model(__base__=ApiModel)``, inherit both rules."""

        class Config:
            extra = "forbid"

        @pydantic.root_validator(pre=True)
        def _strict_json_types(cls, values: Any) -> Any:  # noqa: N805 - pydantic 1 validator
            return check_json_types(cls, values)


class ResponseModel(BaseModel):
    """Base of response bodies (extra keys allowed so a newer server can add fields)."""


def model_to_dict(model: BaseModel, exclude: set | None = None, exclude_unset: bool = False) -> dict[str, Any]:
    """``model.dict()`` on pydantic 1, ``model.model_dump()`` on 2 (no deprecation warning either way)."""
    if PYDANTIC_V2:
        return model.model_dump(exclude=exclude, exclude_unset=exclude_unset)  # type: ignore[attr-defined]
    return model.dict(exclude=exclude, exclude_unset=exclude_unset)


def model_fields(model_class: type) -> dict[str, Any]:
    """Field name -> default of an API model class, on either pydantic."""
    if PYDANTIC_V2:
        return {name: info.default for name, info in model_class.model_fields.items()}  # type: ignore[attr-defined]
    return {name: field.default for name, field in model_class.__fields__.items()}


# -- fields generated from the engine's argument models ----------------------------------------------------
#
# The API offers exactly the engine's parameters, with the engine's defaults, as plain JSON types; the ranges
# are checked by the engine model itself (parse_args_model) so they live in one place. Generating the fields
# keeps the two from drifting apart.


def _plain_type(field: Any) -> Any:
    """The JSON type of a pydantic-v1 field of an engine model (constrained int -> int, Optional kept)."""
    annotation = field.outer_type_
    if isinstance(annotation, type):
        for base in (bool, int, float, str):
            if issubclass(annotation, base):
                annotation = base
                break
    return Optional[annotation] if field.allow_none else annotation


def _range_text(field: Any) -> str:
    low = getattr(field.outer_type_, "ge", None)
    high = getattr(field.outer_type_, "le", None)
    if low is None and high is None:
        return ""
    return f" ({'' if low is None else low}-{'' if high is None else high})"


def fields_from_args(args_model: type, skip: tuple = ()) -> dict[str, Any]:
    """``create_model`` field definitions mirroring the engine model ``args_model`` (its defaults and docs)."""
    definitions: dict[str, Any] = {}
    for name, field in args_model.__fields__.items():
        if name in skip:
            continue
        description = ((field.field_info.description or name.replace("_", " ")) + _range_text(field)).strip()
        default = ... if field.required else field.default
        definitions[name] = (_plain_type(field), Field(default, description=description))
    return definitions


def _generated(name: str, args_model: type, leading: dict[str, Any], skip: tuple = ()) -> type:
    definitions = dict(leading)
    definitions.update(fields_from_args(args_model, skip))
    return pydantic.create_model(name, __base__=ApiModel, __module__=__name__, **definitions)


IMAGE_FIELD = (str, Field(..., description=IMAGE_DESCRIPTION))

REFINEMENT_FIELD_NAMES = tuple(MaskRefinement.__fields__)


class PointModel(ApiModel):
    """A click in image pixels, origin top-left; ``label`` 1 = include this object, 0 = exclude."""

    x: float = Field(..., description="pixels from the left edge, 0 <= x < width")
    y: float = Field(..., description="pixels from the top edge, 0 <= y < height")
    label: int = Field(1, description="1 = include (positive click), 0 = exclude (negative click)")


# -- GET /models -----------------------------------------------------------------------------------------


class SamModelInfo(ResponseModel):
    name: str = Field(..., description="the name to pass as `model`")
    arch: str | None = Field(None, description="architecture, e.g. vit_b")
    family: str | None = Field(None, description="sam, sam_hq, mobile_sam or sam2")
    size_bytes: int | None = None


class ModelsResponse(ResponseModel):
    models: list[SamModelInfo] = Field(default_factory=list, description="installed SAM models")
    default: str | None = Field(None, description="the model used when a request names none")
    host: str = Field(..., description="standalone, webui or forge")
    inpaint_warning: str | None = Field(None, description="a note about the inpainting model, if any")


class HealthResponse(ResponseModel):
    status: str = "ok"
    version: str
    host: str
    api: str = "v1"
    max_image_pixels: int
    max_request_bytes: int
    max_points: int = MAX_POINTS


# -- POST /mask ------------------------------------------------------------------------------------------

class DetectionModel(ResponseModel):
    box: list[float] = Field(..., description="[x0, y0, x1, y1] in image pixels, clipped to the image")
    score: float = Field(..., description="the detector's score")
    label: str = Field(..., description="the phrase of the text this box answers")


#: the text fields of /mask (optional) and /detect (``text`` required there)
TEXT_FIELDS = {
    "text": (Optional[str], Field(None, description="select by text instead of points/box: SAM answers every box the "
                                                    "detector finds, and the masks are united")),
    "detector": (Optional[str], Field(None, description="with `text`: a detector family (grounding_dino, owlvit, owlv2, "
                                                        "sam3), a known hub id or an installed folder name (GET "
                                                        "/segfill/v1/detectors); default: the best one installed")),
    "box_threshold": (Optional[float], Field(None, description="with `text`: score a box needs (0-1)")),
    "text_threshold": (Optional[float], Field(None, description="with `text`: GroundingDINO's word threshold (0-1)")),
}


_MaskBase = _generated(
    "_MaskBase",
    MaskRefinement,
    {
        "image": IMAGE_FIELD,
        "model": (Optional[str], Field(None, description="installed SAM model name (GET /segfill/v1/models); default: the host's")),
        "points": (list[PointModel], list_field(
            list, max_items=MAX_POINTS, description=f"clicks; at least one point or a box; at most {MAX_POINTS}")),
        "box": (Optional[list[float]], list_field(
            default=None, max_items=BOX_LENGTH, min_items=BOX_LENGTH,
            description="[x0, y0, x1, y1] in image pixels; every corner within the image (0 <= x <= width, "
                        "0 <= y <= height), one box per request")),
        "multimask": (bool, Field(True, description="ask SAM for 3 candidates instead of 1")),
        "candidate": (
            Union[Literal["best"], int],
            Field("best", description='which candidate to refine and return as `mask`: "best" (highest score) or its '
                                      'index (with `text`: per detected box)'),
        ),
        **TEXT_FIELDS,
    },
)


class MaskRequest(_MaskBase):  # type: ignore[valid-type,misc]
    """Click-to-mask: SAM's candidates for points and/or a box, and the chosen one refined. The refinement
    fields (grow, shrink, fill_holes, remove_specks, invert, feather...) are those of
    :class:`segfill.args.MaskRefinement`, applied in its fixed order."""


class MaskResponse(ResponseModel):
    masks: list[str] = Field(..., description="every candidate as a base64 PNG (mode L, 255 = selected); with `text`: "
                                              "the chosen candidate of each detected box")
    scores: list[float] = Field(..., description="SAM's quality estimate per candidate (with `text`: per box)")
    chosen: int = Field(..., description="index of the candidate that `mask` was made from; -1 with `text` "
                                         "(`mask` is the union of `masks`)")
    detections: list[DetectionModel] = Field(default_factory=list, description="with `text`: the detected boxes")
    mask: str = Field(..., description="the chosen candidate after refinement, base64 PNG (mode L)")
    width: int
    height: int
    model: str


# -- POST /segment-map -----------------------------------------------------------------------------------


class SegmentMapArgs(StrictArgs):
    """Ranges for :func:`segfill.sam.segment_map.compute_segment_map` as offered by the API (engine-side check,
    pydantic v1 API via segfill.args like every engine argument model)."""

    max_side: conint(ge=64, le=4096) = ArgsField(defaults.SEGMENT_MAP_MAX_SIDE, description="long side of the working resolution")
    points_per_side: conint(ge=1, le=128) = ArgsField(defaults.SEGMENT_MAP_POINTS_PER_SIDE, description="grid density of the automatic generator")
    pred_iou_thresh: confloat(ge=0, le=1) = ArgsField(0.88, description="drop masks SAM scores below this")
    stability_score_thresh: confloat(ge=0, le=1) = ArgsField(0.95, description="drop masks less stable than this")


SEGMENT_MAP_FIELD_NAMES = tuple(SegmentMapArgs.__fields__)

_SegmentMapBase = _generated(
    "_SegmentMapBase",
    SegmentMapArgs,
    {
        "image": IMAGE_FIELD,
        "model": (Optional[str], Field(None, description="installed SAM model name; default: the host's")),
        "points": (list[PointModel], list_field(
            list, max_items=MAX_POINTS,
            description=f"optional: also return the union of the segments these points touch; at most {MAX_POINTS}")),
    },
)


class SegmentMapRequest(_SegmentMapBase):  # type: ignore[valid-type,misc]
    """SAM's automatic segmentation of the whole image at a bounded working resolution."""


class SegmentMapResponse(ResponseModel):
    labels: str = Field(..., description="base64 16-bit greyscale PNG at working resolution; value = segment id, 0 = none")
    color_map: str = Field(..., description="base64 RGB PNG at working resolution, one colour per segment")
    segment_count: int
    working_width: int
    working_height: int
    width: int
    height: int
    touched: list[int] = Field(default_factory=list, description="ids of the segments the given points touch")
    mask: str | None = Field(None, description="union of the touched segments at full size, base64 PNG (L)")
    model: str


# -- POST /inpaint and /outpaint ---------------------------------------------------------------------------

PRESET_FIELD = (Optional[str], Field(
    None, description="a preset for a common job (GET /segfill/v1/presets): fills in the fields this request does not "
    "set itself; for inpaint its mask refinement (grow, feather, invert) is applied to `mask`"))

_InpaintBase = _generated(
    "_InpaintBase",
    InpaintArgs,
    {"image": IMAGE_FIELD, "mask": (str, Field(..., description="white = repaint; same size as image; " + IMAGE_DESCRIPTION)),
     "preset": PRESET_FIELD},
)
_OutpaintBase = _generated("_OutpaintBase", OutpaintArgs, {"image": IMAGE_FIELD, "preset": PRESET_FIELD})


class InpaintRequest(_InpaintBase):  # type: ignore[valid-type,misc]
    """Repaint the white part of ``mask``; crops around the mask, tiles large crops, pastes back feathered
    (the fields of :class:`segfill.args.InpaintArgs`; ``guidance`` is the CFG scale)."""


class OutpaintRequest(_OutpaintBase):  # type: ignore[valid-type,misc]
    """Extend the image. Ask for the size one way: per-side padding (``left``/``right``/``top``/``bottom``),
    ``target_width`` + ``target_height``, or an ``aspect`` ratio such as ``"16:9"``; the last two place the
    original at ``anchor`` (``center``, ``top-left`` ... or ``"fx,fy"``). The fields of
    :class:`segfill.args.OutpaintArgs`; ``guidance`` is the CFG scale, ``prefill`` the pre-fill method."""


def fields_set(model: BaseModel) -> set[str]:
    """The fields the client sent itself (not filled in from defaults), on either pydantic."""
    return set(model.model_fields_set if PYDANTIC_V2 else model.__fields_set__)  # type: ignore[attr-defined]


def _with_preset(body: BaseModel, kind: str, exclude: set[str]) -> dict[str, Any]:
    """The fields the client sent, with a ``preset``'s values for the ones it left out. Only those: the engine's
    defaults fill the rest, and a host can tell the two apart (``__fields_set__``: the WebUI host applies its
    settings' overlap and feather where the caller gave none)."""
    from segfill.presets import apply_preset

    given = model_to_dict(body, exclude=exclude | {"preset"}, exclude_unset=True)
    return apply_preset(getattr(body, "preset", None), kind, given)


def to_inpaint_args(body: InpaintRequest) -> Any:
    """The engine's :class:`~segfill.args.InpaintArgs` for a request (ranges checked there: InputError)."""
    return parse_args_model(InpaintArgs, _with_preset(body, "inpaint", {"image", "mask"}))


def to_outpaint_args(body: OutpaintRequest) -> Any:
    """The engine's :class:`~segfill.args.OutpaintArgs` for a request (ranges checked there: InputError)."""
    return parse_args_model(OutpaintArgs, _with_preset(body, "outpaint", {"image"}))


def preset_mask(preset: str, mask: Any) -> Any:
    """``mask`` (float, >= 0.5 = repaint) refined by the preset's mask refinement; unchanged when it has none."""
    import numpy as np

    from segfill.masks import refine
    from segfill.presets import get_preset

    found = get_preset(preset)
    if found is None or not found.refinement:
        return mask
    refined = refine(np.asarray(mask) >= 0.5, parse_args_model(MaskRefinement, dict(found.refinement)))
    return refined.astype(np.float32) if refined.dtype == bool else refined


def planned_canvas_size(image_size: tuple[int, int], args: Any) -> tuple[int, int]:
    """``(width, height)`` of the outpaint result, checked (zero / absurd padding raise InputError)."""
    from segfill.outpaint.plan import outpaint_padding

    return outpaint_padding(image_size, args).canvas_size(image_size)


class PresetInfo(ResponseModel):
    name: str = Field(..., description="the name to pass as `preset`")
    title: str
    description: str
    kinds: list[str] = Field(..., description="the jobs it is meant for: inpaint, outpaint")
    refinement: dict[str, Any] = Field(default_factory=dict, description="mask refinement it applies (inpaint)")
    args: dict[str, Any] = Field(default_factory=dict, description="job fields it fills in")


class PresetsResponse(ResponseModel):
    presets: list[PresetInfo]


class GenerationResponse(ResponseModel):
    image: str = Field(..., description="the result, base64 PNG (RGB, or RGBA when the input had alpha), exactly the requested size")
    infotext: str = Field("", description="generation parameters in the WebUI's 'key: value, ...' format")
    width: int
    height: int
    plan: dict[str, Any] = Field(default_factory=dict, description="the plan the engine executed (canvas, tiles, seeds)")
    info: dict[str, Any] = Field(default_factory=dict, description="other details from the host")


# -- POST /detect, GET /detectors, and /mask's text fields ------------------------------------------------

_DetectBase = pydantic.create_model(
    "_DetectBase", __base__=ApiModel, __module__=__name__,
    image=IMAGE_FIELD,
    max_boxes=(int, Field(defaults.DETECT_MAX_BOXES, description=f"most boxes returned (1-{defaults.DETECT_MAX_BOXES * 5})")),
    **{**TEXT_FIELDS, "text": (str, Field(..., description="what to select, e.g. \"a red ball\" (several: \"a dog. a ball\")"))},
)


class DetectRequest(_DetectBase):  # type: ignore[valid-type,misc]
    """Open-vocabulary detection: boxes (image pixels), labels and scores for a text."""


class DetectResponse(ResponseModel):
    boxes: list[list[float]]
    labels: list[str]
    scores: list[float]
    detections: list[DetectionModel]
    detector: str
    family: str
    box_threshold: float
    text_threshold: Optional[float] = None
    width: int
    height: int


class DetectorFamilyInfo(ResponseModel):
    family: str
    title: str
    available: bool
    message: str = Field(..., description="the family's title, or what to install to get it")
    default_model: str


class DetectorsResponse(ResponseModel):
    families: list[DetectorFamilyInfo]
    installed: list[str] = Field(default_factory=list, description="detector folders installed on the server")
    default: Optional[str] = Field(None, description="the detector used when a request names none")
