"""ACME's losses for lossreg: one module, one params model, one hook."""

from __future__ import annotations

import torch
from pydantic import Field

import lossreg


class CharbonnierParams(lossreg.Params):
    eps: float = Field(
        1e-3, gt=0, description="smoothing: below |d| ~ eps the loss is quadratic, above it ~ |d|"
    )
    reduction: lossreg.Reduction = lossreg.reduction_field("input's shape")


def charbonnier(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3, reduction: str = "mean"
) -> torch.Tensor:
    """Charbonnier loss, sqrt((input - target)^2 + eps^2): a differentiable L1.

    Charbonnier et al. 1994, "Two deterministic half-quadratic regularization algorithms
    for computed imaging"; the reconstruction loss of LapSRN (Lai et al. 2017).

    Shape: input and target ``(*)``, equal; ``reduction='none'`` gives ``(*)``.

    >>> charbonnier(torch.tensor([3.0, -4.0]), torch.zeros(2), eps=0.0001)
    tensor(3.5000)
    """
    lossreg.check_same_shape("acme_charbonnier", input, target)
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    d = x - target.to(x.dtype)
    # eps > 0 keeps sqrt away from 0, so the gradient d / sqrt(d^2 + eps^2) is finite at d = 0.
    loss = torch.sqrt(d * d + eps * eps)
    return lossreg.reduce(loss, reduction, "acme_charbonnier").to(input.dtype)


@lossreg.hookimpl
def register_losses(register):  # type: ignore[no-untyped-def]
    register(
        "acme_charbonnier",
        charbonnier,
        params=CharbonnierParams,
        tags=("regression", "acme"),
        inputs={"input": "real", "target": "real"},
    )
