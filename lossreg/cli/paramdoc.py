"""Human-readable rows for a loss's parameters (type, default, constraints, description),
read from its pydantic model. ``lossreg show`` and the generated catalog page both use them.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from .._params import TensorParam

__all__ = ["ParamRow", "example_yaml", "input_text", "param_rows", "spec_facts"]

_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


@dataclass(frozen=True)
class ParamRow:
    name: str
    type: str
    default: str
    constraints: str
    description: str
    required: bool


def param_rows(model: type[BaseModel]) -> list[ParamRow]:
    """One row per field of ``model``, in declaration order."""
    rows = []
    effective = defaults(model)
    for name, field in model.model_fields.items():
        required = field.is_required()
        default = _value(effective[name]) if name in effective else "required"
        bounds = [
            f"{sym} {getattr(m, attr)}"
            for m in field.metadata
            for attr, sym in _BOUNDS
            if getattr(m, attr, None) is not None
        ]
        tensor = any(isinstance(m, TensorParam) for m in field.metadata)
        type_text = _type_name(field.annotation)
        if tensor:
            type_text = "list[float] (tensor)"
        rows.append(
            ParamRow(name, type_text, default, ", ".join(bounds), field.description or "", required)
        )
    return rows


def input_text(info: Any, quote: str = "") -> str:
    """A loss's tensor arguments with their declared kinds: ``input (logits), target (...)``;
    a preset's as its settings make them (``BCELoss``'s input holds probabilities)."""
    from .._synthetic import effective_kind

    spec = info.spec if info.kind == "preset" else {}
    kinds = {a: effective_kind(k, spec) for a, k in (info.input_kinds or {}).items()}
    return ", ".join(
        f"{quote}{a}{quote}" + (f" ({kinds[a]})" if a in kinds else "") for a in info.inputs
    )


def spec_facts(info: Any, quote: str = "") -> list[tuple[str, str]]:
    """What a preset stands on or a composite computes, as (label, text) rows."""
    if info.kind == "composite" and info.spec:
        return [("expression", f"{quote}{info.spec['expr']}{quote}")]
    if info.kind == "preset" and info.spec:
        shown = ", ".join(f"{quote}{k}: {v}{quote}" for k, v in info.spec.items())
        return [("preset of", shown)]
    return []


def defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The value each optional field takes when the config omits it, as JSON-like values.

    Read from a validated empty config where possible, so defaults that a model's validator
    fills in (focal's alpha depends on its mode) are the ones a built loss really has.
    """
    try:
        return model().model_dump(mode="json")
    except ValidationError:  # a required field: fall back to the declared defaults
        pass
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
            out[name] = value
    return out


def example_yaml(name: str, model: type[BaseModel]) -> str:
    """A ``loss:`` block users can copy: the loss with every parameter at its default."""
    lines = ["loss:", f"  name: {name}"]
    effective = defaults(model)
    for key in model.model_fields:
        if key not in effective:
            lines.append(f"  {key}: ???  # required")
        else:
            lines.append(f"  {key}: {_yaml_value(effective[key])}")
    return "\n".join(lines)


def _yaml_value(value: Any) -> str:
    """A YAML scalar or flow list that every YAML 1.1 loader reads back as the same value."""
    import json

    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        mantissa, exp = repr(value).split("e")
        return f"{mantissa}.0e{exp}"  # 1e-06 is a string to YAML 1.1; 1.0e-06 is a float
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return json.dumps(value) if value is not PydanticUndefined else "???"


def _value(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value)


def _type_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    if origin is Annotated:
        if any(isinstance(m, TensorParam) for m in args[1:]):
            return "list[float] (tensor)"
        return _type_name(args[0])
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if ann is type(None):
        return "null"
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")
