"""The robust losses against kornia 0.9 itself (values and gradients, float64 and float32,
every reduction), plus what kornia does not cover: ``scale``, gradients to the target,
second derivatives through the fused kernel, and log-cosh at |d| = 1e4."""

import math

import pytest
import torch

import lossreg

kornia_losses = pytest.importorskip("kornia.losses")

KORNIA = ["charbonnier", "cauchy", "geman_mcclure", "welsch"]


def _pair(dtype, shape=(4, 6), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 3
    y = torch.randn(*shape, generator=gen, dtype=torch.float64)
    x[0, :3] = torch.tensor([0.0, 1e-4, 40.0])  # zero, tiny and large residuals
    y[0, :3] = 0.0
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("name", KORNIA)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_equals_kornia(name, dtype, reduction, scale):
    peer = getattr(kornia_losses, f"{name}_loss")
    x, y = _pair(dtype)
    xa, ya = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    xb, yb = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    ours = lossreg.build(name, scale=scale, reduction=reduction)(xa, ya)
    theirs = peer(xb / scale, yb / scale, reduction=reduction)  # kornia is c = 1
    tol = {} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    torch.testing.assert_close(ours, theirs, **tol)
    w = torch.rand(ours.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    ga = torch.autograd.grad((ours * w).sum(), (xa, ya))
    gb = torch.autograd.grad((theirs * w).sum(), (xb, yb))
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("name", [*KORNIA, "log_cosh", "wing"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_derivatives_through_the_fused_kernel(name, reduction):
    x, y = _pair(torch.float64, (2, 3))
    x[0, :3] = torch.tensor([0.3, -0.7, 2.5])  # away from wing's kink at 0 and w
    module = lossreg.build(name, reduction=reduction)
    w = torch.rand(2, 3, dtype=torch.float64) if reduction == "none" else 1.0

    def f(a, b):
        return (module(a, b) * w).sum()

    xs = (x.requires_grad_(True), y.requires_grad_(True))
    assert torch.autograd.gradgradcheck(f, xs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_retained_graph_gives_the_same_gradient_twice():
    x, y = _pair(torch.float32)
    x.requires_grad_(True)
    out = lossreg.build("charbonnier")(x, y)
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_log_cosh_is_stable_at_1e4():
    d = torch.tensor([1e4, -1e4, 30.0, 1e-3], requires_grad=True)
    out = lossreg.build("log_cosh", reduction="none")(d, torch.zeros(4))
    want = torch.tensor(
        [1e4 - math.log(2), 1e4 - math.log(2), 30 - math.log(2), math.log(math.cosh(1e-3))],
        dtype=torch.float64,
    )
    torch.testing.assert_close(out.double(), want, rtol=1e-6, atol=0)
    (g,) = torch.autograd.grad(out.sum(), d)
    torch.testing.assert_close(g, torch.tanh(d.detach()))
    # float64: the formula's own overflow (cosh(1e4) = inf) is what the stable form avoids
    assert torch.isinf(torch.log(torch.cosh(torch.tensor(1e4, dtype=torch.float64))))


def test_small_residuals_keep_relative_precision():
    # float32 at d = 1e-4: the naive sqrt(d^2 + 1) - 1 and 1 - exp(-d^2/2) give 0
    d = torch.tensor([1e-4])
    zero = torch.zeros(1)
    for name, want in (("charbonnier", 0.5e-8), ("welsch", 0.5e-8), ("log_cosh", 0.5e-8)):
        got = lossreg.build(name)(d, zero)
        torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=0)


def test_wing_pieces_meet_at_the_width():
    w, e = 10.0, 2.0
    d = torch.tensor([w - 1e-9, w, w + 1e-9], dtype=torch.float64)
    out = lossreg.build("wing", reduction="none")(d, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(out, torch.full((3,), w * math.log1p(w / e), dtype=torch.float64))
