"""Topology-aware overlap for thin structures: ``cldice`` (soft skeletons), and the named
composite ``dice_cldice``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import Reduction

from ._common import options
from ._overlap import _reduce, _sync
from ._spatial import SpatialParams, dense

__all__ = ["cldice", "soft_skeleton"]


class ClDiceParams(SpatialParams):
    iters: int = Field(3, ge=0, description="skeletonisation steps (erosions); about the "
                       "largest radius of the structures, in pixels")  # fmt: skip
    smooth: float = Field(
        1.0, gt=0, description="added to numerator and denominator of Tprec and Tsens"
    )
    eps: float = Field(
        1e-4, ge=0, description="added to the denominator of the harmonic mean (MONAI's smooth)"
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


def _erode(x: torch.Tensor) -> torch.Tensor:
    # the minimum over the plus-shaped neighbourhood, as min over one-axis 3-windows
    nd = x.dim() - 2
    pool = F.max_pool2d if nd == 2 else F.max_pool3d
    out = None
    for axis in range(nd):
        size = [1] * nd
        size[axis] = 3
        pad = [s // 2 for s in size]
        m = -pool(-x, size, 1, pad)
        out = m if out is None else torch.minimum(out, m)
    assert out is not None
    return out


def _dilate(x: torch.Tensor) -> torch.Tensor:
    pool = F.max_pool2d if x.dim() == 4 else F.max_pool3d
    return pool(x, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Soft skeleton (Shit et al. 2021) of a soft mask ``(N, C, *spatial)`` in [0, 1], 2 or 3
    spatial dims: the sum over iterated erosions of what an opening removes.

    Each step's erosion is computed once and shared by that step's opening and the next
    step (the reference computes it twice); the values are the reference's.

    >>> soft_skeleton(torch.tensor([[[[0., 1., 1., 1., 0.]] * 3]]), iters=1)
    tensor([[[[0., 0., 1., 0., 0.],
              [0., 0., 1., 0., 0.],
              [0., 0., 1., 0., 0.]]]])
    """
    eroded = _erode(x)
    skel = F.relu(x - _dilate(eroded))
    for _ in range(iters):
        x = eroded
        eroded = _erode(x)
        delta = F.relu(x - _dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def cldice(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    iters: int = 3,
    smooth: float = 1.0,
    eps: float = 1e-4,
    mode: str = "binary",
    from_logits: bool = True,
    classes: list[int] | None = None,
    per_image: bool = False,
    reduction: str = "mean",
    dist_sync: bool = False,
) -> torch.Tensor:
    """Soft clDice loss (Shit et al. 2021, "clDice - a novel topology-preserving loss
    function for tubular structure segmentation"), per class::

        Tprec = (sum S(p) t + smooth) / (sum S(p) + smooth)
        Tsens = (sum S(t) p + smooth) / (sum S(t) + smooth)
        loss = 1 - 2 Tprec Tsens / (Tprec + Tsens + eps)

    S: :func:`soft_skeleton` with ``iters`` steps; sums over the batch and space
    (``per_image``: per sample). Empty masks: an empty target with a non-empty prediction
    has Tsens = 1 and Tprec < 1, a positive loss whose gradient removes the prediction's
    skeleton; both empty (sum p + sum t = 0) gives 0 exactly. ``dist_sync`` all-reduces the
    four sums. MONAI ``SoftclDiceLoss`` sums over the channels and space of each sample:
    per class, with ``per_image``, it is MONAI on that class's channel alone (smooth_nr =
    smooth_dr = ``smooth``, MONAI's ``smooth`` = ``eps``); over the batch, MONAI on the class
    with the batch moved into the channels.

    Shape: input (N, C, *spatial), 2 or 3 spatial dims, modes as ``dice``;
    ``reduction='none'`` gives (C,), or (N, C) with ``per_image``.

    >>> logits = torch.tensor([[[[-3., 2., 3., 2., -3.]] * 3]])
    >>> mask = torch.tensor([[[[0., 1., 1., 1., 0.]] * 3]])
    >>> cldice(logits, mask)
    tensor(0.0182)
    """
    options(ClDiceParams, "cldice", locals(), local=True)
    name = "cldice"
    p, t = dense(name, input, target, mode, from_logits, classes)
    sp = soft_skeleton(p, iters)
    with torch.no_grad():
        st = soft_skeleton(t, iters)
    dims = tuple(range(2, p.dim())) if per_image else (0, *range(2, p.dim()))
    stats = torch.stack(
        [(sp * t).sum(dims), sp.sum(dims), (st * p).sum(dims), st.sum(dims), (p + t).sum(dims)]
    )
    stats = _sync(stats, dist_sync, per_image)
    if classes is not None:
        stats = stats[..., list(classes)]
    hit_p, skel_p, hit_t, skel_t, mass = stats.unbind(0)
    tprec = (hit_p + smooth) / (skel_p + smooth)
    tsens = (hit_t + smooth) / (skel_t + smooth)
    den = tprec + tsens + eps
    empty = mass <= 0
    # where both masks are empty the loss is 0; the denominator is made safe first
    den = torch.where(empty, torch.ones_like(den), den)
    loss = torch.where(empty, torch.zeros_like(den), 1 - 2 * tprec * tsens / den)
    return _reduce(loss, reduction, name).to(input.dtype)
