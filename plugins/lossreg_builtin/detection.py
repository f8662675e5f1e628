"""Box regression losses on paired boxes: 1 - IoU, GIoU, DIoU and CIoU.

Values and gradients equal torchvision's ``generalized_box_iou_loss``, ``distance_box_iou_loss``
and ``complete_box_iou_loss`` (``box_iou``: 1 - IoU with the same intersection, union and eps)
wherever torchvision's are finite. Differences, all deliberate:

- ``reduction`` defaults to ``"mean"`` (lossreg's convention); torchvision's default is
  ``"none"``. As in torchvision, ``mean`` of zero boxes is 0 (with a gradient), not NaN.
- Boxes are validated first: shape ``(..., 4)``, equal shapes, finite, x2 >= x1, y2 >= y1.
- CIoU's aspect angle is ``atan2(w, h)``, equal to torchvision's ``atan(w / h)`` for h > 0; for a
  zero-height box it is pi/2 with a finite gradient (torchvision: NaN gradient), and for a
  point box (w = h = 0) it is pi/4 with no gradient (torchvision: NaN value).
- With ``eps = 0`` a zero denominator (both boxes of zero area; a zero-size enclosing box)
  gives a zero ratio instead of 0/0 = NaN; with ``eps > 0`` no denominator can be zero.
- half and bfloat16 are computed in float32 and returned in the input's dtype; integer boxes
  are computed in float32 (torchvision upcasts them too).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from lossreg import LossregError, Params, Reduction, check_same_shape, check_shape, reduce

from ._common import options

__all__ = ["box_iou", "ciou", "diou", "eiou", "giou"]


class BoxParams(Params):
    eps: float = Field(
        1e-7, ge=0, description="added to the union, enclosing area and diagonal denominators"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over boxes (torchvision defaults to `none`), `sum`, or `none` "
        "(the boxes' shape without the last dim)",
    )


def _check_boxes(loss: str, input: torch.Tensor, target: torch.Tensor) -> None:
    for name, boxes in (("input", input), ("target", target)):
        check_shape(loss, name, boxes, ["*", "4"])
    check_same_shape(loss, input, target)
    for name, boxes in (("input", input), ("target", target)):
        if boxes.numel() == 0:
            continue
        b = boxes.detach()
        bad = ~torch.isfinite(b).all(-1) | ~(b[..., 2] >= b[..., 0]) | ~(b[..., 3] >= b[..., 1])
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            box = [float(v) for v in b[where]]
            raise LossregError(
                f"{loss}: {name} holds an invalid box at index {where}: {box}; boxes are "
                "(x1, y1, x2, y2), finite, with x2 >= x1 and y2 >= y1"
            )


def _prepare(
    loss: str, input: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    _check_boxes(loss, input, target)
    out_dtype = input.dtype if input.is_floating_point() else torch.float32
    work = torch.float64 if out_dtype == torch.float64 else torch.float32
    return input.to(work), target.to(work), out_dtype


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, with 0 where den == 0 (only possible with eps = 0, and then num == 0 too).

    The denominator is replaced before dividing, so no NaN reaches the gradient."""
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, 1.0, den))


def _inter_union(b1: torch.Tensor, b2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    xi1, yi1 = torch.max(x1, x1g), torch.max(y1, y1g)
    xi2, yi2 = torch.min(x2, x2g), torch.min(y2, y2g)
    # torchvision fills the intersection only where it is positive (no gradient elsewhere)
    overlap = (xi2 > xi1) & (yi2 > yi1)
    inter = torch.where(overlap, (xi2 - xi1) * (yi2 - yi1), torch.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(
    b1: torch.Tensor, b2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    return torch.min(x1, x1g), torch.min(y1, y1g), torch.max(x2, x2g), torch.max(y2, y2g)


def _iou(b1: torch.Tensor, b2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    inter, union = _inter_union(b1, b2)
    return _ratio(inter, union + eps), union


def _diou_loss(b1: torch.Tensor, b2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    iou, _ = _iou(b1, b2, eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    diagonal_sq = (xc2 - xc1) ** 2 + (yc2 - yc1) ** 2 + eps
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    centers_sq = ((x1 + x2) / 2 - (x1g + x2g) / 2) ** 2 + ((y1 + y2) / 2 - (y1g + y2g) / 2) ** 2
    return 1 - iou + _ratio(centers_sq, diagonal_sq), iou


def _aspect_angle(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """atan(w / h) as atan2(w, h): equal for h > 0, pi/2 (finite gradient) for h = 0 < w.

    A point box (w = h = 0) has no aspect ratio: pi/4, and no gradient (atan2's derivative at
    the origin is 0/0, so the origin is replaced before atan2 is evaluated)."""
    point = (w == 0) & (h == 0)
    angle = torch.atan2(w, torch.where(point, 1.0, h))
    return torch.where(point, torch.full_like(angle, math.pi / 4), angle)


def _finish(loss: torch.Tensor, reduction: str, dtype: torch.dtype, name: str) -> torch.Tensor:
    # as torchvision: the mean of no boxes is 0 (with a gradient), not NaN
    return reduce(loss, reduction, name, empty_mean="zero").to(dtype)


def box_iou(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """IoU loss of paired boxes, 1 - IoU.

    IoU = |A n B| / (|A u B| + eps), with torchvision's intersection and union (the same as in
    its GIoU/DIoU/CIoU losses). No gradient when the boxes do not overlap (use ``giou``,
    ``diou`` or ``ciou`` then).

    Shape: input (predicted) and target boxes ``(*, 4)`` as (x1, y1, x2, y2), equal;
    ``none`` gives ``(*)``.

    >>> box_iou(torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([1.0, 0.0, 3.0, 2.0]))
    tensor(0.6667)
    """
    options(BoxParams, "box_iou", locals(), local=True)
    b1, b2, dtype = _prepare("box_iou", input, target)
    iou, _ = _iou(b1, b2, eps)
    return _finish(1 - iou, reduction, dtype, "box_iou")


def giou(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """Generalized IoU loss (Rezatofighi et al. 2019, CVPR), 1 - GIoU.

    GIoU = IoU - (|C| - |A u B|) / (|C| + eps), with C the smallest box enclosing both, so
    disjoint boxes still get a gradient. Equals torchvision's ``generalized_box_iou_loss``
    (whose default reduction is ``none``; ours is ``mean``).

    Shape: input (predicted) and target boxes ``(*, 4)`` as (x1, y1, x2, y2), equal;
    ``none`` gives ``(*)``. Values lie in [0, 2].

    >>> giou(torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([2.0, 0.0, 3.0, 1.0]))
    tensor(1.3333)
    """
    options(BoxParams, "giou", locals(), local=True)
    b1, b2, dtype = _prepare("giou", input, target)
    iou, union = _iou(b1, b2, eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    return _finish(1 - iou + _ratio(area_c - union, area_c + eps), reduction, dtype, "giou")


def diou(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """Distance IoU loss (Zheng et al. 2020, AAAI), 1 - IoU + rho^2 / c^2.

    rho is the distance between the boxes' centres and c the diagonal of the smallest enclosing
    box (c^2 + eps in the denominator). Equals torchvision's ``distance_box_iou_loss`` (whose
    default reduction is ``none``; ours is ``mean``).

    Shape: input (predicted) and target boxes ``(*, 4)`` as (x1, y1, x2, y2), equal;
    ``none`` gives ``(*)``.

    >>> diou(torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([2.0, 0.0, 3.0, 1.0]))
    tensor(1.4000)
    """
    options(BoxParams, "diou", locals(), local=True)
    b1, b2, dtype = _prepare("diou", input, target)
    loss, _ = _diou_loss(b1, b2, eps)
    return _finish(loss, reduction, dtype, "diou")


def eiou(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """Efficient IoU loss (Zhang et al. 2022, "Focal and Efficient IOU Loss for Accurate
    Bounding Box Regression", Neurocomputing), DIoU loss + (w - w_gt)^2 / C_w^2 +
    (h - h_gt)^2 / C_h^2.

    C_w and C_h are the width and height of the smallest enclosing box (C_w^2 + eps and
    C_h^2 + eps in the denominators; c^2 = C_w^2 + C_h^2 + eps in the DIoU term, as ``diou``).
    Unlike CIoU's aspect term, width and height errors are penalised directly, with a
    gradient throughout. There is no torchvision twin; the tests write the formula out.

    Shape: input (predicted) and target boxes ``(*, 4)`` as (x1, y1, x2, y2), equal;
    ``none`` gives ``(*)``.

    >>> eiou(torch.tensor([0.0, 0.0, 2.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    tensor(0.8000)
    """
    options(BoxParams, "eiou", locals(), local=True)
    b1, b2, dtype = _prepare("eiou", input, target)
    diou_loss, _ = _diou_loss(b1, b2, eps)
    xc1, yc1, xc2, yc2 = _enclosing(b1, b2)
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    dw = _ratio((x2 - x1 - (x2g - x1g)) ** 2, (xc2 - xc1) ** 2 + eps)
    dh = _ratio((y2 - y1 - (y2g - y1g)) ** 2, (yc2 - yc1) ** 2 + eps)
    return _finish(diou_loss + dw + dh, reduction, dtype, "eiou")


def ciou(
    input: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """Complete IoU loss (Zheng et al. 2020, AAAI), DIoU loss + alpha v.

    v = (4 / pi^2) (atan(w_gt / h_gt) - atan(w / h))^2 measures the aspect-ratio mismatch,
    alpha = v / (1 - IoU + v + eps) is held constant (no gradient), as in the paper and
    torchvision's ``complete_box_iou_loss`` (whose default reduction is ``none``; ours is
    ``mean``). Zero-size boxes: see the module docstring.

    Shape: input (predicted) and target boxes ``(*, 4)`` as (x1, y1, x2, y2), equal;
    ``none`` gives ``(*)``.

    >>> ciou(torch.tensor([0.0, 0.0, 2.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    tensor(0.5532)
    """
    options(BoxParams, "ciou", locals(), local=True)
    b1, b2, dtype = _prepare("ciou", input, target)
    diou_loss, iou = _diou_loss(b1, b2, eps)
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    delta = _aspect_angle(x2g - x1g, y2g - y1g) - _aspect_angle(x2 - x1, y2 - y1)
    v = (4 / math.pi**2) * delta**2
    with torch.no_grad():
        alpha = _ratio(v, 1 - iou + v + eps)
    return _finish(diou_loss + alpha * v, reduction, dtype, "ciou")
