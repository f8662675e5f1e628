"""Boundary losses for segmentation: ``boundary`` (Kervadec), ``hausdorff_dt`` (distance
transforms) and ``hausdorff_er`` (erosions), all per ``(n, c)`` slice.

Every loss takes ``(N, C, *spatial)`` input with 2 or 3 spatial dims (``boundary``: 1 or
more) and the modes of the overlap losses (``binary``: one channel, sigmoid; ``multiclass``:
softmax over C, class indices or probabilities as target; ``multilabel``: sigmoid per
channel). ``reduction='none'`` gives (N, C), one value per sample and class (the selected
``classes``); ``mean`` and ``sum`` reduce those. The distance maps come from
:mod:`lossreg.distance`: exact, in torch on the input's device, no gradient through them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import LossregError, check_floating, check_range, check_same_device
from lossreg.distance import boundary_distance

from ._common import options, reduce, upcast
from ._spatial import SpatialParams, dense, select

__all__ = ["boundary", "hausdorff_dt", "hausdorff_er"]


class BoundaryParams(SpatialParams):
    pass


class HausdorffDTParams(SpatialParams):
    alpha: float = Field(2.0, gt=0, description="exponent of the distances (Karimi's alpha)")


class HausdorffERParams(SpatialParams):
    alpha: float = Field(2.0, ge=0, description="erosion i is weighted (i + 1)^alpha")
    k: int = Field(10, ge=1, description="number of erosions")


def boundary(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    from_logits: bool = True,
    classes: list[int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Boundary loss (Kervadec et al. 2019, "Boundary loss for highly unbalanced
    segmentation"), per sample and class::

        mean over pixels of p_c * phi_c

    with phi the signed distance map of the target class, negative inside (make it with
    :func:`lossreg.signed_distance`, once per sample in the data pipeline). Its minimum puts
    all probability on the object's interior. The paper ramps it in beside a regional loss
    (``dice + w * boundary`` with a schedule on ``w``); alone it has no lower bound at 0.
    ``classes=[1, ...]`` leaves out the background as Kervadec's ``idc`` does.

    Shape: input (N, C, *spatial), target phi of the same shape (every mode, multiclass
    included); ``reduction='none'`` gives (N, C).

    >>> import lossreg
    >>> logits = torch.tensor([[[[2.0, -1.0, -3.0]]]])
    >>> phi = lossreg.signed_distance(torch.tensor([[[[1, 0, 0]]]]))
    >>> phi
    tensor([[[[0., 1., 2.]]]])
    >>> boundary(logits, phi)
    tensor(0.1213)
    """
    options(BoundaryParams, "boundary", locals(), local=True)
    name = "boundary"
    check_same_device(name, input, target)
    check_floating(name, "input", input)
    check_floating(name, "target (signed distance map)", target)
    if input.dim() < 3:
        raise LossregError(
            f"{name}: input must have shape (N, C, *spatial), got shape {tuple(input.shape)}"
        )
    if target.shape != input.shape:
        raise LossregError(
            f"{name}: target (the signed distance map) must have the input's shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}"
        )
    c = input.shape[1]
    if mode == "binary" and c != 1:
        raise LossregError(f"{name}: mode binary takes input (N, 1, *), got {tuple(input.shape)}")
    if classes is not None and any(not 0 <= k < c for k in classes):
        bad = next(k for k in classes if not 0 <= k < c)
        raise LossregError(f"{name}: classes holds {bad}, outside [0, {c}) for input with {c}")
    x, phi = upcast(input, target)
    if not from_logits:
        check_range(name, "input (probabilities, from_logits=false)", input.detach())
        p = x
    else:
        p = x.softmax(1) if mode == "multiclass" else x.sigmoid()
    loss = (p * phi.to(p.dtype)).flatten(2).mean(2)
    return reduce(select(loss, classes), reduction, name).to(input.dtype)


def hausdorff_dt(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 2.0,
    mode: str = "binary",
    from_logits: bool = True,
    classes: list[int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hausdorff distance loss, distance-transform form (Karimi and Salcudean 2019,
    "Reducing the Hausdorff distance in medical image segmentation with convolutional
    neural networks"), per sample and class::

        mean over pixels of (p - t)^2 (d_p^alpha + d_t^alpha)

    d_p, d_t: for each pixel the Euclidean distance to the boundary of the binarised
    prediction (p > 0.5) or target (t > 0.5), from either side; a slice with no foreground
    or no background has d = 0 (MONAI's ``distance_field``). No gradient flows through d.
    Equal to MONAI ``HausdorffDTLoss`` (which computes d with scipy on the host, in float32),
    with ``reduction='none'`` giving (N, C) where MONAI gives (N, C, 1, 1); MONAI's
    ``include_background=False`` is ``classes=[1, ..., C-1]``.

    Shape: see the module; ``reduction='none'`` gives (N, C).

    >>> logits = torch.tensor([[[[3.0, 1.0, -1.0, -2.0]]]])
    >>> mask = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    >>> hausdorff_dt(logits, mask)
    tensor(0.4066)
    """
    options(HausdorffDTParams, "hausdorff_dt", locals(), local=True)
    name = "hausdorff_dt"
    p, t = dense(name, input, target, mode, from_logits, classes)
    n = p.shape[0]
    with torch.no_grad():
        d = boundary_distance(torch.cat([p.detach() > 0.5, t > 0.5]), dtype=p.dtype)
        weight = d[:n].pow_(alpha).add_(d[n:].pow_(alpha))  # d is ours: in place
    loss = ((p - t).square() * weight).flatten(2).mean(2)
    return reduce(select(loss, classes), reduction, name).to(input.dtype)


def hausdorff_er(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 2.0,
    k: int = 10,
    mode: str = "binary",
    from_logits: bool = True,
    classes: list[int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hausdorff distance loss, erosion form (Karimi and Salcudean 2019), per pixel::

        sum_{i < k} (i + 1)^alpha E_i,   E_0 = (p - t)^2,
        E_{i+1} = normalise(max(B * E_i - 0.5, 0))

    B: the mean over the pixel and its face neighbours (a cross of 5 in 2-D, 7 in 3-D, zero
    outside the image); normalise: min-max over each (n, c) slice, unless it is constant.
    Differentiable and on the device. Equal to kornia ``HausdorffERLoss`` /
    ``HausdorffERLoss3D`` given probabilities (``from_logits=False``, multiclass with class
    indices (N, *spatial) where kornia takes (N, 1, *spatial)), except that kornia's float64
    kernel carries float32's 0.2 (so float64 agrees to 1e-7). ``mean`` is the mean over
    every pixel, sample and class, as kornia's.

    Shape: see the module; ``reduction='none'`` gives (N, C, *spatial), the map.

    >>> logits = torch.tensor([[[[4.0, 3.0, -2.0, -3.0], [3.0, 2.0, 2.0, -4.0],
    ...                          [-3.0, -2.0, -3.0, -4.0]]]])
    >>> mask = torch.tensor([[[[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
    ...                        [0.0, 0.0, 1.0, 1.0]]]])
    >>> hausdorff_er(logits, mask, k=3)
    tensor(0.0833)
    """
    options(HausdorffERParams, "hausdorff_er", locals(), local=True)
    name = "hausdorff_er"
    p, t = dense(name, input, target, mode, from_logits, classes)
    if classes is not None:
        p, t = p[:, list(classes)], t[:, list(classes)]
    n, c, *spatial = p.shape
    nd = len(spatial)
    bound = (p - t).square().reshape(n * c, 1, *spatial)
    kernel = _cross(nd, p.dtype, p.device)
    bias = torch.full((1,), -0.5, dtype=p.dtype, device=p.device)
    conv = F.conv2d if nd == 2 else F.conv3d
    dims = tuple(range(2, 2 + nd))
    eroded = torch.zeros_like(bound)
    for i in range(k):
        # kornia: dilation = conv(bound); erosion = (dilation - 0.5) where dilation >= 0.5;
        # the bias subtracts 0.5 inside the convolution, the clamp keeps the >= 0.5 part
        erosion = conv(bound, kernel, bias, padding=1).clamp_min(0)
        top, low = erosion.amax(dims, keepdim=True), erosion.amin(dims, keepdim=True)
        span = top - low
        flat = span == 0  # a constant slice is left as it is
        erosion = (erosion - low.masked_fill(flat, 0)) / span.masked_fill(flat, 1)
        eroded = eroded.add(erosion, alpha=float((i + 1) ** alpha))
        bound = erosion
    loss = eroded.reshape(n, c, *spatial)
    return reduce(loss, reduction, name).to(input.dtype)


def _cross(nd: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The pixel and its face neighbours, each 1 / (2 nd + 1), as a conv weight."""
    w = torch.zeros((3,) * nd, dtype=dtype, device=device)
    for axis in range(nd):
        index = [1] * nd
        for j in (0, 2):
            index[axis] = j
            w[tuple(index)] = 1
    w[(1,) * nd] = 1
    return (w / (2 * nd + 1)).view(1, 1, *w.shape)
