"""The fused fast paths of focal (binary 0/1 targets, multiclass class indices) and dice
against the straightforward float64 formulas written out here: values, gradients, float64
gradcheck/gradgradcheck, extreme logits, soft targets, graph reuse."""

import pytest
import torch
from lossreg_builtin import _focal_sigmoid
from lossreg_builtin.classification import focal

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ref_binary_focal(x, y, gamma, alpha, reduction):
    p = torch.sigmoid(x)
    ce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    loss = ce * (1 - (p * y + (1 - p) * (1 - y))) ** gamma
    if alpha is not None:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return loss.mean() if reduction == "mean" else loss.sum()


def ref_softmax_focal(x, y, gamma, weight, ignore_index, reduction):
    logp = torch.log_softmax(x, 1)
    valid = y != ignore_index
    safe = torch.where(valid, y, 0).unsqueeze(1)
    lp = logp.gather(1, safe).squeeze(1)
    w = (torch.ones(x.shape[1], dtype=x.dtype) if weight is None else weight)[safe.squeeze(1)]
    w = w * valid
    loss = -w * (1 - lp.exp()) ** gamma * lp
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum() if w.sum() > 0 else loss.sum() * 0


def grads(fn, x, *args):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


def binary_inputs(dtype=D, seed=0, shape=(3, 1, 5, 4)):
    x = torch.randn(shape, generator=gen(seed), dtype=D) * 4
    y = (torch.rand(shape, generator=gen(seed + 1), dtype=D) < 0.4).to(D)
    x.view(-1)[:4] = torch.tensor([1e4, -1e4, 30.0, -30.0], dtype=D)  # extremes, both labels
    return x.to(dtype), y.to(dtype)


# -- binary -------------------------------------------------------------------------------------
@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [0.25, None, 1.0, 0.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_fused_equals_formula_float64(gamma, alpha, reduction):
    x, y = binary_inputs()
    keep = x.abs() < 100  # the float64 formula itself is inf/nan at +-1e4
    v, g = grads(lambda x: focal(x, y, gamma=gamma, alpha=alpha, reduction=reduction), x)
    vr, gr = grads(lambda x: ref_binary_focal(x, y, gamma, alpha, reduction), x.clamp(-30, 30))
    # at +-1e4 the loss is alpha_t * 1e4 (a miss) or 0 (a hit), the gradient +-alpha_t or 0
    a_t = torch.ones_like(y) if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    miss = (x > 0) != (y > 0.5)
    extra = (a_t * x.abs() * miss)[~keep].sum()
    n = x.numel() if reduction == "mean" else 1
    torch.testing.assert_close(v, vr + (extra - (a_t * 30.0 * miss)[~keep].sum()) / n,
                               rtol=1e-12, atol=1e-14)  # fmt: skip
    torch.testing.assert_close(g[keep], gr[keep], rtol=1e-10, atol=1e-15)
    want_far = (a_t * ((x > 0).to(D) - y) * miss)[~keep] / n
    torch.testing.assert_close(g[~keep], want_far, rtol=1e-12, atol=1e-300)
    assert torch.isfinite(g).all()


def test_binary_fused_is_taken_and_matches_elementwise_kernel():
    x, y = binary_inputs(seed=3)
    for reduction in ("mean", "sum"):
        fused, g1 = grads(lambda x, r=reduction: focal(x, y, reduction=r), x)
        plain, g2 = grads(
            lambda x, r=reduction: getattr(_focal_sigmoid.binary_focal(x, y, 2.0, 0.25), r)(), x
        )
        torch.testing.assert_close(fused, plain, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(g1, g2, rtol=1e-11, atol=1e-16)
    out = focal(x.requires_grad_(True), y)
    assert type(out.grad_fn).__name__ == "_BinaryFocalHardBackward"


def test_binary_fused_float32_close_to_float64():
    x, y = binary_inputs(seed=5, shape=(4, 1, 32, 32))
    x = x.clamp(-25, 25)
    v64, g64 = grads(lambda x: focal(x, y), x)
    v32, g32 = grads(lambda x: focal(x, y.float()), x.float())
    torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_binary_fused_gradcheck_gradgradcheck(gamma):
    x, y = binary_inputs(seed=7, shape=(2, 1, 3, 3))
    x = (x.clamp(-6, 6)).requires_grad_(True)
    fn = lambda x: focal(x, y, gamma=gamma)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_binary_soft_targets_stay_exact():
    x = torch.randn(3, 1, 4, 4, generator=gen(), dtype=D) * 3
    y = torch.rand(3, 1, 4, 4, generator=gen(1), dtype=D)
    y.view(-1)[0] = 1.0 - 1e-9  # nearly hard is still soft
    v, g = grads(lambda x: focal(x, y), x)
    vr, gr = grads(lambda x: ref_binary_focal(x, y, 2.0, 0.25, "mean"), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=0)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_fused_backward_scaled_retained_and_no_grad(mode):
    if mode == "binary":
        x, y = binary_inputs(seed=9)
        kw = {}
    else:
        x = torch.randn(3, 4, 5, generator=gen(), dtype=D)
        y = torch.randint(0, 4, (3, 5), generator=gen(1))
        kw = {"mode": "multiclass"}
    x = x.requires_grad_(True)
    loss = focal(x, y, **kw)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, retain_graph=True)  # the saved gradient survived
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    (g3,) = torch.autograd.grad(3 * loss, x)
    torch.testing.assert_close(g3, 3 * g1, rtol=1e-14, atol=0)
    x.grad = None
    focal(x, y, **kw).backward()
    focal(x, y, **kw).backward()  # accumulates
    torch.testing.assert_close(x.grad, 2 * g1, rtol=1e-14, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(focal(x, y, **kw), loss.detach(), rtol=1e-14, atol=0)


# -- multiclass ---------------------------------------------------------------------------------
def mc_inputs(seed=0, shape=(3, 4, 5, 2)):
    x = torch.randn(shape, generator=gen(seed), dtype=D) * 3
    y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=gen(seed + 1))
    return x, y


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1, 7])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_multiclass_fused_equals_formula(gamma, weighted, ignore_index, reduction):
    x, y = mc_inputs()
    if ignore_index != 1:
        y[0, 0] = ignore_index  # some ignored elements outside [0, C)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=D) if weighted else None
    v, g = grads(lambda x: focal(x, y, mode="multiclass", gamma=gamma, weight=w,
                                 ignore_index=ignore_index, reduction=reduction), x)  # fmt: skip
    vr, gr = grads(lambda x: ref_softmax_focal(x, y, gamma, w, ignore_index, reduction), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)


def test_multiclass_fused_classification_shape_all_ignored_and_extremes():
    x = torch.randn(6, 5, generator=gen(), dtype=D)
    y = torch.randint(0, 5, (6,), generator=gen(1))
    v, g = grads(lambda x: focal(x, y, mode="multiclass"), x)
    vr, gr = grads(lambda x: ref_softmax_focal(x, y, 2.0, None, -100, "mean"), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    v, g = grads(lambda x: focal(x, torch.full_like(y, -100), mode="multiclass"), x)
    assert v == 0 and (g == 0).all()
    xe = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 1e4]])
    ye = torch.tensor([0, 0, 2])
    v, g = grads(lambda x: focal(x, ye, mode="multiclass", reduction="sum"), xe)
    assert torch.isfinite(v) and torch.isfinite(g).all()
    torch.testing.assert_close(v, torch.tensor(2e4 + torch.log(torch.tensor(2.0)).item()))
    torch.testing.assert_close(g[1], torch.tensor([-1.0, 0.5, 0.5]))  # a confident miss
    assert g[0].abs().max() == 0  # a confident hit


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_multiclass_fused_gradcheck_gradgradcheck(gamma):
    x, y = mc_inputs(seed=4, shape=(2, 3, 3))
    y[0, 0] = -100
    w = torch.tensor([0.5, 2.0, 1.0], dtype=D)
    x = x.requires_grad_(True)
    fn = lambda x: focal(x, y, mode="multiclass", gamma=gamma, weight=w)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    assert type(fn(x).grad_fn).__name__ == "_SoftmaxFocalHardBackward"


# -- multiclass dice: softmax statistics with an analytic backward ------------------------------
def ref_multiclass_dice(x, y, smooth=1.0, eps=1e-7):
    p = torch.softmax(x, 1)
    onehot = torch.zeros_like(p).scatter_(1, y.unsqueeze(1), 1.0)
    dims = (0, *range(2, x.dim()))
    tp, ps, ts = (p * onehot).sum(dims), p.sum(dims), onehot.sum(dims)
    return (1 - (2 * tp + smooth) / (ps + ts + smooth + eps)).mean()


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3), (2, 5, 3, 2, 2)])
def test_multiclass_dice_fused_equals_formula(shape):
    from lossreg_builtin._overlap import _SoftmaxIndexStats
    from lossreg_builtin.segmentation import dice

    x, y = mc_inputs(seed=11, shape=shape)
    y.view(-1)[0] = shape[1] - 1
    v, g = grads(lambda x: dice(x, y, mode="multiclass"), x)
    vr, gr = grads(lambda x: ref_multiclass_dice(x, y), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    x3, y2 = x.reshape(shape[0], shape[1], -1), y.reshape(shape[0], -1)
    assert torch.autograd.gradcheck(
        lambda x: _SoftmaxIndexStats.apply(x, y2), (x3.clone().requires_grad_(True),)
    )
    with torch.enable_grad():
        stats = _SoftmaxIndexStats.apply(x3.clone().requires_grad_(True), y2)
    assert type(stats.grad_fn).__name__ == "_SoftmaxIndexStatsBackward"


def test_multiclass_dice_fused_extremes_and_other_paths_agree(monkeypatch):
    from lossreg_builtin import _overlap
    from lossreg_builtin.segmentation import dice

    calls = []
    apply = _overlap._SoftmaxIndexStats.apply
    monkeypatch.setattr(
        _overlap._SoftmaxIndexStats, "apply", lambda *a: calls.append(1) or apply(*a)
    )

    x, y = mc_inputs(seed=12, shape=(2, 3, 4, 4))
    x[0, :, 0, 0] = torch.tensor([1e4, -1e4, 0.0], dtype=D)
    v, g = grads(lambda x: dice(x, y, mode="multiclass"), x)
    assert torch.isfinite(v) and torch.isfinite(g).all()
    assert calls == [1]  # the fused statistics were used
    # ignore_index (not fused) on a target that ignores nothing equals the fused path
    v2, g2 = grads(lambda x: dice(x, y, mode="multiclass", ignore_index=99), x)
    torch.testing.assert_close(v, v2, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g, g2, rtol=1e-11, atol=1e-16)
    assert calls == [1]
    # float32 stays close to float64
    v32, g32 = grads(lambda x: dice(x, y, mode="multiclass"), x.float())
    torch.testing.assert_close(v32.double(), v, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(g32.double(), g, rtol=1e-4, atol=1e-8)
