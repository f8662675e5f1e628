"""Helpers shared by the built-in plugins (not part of the core: they know loss shapes).

:func:`options` is the one place a built-in functional checks its options: the option rules
live in the loss's params model (docs/plugins.md, "Option rules"), and a functional called
directly validates its keyword options through that model, so it refuses the same options
with the same message as :func:`lossreg.build`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import torch

from lossreg import ConfigError, Params, reduce  # reduce: re-exported for the family modules
from lossreg._params import tensor_fields, validate_params
from lossreg.errors import ConfigProblem

__all__ = ["nan_if_input_nan", "options", "reduce", "upcast"]

P = TypeVar("P", bound=Params)

# Validated options by (model, options): a training loop calls a loss with the same options
# every step, so the model validates each set once and later calls cost one dict lookup.
_VALIDATED: dict[tuple[Any, ...], Params] = {}
_MAX_CACHED = 1024
# A tensor-valued option (e.g. a class weight) is validated as this placeholder: the model's
# rules see that it is given; its values and shape are tensor checks, the functional's job.
_GIVEN_TENSOR = (1.0,)


def _frozen(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("<tensor>",)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_frozen(v) for v in value))
    return (type(value), value)  # the type too: 1, 1.0 and True hash alike


def _shown(problem: ConfigProblem, tensors: dict[str, torch.Tensor]) -> ConfigProblem:
    if not tensors or not isinstance(problem.value, dict):
        return problem
    return dataclasses.replace(problem, value={**problem.value, **tensors})


def options(model: type[P], name: str, given: Mapping[str, Any], *, local: bool = False) -> P:
    """``given`` (a functional's keyword options) validated by ``model``: the instance, with
    every default filled in, or a :class:`~lossreg.ConfigError` worded as :func:`lossreg.build`
    words it. ``local=True``: ``given`` is ``locals()`` at the top of a functional with an
    explicit signature, whose keywords are the model's fields; the rest (the tensor
    arguments) is left out.

    >>> from lossreg_builtin.segmentation import DiceParams
    >>> options(DiceParams, "dice", {"smooth": 0.0}).smooth
    0.0
    """
    fields = model.model_fields
    data = {k: v for k, v in given.items() if not local or k in fields}
    values = tuple(data.values())
    key: tuple[Any, ...] | None
    if any(isinstance(v, (torch.Tensor, list)) for v in values):  # a tensor: by "given" only
        key = (model, *((k, _frozen(v)) for k, v in data.items()))
    else:  # the common case, fast: the types too, as 1, 1.0 and True hash alike
        key = (model, tuple(data), values, tuple(map(type, values)))
    try:
        hash(key)
    except TypeError:  # an unhashable value (a dict, say): validate without caching
        key = None
    hit = None if key is None else _VALIDATED.get(key)
    if hit is None:
        tensors = {
            k: v
            for k, v in data.items()
            if k in tensor_fields(model) and isinstance(v, torch.Tensor)
        }
        inst, problems = validate_params(
            model, {**data, **{k: list(_GIVEN_TENSOR) for k in tensors}}, loss=name
        )
        if problems or inst is None:  # a problem shows the tensor given, not the placeholder
            raise ConfigError([_shown(p, tensors) for p in problems])
        hit = cast(Params, inst)
        if key is not None and len(_VALIDATED) < _MAX_CACHED:
            _VALIDATED[key] = hit
    return cast(P, hit)  # validated by ``model`` (cached under it)


def nan_if_input_nan(
    out: torch.Tensor, x: torch.Tensor, reduction: str | None, dim: int | None = None
) -> torch.Tensor:
    """``out``, NaN wherever ``x`` holds a NaN: per sample with ``reduction='none'`` (``x``
    reduced over ``dim`` to ``out``'s shape), else the whole scalar. For kernels that read only
    part of their input (a target's entry, an argmax, the hinge terms above the margin), which
    would report a finite loss for a NaN input. ``-inf`` log-probabilities stay legitimate."""
    bad = torch.isnan(x.detach())
    if reduction == "none":
        if dim is not None:
            bad = bad.any(dim)
        if bad.shape != out.shape:
            bad = bad.any()
    else:
        bad = bad.any()
    return torch.where(bad, torch.full_like(out, float("nan")), out)


def upcast(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """half and bfloat16 to float32 (sums and ratios in float32); others unchanged."""
    return tuple(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors)
