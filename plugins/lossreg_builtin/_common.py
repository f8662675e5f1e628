"""Helpers shared by the built-in plugins (not part of the core: they know loss shapes)."""

from __future__ import annotations

import torch

from lossreg import LossregError

__all__ = ["reduce", "upcast"]


def reduce(
    loss: torch.Tensor, reduction: str, name: str = "loss", *, empty_mean: str = "nan"
) -> torch.Tensor:
    """Apply ``reduction`` to an elementwise loss.

    ``empty_mean="zero"``: the mean of no values is 0, still attached to the graph (the overlap
    losses' empty-batch policy); by default it is NaN, as in PyTorch.
    """
    if reduction == "mean":
        if empty_mean == "zero" and loss.numel() == 0:
            return loss.sum()
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise LossregError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def upcast(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """half and bfloat16 to float32 (sums and ratios in float32); others unchanged."""
    return tuple(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors)
