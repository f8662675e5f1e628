"""The fused dice statistics (binary: _SigmoidStats; multiclass class indices: one bincount as
count and range check, then _SoftmaxIndexStats) against the straightforward float64 formula
written out here: values, gradients, gradcheck, extreme logits, empty masks, half/bfloat16, the
error messages, and that the fast paths are actually taken."""

import pytest
import torch
from lossreg_builtin import _overlap
from lossreg_builtin._overlap import _SigmoidStats
from lossreg_builtin.segmentation import dice

import lossreg
from lossreg import LossregError

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ref_dice(p, t, dims, smooth=1.0, eps=1e-7, log_loss=False):
    tp, ps, ts = (p * t).sum(dims), p.sum(dims), t.sum(dims)
    score = (2 * tp + smooth) / (ps + ts + smooth + eps)
    score = torch.where((ps + ts) <= 0, torch.ones_like(score), score)
    return (-score.log() if log_loss else 1 - score).mean()


def ref_binary(x, t, **kw):
    return ref_dice(torch.sigmoid(x), t, tuple(range(x.dim())), **kw)


def ref_multiclass(x, y, **kw):
    onehot = torch.zeros_like(x).scatter_(1, y.unsqueeze(1), 1.0)
    return ref_dice(torch.softmax(x, 1), onehot, (0, *range(2, x.dim())), **kw)


def grads(fn, x):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for cls in (_overlap._SigmoidStats, _overlap._SoftmaxIndexStats):
        apply = cls.apply
        monkeypatch.setattr(
            cls, "apply", lambda *a, _n=cls.__name__, _f=apply: seen.append(_n) or _f(*a)
        )
    return seen


# -- binary -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 1, 5, 4), (4, 7), (2, 1, 3, 2, 2)])
@pytest.mark.parametrize("kw", [{}, {"smooth": 0.0}, {"log_loss": True}, {"smooth": 2.0}])
@pytest.mark.parametrize("soft", [False, True])
def test_binary_fast_equals_formula(shape, kw, soft, calls):
    x = torch.randn(shape, generator=gen(), dtype=D) * 3
    t = torch.rand(shape, generator=gen(1), dtype=D)
    t = t if soft else (t < 0.4).to(D)
    v, g = grads(lambda x: dice(x, t, **kw), x)
    vr, gr = grads(lambda x: ref_binary(x, t, **kw), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    assert calls == ["_SigmoidStats"]


def test_binary_fast_gradcheck_and_extremes_and_empty(calls):
    x = torch.randn(2, 1, 3, 3, generator=gen(2), dtype=D).requires_grad_(True)
    t = (torch.rand(2, 1, 3, 3, generator=gen(3), dtype=D) < 0.5).to(D)
    assert torch.autograd.gradcheck(
        lambda x: _SigmoidStats.apply(x.view(2, 1, 9), t.view(2, 1, 9)), (x,)
    )
    assert torch.autograd.gradcheck(lambda x: dice(x, t, log_loss=True), (x,))
    # +-1e4 logits: finite, and equal to the formula (sigmoid saturates to exact 0/1)
    xe = torch.tensor([[1e4, -1e4, 3.0, -2.0]], dtype=D)
    te = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=D)
    v, g = grads(lambda x: dice(x, te), xe)
    vr, gr = grads(lambda x: ref_binary(x, te), xe)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    # empty target, confident empty prediction: loss 0 exactly (both empty), gradient 0
    v, g = grads(lambda x: dice(x, torch.zeros(1, 4, dtype=D)), torch.full((1, 4), -1e4, dtype=D))
    assert v == 0 and (g == 0).all()
    # empty target, non-empty prediction: positive loss whose gradient pushes the logits down
    v, g = grads(lambda x: dice(x, torch.zeros(1, 4, dtype=D)), torch.zeros(1, 4, dtype=D))
    assert v > 0 and (g > 0).all()
    assert set(calls) == {"_SigmoidStats"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_binary_fast_low_precision(dtype):
    x = (torch.randn(2, 1, 16, 16, generator=gen(4)) * 3).to(dtype)
    t = (torch.rand(2, 1, 16, 16, generator=gen(5)) < 0.3).to(dtype)
    v, g = grads(lambda x: dice(x, t), x)
    vr, gr = grads(lambda x: ref_binary(x, t.to(D)), x.to(D))
    assert v.dtype == dtype and g.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(v.to(D), vr, rtol=tol, atol=tol)
    torch.testing.assert_close(g.to(D), gr, rtol=tol, atol=tol * 1e-2)


def test_binary_general_paths_stay_and_agree(calls):
    x = torch.randn(3, 1, 4, 4, generator=gen(6), dtype=D)
    t = (torch.rand(3, 1, 4, 4, generator=gen(7), dtype=D) < 0.4).to(D)
    v, g = grads(lambda x: dice(x, t), x)
    assert calls == ["_SigmoidStats"]
    v2, g2 = grads(lambda x: dice(x, t, ignore_index=7), x)  # general path, nothing ignored
    torch.testing.assert_close(v, v2, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g, g2, rtol=1e-11, atol=1e-16)
    dice(x, t, per_image=True)
    dice(torch.sigmoid(x), t, from_logits=False)
    dice(x, t.clone().requires_grad_(True))  # a target that wants a gradient
    assert calls == ["_SigmoidStats"]
    # repeated backward with retain_graph, and scaling of the incoming gradient
    xr = x.clone().requires_grad_(True)
    loss = dice(xr, t)
    (g1,) = torch.autograd.grad(loss, xr, retain_graph=True)
    (g3,) = torch.autograd.grad(3 * loss, xr)
    torch.testing.assert_close(g1, g, rtol=0, atol=0)
    torch.testing.assert_close(g3, 3 * g, rtol=1e-14, atol=0)


# -- multiclass ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3), (2, 5, 3, 2, 2)])
@pytest.mark.parametrize("kw", [{}, {"log_loss": True}, {"smooth": 0.0}])
def test_multiclass_fast_equals_formula(shape, kw, calls):
    x = torch.randn(shape, generator=gen(8), dtype=D) * 3
    y = torch.randint(0, shape[1] - 1, (shape[0], *shape[2:]), generator=gen(9))  # last absent
    v, g = grads(lambda x: dice(x, y, mode="multiclass", **kw), x)
    vr, gr = grads(lambda x: ref_multiclass(x, y, **kw), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    assert calls == ["_SoftmaxIndexStats"]


def test_multiclass_fast_skips_the_separate_range_pass(monkeypatch):
    seen = []
    check = _overlap.check_class_indices
    monkeypatch.setattr(
        _overlap,
        "check_class_indices",
        lambda n, t, *a: seen.append(t.numel()) or check(n, t, *a),
    )
    x = torch.randn(2, 3, 4, 4, generator=gen(10))
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(11))
    dice(x, y, mode="multiclass")
    assert seen == [0]  # the dtype check only: the bincount did the range check
    dice(x, y, mode="multiclass", per_image=True)
    assert seen == [0, 32]  # the general path checks the full target


@pytest.mark.parametrize("bad", [3, 7, -1, -100])
def test_multiclass_fast_range_errors_name_the_value(bad):
    x = torch.randn(2, 3, 4, generator=gen(12))
    y = torch.randint(0, 3, (2, 4), generator=gen(13))
    y[1, 2] = bad
    with pytest.raises(
        LossregError, match=rf"dice: target holds class index {bad}, outside \[0, 3\)"
    ):
        dice(x, y, mode="multiclass")
    with pytest.raises(LossregError, match="integer tensor"):
        dice(x, y.float(), mode="multiclass")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_multiclass_fast_low_precision_and_extremes(dtype):
    x = torch.randn(2, 3, 4, 4, generator=gen(14), dtype=D) * 3
    x[0, :, 0, 0] = torch.tensor([1e4, -1e4, 0.0], dtype=D)
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(15))
    v, g = grads(lambda x: dice(x, y, mode="multiclass"), x)
    vr, gr = grads(lambda x: ref_multiclass(x, y), x)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    vl, gl = grads(lambda x: dice(x, y, mode="multiclass"), x.to(dtype))
    assert vl.dtype == dtype and gl.dtype == dtype
    torch.testing.assert_close(vl.to(D), v, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(gl.to(D), g, rtol=2e-2, atol=2e-3)


def test_built_losses_take_the_fast_paths(calls):
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    lossreg.build("dice")(x, (torch.rand(2, 1, 8, 8) < 0.5).float()).backward()
    xm = torch.randn(2, 4, 8, 8, requires_grad=True)
    lossreg.build("dice", mode="multiclass")(xm, torch.randint(0, 4, (2, 8, 8))).backward()
    assert calls == ["_SigmoidStats", "_SoftmaxIndexStats"]
