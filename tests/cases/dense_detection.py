"""Conformance cases for varifocal, quality_focal and distribution_focal: mmdetection 3.x
written out in float64 (mmdet itself does not install here): ``varifocal_loss``
(mmdet/models/losses/varifocal_loss.py) and ``quality_focal_loss_tensor_target`` and
``distribution_focal_loss`` (mmdet/models/losses/gfocal_loss.py, v3.2.0). mmdet's ``mean``
is ``weight_reduce_loss``'s ``loss.mean()`` of what each returns."""

import torch
import torch.nn.functional as F

from lossreg.testing import Case
from tests.cases import reduce


def mmdet_varifocal(pred, target, alpha=0.75, gamma=2.0, iou_weighted=True, reduction="mean"):
    pred_sigmoid = pred.sigmoid()
    target = target.type_as(pred)
    if iou_weighted:
        focal_weight = (
            target * (target > 0.0).float()
            + alpha * (pred_sigmoid - target).abs().pow(gamma) * (target <= 0.0).float()
        )
    else:
        focal_weight = (target > 0.0).float() + alpha * (pred_sigmoid - target).abs().pow(gamma) * (
            target <= 0.0
        ).float()
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight
    return reduce(loss, reduction)


def mmdet_qfl_elementwise(pred, target, beta=2.0):
    """quality_focal_loss_tensor_target before its ``loss.sum(dim=1)``."""
    pred_sigmoid = pred.sigmoid()
    scale_factor = pred_sigmoid
    target = target.type_as(pred)
    zerolabel = scale_factor.new_zeros(pred.shape)
    loss = F.binary_cross_entropy_with_logits(pred, zerolabel, reduction="none") * (
        scale_factor.pow(beta)
    )
    pos = target != 0
    scale_factor = target[pos] - pred_sigmoid[pos]
    loss[pos] = F.binary_cross_entropy_with_logits(
        pred[pos], target[pos], reduction="none"
    ) * scale_factor.abs().pow(beta)
    return loss


def _qfl(pred, target, beta=2.0, reduction="mean"):
    # ours averages over elements; mmdet's mean is sum(dim=1).mean(), i.e. our sum / N
    return reduce(mmdet_qfl_elementwise(pred, target, beta), reduction)


def mmdet_dfl(pred, label):
    dis_left = label.long()
    dis_right = dis_left + 1
    weight_left = dis_right.to(pred.dtype) - label
    weight_right = label - dis_left.to(pred.dtype)
    return (
        F.cross_entropy(pred, dis_left, reduction="none") * weight_left
        + F.cross_entropy(pred, dis_right, reduction="none") * weight_right
    )


def _dfl(pred, label, reduction="mean"):
    return reduce(mmdet_dfl(pred, label), reduction)


def _dense(dtype, gen):
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64) * 2
    q = torch.rand(4, 3, generator=gen, dtype=torch.float64)
    q[q < 0.5] = 0.0  # negatives: quality 0
    return x.to(dtype), q.to(dtype)


def _bins(dtype, gen):
    x = torch.randn(5, 6, generator=gen, dtype=torch.float64) * 2
    y = torch.rand(5, generator=gen, dtype=torch.float64) * 4.99  # mmdet needs y < n - 1
    return x.to(dtype), y.to(dtype)


CASES = {
    "varifocal": Case(_dense, params={"alpha": 0.6, "gamma": 1.5}, reference=mmdet_varifocal),
    "quality_focal": Case(_dense, params={"beta": 2.5}, reference=_qfl),
    "distribution_focal": Case(_bins, reference=_dfl),
}
