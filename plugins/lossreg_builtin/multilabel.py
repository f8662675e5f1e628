"""Multilabel classification: the asymmetric loss (ASL) of Ridnik et al. 2021."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import Params, Reduction, check_dims, check_floating, check_range, check_same_shape

from ._common import options, reduce

__all__ = ["asymmetric"]


class AsymmetricParams(Params):
    gamma_pos: float = Field(0.0, ge=0, le=1e3, description="focusing of the positive term")
    gamma_neg: float = Field(4.0, ge=0, le=1e3, description="focusing of the negative term")
    clip: float = Field(
        0.05,
        ge=0,
        le=1,
        description="probability margin m: negatives use p_m = max(p - m, 0) (0: no clipping)",
    )
    eps: float = Field(
        1e-8, gt=0, le=1, description="probabilities are clamped to >= eps before the log"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over elements, `sum` (ASL's and timm's original reduction), or "
        "`none` (input's shape)",
    )


def _pow(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """base^exponent for base >= 0, with 0^e = 0 (e > 0) or 1 (e = 0) and no gradient at
    base 0: torch.pow's derivative e 0^(e - 1) is infinite there for e < 1 (NaN downstream)."""
    pos = base > 0
    safe = torch.where(pos, base, 1.0)
    at_zero = (exponent == 0).to(base.dtype)
    return torch.where(pos, torch.exp(exponent * torch.log(safe)), at_zero)


def asymmetric(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    """Asymmetric loss for multilabel classification (Ridnik et al. 2021, "Asymmetric Loss
    For Multi-Label Classification", ICCV).

    With p = sigmoid(input), target y in [0, 1] and p_m = max(p - clip, 0):
    -[y (1 - p)^gamma_pos log(max(p, eps)) + (1 - y) p_m^gamma_neg log(max(1 - p_m, eps))],
    the focusing weight (1 - p_t)^(gamma_pos y + gamma_neg (1 - y)) taken at
    p_t = y p + (1 - y)(1 - p_m) for soft targets, as timm computes it. Negatives are
    down-weighted (gamma_neg) and very easy ones (p < clip) discarded.

    Equals timm's ``AsymmetricLossMultiLabel`` (``timm/loss/asymmetric_loss.py``) with the
    same gammas, clip and eps: its ``sum`` is our ``sum``, its ``mean`` our ``mean``. The
    defaults are the paper's (gamma_pos 0; timm's is 1). 1 - p is evaluated as
    sigmoid(-input) and the clamped logs as log-sigmoids (no 1 - p cancellation).

    Shape: input (logits) and target ``(N, C, *)``, equal; ``none`` gives ``(N, C, *)``.

    >>> asymmetric(torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]]))
    tensor(0.0637)
    """
    options(AsymmetricParams, "asymmetric", locals(), local=True)
    name = "asymmetric"
    check_floating(name, "input", input)
    check_dims(name, "input", input, 2, "(N, C, *) logits")
    check_same_shape(name, input, target)
    check_range(name, "target (multilabel, in [0, 1])", target.detach(), 0.0, 1.0)
    dtype = input.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    x, y = input.to(work), target.to(work)
    p, q = torch.sigmoid(x), torch.sigmoid(-x)  # q = 1 - p on its own side
    log_eps = math.log(eps)
    log_pos = F.logsigmoid(x).clamp(min=log_eps)  # log(max(p, eps))
    if clip > 0:  # log(max(1 - p_m, eps)), 1 - p_m = min(1 - p + clip, 1)
        log_neg = torch.log((q + clip).clamp(max=1.0).clamp(min=eps))
    else:
        log_neg = F.logsigmoid(-x).clamp(min=log_eps)
    loss = y * log_pos + (1 - y) * log_neg
    if gamma_pos > 0 or gamma_neg > 0:
        p_m = (p - clip).clamp(min=0.0) if clip > 0 else p
        one_minus_pt = y * q + (1 - y) * p_m
        loss = loss * _pow(one_minus_pt, gamma_pos * y + gamma_neg * (1 - y))
    return reduce(-loss, reduction, name, empty_mean="zero").to(dtype)
