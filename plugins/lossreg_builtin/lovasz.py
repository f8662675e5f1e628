"""Lovasz losses (Berman, Rannen Triki and Blaschko, CVPR 2018, "The Lovasz-Softmax loss: A
tractable surrogate for the optimization of the intersection-over-union measure in neural
networks"): the Lovasz extension of the Jaccard loss, evaluated at hinge errors (binary) or at
softmax errors (multiclass).

The Lovasz extension of a set function Delta at an error vector e (sorted so that
e_(1) >= e_(2) >= ...) is sum_k e_(k) g_k with g_k = Delta({1..k}) - Delta({1..k-1}). For the
Jaccard loss, Algorithm 1 of the paper computes g from the labels in error order:
intersection_k = G - cumsum(y)_k, union_k = G + cumsum(1 - y)_k, J_k = 1 - intersection_k /
union_k, g_1 = J_1, g_k = J_k - J_(k-1), with G the number of positives.

Implementation: one sort for all rows, every image (``per_image``) and every class at once
(in float32 a 1-D integer radix sort, see ``_descending_order``), no Python loop over pixels,
images or classes. The weights g are
computed without autograd (the extension is linear in e for a fixed order, so its gradient is
g scattered back to the pixels) and in closed form, not as differences of J (which lose
precision in float32 when there are many pixels):

- a positive pixel at sorted position k (a positives and b negatives at positions <= k):
  J_k - J_(k-1) = (G - a + 1)/(G + b) - (G - a)/(G + b) = 1 / (G + b);
- a negative pixel: (G - a)/(G + b - 1) - (G - a)/(G + b) = (G - a) / ((G + b)(G + b - 1)),
  except the first pixel of a row without positives (G = 0, b = 1), where g = J_1 = 1.

Ignored pixels (``ignore_index``) are dropped without ragged shapes: they sort last (key
-max), count neither as positive nor as negative, and get weight 0. This equals dropping them:
the valid pixels keep their relative order at the front, where a, b and G count exactly what
they count once the ignored pixels are removed, and the ignored pixels add 0 to the sum.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator

from lossreg import (
    LossregError,
    Params,
    Reduction,
    check_class_indices,
    check_dims,
    check_floating,
    check_range,
    check_same_device,
    check_same_shape,
)

from ._common import options, reduce, upcast

__all__ = ["lovasz_hinge", "lovasz_softmax"]


def _descending_order(key: torch.Tensor) -> torch.Tensor:
    """Flat indices that sort every row of ``key`` (R, P) in descending order, rows kept in
    place: ``key.reshape(-1)[order].view(R, P)`` is each row sorted.

    float32 keys go through an integer radix sort (PyTorch sorts 1-D ascending integers with
    fbgemm's radix sort, several times faster than its comparison sort of floats): the bits
    of a float, with the non-sign bits of negative numbers flipped, order as int32 exactly as
    the floats do; ``~`` reverses that order; the row index in the high bits of an int64 keeps
    the rows apart in one 1-D sort.
    """
    rows, n = key.shape
    if key.dtype != torch.float32:  # float64: the comparison sort along the rows
        order = torch.sort(key, dim=-1, descending=True).indices
        offsets = torch.arange(rows, device=key.device).unsqueeze(1) * n
        return (order + offsets).reshape(-1)
    bits = key.view(torch.int32)
    desc = ~(bits ^ ((bits >> 31) & 0x7FFFFFFF))  # int32, ascending == key descending
    if rows == 1:
        return torch.sort(desc.reshape(-1)).indices
    offset = (torch.arange(rows, device=key.device).unsqueeze(1) << 32) + 2**31
    return torch.sort((desc.to(torch.int64) + offset).reshape(-1)).indices  # row, then key


def _lovasz_weights(
    errors: torch.Tensor, fg: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """Lovasz gradient of the Jaccard loss for every row of ``errors`` (..., P), scattered
    back to the pixels, so the loss of a row is ``(errors * weights).sum(-1)``.

    ``fg`` (..., P) bool marks positives (False on ignored pixels); ``valid`` (..., P) bool
    or None marks the pixels that count. No gradient flows through the weights.
    """
    if errors.numel() == 0:  # an empty batch, or images without pixels
        return torch.zeros_like(errors.detach())
    shape = errors.shape
    n = shape[-1]
    key = errors.detach().reshape(-1, n)
    dtype = key.dtype
    # arithmetic on 0/1 floats, not torch.where/masked_fill: several times faster on CPU
    if valid is not None:  # ignored pixels sort last: key -max (finite, below every error)
        v = valid.reshape(-1, n).to(dtype)
        key = key + (v - 1.0) * torch.finfo(dtype).max
    order = _descending_order(key)
    f = fg.reshape(-1).gather(0, order).view(key.shape).to(dtype)  # labels in error order
    # a: positives at positions <= k; counts are exact in float below 2**24 pixels a row
    a = f.cumsum(-1) if n < 2**24 or dtype == torch.float64 else f.long().cumsum(-1).to(dtype)
    g = a[:, -1:]  # G: positives per row
    rank = torch.arange(1, n + 1, device=key.device, dtype=dtype)
    union = g + (rank - a)  # G + b, b = negatives at positions <= k
    # positive (f = 1): 1 / (G + b); negative: (G - a) / ((G + b)(G + b - 1)). Integer-valued
    # denominators, 0 only for a negative at position 0 of a row with G = 0 (fixed below)
    num = (g - a) + f * (1.0 - g + a)
    den = (union * (union - 1.0 + f * (2.0 - union))).clamp_min(1.0)
    w = num / den
    w[:, 0] = torch.where(g[:, 0] == 0, 1.0, w[:, 0])  # G = 0: J jumps 0 -> 1 there
    if valid is not None:
        n_valid = v.sum(-1, keepdim=True)
        w = w * (rank <= n_valid).to(dtype)  # the ignored pixels, sorted last: weight 0
    out = torch.zeros(key.numel(), dtype=dtype, device=key.device)
    return out.scatter_(0, order, w.reshape(-1)).view(shape)


REDUCTION: Any = Field(
    "mean",
    description="with per_image: `mean` or `sum` over the samples, or `none` (N,); without "
    "per_image the loss is one scalar () for the whole batch and all three give it",
)
PER_IMAGE = Field(
    False,
    description="one Lovasz loss per sample (then reduced) instead of one over every pixel "
    "of the batch",
)
IGNORE_INDEX = Field(None, description="target value whose pixels are dropped")


class LovaszHingeParams(Params):
    per_image: bool = PER_IMAGE
    ignore_index: int | None = IGNORE_INDEX
    reduction: Reduction = REDUCTION


def lovasz_hinge(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    per_image: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary Lovasz hinge loss (Berman et al. 2018, "The Lovasz-Softmax loss").

    Hinge errors e = 1 - x * s with s = 2y - 1; the loss is the Lovasz extension of the
    Jaccard loss of the positive class at relu(e): sort e descending and take
    sum_k relu(e_(k)) g_k, g from Algorithm 1 of the paper (see the module docstring). With
    logits of +-1 it equals 2 * (1 - IoU) of the thresholded prediction.

    Empty cases, as in the paper's reference code: a mask without positives has G = 0, so
    g = (1, 0, 0, ...) and the loss is relu of the largest error (the most confident false
    positive is pushed down); a sample (or batch) whose pixels are all ``ignore_index``
    contributes 0 and still counts in the ``mean`` over samples; an empty batch gives 0.

    Shape: input ``(N, *)`` logits (e.g. ``(N, 1, H, W)`` or ``(N, H, W)``; every element after
    the batch dim is a pixel), target of the same shape holding 0 or 1 (or ``ignore_index``).
    ``per_image`` with ``reduction='none'`` gives ``(N,)``; otherwise the result is a scalar
    ``()``. half and bfloat16 are computed in float32.

    >>> x = torch.tensor([[2.0, -1.0, 0.5, -3.0]])  # errors 1 - x*s: -1, 2, 1.5, -2
    >>> y = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    >>> lovasz_hinge(x, y)  # 2 * 1/2 + 1.5 * 1/6
    tensor(1.2500)
    """
    options(LovaszHingeParams, "lovasz_hinge", locals(), local=True)
    name = "lovasz_hinge"
    check_same_shape(name, input, target)
    check_floating(name, "input", input)
    check_dims(name, "input", input, 2, "(N, *): a batch of logit maps")
    valid = None if ignore_index is None else target != ignore_index
    wrong = (target != 0) & (target != 1)
    if valid is not None:
        wrong &= valid
    if bool(wrong.any()):
        bad = target[wrong][0].item()
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise LossregError(f"{name}: target must hold 0 or 1{extra}, found {bad}")
    (x,) = upcast(input)
    rows = x.shape[0] if per_image else 1
    size = (rows, x.numel() // rows if rows else math.prod(x.shape[1:]))
    x = x.reshape(size)
    fg = (target == 1).reshape(size)
    if valid is not None:
        valid = valid.reshape(size)
        fg = fg & valid
    errors = 1.0 - x * (fg.to(x.dtype) * 2.0 - 1.0)  # 1 - x * (2y - 1)
    weights = _lovasz_weights(errors, fg, valid)
    loss = (torch.relu(errors) * weights).sum(-1)  # (rows,)
    loss = reduce(loss, reduction, name, empty_mean="zero") if per_image else loss[0]
    return loss.to(input.dtype)


ClassList = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class LovaszSoftmaxParams(Params):
    classes: Literal["present", "all"] | ClassList = Field(
        "present",
        description="classes averaged over: `present` (those in the target, per sample with "
        "per_image), `all`, or a list of class indices",
    )
    per_image: bool = PER_IMAGE
    ignore_index: int | None = IGNORE_INDEX
    from_logits: bool = Field(
        True, description="input holds logits (softmax over C); false: probabilities in [0, 1]"
    )
    class_weights: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)] | None = (
        Field(
            None,
            description="one weight per class of the input (>= 0, not all 0): the class mean "
            "becomes sum_c w_c L_c / sum_c w_c over the classes averaged",
        )
    )
    reduction: Reduction = REDUCTION

    @field_validator("class_weights")
    @classmethod
    def _some_weight(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not sum(v) > 0:
            raise ValueError("class_weights must not all be 0")
        return v

    @field_validator("classes", mode="before")
    @classmethod
    def _one_message(cls, value: Any) -> Any:
        # one problem instead of pydantic's one per member of the union
        if isinstance(value, str) and value not in ("present", "all"):
            raise ValueError("classes must be 'present', 'all' or a list of class indices")
        return value


def lovasz_softmax(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    classes: str | list[int] = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
    from_logits: bool = True,
    class_weights: list[float] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multiclass Lovasz-Softmax loss (Berman et al. 2018, "The Lovasz-Softmax loss").

    p = softmax(x) over C; for each class c, errors e_c = |[y = c] - p_c| over the pixels, and
    loss_c = sum_k e_c,(k) g_k, the Lovasz extension of the Jaccard loss of class c (Algorithm
    1, see the module docstring). The loss is the mean of loss_c over ``classes``. With one-hot
    probabilities it is the mean over the classes of 1 - IoU.

    Empty cases, as in the paper's reference code: with ``classes='present'``, a batch (or
    sample, with ``per_image``) where no class is present, e.g. every pixel ignored, gives 0
    and still counts in the ``mean`` over samples; with ``all`` or a list, an absent class c
    has G = 0 and contributes its largest probability max p_c; an empty batch gives 0.

    Shape: input ``(N, C, *)`` with C >= 2, target ``(N, *)`` class indices in [0, C) or
    ``ignore_index``. ``per_image`` with ``reduction='none'`` gives ``(N,)`` (each sample's
    mean over its classes); otherwise the result is a scalar ``()``. half and bfloat16 are
    computed in float32.

    >>> p = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]])  # predicts 0 0 1 1
    >>> lovasz_softmax(p, torch.tensor([[0, 1, 1, 1]]), from_logits=False)  # (1/2 + 1/3) / 2
    tensor(0.4167)
    """
    options(LovaszSoftmaxParams, "lovasz_softmax", locals(), local=True)
    name = "lovasz_softmax"
    check_same_device(name, input, target)
    check_floating(name, "input", input)
    check_dims(name, "input", input, 2, "(N, C, *): a batch of class scores")
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise LossregError(
            f"{name}: target has shape {tuple(target.shape)} but input has shape "
            f"{tuple(input.shape)}; the target must hold class indices of shape {expected}"
        )
    c = input.shape[1]
    if c < 2:
        raise LossregError(
            f"{name}: input has {c} class(es) in dim 1 (shape {tuple(input.shape)}); "
            "lovasz_softmax needs C >= 2 (use lovasz_hinge for one logit map)"
        )
    check_class_indices(name, target, c, ignore_index)
    if not isinstance(classes, str):  # the rest of classes' rules are the params model's
        bad = [k for k in classes if not 0 <= k < c]
        if bad:
            raise LossregError(
                f"{name}: classes holds {bad[0]}, outside [0, {c}) for input with {c} classes"
            )
    if not from_logits:
        check_range(name, "input (probabilities, from_logits=false)", input)
    (x,) = upcast(input)
    n = x.shape[0]
    s = math.prod(x.shape[2:])
    p = (x.softmax(1) if from_logits else x).reshape(n, c, s)
    t = target.reshape(n, 1, s)
    if isinstance(classes, str):
        ids = torch.arange(c, device=t.device)
    else:
        ids = torch.tensor(classes, device=t.device)
        p = p.index_select(1, ids)
    fg = t == ids.view(1, -1, 1)  # (N, K, S)
    valid = None
    if ignore_index is not None:
        valid = (t != ignore_index).expand_as(fg)
        fg = fg & valid  # ignore_index may lie in [0, C)
    errors = (fg.to(p.dtype) - p).abs()
    if not per_image:  # one row per class over every pixel of the batch: (1, K, N*S)
        k = errors.shape[1]
        errors, fg = (z.transpose(0, 1).reshape(1, k, -1) for z in (errors, fg))
        if valid is not None:
            valid = valid.transpose(0, 1).reshape(1, k, -1)
    per_class = (errors * _lovasz_weights(errors, fg, valid)).sum(-1)  # (rows, K)
    cw = torch.ones_like(per_class[:1])
    if class_weights is not None:
        if len(class_weights) != c:
            raise LossregError(
                f"{name}: class_weights has {len(class_weights)} entries but the input has "
                f"{c} classes (one weight per class of the input)"
            )
        cw = torch.tensor(class_weights, dtype=p.dtype, device=p.device)[ids].unsqueeze(0)
    # the (weighted) mean over the classes averaged; no such class (or weight): 0
    take = cw * fg.any(-1) if classes == "present" else cw.expand_as(per_class)
    loss = (per_class * take).sum(-1) / take.sum(-1).clamp_min(torch.finfo(p.dtype).tiny)
    loss = reduce(loss, reduction, name, empty_mean="zero") if per_image else loss[0]
    return loss.to(input.dtype)
