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
statistic. The call-time ``mask`` (per-pixel weights, bool or floating in [0, 1], of the
target's shape without its class dim; OBJECTIVES.md) weights every pixel's contribution to
TP, P and T: 0 counts nowhere, as ``ignore_index`` (the two multiply). ``dist_sync: true``
all-reduces the statistics (one stacked tensor, one differentiable
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

Options. Every overlap option (``mode``, ``from_logits``, ``smooth``, ``eps``, ``ignore_index``,
``classes``, ``per_image``, ``reduction``, ``dist_sync``) is a field of :class:`OverlapParams`
and a key of :class:`OverlapOptions`, nothing else (:mod:`lossreg_builtin._overlap_options`):
each functional takes them as keywords (``**options``), validates them with its params model
(the defaults are the model's) and hands the validated set to :func:`_overlap_loss`, which
computes, synchronises and selects the statistics once for every loss; a loss only turns
statistics into a score. ``class_weights`` (dice, iou, tversky, focal_tversky) makes the class
mean a weighted mean, sum_c w_c L_c / sum_c w_c (``sum`` and ``none`` give w_c L_c).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from typing_extensions import Unpack

from lossreg import LossregError

from ._common import options
from ._overlap import _prepare, _Prepared, _reduce, _score, _statistics, _sync, _tversky_index
from ._overlap_options import (
    ComboOptions,
    ComboParams,
    DiceOptions,
    DiceParams,
    FocalTverskyOptions,
    FocalTverskyParams,
    IoUOptions,
    IoUParams,
    OverlapOptions,
    OverlapParams,
    TverskyOptions,
    TverskyParams,
)

__all__ = [
    "ComboParams",
    "DiceParams",
    "FocalTverskyParams",
    "IoUParams",
    "OverlapOptions",
    "OverlapParams",
    "TverskyParams",
    "combo",
    "dice",
    "focal_tversky",
    "iou",
    "tversky",
]

O = TypeVar("O", bound=OverlapParams)


def _overlap_loss(
    name: str,
    model: type[O],
    input: torch.Tensor,
    target: torch.Tensor,
    given: OverlapOptions,
    score: Callable[[torch.Tensor, O], torch.Tensor],
    extra: Callable[[_Prepared, O], torch.Tensor] | None = None,
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every overlap loss: options validated by ``model``, statistics (TP, P, T, and the rows
    ``extra`` adds) computed with the call-time ``mask`` as per-pixel weights, synchronised in
    one collective and class-selected, ``score`` turned into a per-class loss, weighted by
    ``class_weights``, reduced. A new option or call-time tensor is handled here."""
    o = options(model, name, given)
    squared = getattr(o, "squared", False)
    prep = _prepare(
        name, input, target, o.mode, o.from_logits, o.ignore_index, o.classes,
        fusable=extra is None and not squared, per_image=o.per_image, mask=mask,
    )  # fmt: skip
    stats = _statistics(prep, o.per_image, squared)
    if extra is not None:
        stats = torch.cat([stats, extra(prep, o)])
    stats = _sync(stats, o.dist_sync, o.per_image)
    n_classes = stats.shape[-1]
    if o.classes is not None:
        stats = stats[..., list(o.classes)]
    loss = score(stats, o)
    weights = getattr(o, "class_weights", None)
    if weights is not None:
        return _weighted(name, loss, weights, n_classes, o).to(input.dtype)
    return _reduce(loss, o.reduction, name).to(input.dtype)


def _weighted(
    name: str, loss: torch.Tensor, weights: list[float], c: int, o: OverlapParams
) -> torch.Tensor:
    """Per-class losses (last dim) weighted by ``class_weights``: ``mean`` is the weighted
    mean sum_c w_c L_c / sum_c w_c (per sample with per_image, then averaged); ``sum`` and
    ``none`` take w_c L_c."""
    if len(weights) != c:
        raise LossregError(
            f"{name}: class_weights has {len(weights)} entries but the input has {c} classes "
            "(one weight per class of the input)"
        )
    w = torch.tensor(weights, dtype=loss.dtype, device=loss.device)
    if o.classes is not None:
        w = w[list(o.classes)]
    if not float(w.sum()) > 0:
        raise LossregError(f"{name}: class_weights of the classes averaged ({o.classes}) are all 0")
    if o.reduction == "mean":
        return _reduce((loss * w).sum(-1) / w.sum(), "mean", name)
    return _reduce(loss * w, o.reduction, name)


# -- the losses: a score of the statistics each -------------------------------------------
def _dice(stats: torch.Tensor, o: DiceParams) -> torch.Tensor:
    tp, ps, ts = stats.unbind(0)
    score = _score(2 * tp + o.smooth, ps + ts + o.smooth + o.eps, (ps + ts) <= 0)
    if not o.log_loss:
        return 1 - score
    # the clamp keeps -log finite (and its gradient bounded) where the coefficient is 0
    return -score.clamp_min(torch.finfo(score.dtype).eps).log()


def dice(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[DiceOptions],
) -> torch.Tensor:
    """Soft dice loss (Milletari et al. 2016, V-Net), per class::

        1 - (2 TP + smooth) / (2 TP + FP + FN + smooth + eps)

    and with ``log_loss``, -log(dice coefficient) (the coefficient clamped away from 0).
    With hard 0/1 predictions and smooth = eps = 0 it is 1 - F1. Empty masks follow the
    module's policy. This linear form (2TP + FP + FN = sum p + sum t) is not Milletari's
    denominator; ``squared: true`` is theirs (V-Net), sum p^2 + sum t^2 (MONAI's
    ``squared_pred``). ``class_weights``: the weighted class mean sum_c w_c L_c / sum_c w_c
    (MONAI's ``weight`` equals it when the weights sum to C).

    ``mask`` (call time, optional): per-pixel weights, bool or floating in [0, 1], of the
    target's shape without its class dim (``(N, *)``, or ``(N, 1, *)``); 0 counts in no
    statistic, a float weights the pixel's TP, FP and FN. Equals MONAI's ``MaskedDiceLoss``
    for 0/1 masks.

    ``options``: the overlap options (:class:`OverlapParams`: mode, from_logits, smooth,
    eps, ignore_index, classes, per_image, reduction, dist_sync) and ``log_loss``, as keywords;
    defaults and rules are :class:`DiceParams`'s.

    Shape: ``binary`` input (N, 1, *) or (N, *) and a same-shape target; ``multiclass``
    input (N, C, *) and target (N, *) class indices or (N, C, *) probabilities;
    ``multilabel`` input and target (N, C, *). ``reduction='none'`` gives (C,), or (N, C)
    with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> dice(logits, mask)
    tensor(0.1687)
    """
    return _overlap_loss("dice", DiceParams, input, target, options, _dice, mask=mask)


def _iou(stats: torch.Tensor, o: OverlapParams) -> torch.Tensor:
    return 1 - _tversky_index(stats, 1.0, 1.0, o.smooth, o.eps)


def iou(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[IoUOptions],
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss (Rahman and Wang 2016), per class::

        1 - (TP + smooth) / (TP + FP + FN + smooth + eps)

    Tversky with alpha = beta = 1. With hard 0/1 predictions and smooth = eps = 0 it is
    1 - TP / (TP + FP + FN). Empty masks follow the module's policy.

    ``options``: the overlap options of :class:`OverlapParams`, as keywords (as :func:`dice`).

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.
    ``mask`` (call time): per-pixel weights, as for :func:`dice`.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> iou(logits, mask)
    tensor(0.2452)
    """
    return _overlap_loss("iou", IoUParams, input, target, options, _iou, mask=mask)


def _tversky(stats: torch.Tensor, o: TverskyParams) -> torch.Tensor:
    return 1 - _tversky_index(stats, o.alpha, o.beta, o.smooth, o.eps)


def tversky(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[TverskyOptions],
) -> torch.Tensor:
    """Tversky loss (Salehi et al. 2017, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks"), per class::

        1 - (TP + smooth) / (TP + alpha FP + beta FN + smooth + eps)

    alpha < beta weighs missed foreground more than false alarms. alpha = beta = 1 is IoU;
    alpha = beta = 0.5 is dice with ``smooth`` and ``eps`` doubled (exactly dice when both
    are 0). Empty masks follow the module's policy.

    ``options``: the overlap options and ``alpha``, ``beta`` of :class:`TverskyParams`.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.
    ``mask`` (call time): per-pixel weights, as for :func:`dice`.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> tversky(logits, mask)
    tensor(0.1503)
    """
    return _overlap_loss("tversky", TverskyParams, input, target, options, _tversky, mask=mask)


def _focal_tversky(stats: torch.Tensor, o: FocalTverskyParams) -> torch.Tensor:
    gap = 1 - _tversky_index(stats, o.alpha, o.beta, o.smooth, o.eps)
    # below the dtype's machine epsilon the loss is 0 with 0 gradient; the safe base is set
    # before torch.where, as x^gamma's gradient at 0 would be inf (and inf * 0 = NaN). Written
    # as "not dead" so a NaN gap stays live and the loss is NaN, never 0.
    live = ~(gap <= torch.finfo(gap.dtype).eps)
    base = torch.where(live, gap, torch.ones_like(gap))
    return torch.where(live, base**o.gamma, torch.zeros_like(gap))


def focal_tversky(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[FocalTverskyOptions],
) -> torch.Tensor:
    """Focal Tversky loss (Abraham and Khan 2019, "A novel focal Tversky loss function with
    improved attention U-Net for lesion segmentation"), per class::

        (1 - TI)^gamma,   TI = (TP + smooth) / (TP + alpha FP + beta FN + smooth + eps)

    Their exponent is 1/gamma with gamma = 4/3; ours is gamma = 0.75, the same. For gamma < 1
    the derivative of x^gamma is infinite at x = 0 (TI -> 1): 1 - TI is clamped to the dtype's
    machine epsilon (below it the loss is 0), so gradients stay finite, and are 0 at a perfect
    prediction.

    ``options``: the overlap options and ``alpha``, ``beta``, ``gamma`` of
    :class:`FocalTverskyParams`.

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.
    ``mask`` (call time): per-pixel weights, as for :func:`dice`.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> focal_tversky(logits, mask)
    tensor(0.2413)
    """
    return _overlap_loss(
        "focal_tversky", FocalTverskyParams, input, target, options, _focal_tversky, mask=mask
    )


def _wbce_stats(prep: _Prepared, o: ComboParams) -> torch.Tensor:
    """Two more statistic rows for combo: the weighted BCE's sum and its element count."""
    x, t = prep.x, prep.t
    if o.from_logits:
        log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    else:  # clamp before log: log(0) would give an infinite value and a NaN gradient
        tiny = torch.finfo(x.dtype).tiny
        log_p, log_q = x.clamp_min(tiny).log(), (1 - x).clamp_min(tiny).log()
    wbce = -(o.alpha * t * log_p + (1 - o.alpha) * (1 - t) * log_q)
    w = prep.valid  # ignore_index and mask weights, (N, C or 1, S)
    dims = (2,) if o.per_image else (0, 2)
    bce_sum = (wbce if w is None else wbce * w).sum(dims)
    count = torch.full_like(bce_sum, x.shape[2] * (1 if o.per_image else x.shape[0]))
    if w is not None:
        count = w.expand_as(x).sum(dims)
    return torch.stack([bce_sum, count])


def _combo(stats: torch.Tensor, o: ComboParams) -> torch.Tensor:
    tp, ps, ts, bce_sum, count = stats.unbind(0)
    dsc = _score(2 * tp + o.smooth, ps + ts + o.smooth + o.eps, (ps + ts) <= 0)
    bce = bce_sum / count.clamp_min(1)  # counts are whole numbers; no element: WBCE term 0
    value = o.ce_ratio * bce - (1 - o.ce_ratio) * dsc
    # no element at all (empty batch, every pixel ignored): 0 like every loss, not -(1 - ce_ratio)
    return torch.where(count > 0, value, torch.zeros_like(value))


def combo(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[ComboOptions],
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

    ``options``: the overlap options and ``alpha``, ``ce_ratio`` of :class:`ComboParams`
    (``mode`` binary or multilabel).

    Shape: as :func:`dice`; ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.
    ``mask`` (call time): per-pixel weights, as for :func:`dice`.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> combo(logits, mask)
    tensor(-0.3555)
    """
    return _overlap_loss(
        "combo", ComboParams, input, target, options, _combo, _wbce_stats, mask=mask
    )
