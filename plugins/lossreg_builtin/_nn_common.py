"""Helpers shared by the torch.nn-family plugin modules (shapes, weights, messages)."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossregError, check_class_weight, reduction_field
from lossreg.errors import format_shape

from ._common import nan_if_input_nan

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


def _empty_batch(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """The loss of no samples (input ``(0, C)``): 0 attached to ``x`` (zero gradient), or the
    empty ``(0,)`` for ``none``. PyTorch's multi-margin kernels return uninitialised memory."""
    per_sample = x.sum(-1)
    return per_sample if reduction == "none" else per_sample.sum() * 0.0


def _keep_nan(out: torch.Tensor, x: torch.Tensor, reduction: str) -> torch.Tensor:
    """A NaN score makes the loss NaN: PyTorch's hinge kernels take max(0, NaN) = 0 and would
    report a finite loss for a NaN input."""
    return nan_if_input_nan(out, x, reduction, -1)
