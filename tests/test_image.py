"""ssim and total_variation against kornia and MONAI, values and gradients, float64 and
float32. Pinned mapping: lossreg ssim = 1 - mean of kornia.metrics.ssim(..., padding="valid",
eps=0) = MONAI SSIMLoss (which computes in float32, so float64 agrees to float32 rounding);
lossreg total_variation per image = kornia total_variation(reduction="sum") summed over
channels."""

import warnings

import pytest
import torch
from lossreg_builtin.image import ssim, total_variation

import lossreg

kornia = pytest.importorskip("kornia")
monai_losses = pytest.importorskip("monai.losses")


def _grad(fn, *xs, **kw):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(*xs, **kw)
    grads = torch.autograd.grad(out.sum(), xs)
    return out.detach(), grads


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)


def _pair(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(*shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("window", [11, 5])
def test_ssim_equals_kornia_valid(dtype, window):
    x, y = _pair((2, 3, 20, 23), dtype)
    got = _grad(ssim, x, y, window=window, data_range=2.0, reduction="none")

    def peer(a, b):
        m = kornia.metrics.ssim(a, b, window, max_val=2.0, eps=0.0, padding="valid")
        return 1 - m.flatten(1).mean(1)

    want = _grad(peer, x, y)
    torch.testing.assert_close(got[0], want[0], **_tol(dtype))
    for a, b in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(a, b, **_tol(dtype))
    mean = ssim(x, y, window=window, data_range=2.0)
    torch.testing.assert_close(mean, want[0].mean(), **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(2, 2, 16, 17), (2, 1, 12, 13, 14)])
def test_ssim_equals_monai(dtype, shape):
    x, y = _pair(shape, dtype, seed=1)
    kw = dict(window=7, sigma=1.2, data_range=1.5, k1=0.02, k2=0.04)
    peer = monai_losses.SSIMLoss(spatial_dims=len(shape) - 2, data_range=1.5, win_size=7,
                                 kernel_sigma=1.2, k1=0.02, k2=0.04, reduction="sum")  # fmt: skip
    got, want = _grad(ssim, x, y, reduction="sum", **kw), _grad(peer, x, y)
    tol = dict(rtol=1e-5, atol=1e-6)  # MONAI computes in float32 whatever the input
    torch.testing.assert_close(got[0], want[0].to(dtype), **tol)
    for a, b in zip(got[1], want[1], strict=True):
        torch.testing.assert_close(a, b.to(dtype), **tol)


def test_ssim_identical_images_and_errors():
    x, _ = _pair((1, 1, 12, 12), torch.float64)
    assert ssim(x, x).item() == pytest.approx(0, abs=1e-15)
    with pytest.raises(lossreg.LossregError, match=r"ssim: every spatial size must be at least"):
        ssim(torch.zeros(1, 1, 5, 20), torch.zeros(1, 1, 5, 20))
    with pytest.raises(lossreg.ConfigError, match="window must be odd"):
        lossreg.build("ssim", window=4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_total_variation_equals_kornia(dtype):
    x, _ = _pair((3, 2, 9, 10), dtype)
    got = _grad(total_variation, x, reduction="none")
    want = _grad(lambda a: kornia.losses.total_variation(a, reduction="sum").sum(1), x)
    torch.testing.assert_close(got[0], want[0], **_tol(dtype))
    torch.testing.assert_close(got[1][0], want[1][0], **_tol(dtype))
    for red, f in (("mean", torch.mean), ("sum", torch.sum)):
        g2 = _grad(total_variation, x, reduction=red)
        w2 = _grad(lambda a, f=f: f(kornia.losses.total_variation(a, reduction="sum").sum(1)), x)
        torch.testing.assert_close(g2[0], w2[0], **_tol(dtype))
        torch.testing.assert_close(g2[1][0], w2[1][0], **_tol(dtype))


def test_total_variation_in_a_composite_by_routing():
    x, y = _pair((2, 1, 6, 6), torch.float64)
    objective = lossreg.build({
        "expr": "mse + 0.1*tv",
        "terms": {"mse": {"name": "mse", "inputs": {"input": "pred", "target": "clean"}},
                  "tv": {"name": "tv", "inputs": {"input": "pred"}}},
    })  # fmt: skip
    want = torch.nn.functional.mse_loss(x, y) + 0.1 * total_variation(x)
    torch.testing.assert_close(objective(pred=x, clean=y), want, rtol=1e-15, atol=0)
    assert lossreg.describe("tv").inputs == ("input",)
