"""Helpers shared by the torch.nn-family plugin modules (shapes, weights, messages)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossregError, check_class_weight, reduction_field
from lossreg.errors import format_shape

REDUCTION: Any = reduction_field("see Shape:")


def _shape(t: torch.Tensor) -> str:
    return format_shape(t.shape)


def _fail(loss: str, message: str) -> None:
    raise LossregError(f"{loss}: {message}")


def _check_ndim(
    loss: str, name: str, t: torch.Tensor, allowed: tuple[int, ...], layout: str
) -> None:
    if t.dim() not in allowed:
        _fail(loss, f"{name} must have shape {layout}, got {_shape(t)}")


def _check_weight(loss: str, weight: torch.Tensor | None, num_classes: int) -> None:
    check_class_weight(loss, weight, num_classes, "last dim")


def _as(weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if weight is None else weight.to(dtype=like.dtype, device=like.device)
