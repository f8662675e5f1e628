"""Dense detection heads' classification and box-distribution losses: varifocal (VFNet),
quality focal and distribution focal (GFL).

References are mmdetection 3.x ``mmdet/models/losses/varifocal_loss.py`` (``varifocal_loss``)
and ``gfocal_loss.py`` (``quality_focal_loss_tensor_target``, ``distribution_focal_loss``);
the tests write them out in float64. Averaging differs where mmdet sums over classes first:
see each docstring.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import LossregError, Params, Reduction, check_dims, check_floating, check_same_shape

from ._common import options, reduce

__all__ = ["distribution_focal", "quality_focal", "varifocal"]

REDUCTION: Any = Field("mean", description="`mean` over elements, `sum`, or `none` (input's shape)")


def _work(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    dtype = tensors[0].dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    return tuple(t.to(work) for t in tensors)


def _check_target_range(loss: str, target: torch.Tensor, high: float, what: str, fix: str) -> None:
    if target.numel() == 0:
        return
    lo_t, hi_t = torch.aminmax(target.detach())
    lo, hi = float(lo_t), float(hi_t)
    if not (lo >= 0.0 and hi <= high):  # also catches NaN
        raise LossregError(
            f"{loss}: target must hold {what} in [0, {high:g}], found values in "
            f"[{lo:g}, {hi:g}]; {fix}"
        )


def _check_dense(loss: str, input: torch.Tensor, target: torch.Tensor) -> None:
    check_floating(loss, "input", input)
    check_same_shape(loss, input, target)
    _check_target_range(
        loss,
        target,
        1.0,
        "soft quality scores (e.g. the IoU of the predicted box with its ground truth; 0 for "
        "negatives)",
        "clamp IoU-aware targets to [0, 1] (a 0/255 mask: divide by 255)",
    )


def _reduce(loss: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    return reduce(loss, reduction, name, empty_mean="zero")


def _pow_sigmoid(x: torch.Tensor, gamma: float) -> torch.Tensor:
    # sigmoid(x)^gamma = exp(gamma logsigmoid(x)): finite derivative at p -> 0 for every gamma
    return torch.exp(gamma * F.logsigmoid(x))


# -- varifocal --------------------------------------------------------------------------------
class VarifocalParams(Params):
    alpha: float = Field(
        0.75, ge=0, le=1e30, description="weight of the negatives' term (not focal's alpha)"
    )
    gamma: float = Field(2.0, ge=0, le=1e3, description="focusing: negatives weigh alpha p^gamma")
    iou_weighted: bool = Field(
        True, description="weight each positive by its target q (false: weight 1)"
    )
    reduction: Reduction = REDUCTION


def varifocal(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.75,
    gamma: float = 2.0,
    iou_weighted: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Varifocal loss (Zhang et al. 2021, "VarifocalNet: An IoU-aware Dense Object Detector").

    With p = sigmoid(input) and the IoU-aware target q in [0, 1]:
    q > 0: -q (q log p + (1 - q) log(1 - p)) (``iou_weighted=False``: without the leading q);
    q = 0: -alpha p^gamma log(1 - p). Positives are not down-weighted, negatives are, as in
    focal loss. Equals mmdet's ``varifocal_loss`` (``mean`` over every element, as mmdet's),
    the BCE on logits and p^gamma in log space, so logits of +-1e4 give finite gradients.

    Shape: input (logits) and target ``(*)``, e.g. ``(N, C)``, equal; ``none`` gives ``(*)``.

    >>> varifocal(torch.tensor([[2.0, -1.0]]), torch.tensor([[0.8, 0.0]]))
    tensor(0.2193)
    """
    options(VarifocalParams, "varifocal", locals(), local=True)
    _check_dense("varifocal", input, target)
    x, q = _work(input, target)
    bce = F.binary_cross_entropy_with_logits(x, q, reduction="none")
    positive = q if iou_weighted else torch.ones_like(q)
    weight = torch.where(q > 0, positive, alpha * _pow_sigmoid(x, gamma))
    return _reduce(bce * weight, reduction, "varifocal").to(input.dtype)


# -- quality focal ------------------------------------------------------------------------------
class QualityFocalParams(Params):
    beta: float = Field(2.0, ge=0, le=1e3, description="focusing: each term weighs |q - p|^beta")
    reduction: Reduction = REDUCTION


def quality_focal(
    input: torch.Tensor, target: torch.Tensor, *, beta: float = 2.0, reduction: str = "mean"
) -> torch.Tensor:
    """Quality focal loss (Li et al. 2020, "Generalized Focal Loss", NeurIPS), dense target.

    -|q - p|^beta ((1 - q) log(1 - p) + q log p), p = sigmoid(input), q in [0, 1] the joint
    class-quality target (the IoU for the positive class, 0 elsewhere).

    Equals mmdet's ``quality_focal_loss_tensor_target`` elementwise. Averaging: mmdet sums
    over classes (dim 1) and averages over N, so its ``mean`` of an ``(N, C)`` input is our
    ``sum`` / N; our ``mean`` averages over every element. Where q = p exactly (including
    p = q = 0 at logits of -1e4) the weight and its gradient are 0, finite for every beta.

    Shape: input (logits) and target ``(*)``, e.g. ``(N, C)``, equal; ``none`` gives ``(*)``.

    >>> quality_focal(torch.tensor([[2.0, -1.0]]), torch.tensor([[0.8, 0.0]]))
    tensor(0.0130)
    """
    options(QualityFocalParams, "quality_focal", locals(), local=True)
    _check_dense("quality_focal", input, target)
    x, q = _work(input, target)
    bce = F.binary_cross_entropy_with_logits(x, q, reduction="none")
    gap = (q - torch.sigmoid(x)).abs()
    zero = gap == 0
    weight = torch.where(zero, 0.0 if beta > 0 else 1.0, torch.where(zero, 1.0, gap) ** beta)
    return _reduce(bce * weight, reduction, "quality_focal").to(input.dtype)


# -- distribution focal ---------------------------------------------------------------------------
class DistributionFocalParams(Params):
    reduction: Reduction = Field(
        "mean", description="`mean` over targets, `sum`, or `none` (the target's shape)"
    )


def distribution_focal(
    input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Distribution focal loss (Li et al. 2020, "Generalized Focal Loss", NeurIPS).

    The input holds logits over n bins 0..n-1 for a continuous target y in [0, n - 1]; with
    l = floor(y) and r = l + 1: CE(input, l) (r - y) + CE(input, r) (y - l), the softmax's
    mass pushed onto the two bins around y. A target of exactly n - 1 is the cross-entropy to
    the last bin (l = n - 2, r = n - 1; mmdet would index bin n there, so its callers clamp
    targets below n - 1). Otherwise equals mmdet's ``distribution_focal_loss``.

    Shape: input ``(*, n)`` logits (``(N, n)`` in mmdet), n >= 2 bins in the last dim; target
    ``(*)`` floating in [0, n - 1]; ``none`` gives ``(*)``.

    >>> distribution_focal(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([1.25]))
    tensor(0.6576)
    """
    options(DistributionFocalParams, "distribution_focal", locals(), local=True)
    name = "distribution_focal"
    check_floating(name, "input", input)
    check_dims(name, "input", input, 1, "(*, n_bins)")
    n = int(input.shape[-1])
    if n < 2 or tuple(target.shape) != tuple(input.shape[:-1]):
        raise LossregError(
            f"{name}: input {tuple(input.shape)} must be (*, n_bins) with n_bins >= 2 and "
            f"target the input's shape without its last dim, {tuple(input.shape[:-1])}; got "
            f"target {tuple(target.shape)}"
        )
    if not target.is_floating_point():
        target = target.to(input.dtype if input.dtype == torch.float64 else torch.float32)
    _check_target_range(
        name,
        target,
        float(n - 1),
        f"continuous bin positions (the input has {n} bins)",
        "divide distances by the bin width (reg_max) so they fall in [0, n_bins - 1]",
    )
    x, y = _work(input, target)
    left = y.detach().floor().clamp_(max=n - 2)
    logp = F.log_softmax(x, dim=-1)
    idx = left.long().unsqueeze(-1)
    ce_left = -logp.gather(-1, idx).squeeze(-1)
    ce_right = -logp.gather(-1, idx + 1).squeeze(-1)
    loss = ce_left * (left + 1 - y) + ce_right * (y - left)
    return _reduce(loss, reduction, name).to(input.dtype)
