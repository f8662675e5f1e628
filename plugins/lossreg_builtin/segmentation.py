"""Overlap losses for segmentation: dice, IoU (Jaccard), Tversky, focal Tversky and combo,
plus the named composite ``dice_bce``; all built on one primitive, soft per-class statistics.

Statistics. With p the predicted probabilities (``from_logits: true``: sigmoid for
``binary``/``multilabel``, softmax over C for ``multiclass``) and t the target, per class c::

    TP_c = sum p_c t_c,   P_c = sum p_c,   T_c = sum t_c,   FP_c = P_c - TP_c,   FN_c = T_c - TP_c

summed over the batch and spatial dims (``per_image: true``: over spatial dims, per sample).
Three passes, no one-hot: class-index targets gather p at the label for TP and scatter-add
into C bins. Pixels whose target equals ``ignore_index`` contribute to no statistic.
``dist_sync: true`` all-reduces the statistics (one stacked tensor, one differentiable
collective) when ``torch.distributed`` is initialised, so every rank gets the global batch's
loss; see ``docs/distributed.md``. With ``per_image`` every statistic is already complete on
its rank, so nothing is synchronised.

Empty-mask policy, the same for every loss here; every answer is finite, values and gradients:

- empty target and empty prediction for a class (P_c + T_c == 0): score 1, loss 0 exactly,
  whatever ``smooth`` and ``eps`` (with ``smooth = 1`` the formula gives this up to ``eps``);
- empty target, non-empty prediction: the score is smooth / (w FP + smooth + eps) < 1, so the
  loss is positive and its gradient pushes the prediction down (``smooth > 0``, the default 1).
  With ``smooth = 0`` the score is 0 (loss at its maximum) for any non-empty prediction and has
  no gradient: keep ``smooth > 0`` where empty masks occur. Never silently zeroed;
- a zero denominator otherwise (only Tversky with alpha or beta 0 and smooth = eps = 0): score
  1, the formula's value wherever it is defined on that face;
- a class absent from the batch is an empty target for that class: it counts in the class
  mean (use ``classes`` to leave it out);
- every pixel equal to ``ignore_index``: all statistics are 0, every class is "both empty":
  loss 0, gradient 0;
- an empty batch (N = 0): likewise every class is "both empty", loss 0; with ``per_image``
  there is no sample: ``reduction: none`` gives shape (0, C), and ``mean``/``sum`` give 0.

For ``combo`` "score 1" means its minimum, -(1 - ce_ratio), where these cases give 0 above
(except the empty batch with ``per_image``, which is 0 there too).

Every loss defaults to ``mode: binary``, so ``dice + bce`` works on one ``(N, 1, H, W)``
logit map and a float mask.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.autograd.function import once_differentiable

import lossreg
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

from ._common import upcast

__all__ = ["combo", "dice", "focal_tversky", "iou", "tversky"]

Mode = Literal["binary", "multiclass", "multilabel"]


class OverlapParams(Params):
    mode: Mode = Field(
        "binary",
        description="`binary`: (N, 1, *) or (N, *) logits and a same-shape mask in [0, 1]; "
        "`multiclass`: (N, C, *) logits (softmax over C), target (N, *) class indices or "
        "(N, C, *) probabilities; `multilabel`: (N, C, *) logits (sigmoid per channel), "
        "target (N, C, *) in [0, 1]",
    )
    from_logits: bool = Field(
        True, description="input holds logits; false: probabilities in [0, 1] (checked)"
    )
    smooth: float = Field(
        1.0,
        ge=0,
        description="added to numerator and denominator; keeps empty masks finite and gives an "
        "empty target with false positives a gradient that pushes them down",
    )
    eps: float = Field(1e-7, ge=0, description="added to denominators only")
    ignore_index: int | None = Field(
        None, description="target value whose pixels contribute to no statistic"
    )
    classes: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = Field(
        None, description="class indices to average over (default: all)"
    )
    per_image: bool = Field(
        False, description="statistics per sample instead of over the whole batch"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over classes (and samples with per_image), `sum`, or `none`: "
        "(C,), or (N, C) with per_image",
    )
    dist_sync: bool = Field(
        False,
        description="all-reduce the statistics across the initialised process group "
        "(differentiable), so every rank computes the global batch's loss",
    )


class DiceParams(OverlapParams):
    log_loss: bool = Field(False, description="-log(dice coefficient) instead of 1 - dice")


class TverskyParams(OverlapParams):
    alpha: float = Field(
        0.3, ge=0, description="weight of false positives (0.3 as in Salehi et al. 2017)"
    )
    beta: float = Field(
        0.7, ge=0, description="weight of false negatives (0.7 as in Salehi et al. 2017)"
    )


class FocalTverskyParams(TverskyParams):
    gamma: float = Field(
        0.75,
        gt=0,
        description="focal exponent on 1 - TI; 0.75 is Abraham and Khan's 1/gamma with "
        "their gamma 4/3",
    )


class ComboParams(OverlapParams):
    mode: Literal["binary", "multilabel"] = Field(  # type: ignore[assignment]
        "binary", description="`binary` or `multilabel` (the weighted BCE is per channel)"
    )
    alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="weight of positives in the weighted BCE (1 - alpha: negatives)",
    )
    ce_ratio: float = Field(
        0.5, ge=0, le=1, description="weight of the weighted BCE; 1 - ce_ratio weighs the dice term"
    )


# -- the primitive --------------------------------------------------------------------------
class _Prepared(NamedTuple):
    x: torch.Tensor  # (N, C, S) input in float32 or float64
    p: torch.Tensor  # (N, C, S) probabilities
    t: torch.Tensor  # (N, C, S) float target, or (N, S) int64 class indices
    valid: torch.Tensor | None  # same shape as t, bool; None when nothing is ignored
    index: bool  # t holds class indices
    fused: bool = False  # p not computed (it is x): _SoftmaxIndexStats/_SigmoidStats take x
    name: str = ""
    checked: bool = True  # class indices range-checked (else the fused bincount checks them)


def _prepare(
    name: str,
    input: torch.Tensor,
    target: torch.Tensor,
    mode: str,
    from_logits: bool,
    ignore_index: int | None,
    classes: list[int] | None,
    fusable: bool = False,
    per_image: bool = True,
) -> _Prepared:
    """Every check, then probabilities and targets flattened to (N, C, S). Runs before any
    collective, so a bad input fails on every rank alike."""
    check_same_device(name, input, target)
    check_floating(name, "input", input)
    if mode not in ("binary", "multiclass", "multilabel"):
        raise LossregError(f"{name}: mode must be binary, multiclass or multilabel, got {mode!r}")
    index = False
    nonempty = input.numel() > 0
    # the fused paths: logits, nothing ignored, statistics over the whole batch
    fast = fusable and from_logits and ignore_index is None and not per_image and nonempty
    checked = True
    if mode == "binary":
        check_dims(name, "input", input, 1, "(N, 1, *) or (N, *)")
        check_same_shape(name, input, target)
        n, c = input.shape[0], 1
    else:
        check_dims(name, "input", input, 2, f"(N, C, *) in mode {mode}")
        n, c = input.shape[0], input.shape[1]
        if mode == "multiclass" and target.shape == input.shape[:1] + input.shape[2:]:
            if fast:  # dtype only; the range check is the bincount of _index_counts
                check_class_indices(name, target[:0], c, ignore_index)
                checked = False
            else:
                check_class_indices(name, target, c, ignore_index)
            index = True
        elif mode == "multiclass" and target.dim() != input.dim():
            raise LossregError(
                f"{name}: target has shape {tuple(target.shape)} but input has shape "
                f"{tuple(input.shape)}; mode multiclass takes class indices of shape "
                f"{tuple(input.shape[:1] + input.shape[2:])} or probabilities of the input's shape"
            )
        else:
            check_same_shape(name, input, target)
    if classes is not None:
        bad = [k for k in classes if not 0 <= k < c]
        if bad:
            raise LossregError(
                f"{name}: classes holds {bad[0]}, outside [0, {c}) for input with {c} classes"
            )
    if not from_logits:
        check_range(name, "input (probabilities, from_logits=false)", input.detach())
    s = math.prod(input.shape[1:]) // c if c else 0
    (x,) = upcast(input)
    x = x.reshape(n, c, s)
    fused = fast and (index or (mode == "binary" and not target.requires_grad))
    if fused:
        p = x  # softmax or sigmoid inside _SoftmaxIndexStats or _SigmoidStats
    else:
        p = (x.softmax(1) if mode == "multiclass" else x.sigmoid()) if from_logits else x
    valid = None
    if index:
        t = target.reshape(n, s).long()
        if ignore_index is not None:
            valid = t != ignore_index
            t = t.masked_fill(~valid, 0)
    else:
        t = target.reshape(n, c, s)
        if ignore_index is not None:
            valid = t != ignore_index
            t = t.masked_fill(~valid, 0)
        t = t.to(x.dtype)
    return _Prepared(x, p, t, valid, index, fused, name, checked)


def _index_counts(name: str, t: torch.Tensor, c: int) -> torch.Tensor:
    """T_c, the per-class label counts, in one bincount that is also the range check: a
    label >= C makes the result longer than C, a negative one makes bincount raise; either
    way check_class_indices then names the offending value."""
    try:
        ts = torch.bincount(t.reshape(-1), minlength=c)
    except RuntimeError:
        check_class_indices(name, t, c)
        raise  # pragma: no cover - bincount failed for another reason
    if ts.shape[0] > c:
        check_class_indices(name, t, c)
    return ts


class _SoftmaxIndexStats(torch.autograd.Function):
    """(TP, P, T) over the batch of softmax(x) against class indices, no one-hot, with an
    analytic backward. With G_ci = dL/dP_c + dL/dTP_c [y_i = c] the gradient through the
    softmax is P_ci (G_ci - sum_k P_ki G_ki), and sum_k P_ki G_ki = sum_k P_ki dL/dP_k +
    dL/dTP_(y_i) P_(y_i),i: one weighted sum over classes and one gather, instead of autograd's
    zero-filled scatter for the gather and the sum of two input-sized gradients. ``ts`` (the
    label counts, no gradient) comes from :func:`_index_counts`."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        t: torch.Tensor,
        ts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = x.shape[1]
        if ts is None:
            ts = torch.bincount(t.reshape(-1), minlength=c)
        p = torch.softmax(x, 1)  # (N, C, S)
        t1 = t.unsqueeze(1)
        pt = p.gather(1, t1)  # (N, 1, S): p at the label
        # into (N, C) bins, then over N: the scatter runs in parallel over the samples
        tp = p.new_zeros(t.shape[0], c).scatter_add_(1, t, pt.squeeze(1)).sum(0)
        ctx.save_for_backward(p, t1, pt)
        return torch.stack([tp, p.sum(2).sum(0), ts.to(p.dtype)])

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        p, t1, pt = ctx.saved_tensors  # type: ignore[attr-defined]
        g_tp, g_ps = grad[0], grad[1]
        at = g_tp.index_select(0, t1.reshape(-1)).view_as(pt).mul_(pt)  # dL/dTP_y P_y
        s = torch.matmul(g_ps.view(1, -1), p).add_(at)  # (N, 1, S); no copy of p
        dx = torch.sub(g_ps.view(1, -1, 1), s).mul_(p)
        return dx.scatter_add_(1, t1, at), None, None


class _SigmoidStats(torch.autograd.Function):
    """(TP, P, T) of sigmoid(x) against a same-shape float target, summed over everything
    (binary mode, one class), with an analytic backward: dL/dx = (dL/dP + dL/dTP t) p (1 - p),
    two elementwise ops. The sums are a dot product and two plain sums: no p * t temporary."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        p = torch.sigmoid(x)
        pf, tf = p.reshape(-1), t.reshape(-1)
        ctx.save_for_backward(p, t)
        return torch.stack([torch.dot(pf, tf), pf.sum(), tf.sum()]).view(3, 1)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        p, t = ctx.saved_tensors  # type: ignore[attr-defined]
        u = torch.mul(t, grad[0, 0]).add_(grad[1, 0])  # dL/dTP t + dL/dP
        # u p (1 - p), in place: one input-sized allocation in the whole backward
        return torch.ops.aten.sigmoid_backward.grad_input(u, p, grad_input=u), None


def _statistics(prep: _Prepared, per_image: bool) -> torch.Tensor:
    """Stacked (TP, P, T): shape (3, C), or (3, N, C) with per_image."""
    p, t, valid = prep.p, prep.t, prep.valid
    if prep.fused:  # only ever set without per_image, ignore_index, probabilities
        if prep.index:
            ts = _index_counts(prep.name, t, p.shape[1])
            return _SoftmaxIndexStats.apply(prep.x, t, ts)  # type: ignore[no-untyped-call, no-any-return]
        return _SigmoidStats.apply(prep.x, t)  # type: ignore[no-untyped-call, no-any-return]
    if prep.index:
        # TP by gather at the label, then scatter-add into C bins: no (N, C, S) one-hot.
        n, c = p.shape[:2]
        pt = p.gather(1, t.unsqueeze(1)).squeeze(1)
        w = None if valid is None else valid.to(p.dtype)
        if w is not None:
            pt = pt * w
        tp = p.new_zeros(n, c).scatter_add(1, t, pt)
        # counts need no gradient: bincount over (sample, class) bins is the fast way
        flat = (t + c * torch.arange(n, device=t.device).unsqueeze(1)).reshape(-1)
        ts = torch.bincount(flat, None if w is None else w.reshape(-1), minlength=n * c)
        ts = ts.to(p.dtype).view(n, c)
        ps = p.sum(2) if w is None else torch.bmm(p, w.unsqueeze(2)).squeeze(2)
        stats = torch.stack([tp, ps, ts])
        return stats if per_image else stats.sum(1)
    dims = (2,) if per_image else (0, 2)
    tp = (p * t).sum(dims)  # t is 0 on ignored pixels
    ps = (p if valid is None else p * valid).sum(dims)
    return torch.stack([tp, ps, t.sum(dims)])


def _sync(stats: torch.Tensor, dist_sync: bool, per_image: bool) -> torch.Tensor:
    """Sum the statistics over the process group with a differentiable all-reduce."""
    if not dist_sync or per_image:
        return stats
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stats
    import torch.distributed._functional_collectives as fc

    if hasattr(fc, "all_reduce_backward"):
        # The functional collective has an autograd formula (backward: all-reduce of the
        # gradient) and works under torch.compile; torch.distributed.nn.functional.all_reduce,
        # the older differentiable collective, is deprecated since torch 2.10.
        out = fc.all_reduce(stats, "sum", dist.group.WORLD)
        return fc.wait_tensor(out) if isinstance(out, fc.AsyncCollectiveTensor) else out
    from torch.distributed.nn.functional import all_reduce  # pragma: no cover - old torch

    return all_reduce(stats)  # pragma: no cover


def _overlap_stats(
    name: str,
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str,
    from_logits: bool,
    ignore_index: int | None,
    classes: list[int] | None,
    per_image: bool,
    dist_sync: bool,
) -> torch.Tensor:
    """The primitive: validated, synchronised, class-selected (TP, P, T) statistics."""
    prep = _prepare(name, input, target, mode, from_logits, ignore_index, classes, True, per_image)
    stats = _sync(_statistics(prep, per_image), dist_sync, per_image)
    return stats if classes is None else stats[..., list(classes)]


def _score(num: torch.Tensor, den: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """num / den with the empty-mask policy: 1 where both masks are empty or den is 0.
    The denominator is made safe *before* torch.where: the unselected branch's gradient would
    otherwise be 0/0 = NaN."""
    one = empty | (den <= 0)
    safe = torch.where(one, torch.ones_like(den), den)
    return torch.where(one, torch.ones_like(num), num / safe)


def _tversky_index(
    stats: torch.Tensor, alpha: float, beta: float, smooth: float, eps: float
) -> torch.Tensor:
    tp, ps, ts = stats.unbind(0)
    den = tp + alpha * (ps - tp) + beta * (ts - tp) + smooth + eps
    return _score(tp + smooth, den, (ps + ts) <= 0)


def _reduce(loss: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    if reduction == "mean":
        # an empty batch with per_image has no values: its mean is 0 (policy), not NaN
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise LossregError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# -- the losses ----------------------------------------------------------------------------
def dice(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    classes: list[int] | None = None,
    per_image: bool = False,
    log_loss: bool = False,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Soft dice loss (Milletari et al. 2016, V-Net), per class::

        1 - (2 TP + smooth) / (2 TP + FP + FN + smooth + eps)

    and with ``log_loss``, -log(dice coefficient) (the coefficient clamped away from 0).
    With hard 0/1 predictions and smooth = eps = 0 it is 1 - F1. Empty masks follow the
    module's policy.

    Shape: ``binary`` input (N, 1, *) or (N, *) and a same-shape target; ``multiclass``
    input (N, C, *) and target (N, *) class indices or (N, C, *) probabilities;
    ``multilabel`` input and target (N, C, *). ``reduction='none'`` gives (C,), or (N, C)
    with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> dice(logits, mask)
    tensor(0.1687)
    """
    stats = _overlap_stats(
        "dice",
        input,
        target,
        mode=mode,
        from_logits=from_logits,
        ignore_index=ignore_index,
        classes=classes,
        per_image=per_image,
        dist_sync=dist_sync,
    )
    tp, ps, ts = stats.unbind(0)
    score = _score(2 * tp + smooth, ps + ts + smooth + eps, (ps + ts) <= 0)
    # log_loss: the clamp keeps -log finite (and its gradient bounded) where the coefficient is 0
    loss = -score.clamp_min(torch.finfo(score.dtype).eps).log() if log_loss else 1 - score
    return _reduce(loss, reduction, "dice").to(input.dtype)


def iou(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    classes: list[int] | None = None,
    per_image: bool = False,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss (Rahman and Wang 2016), per class::

        1 - (TP + smooth) / (TP + FP + FN + smooth + eps)

    Tversky with alpha = beta = 1. With hard 0/1 predictions and smooth = eps = 0 it is
    1 - TP / (TP + FP + FN). Empty masks follow the module's policy.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> iou(logits, mask)
    tensor(0.2452)
    """
    stats = _overlap_stats(
        "iou",
        input,
        target,
        mode=mode,
        from_logits=from_logits,
        ignore_index=ignore_index,
        classes=classes,
        per_image=per_image,
        dist_sync=dist_sync,
    )
    loss = 1 - _tversky_index(stats, 1.0, 1.0, smooth, eps)
    return _reduce(loss, reduction, "iou").to(input.dtype)


def tversky(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    classes: list[int] | None = None,
    per_image: bool = False,
    alpha: float = 0.3,
    beta: float = 0.7,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Tversky loss (Salehi et al. 2017, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks"), per class::

        1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth + eps)

    alpha < beta weighs missed foreground more than false alarms. alpha = beta = 1 is IoU;
    alpha = beta = 0.5 is dice with ``smooth`` and ``eps`` doubled (exactly dice when both
    are 0). Empty masks follow the module's policy.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> tversky(logits, mask)
    tensor(0.1503)
    """
    stats = _overlap_stats(
        "tversky",
        input,
        target,
        mode=mode,
        from_logits=from_logits,
        ignore_index=ignore_index,
        classes=classes,
        per_image=per_image,
        dist_sync=dist_sync,
    )
    loss = 1 - _tversky_index(stats, alpha, beta, smooth, eps)
    return _reduce(loss, reduction, "tversky").to(input.dtype)


def focal_tversky(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    classes: list[int] | None = None,
    per_image: bool = False,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Focal Tversky loss (Abraham and Khan 2019, "A novel focal Tversky loss function with
    improved attention U-Net for lesion segmentation"), per class::

        (1 - TI)^gamma,   TI = (TP + smooth) / (TP + alpha FP + beta FN + smooth + eps)

    Their exponent is 1/gamma with gamma = 4/3; ours is gamma = 0.75, the same. For gamma < 1
    the derivative of x^gamma is infinite at x = 0 (TI -> 1): 1 - TI is clamped to the dtype's
    machine epsilon (below it the loss is 0), so gradients stay finite, and are 0 at a perfect
    prediction.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> focal_tversky(logits, mask)
    tensor(0.2413)
    """
    stats = _overlap_stats(
        "focal_tversky",
        input,
        target,
        mode=mode,
        from_logits=from_logits,
        ignore_index=ignore_index,
        classes=classes,
        per_image=per_image,
        dist_sync=dist_sync,
    )
    gap = 1 - _tversky_index(stats, alpha, beta, smooth, eps)
    # below the dtype's machine epsilon the loss is 0 with 0 gradient; the safe base is set
    # before torch.where, as x^gamma's gradient at 0 would be inf (and inf * 0 = NaN)
    live = gap > torch.finfo(gap.dtype).eps
    base = torch.where(live, gap, torch.ones_like(gap))
    loss = torch.where(live, base**gamma, torch.zeros_like(gap))
    return _reduce(loss, reduction, "focal_tversky").to(input.dtype)


def combo(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    classes: list[int] | None = None,
    per_image: bool = False,
    alpha: float = 0.5,
    ce_ratio: float = 0.5,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Combo loss (Taghanaki et al. 2019, "Combo loss: handling input and output imbalance in
    multi-organ segmentation"), per class::

        ce_ratio * WBCE - (1 - ce_ratio) * DSC
        WBCE = -mean(alpha t log p + (1 - alpha) (1 - t) log(1 - p))

    DSC is the dice coefficient of :func:`dice` (same smooth, eps and empty-mask policy);
    WBCE is the mean over the class's non-ignored elements (0 if there are none), computed in
    log space: log p = logsigmoid(x), log(1 - p) = logsigmoid(-x). alpha = 0.5 gives half the
    plain BCE. The value lies in [-(1 - ce_ratio), inf), not [0, 1]. ``binary`` and
    ``multilabel`` modes.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> combo(logits, mask)
    tensor(-0.3555)
    """
    if mode not in ("binary", "multilabel"):
        raise LossregError(f"combo: mode must be binary or multilabel, got {mode!r}")
    prep = _prepare("combo", input, target, mode, from_logits, ignore_index, classes)
    x, t = prep.x, prep.t
    if from_logits:
        log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    else:  # clamp before log: log(0) would give an infinite value and a NaN gradient
        tiny = torch.finfo(x.dtype).tiny
        log_p, log_q = x.clamp_min(tiny).log(), (1 - x).clamp_min(tiny).log()
    wbce = -(alpha * t * log_p + (1 - alpha) * (1 - t) * log_q)
    w = None if prep.valid is None else prep.valid.to(x.dtype)
    dims = (2,) if per_image else (0, 2)
    bce_sum = (wbce if w is None else wbce * w).sum(dims)
    count = torch.full_like(bce_sum, x.shape[2] * (1 if per_image else x.shape[0]))
    if w is not None:
        count = w.sum(dims)
    stats = torch.cat([_statistics(prep, per_image), bce_sum[None], count[None]])
    stats = _sync(stats, dist_sync, per_image)  # one collective for all five statistics
    if classes is not None:
        stats = stats[..., list(classes)]
    tp, ps, ts, bce_sum, count = stats.unbind(0)
    dsc = _score(2 * tp + smooth, ps + ts + smooth + eps, (ps + ts) <= 0)
    bce = bce_sum / count.clamp_min(1)  # counts are whole numbers; no element: WBCE term 0
    loss = ce_ratio * bce - (1 - ce_ratio) * dsc
    return _reduce(loss, reduction, "combo").to(input.dtype)


@lossreg.hookimpl
def register_losses(register):  # type: ignore[no-untyped-def]
    tags = ("segmentation",)
    register("dice", dice, params=DiceParams, aliases=("dice_loss",), tags=tags)
    register("iou", iou, params=OverlapParams, aliases=("jaccard", "jaccard_loss"), tags=tags)
    register("tversky", tversky, params=TverskyParams, tags=tags)
    register("focal_tversky", focal_tversky, params=FocalTverskyParams, tags=tags)
    register("combo", combo, params=ComboParams, tags=tags)
    register(
        "dice_bce",
        "dice + bce",
        tags=tags,
        summary="dice (binary, on logits) plus BCE with logits, on one (N, 1, *) logit map",
    )
