"""Conformance cases for the robust plugin: float64 formulas written out, the M-estimators as
kornia 0.9 documents them (kornia/losses/charbonnier.py, cauchy.py, geman_mcclure.py,
welsch.py; Barron 2019 at c = 1). tests/test_robust.py compares with kornia itself."""

import math

import torch

from lossreg.testing import Case
from tests.cases import reduce


def _pair(dtype, gen, shape=(3, 5)):
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 2
    y = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


RHO = {
    "charbonnier": lambda u: torch.sqrt(u**2 + 1) - 1,
    "cauchy": lambda u: torch.log(0.5 * u**2 + 1),
    "geman_mcclure": lambda u: 2 * u**2 / (u**2 + 4),
    "welsch": lambda u: 1 - torch.exp(-0.5 * u**2),
}


def _barron(name):
    def reference(x, y, scale=1.0, reduction="mean"):
        return reduce(RHO[name]((x - y) / scale), reduction)

    return reference


def _log_cosh(x, y, reduction="mean"):
    return reduce(torch.log(torch.cosh(x - y)), reduction)  # moderate residuals: no overflow


def _wing(x, y, width=10.0, curvature=2.0, reduction="mean"):
    # Feng et al. 2018, eq. 5
    a = (x - y).abs()
    c = width - width * math.log(1 + width / curvature)
    return reduce(torch.where(a < width, width * torch.log(1 + a / curvature), a - c), reduction)


CASES = {
    "charbonnier": Case(_pair, params={"scale": 1.0}, reference=_barron("charbonnier")),
    "cauchy": Case(_pair, params={"scale": 0.5}, reference=_barron("cauchy")),
    "geman_mcclure": Case(_pair, params={"scale": 2.0}, reference=_barron("geman_mcclure")),
    "welsch": Case(_pair, reference=_barron("welsch")),
    "log_cosh": Case(_pair, reference=_log_cosh),
    # width 1.5: residuals on both sides of it
    "wing": Case(_pair, params={"width": 1.5, "curvature": 0.5}, reference=_wing),
}
