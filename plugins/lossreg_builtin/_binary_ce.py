"""Binary cross-entropy (equal to ``torch.nn``'s ``BCEWithLogitsLoss`` and ``BCELoss``; with
label smoothing, ``ignore_index`` and the call-time ``mask``) and weighted binary
cross-entropy."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from lossreg import LossregError, Weights, check_floating, check_range, check_same_shape

from ._class_common import ClassificationParams, _shape
from ._common import options, reduce, upcast
from ._mask import check_mask, masked_reduce


# -- binary cross-entropy ---------------------------------------------------------------------
class BCEParams(ClassificationParams):
    from_logits: bool = Field(
        True,
        description="input is logits (computed stably, as BCEWithLogitsLoss); false: "
        "probabilities in [0, 1] (as BCELoss)",
    )
    weight: Weights | None = Field(
        None, description="rescaling weight, broadcast against the input's last dim (PyTorch's)"
    )
    pos_weight: Weights | None = Field(
        None,
        description="weight of the positive term, broadcast against the last dim; logits only",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="target y becomes y (1 - e) + (1 - y) e (smp's smooth_factor)",
    )
    ignore_index: int | None = Field(
        None,
        description="target value whose elements count nowhere (loss, gradient, the mean's "
        "count); null: none",
    )

    @model_validator(mode="after")
    def _pos_weight_needs_logits(self) -> BCEParams:
        if self.pos_weight is not None and not self.from_logits:
            raise ValueError(
                "pos_weight applies to logits only (from_logits: true); PyTorch's BCELoss "
                "on probabilities has no pos_weight"
            )
        return self


def _last_dim_weight(
    name: str, arg: str, w: torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor | None:
    if w is None:
        return None
    last = x.shape[-1] if x.dim() else 1
    if w.numel() not in (1, last):
        raise LossregError(
            f"{name}: {arg} has {w.numel()} entries but input of shape {_shape(x)} has "
            f"{last} in its last dim; {arg} broadcasts against the last dim (1 or {last} entries)"
        )
    return w.to(dtype=x.dtype, device=x.device)


def bce(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    from_logits: bool = True,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy, -w [pw y log p + (1 - y) log(1 - p)].

    ``from_logits=True`` (default): p = sigmoid(input), computed as log-sigmoid (equals
    ``torch.nn.BCEWithLogitsLoss``, so ``0.5*dice + bce`` share one model output).
    ``from_logits=False``: input holds probabilities in [0, 1] (equals ``torch.nn.BCELoss``,
    whose logs are clamped at -100); anything outside [0, 1] is an error.

    ``label_smoothing`` e: the target y becomes y (1 - e) + (1 - y) e (smp's
    ``smooth_factor``). ``ignore_index``: target elements equal to it count nowhere; ``mean``
    divides by the number of the others (smp's ``SoftBCEWithLogitsLoss`` divides by every
    element: its mean is ours times the kept fraction), 0 when nothing is left.
    ``mask`` (call time, optional): per-element weights, bool or floating in [0, 1], of the
    target's shape, or without dim 1 (the class dim) of an (N, C, *) target; 0 counts
    nowhere and ``mean`` is sum(mask l) / sum(mask), 0 for an empty mask.

    Shape: input and target ``(*)``, equal; ``weight`` and ``pos_weight`` broadcast against
    the last dim, as in PyTorch; ``none`` gives ``(*)``.

    >>> bce(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
    tensor(0.2201)
    >>> bce(torch.tensor([2.0, -1.0]), torch.tensor([1.0, -1.0]), ignore_index=-1)
    tensor(0.1269)
    """
    options(BCEParams, "bce", locals(), local=True)
    check_same_shape("bce", input, target)
    check_floating("bce", "input", input)
    x, t = upcast(input, target)
    t = t.to(x.dtype)
    w = _last_dim_weight("bce", "weight", weight, x)
    keep = None
    if ignore_index is not None:
        keep = t != ignore_index
        t = torch.where(keep, t, 0.0)
        check_range("bce", f"target (elements other than ignore_index={ignore_index})", t)
        keep = keep.to(x.dtype)
    if mask is not None:
        m = check_mask("bce", mask, target.shape, class_dim=target.dim() >= 2, like=x)
        keep = m if keep is None else keep * m
    if label_smoothing:
        t = t * (1 - 2 * label_smoothing) + label_smoothing
    red = reduction if keep is None else "none"
    if from_logits:
        pw = _last_dim_weight("bce", "pos_weight", pos_weight, x)
        out = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=red)
    else:  # pos_weight is None here: a rule of BCEParams
        check_range("bce", "input (probabilities, from_logits=False)", x.detach(), 0.0, 1.0)
        out = F.binary_cross_entropy(x, t, weight=w, reduction=red)
    if keep is not None:
        out = masked_reduce(out, keep, reduction, "bce")
    return out.to(input.dtype)


# -- weighted cross-entropy -------------------------------------------------------------------
class WeightedCEParams(ClassificationParams):
    w_pos: float = Field(1.0, ge=0, description="weight of the positive term y log p")
    w_neg: float = Field(1.0, ge=0, description="weight of the negative term (1-y) log(1-p)")
    balance: Literal["batch"] | None = Field(
        None,
        description="`batch`: w_pos = n_neg/n and w_neg = n_pos/n from each batch's target "
        "(the rarer class weighs more); leave w_pos and w_neg at 1 then",
    )

    @model_validator(mode="after")
    def _balance_or_weights(self) -> WeightedCEParams:
        if self.balance is not None and (self.w_pos != 1.0 or self.w_neg != 1.0):
            raise ValueError(
                "balance: batch sets w_pos and w_neg from the target; leave them at 1 "
                f"(got w_pos={self.w_pos}, w_neg={self.w_neg})"
            )
        return self


def weighted_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    w_pos: float = 1.0,
    w_neg: float = 1.0,
    balance: str | None = None,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted binary cross-entropy on logits: -(w_pos y log p + w_neg (1-y) log(1-p)).

    p = sigmoid(input), both logs as log-sigmoid. ``balance='batch'`` sets w_pos = n_neg/n
    and w_neg = n_pos/n from the target (soft counts: n_pos = sum of target), so 20
    positives of 100 give w_pos 0.8, w_neg 0.2: the class-balanced cross-entropy of
    Xie and Tu 2015 ("Holistically-Nested Edge Detection", eq. 2).
    With w_pos = w_neg = 1 it is ``bce``; with w_neg = 1 it is ``bce`` with pos_weight w_pos.

    Shape: input and target ``(*)``, equal, target in [0, 1]; ``none`` gives ``(*)``.
    ``mask`` (call time, optional): per-element weights as for :func:`bce`; with
    ``balance='batch'`` the counts are those of the masked elements.

    >>> weighted_cross_entropy(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]), w_pos=2.0)
    tensor(0.2836)
    """
    options(WeightedCEParams, "weighted_cross_entropy", locals(), local=True)
    name = "weighted_cross_entropy"
    check_same_shape(name, input, target)
    check_floating(name, "input", input)
    x, t = upcast(input, target)
    t = t.to(x.dtype)
    check_range(name, "target", t.detach(), 0.0, 1.0)
    m = None
    if mask is not None:
        m = check_mask(name, mask, target.shape, class_dim=target.dim() >= 2, like=x)
    wp: float | torch.Tensor = w_pos
    wn: float | torch.Tensor = w_neg
    if balance == "batch":  # else None: WeightedCEParams allows nothing else
        if m is None:
            n: float | torch.Tensor = t.numel()
            n_pos = t.detach().sum()
        else:  # the counts of the elements that count
            mb = m.expand_as(t)
            n, n_pos = mb.sum(), (t.detach() * mb).sum()
        wp, wn = (n - n_pos) / max(n, 1), n_pos / max(n, 1)
    loss = -(wp * t * F.logsigmoid(x) + wn * (1 - t) * F.logsigmoid(-x))
    if m is not None:
        return masked_reduce(loss, m, reduction, name).to(input.dtype)
    return reduce(loss, reduction, name).to(input.dtype)
