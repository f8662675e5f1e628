"""JSON Schema (draft 2020-12) of a loss spec, built from the registry's pydantic models.

A spec is one of:

- a string: a registered name or an expression (``"0.5*dice + bce"``);
- a single loss ``{name: focal, gamma: 2.0}``: a union of one model per loss, discriminated
  on ``name`` (each model accepts the loss's canonical name and its aliases);
- a composite ``{expr: ..., terms: {key: <single loss or name>}}``.

A config file may hold the spec under a top-level ``loss:`` key next to other keys (weights
used by interpolation). Any parameter may be an OmegaConf interpolation string
(``${weights.dice}``), which OmegaConf resolves before lossreg validates the value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .._params import class_name

__all__ = ["SCHEMA_DIALECT", "loss_spec_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_INTERPOLATION = {
    "type": "string",
    "pattern": r"^\$\{.+\}$",
    "description": "OmegaConf interpolation, resolved before validation",
}


_DEEP_SUPERVISION = "apply to a list of outputs: {weights: same|exp|[...], normalize: true}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _spec_models() -> list[type[BaseModel]]:
    from .._build import describe
    from .._registry import registry
    from ..errors import LossregError

    models = []
    titles: set[str] = set()
    for rec in registry.records():
        try:
            info = describe(rec.name)
        except LossregError:  # e.g. a preset of a disabled plugin's loss: skip that entry
            continue
        names = (info.name, *info.aliases)
        title = _title(info.name) + "Spec"
        while title in titles:  # `Dice` and `dice`, `my_loss` and `myLoss`: one model each
            title = "_" + title
        titles.add(title)
        fields: dict[str, Any] = {
            "name": (
                Literal[names],
                Field(description=f"{info.name}: {info.summary}".strip().rstrip(":")),
            ),
            "inputs": (
                dict[str, str] | None,
                Field(
                    None,
                    description="route tensors in a composite: loss argument -> tensor name "
                    f"(arguments: {', '.join(info.inputs)})",
                ),
            ),
            "deep_supervision": (
                dict[str, Any] | None,
                Field(None, description=_DEEP_SUPERVISION),
            ),
        }
        model = pydantic.create_model(
            title,
            __base__=info.params,
            __doc__=info.summary or info.name,
            **fields,
        )
        models.append(model)
    return models


def _title(name: str) -> str:
    return class_name(name)


def loss_spec_schema() -> dict[str, Any]:
    """The JSON Schema of a lossreg config (spec, or a file with the spec under ``loss:``)."""
    models = _spec_models()
    single: Any = Annotated[Union[tuple(models)], Field(discriminator="name")]  # noqa: UP007

    class Composite(_Strict):
        """A weighted combination of losses, e.g. ``0.5*dice + bce``."""

        expr: str = Field(
            description="expression over term keys and registered names: numbers, names, "
            "+ - * /, unary minus and parentheses",
            min_length=1,
        )
        terms: dict[str, Union[single, str]] = Field(  # noqa: UP007
            default_factory=dict,
            description="term key -> loss spec (or a registered name)",
        )
        weights: dict[str, Union[float, dict[str, Any]]] | None = Field(  # noqa: UP007
            None,
            description="weight name -> number or schedule ({schedule: linear|cosine|piecewise|"
            "multistep|exponential, ...}); see docs/objectives.md",
        )
        balance: dict[str, Any] | None = Field(
            None, description="learned weighting: {method: uncertainty, terms: [...], init: 0}"
        )
        deep_supervision: dict[str, Any] | None = Field(None, description=_DEEP_SUPERVISION)

    spec: Any = Union[str, single, Composite]  # noqa: UP007
    schema = TypeAdapter(spec).json_schema(mode="validation")
    defs = schema.pop("$defs", {})
    for model in models:
        _allow_interpolation(defs[model.__name__])
    defs["Spec"] = {
        "title": "Loss spec",
        "description": "a registered name or expression, a single loss, or a composite",
        **schema,
    }
    defs["Interpolation"] = _INTERPOLATION
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://lossreg.dev/schema/config.json",
        "title": "lossreg config",
        "description": __doc__.split("\n\n")[0].replace("\n", " ") if __doc__ else "",
        "anyOf": [
            {"$ref": "#/$defs/Spec"},
            {
                "type": "object",
                "description": "a config file with the loss spec under `loss:`",
                "properties": {"loss": {"$ref": "#/$defs/Spec"}},
                "required": ["loss"],
            },
        ],
        "$defs": defs,
    }


def _allow_interpolation(model_schema: dict[str, Any]) -> None:
    for key, prop in model_schema.get("properties", {}).items():
        if key in ("name", "inputs"):
            continue
        doc = {k: prop.pop(k) for k in ("title", "description", "default") if k in prop}
        model_schema["properties"][key] = {
            **doc,
            "anyOf": [dict(prop), {"$ref": "#/$defs/Interpolation"}],
        }
