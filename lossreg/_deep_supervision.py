"""Deep supervision: one objective applied to several outputs of a network.

The objective is called with a list (or tuple) of outputs, highest resolution first. Level ``i``
takes ``outputs[i]`` and the other tensors resized to its spatial size with nearest-exact
interpolation (class indices and 0/1 masks stay exact), or ``targets[i]`` where a list is
passed. The levels are combined with weights ``same`` (all 1), ``exp`` (``1/2**i``, MONAI's and
nnU-Net's choice) or a list, divided by their sum when ``normalize`` is true.

>>> import lossreg, torch
>>> loss = lossreg.build({"name": "mse", "deep_supervision": {"weights": "same"}})
>>> target = torch.zeros(1, 1, 4, 4)
>>> float(loss([torch.ones(1, 1, 4, 4), torch.full((1, 1, 2, 2), 3.0)], target))
5.0
>>> [float(v) for v in loss.last_levels]
[1.0, 9.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigProblem, LossregError

__all__ = ["DeepSupervisedLoss", "level_weights", "split_levels", "validate_deep_supervision"]

_KEYS = ("weights", "normalize")


def validate_deep_supervision(spec: Any, path: str) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """The ``deep_supervision`` block with defaults filled in, or its problems."""
    if spec is None or spec is True:
        spec = {}
    if not isinstance(spec, Mapping):
        msg = "must be a mapping, e.g. {weights: exp, normalize: true}"
        return {}, [ConfigProblem(path, msg, value=spec)]
    problems = [
        ConfigProblem(f"{path}.{k}", f"unknown key; expected: {', '.join(_KEYS)}", value=spec[k])
        for k in spec
        if k not in _KEYS
    ]
    weights = spec.get("weights", "exp")
    if isinstance(weights, (list, tuple)):
        ok = weights and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
            for w in weights
        )
        if not ok or not sum(weights) > 0:
            msg = "a list of weights must be finite numbers >= 0, one per level, not all 0"
            problems.append(ConfigProblem(f"{path}.weights", msg, value=weights))
        weights = [float(w) for w in weights] if ok else weights
    elif weights not in ("same", "exp"):
        msg = "must be `same`, `exp` or a list of numbers, one per output level"
        problems.append(ConfigProblem(f"{path}.weights", msg, value=weights))
    normalize = spec.get("normalize", True)
    if not isinstance(normalize, bool):
        problems.append(
            ConfigProblem(f"{path}.normalize", "must be true or false", value=normalize)
        )
    return {"weights": weights, "normalize": normalize}, problems


def level_weights(spec: Mapping[str, Any], levels: int) -> list[float]:
    """The weight of each of ``levels`` outputs under a validated ``deep_supervision`` block."""
    kind = spec["weights"]
    if kind == "same":
        weights = [1.0] * levels
    elif kind == "exp":
        weights = [0.5**i for i in range(levels)]
    else:
        if len(kind) != levels:
            raise LossregError(
                f"deep_supervision.weights has {len(kind)} entries but the objective was called "
                f"with {levels} outputs; give one weight per output level"
            )
        weights = list(kind)
    if spec["normalize"]:
        total = sum(weights)
        weights = [w / total for w in weights]
    return weights


def resize_to(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` resized nearest-exact to ``ref``'s spatial size (``ref`` is ``(N, C, *spatial)``).

    A tensor with ``ref``'s rank has spatial dims ``2:``; one rank lower (class indices) ``1:``;
    any other tensor is returned as is.
    """
    size = tuple(ref.shape[2:])
    if t.dim() == ref.dim():
        x = t
    elif t.dim() == ref.dim() - 1:
        x = t.unsqueeze(1)
    else:
        return t
    if tuple(x.shape[2:]) == size or not 1 <= len(size) <= 3:
        return t
    # float32 holds integer labels exactly (below 2**24) and nearest-exact copies, never mixes
    work = x if x.is_floating_point() else x.float()
    y = F.interpolate(work, size=size, mode="nearest-exact").to(t.dtype)
    return y if t.dim() == ref.dim() else y.squeeze(1)


def _is_levels(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def split_levels(
    args: Sequence[Any], tensors: Mapping[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]] | None:
    """Per-level ``(args, tensors)``, or ``None`` when no argument is a list of outputs.

    The first list (positional first, then keywords in call order) holds the outputs; every
    other list must have one entry per output; every other tensor is resized to each output.
    """
    lists = [a for a in args if _is_levels(a)] + [v for v in tensors.values() if _is_levels(v)]
    if not lists:
        return None
    outputs = lists[0]
    n = len(outputs)
    if n == 0:
        raise LossregError("deep supervision: the list of outputs is empty")
    for name, v in [*((f"argument {i}", a) for i, a in enumerate(args)), *tensors.items()]:
        if _is_levels(v) and len(v) != n:
            raise LossregError(
                f"deep supervision: {name} is a list of {len(v)} tensors but there are {n} "
                "outputs; pass one target per output, or one target to be resized"
            )
    levels = []
    for i in range(n):
        ref = outputs[i]

        def pick(v: Any, i: int = i, ref: torch.Tensor = ref) -> Any:
            if _is_levels(v):
                return v[i]
            return resize_to(v, ref) if isinstance(v, torch.Tensor) else v

        levels.append((tuple(pick(a) for a in args), {k: pick(v) for k, v in tensors.items()}))
    return levels


class DeepSupervisedLoss(nn.Module):
    """A single loss applied to every output level; ``last_levels`` holds each level's value."""

    def __init__(self, loss: nn.Module, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.loss = loss
        self.deep_supervision = dict(spec)
        self.last_levels: list[torch.Tensor] = []

    def forward(self, *args: Any, **tensors: Any) -> torch.Tensor:
        levels = split_levels(args, tensors)
        if levels is None:
            out: torch.Tensor = self.loss(*args, **tensors)
            return out
        weights = level_weights(self.deep_supervision, len(levels))
        values = [self.loss(*a, **kw) for a, kw in levels]
        self.last_levels = [v.detach() for v in values]
        total: torch.Tensor = weights[0] * values[0]
        for w, v in zip(weights[1:], values[1:], strict=True):
            total = total + w * v
        return total

    def extra_repr(self) -> str:
        return f"deep_supervision={self.deep_supervision}"
