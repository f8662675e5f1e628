"""Cross-entropy and NLL (equal to ``torch.nn``, but a ``mean`` over nothing is 0) and the
0-1 loss: the losses of class-index targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import (
    LossregError,
    Reduction,
    Weights,
    check_dims,
    check_floating,
    check_same_shape,
)

from ._class_common import (
    IGNORE,
    WEIGHT,
    ClassificationParams,
    Mode,
    _all_ignored_is_zero,
    _check_class_target,
    _class_weight,
)
from ._common import nan_if_input_nan, options, reduce, upcast
from ._mask import check_mask, masked_reduce


# -- cross-entropy and NLL ------------------------------------------------------------------
class CrossEntropyParams(ClassificationParams):
    weight: Weights | None = WEIGHT
    ignore_index: int = IGNORE
    label_smoothing: float = Field(
        0.0, ge=0, le=1, description="mix the target with the uniform distribution by this much"
    )


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of softmax(input) against the target: -sum_c w_c t_c log softmax(x)_c.

    Equals ``torch.nn.CrossEntropyLoss`` (values and gradients) for every option, except
    that a ``mean`` over no non-ignored element is 0 rather than nan. With weights, ``mean``
    divides by the sum of the targets' weights (class-index targets) or by the number of
    elements (probability targets), as PyTorch does.

    Shape: input ``(N, C, *)`` or ``(C,)`` logits; target ``(N, *)`` class indices in [0, C)
    (or ``ignore_index``), or ``(N, C, *)`` probabilities; ``none`` gives ``(N, *)``.
    ``mask`` (call time, optional): per-element weights of shape ``(N, *)``, bool or floating
    in [0, 1]; 0 counts nowhere, ``mean`` is sum(mask l) / sum(mask w_y) (sum(mask) for
    probability targets), 0 when that is 0.

    >>> cross_entropy(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
    tensor(0.1698)
    """
    options(CrossEntropyParams, "cross_entropy", locals(), local=True)
    c = _check_class_target("cross_entropy", input, target, ignore_index)
    x, t = upcast(input, target)
    w = _class_weight("cross_entropy", weight, c, x)
    if mask is not None:
        per = F.cross_entropy(
            x, t, weight=w, ignore_index=ignore_index, reduction="none",
            label_smoothing=label_smoothing,
        )  # fmt: skip
        return _masked("cross_entropy", per, t, w, ignore_index, mask, reduction, input)
    out = F.cross_entropy(
        x, t, weight=w, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing,
    )  # fmt: skip
    return _all_ignored_is_zero(out, target, ignore_index, reduction).to(input.dtype)


class NLLParams(ClassificationParams):
    weight: Weights | None = WEIGHT
    ignore_index: int = IGNORE


def nll(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative log-likelihood, -w_y input_y, of log-probabilities (e.g. ``log_softmax``).

    Equals ``torch.nn.NLLLoss``, except that a ``mean`` over no non-ignored element is 0.
    ``mean`` divides by the sum of the targets' weights.

    Shape: input ``(N, C, *)`` or ``(C,)`` log-probabilities; target ``(N, *)`` class indices;
    ``none`` gives ``(N, *)``. ``mask``: as :func:`cross_entropy`.

    >>> nll(torch.tensor([[-0.5, -1.0], [-2.0, -0.1]]), torch.tensor([0, 1]))
    tensor(0.3000)
    """
    options(NLLParams, "nll", locals(), local=True)
    if target.is_floating_point():
        raise LossregError(
            f"nll: target must hold class indices (an integer tensor), got {target.dtype}; "
            "for probability targets use cross_entropy"
        )
    c = _check_class_target("nll", input, target, ignore_index)
    (x,) = upcast(input)
    w = _class_weight("nll", weight, c, x)
    if mask is not None:
        per = F.nll_loss(x, target, weight=w, ignore_index=ignore_index, reduction="none")
        return _masked("nll", per, target, w, ignore_index, mask, reduction, input)
    out = F.nll_loss(x, target, weight=w, ignore_index=ignore_index, reduction=reduction)
    out = _all_ignored_is_zero(out, target, ignore_index, reduction)
    # nll_loss reads only the target's entry: a NaN elsewhere must still reach the loss
    return nan_if_input_nan(out, x, reduction, 1 if x.dim() > 1 else 0).to(input.dtype)


def _masked(
    name: str,
    per: torch.Tensor,
    t: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    mask: torch.Tensor,
    reduction: str,
    input: torch.Tensor,
) -> torch.Tensor:
    """The per-element loss ``per`` (N, *) weighted by the call-time mask; ``mean`` divides
    by the mask times the per-element normaliser PyTorch's mean uses (w_y, 0 where ignored,
    for class indices; 1 for probabilities)."""
    shape = per.shape
    m = check_mask(name, mask, shape, class_dim=False, like=per)
    norm = None
    if not t.is_floating_point():
        valid = t != ignore_index
        norm = valid.to(per.dtype) if w is None else w[torch.where(valid, t, 0)] * valid
    return masked_reduce(per, m, reduction, name, norm=norm).to(input.dtype)


# -- 0-1 loss ---------------------------------------------------------------------------------
class ZeroOneParams(ClassificationParams):
    mode: Mode = Field(
        "binary",
        description="`binary`/`multilabel`: logit > 0 vs target >= 0.5 per element; "
        "`multiclass`: argmax over dim 1 vs class index",
    )
    reduction: Reduction = Field(
        "mean", description="`mean` (fraction misclassified), `sum` (count), or `none` (0/1)"
    )


def zero_one(
    input: torch.Tensor, target: torch.Tensor, *, mode: str = "binary", reduction: str = "mean"
) -> torch.Tensor:
    """0-1 loss: the fraction of misclassified samples. Not differentiable: no gradient.

    binary/multilabel: an element is wrong when (input > 0) != (target >= 0.5);
    multiclass: when argmax over dim 1 differs from the class index.

    Shape: binary ``(*)`` input and target, equal; multiclass input ``(N, C, *)``, target
    ``(N, *)``; ``none`` gives 0/1 per element (target's shape), in the input's dtype.

    >>> zero_one(torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    tensor(0.5000)
    """
    options(ZeroOneParams, "zero_one", locals(), local=True)
    check_floating("zero_one", "input", input)
    x = input.detach()
    if mode == "multiclass":
        check_dims("zero_one", "input", x, 2, "(N, C, *) in multiclass mode")
        if target.is_floating_point():
            raise LossregError(
                f"zero_one: multiclass target must hold class indices, got {target.dtype}"
            )
        _check_class_target("zero_one", x, target, -100)
        wrong = x.argmax(dim=1) != target
    else:  # binary or multilabel: ZeroOneParams allows nothing else
        check_same_shape("zero_one", x, target)
        wrong = (x > 0) != (target.detach() >= 0.5)
    (w,) = upcast(wrong.to(x.dtype))  # counts of half inputs summed in float32
    out = reduce(w, reduction, "zero_one")
    # a NaN score is neither right nor wrong: the loss is NaN, not a count that skips it
    return nan_if_input_nan(out, x, reduction, 1 if mode == "multiclass" else None).to(x.dtype)
