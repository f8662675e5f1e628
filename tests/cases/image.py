"""Conformance cases for the image plugin (ssim, total_variation); float64 references
written out here: SSIM with the full 2-D Gaussian window applied by explicit sums over its
taps (no separable convolution), total variation by torch.diff."""

import math

import torch

from lossreg.testing import Case
from tests.cases import reduce


def ref_ssim(x, y, *, window=11, sigma=1.5, data_range=1.0, k1=0.01, k2=0.03, reduction="mean"):
    x, y = x.double(), y.double()
    r = window // 2
    g = [math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-r, r + 1)]
    s = sum(g)
    w = [[a * b / (s * s) for b in g] for a in g]
    h, wd = x.shape[-2] - 2 * r, x.shape[-1] - 2 * r

    def local(z):
        return sum(
            w[i][j] * z[..., i : i + h, j : j + wd] for i in range(window) for j in range(window)
        )

    mx, my = local(x), local(y)
    vx, vy, cxy = local(x * x) - mx**2, local(y * y) - my**2, local(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    m = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return reduce(1 - m.flatten(1).mean(1), reduction)


def ref_tv(x, reduction="mean"):
    x = x.double()
    per = sum(torch.diff(x, dim=d).abs().flatten(1).sum(1) for d in range(2, x.dim()))
    return reduce(per, reduction)


def image_pair(dtype, gen):
    x = torch.rand(2, 2, 9, 10, generator=gen, dtype=torch.float64)
    y = (x + 0.3 * torch.randn(2, 2, 9, 10, generator=gen, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def volume(dtype, gen):
    return (torch.randn(2, 2, 3, 4, 5, generator=gen, dtype=torch.float64).to(dtype),)


CASES = {
    "ssim": Case(
        image_pair,
        params={"window": 5, "sigma": 1.2, "data_range": 1.0, "k1": 0.02},
        reference=ref_ssim,
        rtol=1e-4,
    ),
    "total_variation": Case(volume, reference=ref_tv),
}
