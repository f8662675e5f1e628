"""Conformance cases for the regression plugin: float64 references written out."""

import torch

from lossreg.testing import Case
from tests.cases import reduce


def _pair(dtype, gen, shape=(3, 4)):
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 2
    y = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def _smooth_l1(x, y, beta=1.0, reduction="mean"):
    d = (x - y).abs()
    loss = torch.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta) if beta > 0 else d
    return reduce(loss, reduction)


def _huber(x, y, delta=1.0, reduction="mean"):
    d = (x - y).abs()
    return reduce(torch.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta)), reduction)


def _sobolev(x, y, grad_weight=1.0, order=1, reduction="mean"):
    out = []
    for u, v in zip(x, y, strict=True):
        e = u - v
        value = (e**2).mean()
        for d in range(1, e.dim()):
            value = value + grad_weight * (torch.diff(e, dim=d) ** 2).mean()
        out.append(value)
    return reduce(torch.stack(out), reduction)


CASES = {
    "l1": Case(_pair, reference=lambda x, y, reduction="mean": reduce((x - y).abs(), reduction)),
    "mse": Case(_pair, reference=lambda x, y, reduction="mean": reduce((x - y) ** 2, reduction)),
    "smooth_l1": Case(_pair, params={"beta": 0.7}, reference=_smooth_l1),
    "huber": Case(_pair, params={"delta": 1.5}, reference=_huber),
    "sobolev": Case(
        lambda dtype, gen: _pair(dtype, gen, (2, 2, 3, 4)),
        params={"grad_weight": 0.5},
        reference=_sobolev,
    ),
}
