"""Helpers shared by the torch.nn-family plugin modules (shapes, weights, messages)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from lossreg import (
    LossregError,
)

REDUCTION: Any = Field("mean", description="`mean` over elements, `sum`, or `none` (see Shape:)")


def _shape(t: torch.Tensor) -> str:
    dims = tuple(int(d) for d in t.shape)
    return f"({dims[0]},)" if len(dims) == 1 else str(dims)


def _fail(loss: str, message: str) -> None:
    raise LossregError(f"{loss}: {message}")


def _check_ndim(
    loss: str, name: str, t: torch.Tensor, allowed: tuple[int, ...], layout: str
) -> None:
    if t.dim() not in allowed:
        _fail(loss, f"{name} must have shape {layout}, got {_shape(t)}")


def _check_weight(loss: str, weight: torch.Tensor | None, num_classes: int) -> None:
    if weight is not None and weight.numel() != num_classes:
        _fail(
            loss,
            f"weight has {weight.numel()} entries but input has {num_classes} classes "
            "(last dim); give one weight per class",
        )


def _as(weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if weight is None else weight.to(dtype=like.dtype, device=like.device)
