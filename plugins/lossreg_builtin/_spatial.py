"""Shared by the spatial segmentation losses (boundary, Hausdorff, clDice): checks, then
probabilities and a dense target of shape (N, C, *spatial), spatial dims kept."""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

import torch
from pydantic import Field

from lossreg import (
    LossregError,
    Params,
    Reduction,
    check_class_indices,
    check_floating,
    check_same_device,
    check_same_shape,
)

from ._common import upcast
from ._overlap import check_classes_and_range, multiclass_target_error

Mode = Literal["binary", "multiclass", "multilabel"]


class SpatialParams(Params):
    mode: Mode = Field(
        "binary",
        description="`binary`: (N, 1, *spatial) logits and a same-shape mask in [0, 1]; "
        "`multiclass`: (N, C, *spatial) logits (softmax over C), target (N, *spatial) class "
        "indices or (N, C, *spatial) probabilities; `multilabel`: (N, C, *spatial) logits "
        "(sigmoid per channel), target (N, C, *spatial) in [0, 1]",
    )
    from_logits: bool = Field(
        True, description="input holds logits; false: probabilities in [0, 1] (checked)"
    )
    classes: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = Field(
        None, description="class indices to average over (default: all)"
    )
    reduction: Reduction = Field(
        "mean", description="`mean` over samples and classes, `sum`, or `none`: (N, C)"
    )


class Dense(NamedTuple):
    p: torch.Tensor  # (N, C, *spatial) probabilities, float32 or float64
    t: torch.Tensor  # (N, C, *spatial) target in p's dtype


def dense(
    name: str,
    input: torch.Tensor,
    target: torch.Tensor,
    mode: str,
    from_logits: bool,
    classes: list[int] | None,
    spatial: tuple[int, ...] = (2, 3),
) -> Dense:
    """Every check; then probabilities and a one-hot or float target, (N, C, *spatial)."""
    check_same_device(name, input, target)
    check_floating(name, "input", input)
    dims = " or ".join(f"{d}" for d in spatial)
    if input.dim() - 2 not in spatial:
        raise LossregError(
            f"{name}: input must have shape (N, C, *spatial) with {dims} spatial dims, got "
            f"shape {tuple(input.shape)}"
        )
    c = input.shape[1]
    if mode == "binary" and c != 1:
        raise LossregError(
            f"{name}: mode binary takes input (N, 1, *spatial), got shape {tuple(input.shape)}; "
            "use mode multilabel for several independent channels"
        )
    (x,) = upcast(input)
    index = mode == "multiclass" and target.shape == input.shape[:1] + input.shape[2:]
    if index:
        check_class_indices(name, target, c)
    elif mode == "multiclass" and target.dim() != input.dim():
        raise multiclass_target_error(name, input, target)
    else:
        check_same_shape(name, input, target)
        check_floating(name, "target", target)
    check_classes_and_range(name, input, c, classes, from_logits)
    # probabilities are used as given (range-checked above)
    p = x if not from_logits else x.softmax(1) if mode == "multiclass" else x.sigmoid()
    if index:
        labels = torch.arange(c, device=target.device).view(1, c, *[1] * (input.dim() - 2))
        t = (target.unsqueeze(1) == labels).to(p.dtype)
    else:
        t = target.to(p.dtype)
    return Dense(p, t)


def select(loss: torch.Tensor, classes: list[int] | None) -> torch.Tensor:
    """(N, C) per-class values, restricted to ``classes``."""
    return loss if classes is None else loss[:, list(classes)]
