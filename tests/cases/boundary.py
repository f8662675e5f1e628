"""Conformance cases for the boundary plugin (boundary, hausdorff_dt, hausdorff_er); float64
references written out here: distances by brute force over all pixel pairs (independent of
lossreg.distance and of scipy), erosions by explicit shifted sums."""

import torch
import torch.nn.functional as F

from lossreg.testing import Case
from tests.cases import reduce


def brute_distance(mask):
    """(n, c, *spatial) bool -> for each pixel the distance to the nearest pixel of the other
    class; 0 for a slice with one class only (MONAI's distance_field)."""
    out = torch.zeros(mask.shape, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in mask.shape[2:]], indexing="ij"))
    pts = grid.reshape(len(mask.shape) - 2, -1).T.double()
    dist = torch.cdist(pts, pts)
    for n in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            m = mask[n, c].reshape(-1)
            if m.all() or not m.any():
                continue
            other = m[None, :] != m[:, None]
            d = torch.where(other, dist, torch.inf).amin(1)
            out[n, c] = d.view(mask.shape[2:])
    return out


def brute_signed(mask):
    """Kervadec's one_hot2dist by brute force: outside the distance to the object, inside
    -(distance to the background - 1); 0 for a slice with one class only."""
    d = brute_distance(mask)
    return torch.where(mask, 1 - d, d) * (d.flatten(2).amax(2) > 0)[..., None, None]


def _probs(x, mode):
    x = x.double()
    return x.softmax(1) if mode == "multiclass" else x.sigmoid()


def _dense_target(t, c, mode):
    if mode == "multiclass" and t.dim() == 3:
        return F.one_hot(t, c).permute(0, 3, 1, 2).double()
    return t.double()


def ref_boundary(x, phi, *, mode="binary", from_logits=True, classes=None, reduction="mean"):
    loss = (_probs(x, mode) * phi.double()).mean((2, 3))
    return reduce(loss if classes is None else loss[:, classes], reduction)


def ref_hausdorff_dt(
    x, t, *, alpha=2.0, mode="binary", from_logits=True, classes=None, reduction="mean"
):
    p = _probs(x, mode)
    t = _dense_target(t, x.shape[1], mode)
    w = brute_distance(p > 0.5) ** alpha + brute_distance(t > 0.5) ** alpha
    loss = ((p - t) ** 2 * w).mean((2, 3))
    return reduce(loss if classes is None else loss[:, classes], reduction)


def _cross_mean(b):
    """mean of the pixel and its 4 face neighbours, zeros outside (2-D)."""
    z = F.pad(b, (1, 1, 1, 1))
    return (
        z[..., 1:-1, 1:-1] + z[..., :-2, 1:-1] + z[..., 2:, 1:-1] + z[..., 1:-1, :-2]
        + z[..., 1:-1, 2:]
    ) / 5  # fmt: skip


def ref_hausdorff_er(
    x, t, *, alpha=2.0, k=10, mode="binary", from_logits=True, classes=None, reduction="mean"
):
    p = _probs(x, mode)
    t = _dense_target(t, x.shape[1], mode)
    bound = (p - t) ** 2
    total = torch.zeros_like(bound)
    for i in range(k):
        e = torch.where(_cross_mean(bound) >= 0.5, _cross_mean(bound) - 0.5, 0.0)
        lo, hi = e.amin((2, 3), keepdim=True), e.amax((2, 3), keepdim=True)
        e = torch.where(hi > lo, (e - lo) / torch.where(hi > lo, hi - lo, 1.0), e)
        total = total + e * (i + 1) ** alpha
        bound = e
    return reduce(total if classes is None else total[:, classes], reduction)


def boundary_inputs(dtype, gen):
    x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 3, (2, 5, 6), generator=gen)
    phi = brute_signed(F.one_hot(labels, 3).permute(0, 3, 1, 2).bool())
    return x.to(dtype), phi.to(dtype)


def multiclass_inputs(dtype, gen):
    x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64) * 2
    return x.to(dtype), torch.randint(0, 3, (2, 5, 6), generator=gen)


def binary_inputs(dtype, gen):
    x = torch.randn(3, 1, 6, 7, generator=gen, dtype=torch.float64) * 2
    t = (torch.rand(3, 1, 6, 7, generator=gen, dtype=torch.float64) > 0.6).double()
    return x.to(dtype), t.to(dtype)


CASES = {
    "boundary": Case(
        boundary_inputs, params={"mode": "multiclass", "classes": [1, 2]}, reference=ref_boundary
    ),
    "hausdorff_dt": Case(
        multiclass_inputs,
        params={"mode": "multiclass", "alpha": 1.5, "classes": [0, 2]},
        reference=ref_hausdorff_dt,
    ),
    "hausdorff_er": Case(binary_inputs, params={"k": 4, "alpha": 1.5}, reference=ref_hausdorff_er),
}
