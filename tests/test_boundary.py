"""boundary, hausdorff_dt and hausdorff_er against their peers (MONAI HausdorffDTLoss, kornia
HausdorffERLoss / HausdorffERLoss3D), values and gradients, float64 and float32, every mode;
the mapping between the conventions is pinned here (see each docstring)."""

import warnings

import pytest
import torch
from lossreg_builtin.boundary import _cross, boundary, hausdorff_dt, hausdorff_er

import lossreg
from tests.cases.boundary import brute_signed

monai_losses = pytest.importorskip("monai.losses")
kornia_losses = pytest.importorskip("kornia.losses")

SHAPES = [(2, 9, 11), (2, 5, 6, 7)]  # (N, *spatial), 2-D and 3-D


def _grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's own deprecation notes
        out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def _close(a, b, dtype):
    tol = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-6)}[dtype]
    torch.testing.assert_close(a.to(b.dtype), b, rtol=tol[0], atol=tol[1])


def _inputs(shape, c, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, *spatial = shape
    x = (torch.randn(n, c, *spatial, generator=g, dtype=torch.float64) * 2).to(dtype)
    labels = torch.randint(0, c, (n, *spatial), generator=g)
    mask = (torch.rand(n, c, *spatial, generator=g) > 0.6).to(dtype)
    return x, labels, mask


# -- hausdorff_dt vs MONAI ----------------------------------------------------------------
# MONAI casts its scipy distances to float32, so in float64 the two agree to float32 rounding
# of the distances (rtol 1e-6); the float64 formula is checked exactly in the conformance case.
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_hausdorff_dt_equals_monai(shape, dtype, mode):
    c = 1 if mode == "binary" else 3
    x, labels, mask = _inputs(shape, c, dtype)
    if mode == "multiclass":
        ours = _grad(hausdorff_dt, x, labels, mode=mode, alpha=1.5, reduction="none")
        peer = monai_losses.HausdorffDTLoss(alpha=1.5, softmax=True, to_onehot_y=True,
                                            include_background=True, reduction="none")  # fmt: skip
        theirs = _grad(peer, x, labels[:, None])
    else:
        ours = _grad(hausdorff_dt, x, mask, mode=mode, alpha=1.5, reduction="none")
        peer = monai_losses.HausdorffDTLoss(alpha=1.5, sigmoid=True, include_background=True,
                                            reduction="none")  # fmt: skip
        theirs = _grad(peer, x, mask)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[0], theirs[0].flatten(1).to(dtype), **tol)
    torch.testing.assert_close(ours[1], theirs[1], **tol)


def test_hausdorff_dt_classes_is_monai_include_background_false():
    x, labels, _ = _inputs((2, 8, 9), 3, torch.float64, seed=3)
    ours = _grad(hausdorff_dt, x, labels, mode="multiclass", classes=[1, 2])
    peer = monai_losses.HausdorffDTLoss(softmax=True, to_onehot_y=True, include_background=False)
    theirs = _grad(peer, x, labels[:, None])
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(ours[1], theirs[1], rtol=1e-6, atol=1e-9)


def test_hausdorff_dt_probabilities_and_empty_slices():
    p = torch.full((2, 1, 6, 6), 0.2, dtype=torch.float64)
    t = torch.zeros_like(p)
    # one class only in both binarised maps: no distance weight, loss 0 (MONAI's convention)
    assert hausdorff_dt(p, t, from_logits=False).item() == 0
    p[0, 0, 2, 2] = 0.9  # a false positive: its distance to the prediction's boundary counts
    out = _grad(hausdorff_dt, p, t, from_logits=False)
    assert out[0] > 0 and out[1][0, 0, 2, 2] > 0


# -- hausdorff_er vs kornia -------------------------------------------------------------
# kornia takes probabilities and labels (N, 1, *spatial) and compares channel c with label c.
# Its kernel buffer is float32's 0.2 (1/7 in 3-D) even in float64; the peer here gets the
# exact float64 kernel, so that float64 is compared to float64 rounding.
def _kornia_er(nd, **kw):
    peer = (kornia_losses.HausdorffERLoss if nd == 2 else kornia_losses.HausdorffERLoss3D)(**kw)
    peer.kernel = _cross(nd, torch.float64, torch.device("cpu"))
    return peer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hausdorff_er_multiclass_equals_kornia(shape, dtype):
    x, labels, _ = _inputs(shape, 3, dtype, seed=1)
    p = x.softmax(1)
    peer = _kornia_er(len(shape) - 1, alpha=1.5, k=5, reduction="none")
    theirs = _grad(lambda q: peer(q, labels[:, None]).transpose(0, 1).squeeze(2), p)
    ours = _grad(hausdorff_er, p, labels, mode="multiclass", from_logits=False, alpha=1.5, k=5,
                 reduction="none")  # fmt: skip
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[0], theirs[0], **tol)
    torch.testing.assert_close(ours[1], theirs[1], **tol)
    mean = hausdorff_er(p, labels, mode="multiclass", from_logits=False, alpha=1.5, k=5)
    torch.testing.assert_close(mean, peer(p, labels[:, None]).mean(), **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hausdorff_er_binary_on_logits_equals_kornia_two_channels(dtype):
    # binary: kornia needs two channels (background, foreground); ours is its channel 1
    x, _, mask = _inputs((3, 10, 12), 1, dtype, seed=2)
    ours = _grad(hausdorff_er, x, mask, reduction="none")
    peer = _kornia_er(2, reduction="none")

    def theirs_fn(logits):
        p = logits.sigmoid()
        return peer(torch.cat([1 - p, p], 1), mask.long())[1]

    theirs = _grad(theirs_fn, x)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[0], theirs[0], **tol)
    torch.testing.assert_close(ours[1], theirs[1], **tol)


def test_hausdorff_er_multilabel_is_binary_per_channel():
    x, _, mask = _inputs((2, 7, 8), 3, torch.float64, seed=4)
    full = hausdorff_er(x, mask, mode="multilabel", reduction="none")
    for c in range(3):
        one = hausdorff_er(x[:, c : c + 1], mask[:, c : c + 1], reduction="none")
        torch.testing.assert_close(full[:, c : c + 1], one, rtol=0, atol=0)


# -- boundary: Kervadec's SurfaceLoss written out -----------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_boundary_equals_kervadec_surface_loss(dtype):
    # SurfaceLoss(idc=[1, 2]): einsum("bkwh,bkwh->bkwh", probs[:, idc], dist[:, idc]).mean()
    x, labels, _ = _inputs((2, 7, 9), 3, dtype, seed=5)
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).bool()
    phi = lossreg.signed_distance(onehot).to(dtype)
    torch.testing.assert_close(phi.double(), brute_signed(onehot), rtol=1e-7, atol=0)
    ours = _grad(boundary, x, phi, mode="multiclass", classes=[1, 2])

    def surface(logits):
        return (logits.double().softmax(1)[:, 1:] * phi[:, 1:].double()).mean()

    want = _grad(surface, x)
    _close(ours[0], want[0], dtype)
    _close(ours[1], want[1], dtype)


def test_boundary_rejects_mismatched_distance_map():
    with pytest.raises(lossreg.LossregError, match=r"boundary: target \(the signed distance map\)"):
        boundary(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4), mode="multiclass")


# -- shared: errors, numerics -----------------------------------------------------------
@pytest.mark.parametrize("name", ["hausdorff_dt", "hausdorff_er", "cldice"])
def test_spatial_losses_errors(name):
    loss = lossreg.build(name, mode="multiclass")
    with pytest.raises(lossreg.LossregError, match=rf"{name}: input must have shape"):
        loss(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(lossreg.LossregError, match=rf"{name}: .*class"):
        loss(torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 3))
    binary = lossreg.build(name)
    with pytest.raises(lossreg.LossregError, match=rf"{name}: mode binary takes input"):
        binary(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("name", ["hausdorff_dt", "hausdorff_er", "boundary"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_computed_in_float32(name, dtype):
    x, _, mask = _inputs((2, 8, 8), 1, torch.float32, seed=6)
    target = lossreg.signed_distance(mask) if name == "boundary" else mask
    loss = lossreg.build(name)
    low = loss(x.to(dtype), target.to(dtype))
    want = loss(x.to(dtype).float(), target.to(dtype).float())
    assert low.dtype == dtype
    torch.testing.assert_close(low.float(), want, rtol=1e-2, atol=1e-3)
