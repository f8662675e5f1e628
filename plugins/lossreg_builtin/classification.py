"""Classification losses: cross-entropy, NLL and BCE (equal to ``torch.nn``), weighted
cross-entropy, focal (Lin et al. 2017) and the 0-1 loss."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from lossreg import (
    LossregError,
    Params,
    Reduction,
    TensorList,
    check_class_indices,
    check_dims,
    check_floating,
    check_range,
    check_same_device,
    check_same_shape,
)

from ._common import options, reduce, upcast
from ._focal import binary_focal, binary_focal_reduced, softmax_focal, softmax_focal_reduced

Mode = Literal["binary", "multiclass", "multilabel"]
REDUCTION: Any = Field("mean", description="`mean` over elements, `sum`, or `none` (per element)")
WEIGHT: Any = Field(None, description="per-class weight, a list of C numbers (rescales each class)")
IGNORE: Any = Field(
    -100, description="target class index whose elements add nothing to the loss or its mean"
)


class ClassificationParams(Params):
    reduction: Reduction = REDUCTION


# -- shared checks --------------------------------------------------------------------------
def _shape(t: torch.Tensor | torch.Size) -> tuple[int, ...]:
    return tuple(int(d) for d in (t.shape if isinstance(t, torch.Tensor) else t))


def _check_class_target(name: str, input: torch.Tensor, target: torch.Tensor, ignore: int) -> int:
    """Input ``(N, C, *)`` or ``(C,)``; class-index target ``(N, *)`` (``()`` for ``(C,)``)
    with values in [0, C) or ``ignore``; or, if floating, probabilities of the input's shape.
    Returns C."""
    check_floating(name, "input", input)
    check_dims(name, "input", input, 1, "(N, C, *) or (C,)")
    check_same_device(name, input, target)
    c = input.shape[1] if input.dim() > 1 else input.shape[0]
    if target.is_floating_point():
        if target.shape != input.shape:
            raise LossregError(
                f"{name}: probability target has shape {_shape(target)} but input has shape "
                f"{_shape(input)}; they must be equal (class-index targets are integer tensors "
                "without the class dim)"
            )
        return int(c)
    want = input.shape[:1] + input.shape[2:] if input.dim() > 1 else torch.Size([])
    if target.shape != want:
        raise LossregError(
            f"{name}: class-index target has shape {_shape(target)} but input of shape "
            f"{_shape(input)} needs target shape {_shape(want)} (input without its class dim 1)"
        )
    check_class_indices(name, target, int(c), ignore)
    return int(c)


def _class_weight(
    name: str, weight: torch.Tensor | None, c: int, like: torch.Tensor
) -> torch.Tensor | None:
    if weight is None:
        return None
    if weight.numel() != c:
        raise LossregError(
            f"{name}: weight has {weight.numel()} entries but input has {c} classes (dim 1)"
        )
    return weight.to(dtype=like.dtype, device=like.device)


def _all_ignored_is_zero(
    out: torch.Tensor, target: torch.Tensor, ignore_index: int, reduction: str
) -> torch.Tensor:
    # PyTorch's mean over zero non-ignored elements is 0/0 = nan; ours is 0 (no element, no
    # loss), the policy every lossreg loss follows. The nan branch has a zero gradient.
    if reduction != "mean" or target.is_floating_point():
        return out
    return torch.where((target != ignore_index).any(), out, torch.zeros_like(out))


# -- cross-entropy and NLL ------------------------------------------------------------------
class CrossEntropyParams(ClassificationParams):
    weight: TensorList | None = WEIGHT
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
) -> torch.Tensor:
    """Cross-entropy of softmax(input) against the target: -sum_c w_c t_c log softmax(x)_c.

    Equals ``torch.nn.CrossEntropyLoss`` (values and gradients) for every option, except
    that a ``mean`` over no non-ignored element is 0 rather than nan. With weights, ``mean``
    divides by the sum of the targets' weights (class-index targets) or by the number of
    elements (probability targets), as PyTorch does.

    Shape: input ``(N, C, *)`` or ``(C,)`` logits; target ``(N, *)`` class indices in [0, C)
    (or ``ignore_index``), or ``(N, C, *)`` probabilities; ``none`` gives ``(N, *)``.

    >>> cross_entropy(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
    tensor(0.1698)
    """
    options(CrossEntropyParams, "cross_entropy", locals(), local=True)
    c = _check_class_target("cross_entropy", input, target, ignore_index)
    x, t = upcast(input, target)
    w = _class_weight("cross_entropy", weight, c, x)
    out = F.cross_entropy(
        x, t, weight=w, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing,
    )  # fmt: skip
    return _all_ignored_is_zero(out, target, ignore_index, reduction).to(input.dtype)


class NLLParams(ClassificationParams):
    weight: TensorList | None = WEIGHT
    ignore_index: int = IGNORE


def nll(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood, -w_y input_y, of log-probabilities (e.g. ``log_softmax``).

    Equals ``torch.nn.NLLLoss``, except that a ``mean`` over no non-ignored element is 0.
    ``mean`` divides by the sum of the targets' weights.

    Shape: input ``(N, C, *)`` or ``(C,)`` log-probabilities; target ``(N, *)`` class indices;
    ``none`` gives ``(N, *)``.

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
    out = F.nll_loss(x, target, weight=w, ignore_index=ignore_index, reduction=reduction)
    return _all_ignored_is_zero(out, target, ignore_index, reduction).to(input.dtype)


# -- binary cross-entropy ---------------------------------------------------------------------
class BCEParams(ClassificationParams):
    from_logits: bool = Field(
        True,
        description="input is logits (computed stably, as BCEWithLogitsLoss); false: "
        "probabilities in [0, 1] (as BCELoss)",
    )
    weight: TensorList | None = Field(
        None, description="rescaling weight, broadcast against the input's last dim (PyTorch's)"
    )
    pos_weight: TensorList | None = Field(
        None,
        description="weight of the positive term, broadcast against the last dim; logits only",
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
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary cross-entropy, -w [pw y log p + (1 - y) log(1 - p)].

    ``from_logits=True`` (default): p = sigmoid(input), computed as log-sigmoid (equals
    ``torch.nn.BCEWithLogitsLoss``, so ``0.5*dice + bce`` share one model output).
    ``from_logits=False``: input holds probabilities in [0, 1] (equals ``torch.nn.BCELoss``,
    whose logs are clamped at -100); anything outside [0, 1] is an error.

    Shape: input and target ``(*)``, equal; ``weight`` and ``pos_weight`` broadcast against
    the last dim, as in PyTorch; ``none`` gives ``(*)``.

    >>> bce(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
    tensor(0.2201)
    """
    options(BCEParams, "bce", locals(), local=True)
    check_same_shape("bce", input, target)
    check_floating("bce", "input", input)
    x, t = upcast(input, target)
    t = t.to(x.dtype)
    w = _last_dim_weight("bce", "weight", weight, x)
    if from_logits:
        pw = _last_dim_weight("bce", "pos_weight", pos_weight, x)
        out = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction)
    else:  # pos_weight is None here: a rule of BCEParams
        check_range("bce", "input (probabilities, from_logits=False)", x.detach(), 0.0, 1.0)
        out = F.binary_cross_entropy(x, t, weight=w, reduction=reduction)
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
) -> torch.Tensor:
    """Weighted binary cross-entropy on logits: -(w_pos y log p + w_neg (1-y) log(1-p)).

    p = sigmoid(input), both logs as log-sigmoid. ``balance='batch'`` sets w_pos = n_neg/n
    and w_neg = n_pos/n from the target (soft counts: n_pos = sum of target), so 20
    positives of 100 give w_pos 0.8, w_neg 0.2: the class-balanced cross-entropy of
    Xie and Tu 2015 ("Holistically-Nested Edge Detection", eq. 2).
    With w_pos = w_neg = 1 it is ``bce``; with w_neg = 1 it is ``bce`` with pos_weight w_pos.

    Shape: input and target ``(*)``, equal, target in [0, 1]; ``none`` gives ``(*)``.

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
    wp: float | torch.Tensor = w_pos
    wn: float | torch.Tensor = w_neg
    if balance == "batch":  # else None: WeightedCEParams allows nothing else
        n = t.numel()
        n_pos = t.detach().sum()
        wp, wn = (n - n_pos) / max(n, 1), n_pos / max(n, 1)
    loss = -(wp * t * F.logsigmoid(x) + wn * (1 - t) * F.logsigmoid(-x))
    return reduce(loss, reduction, name).to(input.dtype)


# -- focal --------------------------------------------------------------------------------------
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
    weight: TensorList | None = Field(None, description="multiclass: per-class weight (C numbers)")
    ignore_index: int = Field(
        -100, description="multiclass: target index that adds nothing to the loss or its mean"
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
        if self.mode != "multiclass" and self.ignore_index != -100:
            raise ValueError(
                f"ignore_index applies to multiclass mode only (mode is {self.mode!r})"
            )
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
        if fast and gamma == int(gamma) and 1 <= gamma <= 8:
            loss = softmax_focal_reduced(x, t, int(gamma), w, ignore_index, reduction)
            return loss.to(input.dtype)
        loss, norm = softmax_focal(x, t.to(x.dtype) if t.is_floating_point() else t, gamma, w,
                                   ignore_index)  # fmt: skip
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
    if reduction in ("mean", "sum"):
        return binary_focal_reduced(x, t, float(gamma), a, reduction).to(input.dtype)
    return reduce(binary_focal(x, t, float(gamma), a), reduction, "focal").to(input.dtype)


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
    return reduce(w, reduction, "zero_one").to(x.dtype)
