"""Conformance cases for the detection plugin. The references are torchvision's box losses
(torchvision/ops/_utils.py ``_loss_inter_union``, giou_loss.py, diou_loss.py ``_diou_iou_loss``,
ciou_loss.py) written out in float64, torchvision itself not imported."""

import math

import torch

from lossreg.testing import Case
from tests.cases import reduce


def tv_inter_union(boxes1, boxes2):
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)
    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
    return intsctk, unionk


def tv_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    intsctk, unionk = tv_inter_union(boxes1, boxes2)
    return reduce(1 - intsctk / (unionk + eps), reduction, empty_mean="zero")


def tv_giou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    intsctk, unionk = tv_inter_union(boxes1, boxes2)
    iouk = intsctk / (unionk + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))
    return reduce(1 - miouk, reduction, empty_mean="zero")


def _tv_diou_iou(boxes1, boxes2, eps):
    intsct, union = tv_inter_union(boxes1, boxes2)
    iou = intsct / (union + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    return 1 - iou + (centers_distance_squared / diagonal_distance_squared), iou


def tv_diou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return reduce(_tv_diou_iou(boxes1, boxes2, eps)[0], reduction, empty_mean="zero")


def tv_ciou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    diou_loss, iou = _tv_diou_iou(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    v = (4 / (math.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return reduce(diou_loss + alpha * v, reduction, empty_mean="zero")


def eiou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    # Zhang et al. 2022, eq. 11, with DIoU's eps placement: the DIoU loss plus the width and
    # height gaps over the enclosing box's squared width and height
    diou_loss, _ = _tv_diou_iou(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    cw = torch.max(x2, x2g) - torch.min(x1, x1g)
    ch = torch.max(y2, y2g) - torch.min(y1, y1g)
    rho_w2 = ((x2 - x1) - (x2g - x1g)) ** 2
    rho_h2 = ((y2 - y1) - (y2g - y1g)) ** 2
    loss = diou_loss + rho_w2 / (cw**2 + eps) + rho_h2 / (ch**2 + eps)
    return reduce(loss, reduction, empty_mean="zero")


def random_boxes(gen, *shape, dtype=torch.float64):
    xy = torch.randn(*shape, 2, generator=gen, dtype=torch.float64)
    wh = torch.rand(*shape, 2, generator=gen, dtype=torch.float64) * 2 + 0.1
    return torch.cat([xy, xy + wh], -1).to(dtype)


def _pairs(dtype, gen):
    # (2, 3) pairs of boxes: mostly overlapping, some disjoint
    return random_boxes(gen, 2, 3, dtype=dtype), random_boxes(gen, 2, 3, dtype=dtype)


def _case(reference, gradcheck=True):
    # boxes are coordinates, not logits: no +-1e4 scaling (negating them would flip x1 and x2)
    return Case(
        _pairs,
        params={"eps": 1e-7},
        reference=reference,
        grad_inputs=(0, 1),
        extreme=False,
        gradcheck=gradcheck,
    )


CASES = {
    "box_iou": _case(tv_box_iou_loss),
    "giou": _case(tv_giou_loss),
    "diou": _case(tv_diou_loss),
    # CIoU holds alpha constant (no_grad, as the paper and torchvision do), so its gradient is
    # deliberately not the numerical derivative; tests/test_detection.py compares it with the
    # reference's autograd gradient instead.
    "ciou": _case(tv_ciou_loss, gradcheck=False),
    "eiou": _case(eiou_loss),
}
