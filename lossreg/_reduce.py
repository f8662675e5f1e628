"""``reduce``: the ``reduction`` every loss takes, applied one way for every plugin."""

from __future__ import annotations

from typing import Literal

import torch

from .errors import LossregError

__all__ = ["reduce"]


def reduce(
    loss: torch.Tensor,
    reduction: str,
    loss_name: str = "loss",
    *,
    empty_mean: Literal["nan", "zero"] = "nan",
) -> torch.Tensor:
    """Apply ``reduction`` (``mean``, ``sum`` or ``none``) to an elementwise loss.

    An unknown reduction is refused, naming the loss. ``empty_mean="zero"``: the mean of no
    values is 0, still attached to the graph; by default it is NaN, as in PyTorch.

    >>> import torch
    >>> loss = torch.tensor([1.0, 3.0])
    >>> reduce(loss, "mean"), reduce(loss, "sum"), reduce(loss, "none")
    (tensor(2.), tensor(4.), tensor([1., 3.]))
    >>> reduce(torch.zeros(0), "mean", empty_mean="zero")
    tensor(0.)
    >>> reduce(loss, "avg", "my_loss")
    Traceback (most recent call last):
    ...
    lossreg.errors.LossregError: my_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'
    """
    if reduction == "mean":
        if empty_mean == "zero" and loss.numel() == 0:
            return loss.sum()
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise LossregError(f"{loss_name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
