"""Parameter schemas: the pydantic base for loss params, models derived from a factory's
signature, and validation that turns pydantic's errors into one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from .errors import ConfigProblem

__all__ = [
    "Params",
    "Reduction",
    "TensorList",
    "Weights",
    "class_name",
    "derive_params",
    "reduction_field",
    "tensor_fields",
    "validate_params",
]


class TensorParam:
    """Marker: a list of numbers in the config that becomes a registered buffer."""

    def __repr__(self) -> str:
        return "TensorParam()"


_TENSOR = TensorParam()
#: A list of finite numbers in a config; a tensor (registered buffer) in the built module.
TensorList = Annotated[list[float], _TENSOR]


def _weights(value: list[float]) -> list[float]:
    if any(v < 0 for v in value):
        raise ValueError(f"weights must be >= 0, found {min(value)}")
    if value and not any(value):
        raise ValueError("weights are all 0: every term would vanish (and a mean divide by 0)")
    return value


#: A :data:`TensorList` of weights: each >= 0, not all 0 (class weights, ``pos_weight``).
Weights = Annotated[list[float], _TENSOR, AfterValidator(_weights)]

_F32_MAX = 3.4028234663852886e38
_I64 = (-(2**63), 2**63 - 1)


def _representable(value: Any) -> str | None:
    """Why ``value`` (a number or a nested list) cannot reach a float32/int64 tensor, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and abs(value) > _F32_MAX:
        return f"{value!r} overflows float32 (largest finite: 3.4028e38); losses compute in float32"
    if isinstance(value, int) and not _I64[0] <= value <= _I64[1]:
        return "integer overflows int64 (the largest is 9223372036854775807)"
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = _representable(item)
            if problem:
                return problem
    return None


#: The ``reduction`` every loss takes: ``mean`` (default), ``sum`` or ``none``.
Reduction = Literal["mean", "sum", "none"]


def reduction_field(none: str = "per element") -> Any:
    """The ``reduction`` field of a params model, documented the same way everywhere;
    ``none`` says what ``reduction='none'`` returns.

    >>> class MyParams(Params):
    ...     reduction: Reduction = reduction_field("input's shape")
    >>> MyParams.model_fields["reduction"].description
    "`mean` over elements, `sum`, or `none` (input's shape)"
    """
    return pydantic.Field("mean", description=f"`mean` over elements, `sum`, or `none` ({none})")


def class_name(name: str, suffix: str = "") -> str:
    """A loss name as a class name: ``focal_tversky`` -> ``FocalTversky`` (+ ``suffix``).

    >>> class_name("my-loss", "Params")
    'MyLossParams'
    """
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p) + suffix


class Params(BaseModel):
    """Base of every loss's parameter model.

    Unknown keys are refused, floats must be finite (nan, inf and 1e309 are refused), defaults
    are validated too. ``defer_build`` keeps ``import`` cheap: a schema is built on first use.

    >>> class FocalParams(Params):
    ...     gamma: float = 2.0
    >>> FocalParams(gamma=3).gamma
    3.0
    """

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, validate_default=True, defer_build=True, frozen=True
    )

    @field_validator("*", mode="after")
    @classmethod
    def _fits_a_tensor(cls, value: Any) -> Any:
        """Every number must survive the float32 or int64 it is computed in: ``smooth:
        3.5e38`` or ``ignore_index: 1e23`` would otherwise build and fail (or give NaN) at
        forward."""
        problem = _representable(value)
        if problem:
            raise ValueError(problem)
        return value


# Keys that other config systems use to import arbitrary code: refused, never interpreted.
_IMPORT_KEYS = ("_target_", "_component_", "_partial_", "type")
_DEPRECATED = ("size_average", "reduce")


@functools.lru_cache(maxsize=1024)  # a model's fields are fixed; build() asks on every call
def tensor_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the fields declared as :data:`TensorList` (optionally ``| None``)."""
    names = set()
    for fname, field in model.model_fields.items():
        if _TENSOR in field.metadata or _mentions_tensor(field.annotation):
            names.add(fname)
    return frozenset(names)


def _mentions_tensor(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return _TENSOR in typing.get_args(annotation)[1:]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_mentions_tensor(a) for a in typing.get_args(annotation))
    return False


def derive_params(factory: Callable[..., Any], name: str) -> type[Params]:
    """Build a params model from a factory's keyword parameters, hints and defaults.

    For a function ``fn(input, target, *, p=1.0)`` the parameters are the keyword-only ones
    (or, without a ``*``, those with defaults); for an ``nn.Module`` class, its ``__init__``'s.
    A ``torch.Tensor`` hint becomes a :data:`TensorList`.
    """
    is_class = inspect.isclass(factory)
    target = factory.__init__ if is_class else factory
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to no hints
        hints = {}
    params = [p for p in sig.parameters.values() if p.name != "self"]
    if not is_class:
        kwonly = [p for p in params if p.kind is p.KEYWORD_ONLY]
        params = kwonly or [p for p in params if p.default is not p.empty]
    fields: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = _config_type(hints.get(p.name, Any if p.default is p.empty else type(p.default)))
        fields[p.name] = (ann, ... if p.default is p.empty else p.default)
    return pydantic.create_model(class_name(name, "Params"), __base__=Params, **fields)


def _config_type(hint: Any) -> Any:
    import torch  # local: only derived models need it

    if hint is torch.Tensor:
        return TensorList
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = tuple(_config_type(a) for a in typing.get_args(hint))
        return Union[args]  # noqa: UP007 - built from a runtime tuple
    if hint is type(None):
        return type(None)
    return hint


def refused_keys(data: Mapping[str, Any], path: str, loss: str) -> list[ConfigProblem]:
    """Problems for keys lossreg refuses before any validation runs."""
    out = []
    for key in data:
        where = f"{path}.{key}" if path else str(key)
        if key in _IMPORT_KEYS:
            out.append(
                ConfigProblem(
                    where,
                    f"{key!r} is not supported: lossreg builds registered names only; nothing "
                    "is imported. Use `name: <registered loss>`",
                    loss,
                    data[key],
                )
            )
        elif key in _DEPRECATED:
            out.append(
                ConfigProblem(
                    where,
                    f"{key!r} is deprecated in PyTorch and not accepted; use "
                    "reduction: 'mean', 'sum' or 'none'",
                    loss,
                    data[key],
                )
            )
    return out


def validate_params(
    model: type[BaseModel], data: Mapping[str, Any], *, loss: str, path: str = ""
) -> tuple[BaseModel | None, list[ConfigProblem]]:
    """Validate ``data`` against ``model``; return the instance or every problem found."""
    problems = refused_keys(data, path, loss)
    if problems:
        return None, problems
    try:
        return model.model_validate(dict(data)), []
    except pydantic.ValidationError as exc:
        return None, [_problem(err, model, path, loss) for err in exc.errors()]


def _problem(err: Any, model: type[BaseModel], path: str, loss: str) -> ConfigProblem:
    loc = ".".join(str(part) for part in err["loc"])
    where = f"{path}.{loc}" if path and loc else (path or loc)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.5)
        choices = ", ".join(model.model_fields) or "none"
        msg = f"unknown parameter {key!r}" + (
            f"; did you mean {close[0]!r}?" if close else f"; parameters are: {choices}"
        )
    elif err["type"] == "missing":
        msg = "required parameter is missing"
        return ConfigProblem(where, msg, loss)
    elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
        msg = str(err["ctx"]["error"])  # our own validators' message, without pydantic's prefix
    elif err["type"] == "finite_number":
        msg = "must be a finite number (nan and inf are refused)"
    return ConfigProblem(where, msg, loss, err.get("input", ...))
