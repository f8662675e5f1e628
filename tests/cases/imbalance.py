"""Conformance cases for generalized_dice and mcc; float64 references written out here from
LOSSES.md "Round 2" (TP, FP, FN, TN summed directly, one-hot by comparison), independent of
the plugin's statistics."""

import torch

from lossreg.testing import Case
from tests.cases.segmentation import IGNORE, multiclass_inputs, multilabel_inputs


def _reduce(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def _counts(x, t, mode, ignore_index=None, per_image=False):
    x = x.double()
    c = x.shape[1]
    p = x.softmax(1) if mode == "multiclass" else x.sigmoid()
    if mode == "multiclass":
        valid = (t != IGNORE).unsqueeze(1).double() if ignore_index is not None else 1.0
        y = (t.unsqueeze(1) == torch.arange(c).view(1, c, 1, 1)).double()
    else:
        valid, y = 1.0, t.double()
    dims = (2, 3) if per_image else (0, 2, 3)
    tp = (valid * p * y).sum(dims)
    fp = (valid * p * (1 - y)).sum(dims)
    fn = (valid * (1 - p) * y).sum(dims)
    tn = (valid * (1 - p) * (1 - y)).sum(dims)
    return tp, fp, fn, tn


def ref_generalized_dice(
    x, t, *, mode="binary", weight_type="square", smooth=1e-5, eps=1e-7, ignore_index=None,
    per_image=False, reduction="mean", **_,
):  # fmt: skip
    tp, fp, fn, _tn = _counts(x, t, mode, ignore_index, per_image)
    vol = tp + fn
    w = {"square": 1 / vol**2, "simple": 1 / vol, "uniform": torch.ones_like(vol)}[weight_type]
    w = torch.where(torch.isinf(w), torch.where(torch.isinf(w), 0.0, w).amax(-1, keepdim=True), w)
    num = 2 * (w * tp).sum(-1) + smooth
    den = (w * (2 * tp + fp + fn)).sum(-1) + smooth + eps
    return _reduce(1 - num / den, reduction)


def ref_mcc(
    x, t, *, mode="binary", smooth=0.0, eps=1e-5, ignore_index=None, per_image=False,
    reduction="mean", **_,
):  # fmt: skip
    tp, fp, fn, tn = _counts(x, t, mode, ignore_index, per_image)
    num = tp * tn - fp * fn + smooth
    den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + eps)
    return _reduce(1 - num / den, reduction)


CASES = {
    "generalized_dice": Case(
        multiclass_inputs,
        params={"mode": "multiclass", "ignore_index": IGNORE, "weight_type": "simple"},
        reference=ref_generalized_dice,
    ),
    "mcc": Case(
        multilabel_inputs,
        params={"mode": "multilabel", "per_image": True},
        reference=ref_mcc,
    ),
}
