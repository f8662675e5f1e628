"""Conformance cases for the segmentation plugin; float64 references written out here from
the formulas in LOSSES.md (FP and FN summed directly, one-hot by comparison), independent of
the plugin's statistics."""

import torch
import torch.nn.functional as F

from lossreg.testing import Case
from tests.cases import reduce

IGNORE = 255


def ref_stats(x, t, mode="binary", from_logits=True, ignore_index=None, per_image=False):
    """Float64 (TP, FP, FN) per class: (C,) or (N, C) with per_image."""
    x = x.double()
    if mode == "binary":
        x, t = x.reshape(x.shape[0], 1, -1), t.reshape(t.shape[0], 1, -1)
    if mode == "multiclass" and t.dim() == x.dim() - 1:
        c = x.shape[1]
        labels = torch.arange(c).view(1, c, *[1] * (t.dim() - 1))
        valid = (t != ignore_index).unsqueeze(1) if ignore_index is not None else None
        t = (t.unsqueeze(1) == labels).double()
    else:
        valid = (t != ignore_index) if ignore_index is not None else None
        t = t.double() if valid is None else torch.where(valid, t.double(), 0.0)
    p = (x.softmax(1) if mode == "multiclass" else x.sigmoid()) if from_logits else x
    if valid is not None:
        p, t = p * valid, t * valid
    dims = tuple(range(2, p.dim())) if per_image else (0, *range(2, p.dim()))
    return (p * t).sum(dims), (p * (1 - t)).sum(dims), ((1 - p) * t).sum(dims)


def ref_tversky_index(x, t, alpha, beta, smooth=1.0, eps=1e-7, **kw):
    tp, fp, fn = ref_stats(x, t, **kw)
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth + eps)


def ref_dice(
    x,
    t,
    *,
    smooth=1.0,
    eps=1e-7,
    log_loss=False,
    reduction="mean",
    classes=None,
    dist_sync=False,
    **kw,
):
    tp, fp, fn = ref_stats(x, t, **kw)
    score = (2 * tp + smooth) / (2 * tp + fp + fn + smooth + eps)
    loss = -torch.log(score) if log_loss else 1 - score
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_iou(x, t, *, smooth=1.0, eps=1e-7, reduction="mean", classes=None, dist_sync=False, **kw):
    tp, fp, fn = ref_stats(x, t, **kw)
    loss = 1 - (tp + smooth) / (tp + fp + fn + smooth + eps)
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_tversky(
    x, t, *, alpha=0.3, beta=0.7, reduction="mean", classes=None, dist_sync=False, **kw
):
    loss = 1 - ref_tversky_index(x, t, alpha, beta, **kw)
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_focal_tversky(
    x, t, *, gamma=0.75, reduction="mean", classes=None, dist_sync=False, alpha=0.3, beta=0.7, **kw
):
    loss = (1 - ref_tversky_index(x, t, alpha, beta, **kw)) ** gamma
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_combo(
    x,
    t,
    *,
    alpha=0.5,
    ce_ratio=0.5,
    smooth=1.0,
    eps=1e-7,
    mode="binary",
    ignore_index=None,
    per_image=False,
    reduction="mean",
    classes=None,
    from_logits=True,
    dist_sync=False,
):
    kw = dict(mode=mode, ignore_index=ignore_index, per_image=per_image, from_logits=from_logits)
    tp, fp, fn = ref_stats(x, t, **kw)
    dsc = (2 * tp + smooth) / (2 * tp + fp + fn + smooth + eps)
    x, t = x.double(), t.double()
    if mode == "binary":
        x, t = x.reshape(x.shape[0], 1, -1), t.reshape(t.shape[0], 1, -1)
    p = torch.sigmoid(x) if from_logits else x
    valid = torch.ones_like(t) if ignore_index is None else (t != ignore_index).double()
    t = t * valid
    wbce = -(alpha * t * torch.log(p) + (1 - alpha) * (1 - t) * torch.log(1 - p)) * valid
    dims = tuple(range(2, x.dim())) if per_image else (0, *range(2, x.dim()))
    bce = wbce.sum(dims) / valid.sum(dims)
    loss = ce_ratio * bce - (1 - ce_ratio) * dsc
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_dice_bce(x, t):
    return ref_dice(x, t) + F.binary_cross_entropy_with_logits(x.double(), t.double())


# -- inputs ---------------------------------------------------------------------------------
def binary_inputs(dtype, gen, shape=(3, 1, 4, 4)):
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 2
    t = (torch.rand(*shape, generator=gen, dtype=torch.float64) > 0.5).double()
    return x.to(dtype), t.to(dtype)


def multilabel_inputs(dtype, gen, shape=(3, 3, 4, 4)):
    return binary_inputs(dtype, gen, shape)


def multiclass_inputs(dtype, gen, n=3, c=4, hw=(4, 4), ignore=True):
    x = torch.randn(n, c, *hw, generator=gen, dtype=torch.float64) * 2
    t = torch.randint(0, c, (n, *hw), generator=gen)
    if ignore:
        t[0, 0, :2] = IGNORE
    return x.to(dtype), t


CASES = {
    "dice": Case(
        multiclass_inputs,
        params={"mode": "multiclass", "ignore_index": IGNORE},
        reference=ref_dice,
    ),
    "iou": Case(binary_inputs, params={"per_image": True}, reference=ref_iou),
    "tversky": Case(
        multilabel_inputs,
        params={"mode": "multilabel", "alpha": 0.2, "beta": 0.8},
        reference=ref_tversky,
    ),
    "focal_tversky": Case(binary_inputs, params={"gamma": 0.75}, reference=ref_focal_tversky),
    "combo": Case(
        multilabel_inputs,
        params={"mode": "multilabel", "alpha": 0.7, "ce_ratio": 0.4},
        reference=ref_combo,
    ),
    "dice_bce": Case(binary_inputs, reference=ref_dice_bce),
}
