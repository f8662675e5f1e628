"""Regression losses: L1, MSE, smooth L1, Huber (equal to ``torch.nn``) and Sobolev."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

import lossreg
from lossreg import Params, Reduction, check_dims, check_same_shape

from ._common import options, reduce, upcast
from ._mask import check_mask, masked_reduce

REDUCTION: Any = lossreg.reduction_field("input's shape")


class RegressionParams(Params):
    reduction: Reduction = REDUCTION


def _masked(
    name: str,
    fn: Callable[..., torch.Tensor],
    input: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    reduction: str,
    **kw: float,
) -> torch.Tensor:
    """``fn`` elementwise, then weighted by the call-time mask (the target's shape)."""
    m = check_mask(name, mask, target.shape, class_dim=False, like=input)
    return masked_reduce(fn(input, target, reduction="none", **kw), m, reduction, name)


def l1(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean absolute error, |input - target|; equals ``torch.nn.L1Loss``.

    Shape: input and target ``(*)``, equal; ``reduction='none'`` gives ``(*)``.
    ``mask`` (call time, optional): bool or floating in [0, 1] of the target's shape; 0
    counts nowhere and ``mean`` is sum(mask |d|) / sum(mask), 0 for an empty mask.

    >>> l1(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
    tensor(1.5000)
    >>> l1(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]), mask=torch.tensor([True, False]))
    tensor(1.)
    """
    options(RegressionParams, "l1", locals(), local=True)
    check_same_shape("l1", input, target)
    if mask is not None:
        return _masked("l1", F.l1_loss, input, target, mask, reduction)
    return F.l1_loss(input, target, reduction=reduction)


def mse(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error, (input - target)^2; equals ``torch.nn.MSELoss``.

    Shape: input and target ``(*)``, equal; ``reduction='none'`` gives ``(*)``.
    ``mask``: as :func:`l1`.

    >>> mse(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
    tensor(2.5000)
    """
    options(RegressionParams, "mse", locals(), local=True)
    check_same_shape("mse", input, target)
    if mask is not None:
        return _masked("mse", F.mse_loss, input, target, mask, reduction)
    return F.mse_loss(input, target, reduction=reduction)


class SmoothL1Params(RegressionParams):
    beta: float = Field(
        1.0, ge=0, description="where the quadratic part turns linear; 0 gives plain L1"
    )


def smooth_l1(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float = 1.0,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Smooth L1 (Girshick 2015, Fast R-CNN): 0.5 d^2/beta if |d| < beta else |d| - 0.5 beta.

    Equals ``torch.nn.SmoothL1Loss``. Shape: ``(*)``, equal; ``none`` gives ``(*)``.
    ``mask``: as :func:`l1`.

    >>> smooth_l1(torch.tensor([0.5, 3.0]), torch.zeros(2))
    tensor(1.3125)
    """
    options(SmoothL1Params, "smooth_l1", locals(), local=True)
    check_same_shape("smooth_l1", input, target)
    if mask is not None:
        return _masked("smooth_l1", F.smooth_l1_loss, input, target, mask, reduction, beta=beta)
    return F.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


class HuberParams(RegressionParams):
    delta: float = Field(1.0, gt=0, description="threshold between the quadratic and linear parts")


def huber(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    delta: float = 1.0,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Huber loss: 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta); equals
    ``torch.nn.HuberLoss``. Shape: ``(*)``, equal; ``none`` gives ``(*)``. ``mask``: as
    :func:`l1`.

    >>> huber(torch.tensor([0.5, 3.0]), torch.zeros(2), delta=2.0)
    tensor(2.0625)
    """
    options(HuberParams, "huber", locals(), local=True)
    check_same_shape("huber", input, target)
    if mask is not None:
        return _masked("huber", F.huber_loss, input, target, mask, reduction, delta=delta)
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


class SobolevParams(RegressionParams):
    grad_weight: float = Field(
        1.0, ge=0, description="lambda: weight of the squared finite-difference error"
    )
    order: int = Field(1, ge=1, le=1, description="derivative order; only 1 is implemented")
    reduction: Reduction = Field(
        "mean", description="`mean` over the batch, `sum`, or `none` (one value per sample)"
    )


def sobolev(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    grad_weight: float = 1.0,
    order: int = 1,
    reduction: str = "mean",
) -> torch.Tensor:
    """H1-type Sobolev loss (Czarnecki et al. 2017, "Sobolev Training for Neural Networks").

    Per sample: mean((u - v)^2) + lambda * sum over spatial dims d of
    mean((D_d u - D_d v)^2), with D_d the forward difference along d.

    Shape: input and target ``(N, C, *spatial)`` with 1 to 3 spatial dims; ``none`` gives
    ``(N,)``.

    >>> u = torch.tensor([[[0.0, 1.0, 3.0]]])
    >>> sobolev(u, torch.zeros_like(u))
    tensor(5.8333)
    """
    options(SobolevParams, "sobolev", locals(), local=True)
    check_same_shape("sobolev", input, target)
    check_dims("sobolev", "input", input, 3, "(N, C, *spatial) with 1 to 3 spatial dims")
    if input.dim() > 5:
        raise lossreg.LossregError(
            f"sobolev: input must have 1 to 3 spatial dims (N, C, *spatial), got shape "
            f"{tuple(input.shape)}"
        )
    u, v = upcast(input, target)
    diff = u - v
    batch_dims = tuple(range(1, diff.dim()))
    loss = diff.square().mean(dim=batch_dims)
    for d in range(2, diff.dim()):
        if diff.shape[d] > 1:
            loss = loss + grad_weight * torch.diff(diff, dim=d).square().mean(dim=batch_dims)
    return reduce(loss, reduction, "sobolev").to(input.dtype)
