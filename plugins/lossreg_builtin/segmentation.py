"""Overlap losses for segmentation: dice, IoU (Jaccard), Tversky, focal Tversky and combo,
plus the named composite ``dice_bce``; all built on one primitive, soft per-class statistics.

Statistics. With p the predicted probabilities (``from_logits: true``: sigmoid for
``binary``/``multilabel``, softmax over C for ``multiclass``) and t the target, per class c::

    TP_c = sum p_c t_c,   P_c = sum p_c,   T_c = sum t_c,   FP_c = P_c - TP_c,   FN_c = T_c - TP_c

summed over the batch and spatial dims (``per_image: true``: over spatial dims, per sample).
Class-index targets: with logits, nothing ignored and batch statistics (the common training
case), a float one-hot and one batched matmul give all three at once, with the gradient from
softmax's own backward kernel; otherwise p is gathered at the label for TP and scatter-added
into C bins, with no one-hot. Pixels whose target equals ``ignore_index`` contribute to no
statistic. ``dist_sync: true`` all-reduces the statistics (one stacked tensor, one differentiable
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

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import LossregError, Params, Reduction

from ._overlap import _overlap_stats, _prepare, _reduce, _score, _statistics, _sync, _tversky_index

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
