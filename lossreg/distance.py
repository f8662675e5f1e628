"""Exact Euclidean distance transforms in torch, on the mask's device, without gradient.

A geometric transform, not a loss: the data pipeline calls :func:`signed_distance` to make
the targets of the ``boundary`` loss, and the distance-weighted losses (``hausdorff_dt``) call
it inside ``forward``. So it lives in the core, next to the checks every plugin uses, rather
than inside one plugin; ``lossreg.signed_distance`` loads this module on first access.

Method. Squared distances are separable (Saito and Toriwaki 1994; Felzenszwalb and
Huttenlocher 2012): along the last axis the 1-D distance to the nearest feature comes from one
running max from each end (log2(n) doubling steps); along each further axis
``D(x) = min_s (G(x + s) + s^2)`` over integer shifts ``s``, taken one shift at a time over
every line at once (two shifted views, one add and one in-place minimum each). After the
shifts ``|s| < r`` every element whose value is at most ``r^2`` is final, since a farther
candidate costs at least ``r^2``: lines whose elements are all final drop out (the rest are
gathered into a smaller tensor), and the loop stops when none is left. The result is exact
(integer squared distances, exact in the working float type); the number of shifts is the
largest distance in the batch (at most the axis length), and the late shifts run on the few
lines that need them.
"""

from __future__ import annotations

import math

import torch

from .errors import LossregError

__all__ = ["boundary_distance", "edt", "signed_distance"]


def edt(mask: torch.Tensor, spatial_dims: int | None = None) -> torch.Tensor:
    """Euclidean distance of every nonzero element to the nearest zero element, over the
    last ``spatial_dims`` dims (default: all dims), one transform per leading index; zero
    elements give 0. Equals ``scipy.ndimage.distance_transform_edt`` on each slice, including
    a slice with no zero element, where scipy measures to the point ``(-1, 0, ..., 0)`` just
    outside the first face, and this function follows it.

    Shape: ``mask`` ``(*, *spatial)``, any dtype (nonzero is foreground); out: the same shape,
    float64 for a float64 mask, else float32. No gradient.

    >>> m = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    >>> edt(m)
    tensor([[3.0000, 2.0000, 1.0000, 0.0000],
            [3.1623, 2.2361, 1.4142, 1.0000]])
    """
    if not isinstance(mask, torch.Tensor):
        raise LossregError(f"edt: mask must be a tensor, got {type(mask).__name__}")
    nd = mask.dim() if spatial_dims is None else spatial_dims
    if not 1 <= nd <= mask.dim():
        raise LossregError(
            f"edt: spatial_dims must be in [1, {mask.dim()}] for a mask of shape "
            f"{tuple(mask.shape)}, got {spatial_dims}"
        )
    dtype = torch.float64 if mask.dtype == torch.float64 else torch.float32
    spatial = tuple(mask.shape[mask.dim() - nd :])
    with torch.no_grad():
        flat = (mask.detach() != 0).reshape(-1, *spatial)
        full = flat.reshape(flat.shape[0], -1).all(1)
        feature = ~flat
        feature[full] = True  # searched as "all zero" (no shift runs), then given scipy's value
        out: torch.Tensor = _squared_edt(feature, _work_dtype(spatial)).to(dtype).sqrt()
        if bool(full.any()):  # scipy's convention where nothing is zero: distance to (-1, 0, ...)
            corner = torch.zeros(spatial, device=mask.device, dtype=dtype)
            for k, n in enumerate(spatial):
                pos = torch.arange(n, device=mask.device, dtype=dtype) + (k == 0)
                corner = corner + pos.square().view(n, *[1] * (nd - k - 1))
            out[full] = corner.sqrt()
    result: torch.Tensor = out.reshape(mask.shape)
    return result


def signed_distance(mask: torch.Tensor) -> torch.Tensor:
    """Signed distance map of each ``(n, c)`` slice of a mask, for the ``boundary`` loss
    (Kervadec et al. 2019, "Boundary loss for highly unbalanced segmentation").

    Outside the object: the Euclidean distance to it; inside: ``-(distance to the
    background - 1)``, so the inner boundary is 0 (Kervadec's reference ``one_hot2dist``).
    A slice with no foreground or no background gives 0 everywhere. Computed exactly in torch
    on the mask's device (equal to ``scipy.ndimage.distance_transform_edt``), no gradient.

    Shape: ``mask`` ``(N, C, H, W)`` or ``(N, C, D, H, W)``, bool or values in {0, 1};
    out: the same shape, in the mask's dtype if floating, else float32.

    >>> m = torch.tensor([[[[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1]]]])
    >>> signed_distance(m)
    tensor([[[[ 1.4142,  1.0000,  1.0000,  1.0000],
              [ 1.0000,  0.0000,  0.0000,  0.0000],
              [ 1.0000,  0.0000, -1.0000, -1.0000]]]])
    """
    pos, out_dtype = _check_mask("signed_distance", mask)
    with torch.no_grad():
        outside, inside, valid = _two_sided(pos, out_dtype)
        phi = torch.where(pos, 1 - inside, outside)
        return phi.masked_fill_(~valid, 0)


def boundary_distance(mask: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Distance of every element of each ``(n, c)`` slice to the nearest element of the other
    class: foreground to background, background to foreground (MONAI's ``distance_field`` of
    ``HausdorffDTLoss``); a slice with no foreground or no background gives 0.

    Shape: ``mask`` ``(N, C, H, W)`` or ``(N, C, D, H, W)``, bool or values in {0, 1};
    out: the same shape, in ``dtype`` (default: the mask's if floating, else float32).

    >>> boundary_distance(torch.tensor([[[[1, 0, 0, 0]] * 2]]).bool())
    tensor([[[[1., 1., 2., 3.],
              [1., 1., 2., 3.]]]])
    """
    pos, out_dtype = _check_mask("boundary_distance", mask)
    with torch.no_grad():
        outside, inside, valid = _two_sided(pos, dtype or out_dtype)
        field = torch.where(pos, inside, outside, out=outside)  # elementwise: may alias
        return field.masked_fill_(~valid, 0)


# -- internals ------------------------------------------------------------------------------
def _check_mask(name: str, mask: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    if not isinstance(mask, torch.Tensor):
        raise LossregError(f"{name}: mask must be a tensor, got {type(mask).__name__}")
    if mask.dim() not in (4, 5):
        raise LossregError(
            f"{name}: mask must have shape (N, C, H, W) or (N, C, D, H, W), got shape "
            f"{tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            value = mask[bad].flatten()[0].item()
            raise LossregError(f"{name}: mask must be bool or hold 0 and 1 only, found {value}")
    out = mask.dtype if mask.is_floating_point() else torch.get_default_dtype()
    return mask.detach() != 0, out


def _two_sided(
    pos: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(distance to the foreground, distance to the background, slice has both), one batched
    transform for both sides; each is 0 where the element is its own target."""
    n, c, *spatial = pos.shape
    flat = pos.reshape(n * c, *spatial)
    if flat.numel() == 0:
        z = torch.zeros(pos.shape, dtype=dtype, device=pos.device)
        return z, z, pos.new_zeros(pos.shape)
    both = torch.cat([flat, ~flat])  # features: foreground, then background
    lo = math.prod(spatial)
    has = both.reshape(2 * n * c, lo).any(1)
    valid = has[: n * c] & has[n * c :]
    # a slice without features is left out of the search (it would run every shift); 0 there
    both[~has] = True
    d2 = _squared_edt(both, _work_dtype(tuple(spatial)))
    d = (d2.sqrt_() if d2.dtype == dtype else d2.to(dtype).sqrt_()).reshape(2, n, c, *spatial)
    view = valid.view(n, c, *[1] * len(spatial)).expand(pos.shape)
    return d[0], d[1], view


def _work_dtype(spatial: tuple[int, ...]) -> torch.dtype:
    # values are integers below (2 * bound)^2 (see _squared_edt): exact in float32 below 2**24
    return torch.float32 if 4 * _bound(spatial) ** 2 < 2**24 else torch.float64


def _bound(spatial: tuple[int, ...]) -> int:
    """More than any distance inside the grid: the stand-in for "no feature on this line"."""
    return math.isqrt(sum(n * n for n in spatial)) + 2


# data-dependent loops: run eagerly inside compiled losses (the decorator is untyped in torch)
@torch.compiler.disable  # type: ignore[untyped-decorator]
def _squared_edt(feature: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Squared distance of every element to the nearest True element of ``feature``
    ``(B, *spatial)`` over the spatial dims; every slice must hold a True element."""
    nd = feature.dim() - 1
    n = feature.shape[-1]
    big = _bound(tuple(feature.shape[1:]))
    # along the last axis, the nearest feature on each side by a running max in log2(n)
    # doubling steps (cummax runs one element at a time); a line without a feature gets a
    # distance >= big, which a real feature on another line beats
    up = torch.arange(n, device=feature.device, dtype=dtype) + big
    down = up.flip(0)
    left = _running_max(feature * up, 1)  # big + index of the nearest feature at or before
    d = left.neg_().add_(up)  # in place: the first pass holds three buffers at most
    right = _running_max(feature * down, -1).neg_().add_(down)  # the same from the other end
    torch.minimum(d, right, out=d)
    del right
    d2 = d.square_()
    for axis in range(1, nd):
        d2 = _envelope(d2, axis)
    return d2


def _running_max(a: torch.Tensor, direction: int) -> torch.Tensor:
    """Running max along the last dim, forwards (1) or backwards (-1), by doubling: two
    buffers written in turn, no concatenation."""
    n, k = a.shape[-1], 1
    b = a.clone()
    while k < n:
        if direction == 1:
            torch.maximum(a[..., k:], a[..., : n - k], out=b[..., k:])
            b[..., :k] = a[..., :k]
        else:
            torch.maximum(a[..., : n - k], a[..., k:], out=b[..., : n - k])
            b[..., n - k :] = a[..., n - k :]
        a, b = b, a
        k *= 2
    return a


def _envelope(g: torch.Tensor, axis: int) -> torch.Tensor:
    """min over integer shifts s of g(x + s) + s^2 along ``axis``, stopping once exact."""
    moved = g.movedim(axis, -1)
    lines = _envelope_lines(moved.reshape(-1, moved.shape[-1]).contiguous())
    return lines.view(moved.shape).movedim(-1, axis)


def _envelope_lines(g: torch.Tensor) -> torch.Tensor:
    """The envelope along the rows of ``g`` (L, n). After the shifts |s| < r a row whose
    largest value is at most r^2 is final (a farther candidate costs at least r^2). At every
    power of two and every 8th shift the rows still open are counted, and when they are
    fewer than half they are gathered into a smaller tensor: the far-from-everything rows,
    the ones that need many shifts, are usually few, so the late shifts cost a fraction of
    the early ones."""
    n = g.shape[1]
    out = g.clone()
    cur_out, cur_g, rows = out, g, None  # rows: the open rows' indices into out
    scratch: torch.Tensor | None = None
    s, top = 1, math.inf
    while s < n and s * s < top:
        if s & (s - 1) == 0 or s % 8 == 0:  # a power of two, or every 8th shift
            largest = cur_out.amax(1)
            top = float(largest.max())  # no shift s with s^2 >= top can improve anything
            open_ = largest > s * s
            count = int(open_.sum())
            if count == 0:
                break
            if count <= cur_out.shape[0] // 2:
                if rows is not None:
                    out[rows] = cur_out
                keep = open_.nonzero().squeeze(1)
                rows = keep if rows is None else rows[keep]
                cur_out, cur_g = cur_out[keep], cur_g[keep]
        if scratch is None or scratch.shape != cur_g.shape:
            # one buffer for g + s^2, reused: a fresh temporary per shift costs page faults
            scratch = torch.empty_like(cur_g)
        head, tail, tmp = cur_out[:, : n - s], cur_out[:, s:], scratch[:, : n - s]
        torch.minimum(head, torch.add(cur_g[:, s:], s * s, out=tmp), out=head)
        torch.minimum(tail, torch.add(cur_g[:, : n - s], s * s, out=tmp), out=tail)
        s += 1
    if rows is not None:
        out[rows] = cur_out
    return out
