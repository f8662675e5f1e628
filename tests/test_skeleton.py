"""cldice and dice_cldice against MONAI SoftclDiceLoss / SoftDiceclDiceLoss, values and
gradients, float64 and float32, every mode; the mapping is pinned here: MONAI sums over the
channels and space of each sample, lossreg is per class (over the batch, or per sample with
per_image), so MONAI on one class's channel is lossreg per_image for that class, and MONAI
on one class with the batch moved into the channels is lossreg over the batch."""

import warnings

import pytest
import torch
from lossreg_builtin.skeleton import cldice, soft_skeleton

import lossreg

monai_losses = pytest.importorskip("monai.losses")
monai_cldice = pytest.importorskip("monai.losses.cldice")


def _grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)


def _inputs(shape, c, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, *spatial = shape
    x = (torch.randn(n, c, *spatial, generator=g, dtype=torch.float64) * 2).to(dtype)
    labels = torch.randint(0, c, (n, *spatial), generator=g)
    mask = (torch.rand(n, c, *spatial, generator=g) > 0.5).to(dtype)
    return x, labels, mask


@pytest.mark.parametrize("shape", [(2, 10, 11), (2, 6, 7, 8)])
def test_soft_skeleton_equals_monai(shape):
    p = torch.rand(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = p[:, None]
    torch.testing.assert_close(soft_skeleton(p, 4), monai_cldice.soft_skel(p, 4), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(3, 10, 11), (2, 6, 7, 8)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_cldice_equals_monai_per_class(shape, dtype, mode):
    c = 1 if mode == "binary" else 3
    x, labels, mask = _inputs(shape, c, dtype)
    target = labels if mode == "multiclass" else mask
    dense = (
        torch.nn.functional.one_hot(labels, c).movedim(-1, 1).to(dtype)
        if mode == "multiclass"
        else mask
    )
    peer = monai_losses.SoftclDiceLoss(iter_=2, smooth_nr=0.5, smooth_dr=0.5, smooth=1e-3,
                                       reduction="none")  # fmt: skip
    kw = dict(mode=mode, iters=2, smooth=0.5, eps=1e-3)
    # per_image: MONAI on each class's channel alone (after the activation over all channels)
    ours = _grad(cldice, x, target, per_image=True, reduction="none", **kw)
    for k in range(c):

        def per_sample(z, k=k):
            p = z.softmax(1) if mode == "multiclass" else z.sigmoid()
            return peer(p[:, k : k + 1], dense[:, k : k + 1])

        got = _grad(
            lambda z, k=k: cldice(z, target, per_image=True, reduction="none", **kw)[:, k], x
        )
        want = _grad(per_sample, x)
        torch.testing.assert_close(ours[0][:, k], want[0], **_tol(dtype))
        torch.testing.assert_close(got[1], want[1], **_tol(dtype))
    # over the batch: the batch moved into MONAI's channel axis, one class at a time
    for k in range(c):

        def batch(z, k=k):
            p = z.softmax(1) if mode == "multiclass" else z.sigmoid()
            return peer(p[:, k][None], dense[:, k][None])

        got = _grad(lambda z, k=k: cldice(z, target, reduction="none", **kw)[k], x)
        want = _grad(batch, x)
        torch.testing.assert_close(got[0], want[0].squeeze(0), **_tol(dtype))
        torch.testing.assert_close(got[1], want[1], **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dice_cldice_equals_monai(dtype):
    # MONAI SoftDiceclDiceLoss(alpha=0.5) = 0.5 DiceLoss + 0.5 SoftclDiceLoss, per sample:
    # with one sample, lossreg's batch statistics are MONAI's; lossreg's dice adds eps=1e-7
    # to the denominator, so the terms are built with eps 0 and MONAI's 1e-4 for clDice
    x, _, mask = _inputs((1, 12, 13), 1, dtype, seed=3)
    ours = lossreg.build(
        {"expr": "0.5*dice + 0.5*cldice", "terms": {"dice": {"name": "dice", "eps": 0.0}}}
    )
    named = lossreg.build("dice_cldice")
    peer = monai_losses.SoftDiceclDiceLoss(sigmoid=True, alpha=0.5)
    got, want = _grad(ours, x, mask), _grad(peer, x, mask)
    torch.testing.assert_close(got[0], want[0], **_tol(dtype))
    torch.testing.assert_close(got[1], want[1], **_tol(dtype))
    torch.testing.assert_close(named(x, mask), got[0], rtol=1e-6, atol=1e-7)  # eps 1e-7 apart


def test_cldice_empty_masks():
    p = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    t = torch.zeros_like(p)
    assert cldice(p, t, from_logits=False).item() == 0  # both empty: 0 exactly
    p[:, :, 2:6, 3:5] = 0.9  # empty target, a predicted bar: positive, pushed down
    value, grad = _grad(cldice, p, t, from_logits=False)
    assert value > 0 and grad[:, :, 2:6, 3:5].sum() > 0
    x = torch.full((2, 1, 8, 8), -1e4, requires_grad=True)
    out = cldice(x, torch.zeros(2, 1, 8, 8))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
