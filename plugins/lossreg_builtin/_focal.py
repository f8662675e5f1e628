"""The focal loss (Lin et al. 2017): options, checks and the choice of path; the math is
in :mod:`._focal_sigmoid` (binary/multilabel) and :mod:`._focal_softmax` (multiclass)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator

from lossreg import (
    LossregError,
    Reduction,
    Weights,
    check_dims,
    check_floating,
    check_range,
    check_same_shape,
)

from ._class_common import ClassificationParams, Mode, _check_class_target, _class_weight
from ._common import options, reduce, upcast
from ._focal_sigmoid import binary_focal, binary_focal_reduced
from ._focal_softmax import softmax_focal, softmax_focal_reduced
from ._mask import check_mask, masked_reduce

Probability = Annotated[float, Field(ge=0, le=1)]


class FocalParams(ClassificationParams):
    mode: Mode = Field("binary", description="`binary`, `multilabel` (sigmoid) or `multiclass`")
    gamma: float = Field(
        2.0, ge=0, description="focusing: (1 - p_t)^gamma down-weights easy examples; 0 is CE"
    )
    alpha: Probability | Literal["auto"] | None = Field(
        "auto",
        description="binary/multilabel: weight of positives (1 - alpha for negatives); "
        "`auto` (the default) is 0.25 there (torchvision's) and none in multiclass; null: no "
        "alpha weighting; a number is refused in multiclass (use weight)",
    )
    weight: Weights | None = Field(None, description="multiclass: per-class weight (C numbers)")
    ignore_index: int = Field(
        -100,
        description="target value whose elements add nothing to the loss or its mean, in every "
        "mode (multiclass: a class index; binary/multilabel: a target value, as kornia's)",
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` (binary: over elements; multiclass: weighted mean over "
        "non-ignored elements, as cross_entropy), `sum`, or `none`",
    )

    @model_validator(mode="before")
    @classmethod
    def _auto_alpha(cls, data: Any) -> Any:
        # "auto" (given or omitted) is resolved here, once: 0.25 in binary/multilabel (as
        # torchvision's sigmoid_focal_loss), none in multiclass; a config shows the number
        if isinstance(data, dict) and data.get("alpha", "auto") == "auto":
            data = {**data, "alpha": None if data.get("mode") == "multiclass" else 0.25}
        return data

    @model_validator(mode="after")
    def _options_of_mode(self) -> FocalParams:
        if self.mode == "multiclass" and self.alpha is not None:
            raise ValueError(
                "alpha applies to binary/multilabel mode; for multiclass give per-class weight"
            )
        if self.mode != "multiclass" and self.weight is not None:
            raise ValueError(f"weight applies to multiclass mode only (mode is {self.mode!r})")
        return self


def focal(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    gamma: float = 2.0,
    alpha: float | str | None = "auto",
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection").

    binary/multilabel: -alpha_t (1 - p_t)^gamma log p_t with p = sigmoid(input),
    p_t = p y + (1 - p)(1 - y), alpha_t = alpha y + (1 - alpha)(1 - y); equals torchvision's
    ``sigmoid_focal_loss`` (``alpha='auto'``, the default, is 0.25; None drops alpha_t), soft
    targets too.
    multiclass: -w_y (1 - p_y)^gamma log p_y with p = softmax(input); gamma 0 without weight
    is ``cross_entropy``. ``mean`` is sum(w_y loss) / sum(w_y) over non-ignored elements, the
    weighted mean of ``cross_entropy`` (0 if nothing is left); probability targets
    (-sum_c w_c t_c (1 - p_c)^gamma log p_c) average over elements.

    Numerics: binary 1 - p_t = y sigmoid(-x) + (1 - y) sigmoid(x), each sigmoid on its own
    side (no 1 - p cancellation), in a kernel whose analytic gradient never forms
    (1 - p_t)^(gamma - 1); multiclass (1 - p_y)^gamma = exp(gamma log(1 - p_y)), log(1 - p_y)
    a log-sum-exp over the other classes. Values and gradients stay finite for logits up to
    +-1e4 and every gamma >= 0, gamma < 1 included (naive (1 - p)^gamma has an infinite
    derivative at p = 1).

    Shape: binary ``(N, 1, *)`` or ``(N, *)``, multilabel ``(N, C, *)``, target of the input's
    shape in [0, 1], ``none`` gives the input's shape; multiclass input ``(N, C, *)``, target
    ``(N, *)`` indices or ``(N, C, *)`` probabilities, ``none`` gives ``(N, *)``.

    ``ignore_index`` in binary/multilabel mode: target elements equal to it count nowhere;
    ``mean`` divides by the others (kornia's ``binary_focal_loss_with_logits`` divides by
    every element). ``mask`` (call time, optional): per-element weights, bool or floating in
    [0, 1], of the target's shape (binary/multilabel: or without dim 1; multiclass: ``(N,
    *)``); 0 counts nowhere, ``mean`` is sum(mask l) / sum(mask), weighted by w_y in
    multiclass as without a mask.

    >>> focal(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
    tensor(0.0087)
    >>> focal(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]), mode="multiclass")
    tensor(0.0041)
    """
    o = options(FocalParams, "focal", locals(), local=True)
    if o.mode == "multiclass":  # alpha is None: a rule of FocalParams
        check_dims("focal", "input", input, 2, "(N, C, *) in multiclass mode")
        c = _check_class_target("focal", input, target, ignore_index)
        x, t = upcast(input, target)
        w = _class_weight("focal", weight, c, x)
        fast = reduction in ("mean", "sum") and not t.is_floating_point() and x.numel() > 0
        fast = fast and mask is None
        if fast and gamma == int(gamma) and 1 <= gamma <= 8:
            loss = softmax_focal_reduced(x, t, int(gamma), w, ignore_index, reduction)
            return loss.to(input.dtype)
        loss, norm = softmax_focal(x, t.to(x.dtype) if t.is_floating_point() else t, gamma, w,
                                   ignore_index)  # fmt: skip
        if mask is not None:
            m = check_mask("focal", mask, loss.shape, class_dim=False, like=loss)
            return masked_reduce(loss, m, reduction, "focal", norm=norm).to(input.dtype)
        if reduction == "mean":  # weighted mean; 0 when every element is ignored
            return (loss.sum() / norm.sum().clamp_min(torch.finfo(x.dtype).tiny)).to(input.dtype)
        return reduce(loss, reduction, "focal").to(input.dtype)
    if mode == "multilabel":  # weight is None: a rule of FocalParams
        check_dims("focal", "input", input, 2, "(N, C, *) in multilabel mode")
    check_same_shape("focal", input, target)
    check_floating("focal", "input", input)
    a = None if o.alpha is None else float(o.alpha)  # "auto" resolved by FocalParams
    x, t = upcast(input, target)
    t = t.to(x.dtype)
    keep = _kept(t, ignore_index)
    if keep is not None:
        t = torch.where(keep, t, 0.0)
        check_range("focal", f"target (elements other than ignore_index={ignore_index})", t)
        keep = keep.to(x.dtype)
    if mask is not None:
        m = check_mask("focal", mask, target.shape, class_dim=target.dim() >= 2, like=x)
        keep = m if keep is None else keep * m
    if keep is not None:
        loss = binary_focal(x, t, float(gamma), a)
        return masked_reduce(loss, keep, reduction, "focal").to(input.dtype)
    if reduction in ("mean", "sum"):
        return binary_focal_reduced(x, t, float(gamma), a, reduction).to(input.dtype)
    return reduce(binary_focal(x, t, float(gamma), a), reduction, "focal").to(input.dtype)


def _kept(t: torch.Tensor, ignore_index: int) -> torch.Tensor | None:
    """Where a binary/multilabel target is not ``ignore_index``; None when no element is (one
    min/max pass: the default -100 lies outside a [0, 1] target, which that pass checks)."""
    if t.numel() == 0:
        return None
    lo, hi = (float(v) for v in torch.aminmax(t.detach()))
    if not lo <= ignore_index <= hi:
        if not (lo >= 0.0 and hi <= 1.0):  # NaN fails too
            bad = lo if not lo >= 0.0 else hi
            raise LossregError(f"focal: target values must lie in [0.0, 1.0], found {bad}")
        return None
    keep = t != ignore_index
    return None if bool(keep.all()) else keep
