"""SegFill parameters in the WebUI's infotext, and back.

One table (:func:`label_table`) maps every field of an argument model to its infotext label, e.g.
``pad_left`` <-> "SegFill pad left". Values equal to the field's default are left out, so an infotext only
says what the user changed; parsing fills the rest from the model's defaults. The same table gives the
script's ``infotext_fields`` so "PNG Info -> Send to img2img" restores every control.

The labels come from the field names unless :data:`LABEL_OVERRIDES` says otherwise, so a field added to
``OutpaintArgs`` gets a label without touching this file. Nested or list values are written as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PREFIX = "SegFill"

#: fields whose label is not simply "SegFill <field name with spaces>"
LABEL_OVERRIDES: dict[str, str] = {
    "left": "SegFill pad left",
    "right": "SegFill pad right",
    "top": "SegFill pad top",
    "bottom": "SegFill pad bottom",
    "prefill": "SegFill pre-fill",
    "color_match": "SegFill colour match",
    "color_ring": "SegFill colour ring",
}

#: fields the WebUI's own infotext already records (Prompt, Negative prompt, Seed, Steps, CFG scale);
#: never duplicated under a SegFill label
SKIP_FIELDS = frozenset({"prompt", "negative_prompt", "seed", "steps", "guidance"})


def _fields(model: Any) -> dict[str, Any]:
    fields = getattr(model, "__fields__", None)  # pydantic 1 API (also pydantic.v1 on pydantic 2)
    if fields is None:
        fields = getattr(model, "model_fields", None) or {}
    return dict(fields)


def _default(field: Any) -> Any:
    if getattr(field, "default_factory", None) is not None:
        return field.default_factory()
    return getattr(field, "default", None)


def label_for(name: str) -> str:
    return LABEL_OVERRIDES.get(name, f"{PREFIX} {name.replace('_', ' ')}")


def label_table(model: Any) -> dict[str, str]:
    """field name -> infotext label, for every field of ``model`` (a class or an instance)."""
    model_cls = model if isinstance(model, type) else type(model)
    return {name: label_for(name) for name in _fields(model_cls) if name not in SKIP_FIELDS}


def _plain(value: Any) -> Any:
    if hasattr(value, "dict") and callable(value.dict):
        return value.dict()
    if hasattr(value, "value") and not isinstance(value, (str, bytes, int, float)):  # enums
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _as_text(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def segfill_params(args: Any) -> dict[str, str]:
    """label -> text for every field of ``args`` that differs from its default (insertion order = model order)."""
    fields = _fields(type(args))
    params: dict[str, str] = {}
    for name, label in label_table(type(args)).items():
        value = getattr(args, name)
        if value is None or _plain(value) == _plain(_default(fields[name])):
            continue
        params[label] = _as_text(value)
    return params


def quote(text: str) -> str:
    """The WebUI's infotext quoting (modules.infotext_utils.quote): JSON string when needed."""
    if "," not in text and "\n" not in text and ":" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def params_to_text(params: Mapping[str, Any]) -> str:
    """``k: v, k: v`` as the WebUI writes extra generation params."""
    return ", ".join(f"{k}: {quote(str(v))}" for k, v in params.items() if v is not None)


def _parse_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped[:1] in "[{" or stripped[:1] == '"':
        try:
            return json.loads(stripped)
        except ValueError:
            return stripped
    return stripped


def params_from_infotext(params: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """The fields of ``model`` found in a parsed infotext (WebUI ``parse_generation_parameters`` output or
    :func:`parse_infotext`); values are still loosely typed, pydantic coerces them."""
    found: dict[str, Any] = {}
    for name, label in label_table(model).items():
        if label in params:
            found[name] = _parse_value(params[label])
    return found


def args_from_infotext(params: Mapping[str, Any], model: Any) -> Any:
    """A validated ``model`` from a parsed infotext: missing fields take their defaults."""
    from segfill.args import parse_args_model

    return parse_args_model(model, params_from_infotext(params, model))


def parse_infotext(text: str) -> dict[str, str]:
    """Minimal reader of the WebUI's last infotext line (``k: v, k: "quoted, v"``) for tests and the
    standalone app; inside the WebUI its own parser is used."""
    line = (text or "").strip().splitlines()[-1] if (text or "").strip() else ""
    out: dict[str, str] = {}
    i = 0
    n = len(line)
    while i < n:
        colon = line.find(":", i)
        if colon < 0:
            break
        key = line[i:colon].strip().lstrip(",").strip()
        j = colon + 1
        while j < n and line[j] == " ":
            j += 1
        if j < n and line[j] == '"':
            k = j + 1
            while k < n:
                if line[k] == "\\":
                    k += 2
                    continue
                if line[k] == '"':
                    break
                k += 1
            value = json.loads(line[j:k + 1])
            i = k + 1
        else:
            k = line.find(", ", j)
            k = n if k < 0 else k
            value = line[j:k]
            i = k
        if i < n and line[i] == ",":
            i += 1
        out[key] = value
    return out


def infotext_fields_for(components: Mapping[str, Any], model: Any) -> list[tuple[Any, str]]:
    """``[(component, label)]`` for the WebUI's ``Script.infotext_fields`` from ``{field name: component}``."""
    table = label_table(model)
    return [(component, table[name]) for name, component in components.items() if name in table]
