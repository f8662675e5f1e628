"""Overlap losses for class imbalance on the statistics of :mod:`lossreg_builtin.segmentation`
(same modes, options, ``mask``, ``ignore_index`` and ``dist_sync``): generalized dice (Sudre et
al. 2017), whose class weights come from the (synchronised) target volumes, and the Matthews
correlation coefficient (Abhishek and Hamarneh 2021), which also counts true negatives."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from typing_extensions import Unpack

from lossreg import Reduction

from ._overlap import _Prepared, _score
from .segmentation import OverlapOptions, OverlapParams, _overlap_loss

__all__ = [
    "GeneralizedDiceOptions",
    "GeneralizedDiceParams",
    "MCCParams",
    "generalized_dice",
    "mcc",
]


# -- generalized dice -----------------------------------------------------------------------
class GeneralizedDiceParams(OverlapParams):
    weight_type: Literal["square", "simple", "uniform"] = Field(
        "square",
        description="class weight from the target volume V_c: `square` 1/V_c^2 (Sudre et al.), "
        "`simple` 1/V_c, `uniform` 1",
    )
    smooth: float = Field(
        1e-5,
        ge=0,
        description="added to numerator and denominator; small (MONAI's 1e-5) because the "
        "weighted sums are of order 1/V",
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over samples with per_image (one value otherwise), `sum`, or "
        "`none`: () or (N,) with per_image",
    )


class GeneralizedDiceOptions(OverlapOptions, total=False):
    weight_type: str


def _class_weights(ts: torch.Tensor, weight_type: str) -> torch.Tensor:
    """w_c from the volumes V_c (last dim): an absent class (V_c = 0, infinite weight) takes
    the largest finite weight; when every class is absent, every weight is 1."""
    vol = ts.detach()
    absent = vol <= 0
    safe = torch.where(absent, torch.ones_like(vol), vol)
    if weight_type == "square":
        w = safe.square().reciprocal()
    elif weight_type == "simple":
        w = safe.reciprocal()
    else:
        w = torch.ones_like(vol)
    w = torch.where(absent, torch.zeros_like(w), w)
    w = torch.where(absent, w.amax(-1, keepdim=True), w)
    return torch.where(absent.all(-1, keepdim=True), torch.ones_like(w), w)


def _gdl(stats: torch.Tensor, o: GeneralizedDiceParams) -> torch.Tensor:
    tp, ps, ts = stats.unbind(0)
    w = _class_weights(ts, o.weight_type)
    num = 2 * (w * tp).sum(-1) + o.smooth
    den = (w * (ps + ts)).sum(-1) + o.smooth + o.eps
    return 1 - _score(num, den, (ps + ts).sum(-1) <= 0)


def generalized_dice(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[GeneralizedDiceOptions],
) -> torch.Tensor:
    """Generalized dice loss (Sudre et al. 2017, "Generalised Dice overlap as a deep learning
    loss function for highly unbalanced segmentations")::

        1 - (2 sum_c w_c TP_c + smooth) / (sum_c w_c (2 TP_c + FP_c + FN_c) + smooth + eps)

    with w_c from the target volume V_c = T_c: ``square`` 1/V_c^2, ``simple`` 1/V_c,
    ``uniform`` 1 (no gradient flows through w). A class absent from the target (infinite
    weight) takes the largest finite weight, as MONAI does, so predicting it is penalised.
    When every class is absent, every weight is 1 (the empty-mask policy of the overlap
    losses: with a non-empty prediction the loss is positive and its gradient pushes the
    prediction down; with an empty one it is 0), where MONAI gives 0. Equals MONAI's
    ``GeneralizedDiceLoss`` with ``smooth_nr = smooth``, ``smooth_dr = smooth + eps``;
    ``per_image: false`` is MONAI's ``batch=True``. Statistics (and ``mask``, ``ignore_index``,
    ``classes``, ``dist_sync``: the weights come from the synchronised volumes) as for
    :func:`~lossreg_builtin.segmentation.dice`.

    ``mask`` (call time, optional): per-pixel weights, bool or floating in [0, 1], of the
    target's shape without its class dim; 0 counts in no statistic.

    Shape: as :func:`~lossreg_builtin.segmentation.dice`; ``reduction='none'`` gives ``()``,
    or ``(N,)`` with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> generalized_dice(logits, target)  # one class: w = 1/4, (2 w TP) / (w (P + T))
    tensor(0.2129)
    """
    return _overlap_loss(
        "generalized_dice", GeneralizedDiceParams, input, target, options, _gdl, mask=mask
    )


# -- Matthews correlation coefficient -------------------------------------------------------
class MCCParams(OverlapParams):
    smooth: float = Field(
        0.0, ge=0, description="added to the numerator TP TN - FP FN (MONAI's smooth_nr)"
    )
    eps: float = Field(
        1e-5,
        ge=0,
        description="added under the square root of the denominator (MONAI's smooth_dr)",
    )


def _counts(prep: _Prepared, o: OverlapParams) -> torch.Tensor:
    """One more statistic row: the (weighted) number of elements of each class, so that
    TN = count - P - T + TP."""
    n, c, s = prep.x.shape
    w = prep.valid
    if w is None:
        count = prep.x.new_full((n, c), float(s))
    else:
        w = w.to(prep.x.dtype)
        count = w.sum(-1)  # (N,) index targets; (N, C) or (N, 1) otherwise
        count = (count.unsqueeze(1) if count.dim() == 1 else count).expand(n, c)
    return (count if o.per_image else count.sum(0)).unsqueeze(0)


def _mcc(stats: torch.Tensor, o: MCCParams) -> torch.Tensor:
    tp, ps, ts, count = stats.unbind(0)
    fp, fn = ps - tp, ts - tp
    tn = count - ps - ts + tp
    # MCC is scale-free: with every count divided by the element count the product of the
    # four sums stays below 1 (no float32 overflow on big volumes); smooth and eps are
    # rescaled to match, so the value is the unscaled formula's
    scale = torch.where(count > 0, count, torch.ones_like(count))
    a_tp, a_fp, a_fn, a_tn = tp / scale, fp / scale, fn / scale, tn / scale
    sq = scale.square()
    num = a_tp * a_tn - a_fp * a_fn + o.smooth / sq
    q = (a_tp + a_fp) * (a_tp + a_fn) * (a_tn + a_fp) * (a_tn + a_fn) + o.eps / sq / sq
    # sqrt has an infinite derivative at 0: the safe operand is chosen before the sqrt
    live = ~(q <= 0)  # a NaN stays live, so NaN input gives NaN (never a finite value)
    den = torch.where(live, q, torch.ones_like(q)).sqrt()
    loss = 1 - torch.where(live, num / den, torch.zeros_like(num))
    # no false positive and no false negative (a perfect or an empty-and-empty batch): 0
    perfect = (fp <= 0) & (fn <= 0)
    return torch.where(perfect, torch.zeros_like(loss), loss)


def mcc(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    **options: Unpack[OverlapOptions],
) -> torch.Tensor:
    """Matthews correlation coefficient loss (Abhishek and Hamarneh 2021, "Matthews correlation
    coefficient loss for deep convolutional networks: application to skin lesion
    segmentation"), per class (one against the rest)::

        1 - (TP TN - FP FN + smooth) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN) + eps)

    on soft counts: TP = sum p t, FP = sum p (1 - t), FN = sum (1 - p) t,
    TN = sum (1 - p)(1 - t), summed as for :func:`~lossreg_builtin.segmentation.dice`, then
    averaged over classes. Unlike dice it counts true negatives. Equals MONAI's ``MCCLoss``
    (``smooth_nr = smooth``, default 0; ``smooth_dr = eps``, default 1e-5; ``per_image:
    false`` is its ``batch=True``). smp's binary ``MCCLoss`` adds its eps to each of the four
    counts instead; with eps = 0 both are the plain soft MCC.

    Stable at the degenerate batches (finite values and gradients, documented, since peers
    report them as unstable): no false positive and no false negative (a perfect prediction,
    or empty target and empty prediction) gives 0 with gradient 0. An empty target with a
    non-empty prediction (or a full target, or an empty or full prediction) makes the
    coefficient 0/0, undefined: the value is then 1 - smooth / sqrt(eps), 1 with the default
    smooth 0, constant in the prediction, so its gradient is 0 (the empty-mask rule "pushes
    the prediction down" does not apply; pair mcc with a term such as ``bce`` where empty
    targets occur). The product is formed on counts divided by the element count, so big
    volumes do not overflow float32.

    ``mask`` (call time, optional): per-pixel weights, bool or floating in [0, 1], of the
    target's shape without its class dim; 0 counts in no statistic, TN included.

    Shape: as :func:`~lossreg_builtin.segmentation.dice`; ``reduction='none'`` gives (C,),
    or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> mcc(logits, target)
    tensor(0.4041)
    """
    return _overlap_loss("mcc", MCCParams, input, target, options, _mcc, _counts, mask=mask)
