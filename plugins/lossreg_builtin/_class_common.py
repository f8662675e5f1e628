"""Shared by the classification losses: option fields, the class-target check, class
weights and the all-ignored policy."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from lossreg import (
    LossregError,
    Params,
    Reduction,
    check_class_indices,
    check_class_weight,
    check_dims,
    check_floating,
    check_same_device,
    reduction_field,
)
from lossreg.errors import format_shape

Mode = Literal["binary", "multiclass", "multilabel"]
REDUCTION: Any = reduction_field("per element")
WEIGHT: Any = Field(None, description="per-class weight, a list of C numbers (rescales each class)")
IGNORE: Any = Field(
    -100, description="target class index whose elements add nothing to the loss or its mean"
)


class ClassificationParams(Params):
    reduction: Reduction = REDUCTION


# -- shared checks --------------------------------------------------------------------------
def _shape(t: torch.Tensor | torch.Size) -> str:
    return format_shape(t.shape if isinstance(t, torch.Tensor) else t)


def _check_class_target(name: str, input: torch.Tensor, target: torch.Tensor, ignore: int) -> int:
    """Input ``(N, C, *)`` or ``(C,)``; class-index target ``(N, *)`` (``()`` for ``(C,)``)
    with values in [0, C) or ``ignore``; or, if floating, probabilities of the input's shape.
    Returns C."""
    check_floating(name, "input", input)
    check_dims(name, "input", input, 1, "(N, C, *) or (C,)")
    check_same_device(name, input, target)
    c = input.shape[1] if input.dim() > 1 else input.shape[0]
    if target.is_floating_point():
        if target.shape != input.shape:
            raise LossregError(
                f"{name}: probability target has shape {_shape(target)} but input has shape "
                f"{_shape(input)}; they must be equal (class-index targets are integer tensors "
                "without the class dim)"
            )
        return int(c)
    want = input.shape[:1] + input.shape[2:] if input.dim() > 1 else torch.Size([])
    if target.shape != want:
        raise LossregError(
            f"{name}: class-index target has shape {_shape(target)} but input of shape "
            f"{_shape(input)} needs target shape {_shape(want)} (input without its class dim 1)"
        )
    check_class_indices(name, target, int(c), ignore)
    return int(c)


def _class_weight(
    name: str, weight: torch.Tensor | None, c: int, like: torch.Tensor
) -> torch.Tensor | None:
    if weight is None:
        return None
    check_class_weight(name, weight, c)
    return weight.to(dtype=like.dtype, device=like.device)


def _all_ignored_is_zero(
    out: torch.Tensor, target: torch.Tensor, ignore_index: int, reduction: str
) -> torch.Tensor:
    # PyTorch's mean over zero non-ignored elements is 0/0 = nan; ours is 0 (no element, no
    # loss), the policy every lossreg loss follows. The nan branch has a zero gradient.
    if reduction != "mean" or target.is_floating_point():
        return out
    return torch.where((target != ignore_index).any(), out, torch.zeros_like(out))
