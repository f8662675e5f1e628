"""The fused dice statistics against the straightforward float64 formulas written out here.

Binary (``_SigmoidStats``: a dot product and two sums, backward u p (1 - p) in place) and
multiclass class indices (``_SoftmaxIndexStats``: a float one-hot by one comparison, one bmm,
softmax's backward kernel writing the gradient over the one-hot buffer, the label range
checked by the label count): values and gradients, gradcheck, a second backward through the
same graph, extreme logits, empty masks, low precision, the float64 / full-check fallbacks
beyond 2**24 labels, the error messages naming the bad label, and that the fused paths are
taken exactly where they apply (the general paths agree with them).
"""

import pytest
import torch
import torch.nn.functional as F
from lossreg_builtin import _overlap
from lossreg_builtin._overlap import _SigmoidStats
from lossreg_builtin.segmentation import dice, iou, tversky

import lossreg
from lossreg import LossregError

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def formula(x, y, smooth=1.0, eps=1e-7, log_loss=False, classes=None, reduction="mean"):
    """Multiclass: softmax, F.one_hot, three sums, dice per class; the empty rule (P + T == 0:
    score 1)."""
    p = torch.softmax(x, 1)
    onehot = F.one_hot(y, x.shape[1]).movedim(-1, 1).to(x.dtype)
    dims = (0, *range(2, x.dim()))
    tp, ps, ts = (p * onehot).sum(dims), p.sum(dims), onehot.sum(dims)
    score = (2 * tp + smooth) / (ps + ts + smooth + eps)
    score = torch.where((ps + ts) <= 0, torch.ones_like(score), score)
    loss = -score.log() if log_loss else 1 - score
    if classes is not None:
        loss = loss[classes]
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def ref_binary(x, t, **kw):
    """Binary: sigmoid, three sums over everything, dice; the empty rule as above."""
    p, dims = torch.sigmoid(x), tuple(range(x.dim()))
    tp, ps, ts = (p * t).sum(dims), p.sum(dims), t.sum(dims)
    smooth, eps = kw.get("smooth", 1.0), 1e-7
    score = (2 * tp + smooth) / (ps + ts + smooth + eps)
    score = torch.where((ps + ts) <= 0, torch.ones_like(score), score)
    return -score.log() if kw.get("log_loss") else 1 - score


def grads(fn, x):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


def value_and_grad(fn, x, seed=5):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    w = torch.randn(out.shape, generator=gen(seed), dtype=out.dtype)  # covers reduction="none"
    (g,) = torch.autograd.grad((out * w).sum(), x)
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


# -- binary: _SigmoidStats ------------------------------------------------------------------


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


# -- multiclass class indices: _SoftmaxIndexStats --------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3), (2, 5, 3, 2, 2), (2, 1, 4)])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"log_loss": True},
        {"smooth": 0.0},
        {"smooth": 0.0, "eps": 0.0},
        {"reduction": "none"},
        {"reduction": "sum", "smooth": 2.0},
        {"classes": [0]},
    ],
)
def test_fused_equals_the_one_hot_formula(shape, kw, calls):
    x = torch.randn(shape, generator=gen(1), dtype=D) * 3
    y = torch.randint(0, max(shape[1] - 1, 1), (shape[0], *shape[2:]), generator=gen(2))
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass", **kw), x)
    vr, gr = value_and_grad(lambda x: formula(x, y, **kw), x)
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    assert calls == ["_SoftmaxIndexStats"]


def test_statistics_gradcheck_and_extremes():
    x = torch.randn(2, 3, 5, generator=gen(3), dtype=D)
    x[0, :, 0] = torch.tensor([1e4, -1e4, 0.0], dtype=D)
    y = torch.randint(0, 3, (2, 5), generator=gen(4))
    # gradcheck differentiates the same graph once per output: the retain_graph path
    assert torch.autograd.gradcheck(
        lambda x: _overlap._SoftmaxIndexStats.apply(x, y), (x.clone().requires_grad_(True),)
    )
    with torch.enable_grad():
        stats = _overlap._SoftmaxIndexStats.apply(x.clone().requires_grad_(True), y)
    assert type(stats.grad_fn).__name__ == "_SoftmaxIndexStatsBackward"
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    vr, gr = value_and_grad(lambda x: formula(x, y), x)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)


def test_second_backward_leaves_the_first_gradient_alone():
    x = torch.randn(3, 4, 6, 6, generator=gen(6), dtype=D).requires_grad_(True)
    y = torch.randint(0, 4, (3, 6, 6), generator=gen(7))
    loss = dice(x, y, mode="multiclass")
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)  # takes the one-hot buffer
    kept = g1.clone()
    (g3,) = torch.autograd.grad(3 * loss, x)  # builds the one-hot again
    torch.testing.assert_close(g1, kept, rtol=0, atol=0)
    torch.testing.assert_close(g3, 3 * g1, rtol=1e-12, atol=1e-16)
    xr = x.detach().clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(formula(xr, y), xr)
    torch.testing.assert_close(g1, gr, rtol=1e-10, atol=1e-15)


def test_float32_and_half_stay_close_to_float64():
    x = torch.randn(8, 4, 32, 32, generator=gen(8), dtype=D) * 3
    y = torch.randint(0, 4, (8, 32, 32), generator=gen(9))
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    v32, g32 = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x.float())
    assert v32.dtype == torch.float32 and g32.dtype == torch.float32
    torch.testing.assert_close(v32.double(), v, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(g32.double(), g, rtol=1e-4, atol=1e-9)
    v16, g16 = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x.half())
    assert v16.dtype == torch.float16 and g16.dtype == torch.float16
    torch.testing.assert_close(v16.double(), v, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_multiclass_fast_low_precision_and_extremes(dtype):
    x = torch.randn(2, 3, 4, 4, generator=gen(14), dtype=D) * 3
    x[0, :, 0, 0] = torch.tensor([1e4, -1e4, 0.0], dtype=D)
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(15))
    v, g = grads(lambda x: dice(x, y, mode="multiclass"), x)
    vr, gr = grads(lambda x: formula(x, y), x)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(v, vr, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-15)
    vl, gl = grads(lambda x: dice(x, y, mode="multiclass"), x.to(dtype))
    assert vl.dtype == dtype and gl.dtype == dtype
    torch.testing.assert_close(vl.to(D), v, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(gl.to(D), g, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("fn", [dice, iou, tversky])
def test_multiclass_general_path_agrees_with_fused(fn, calls):
    # ignore_index (not fused) on a target that ignores nothing equals the fused path
    x = torch.randn(2, 3, 4, 4, generator=gen(12), dtype=D) * 3
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(13))
    v, g = grads(lambda x: fn(x, y, mode="multiclass"), x)
    v2, g2 = grads(lambda x: fn(x, y, mode="multiclass", ignore_index=99), x)
    torch.testing.assert_close(v, v2, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g, g2, rtol=1e-11, atol=1e-16)
    assert calls == ["_SoftmaxIndexStats"]


@pytest.mark.parametrize("dtype", [D, torch.float32])
@pytest.mark.parametrize("bad", [3, 7, -1, -100, 2**24 + 1, 2**40])
@pytest.mark.parametrize("fn", [dice, iou, tversky])
def test_out_of_range_label_is_named(fn, bad, dtype):
    # 2**24 + 1 rounds to 2**24 in float32: still no class, still named exactly
    x = torch.randn(2, 3, 4, 4, generator=gen(10), dtype=dtype)
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(11))
    y[1, 2, 3] = bad
    name = fn.__name__
    with pytest.raises(
        LossregError,
        match=rf"^{name}: target holds class index {bad}, outside \[0, 3\) for input with 3 "
        r"classes$",
    ):
        fn(x, y, mode="multiclass")
    with pytest.raises(LossregError, match="integer tensor"):
        fn(x, y.to(dtype), mode="multiclass")


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


def test_beyond_exact_float32_counts(monkeypatch, calls):
    # from _EXACT_COUNT labels on, T is summed in float64 and the range check is the full one
    x = torch.randn(2, 3, 4, 4, generator=gen(12))
    y = torch.randint(0, 3, (2, 4, 4), generator=gen(13))
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    seen = []
    check = _overlap.check_class_indices
    monkeypatch.setattr(_overlap, "_EXACT_COUNT", 32)
    monkeypatch.setattr(
        _overlap, "check_class_indices", lambda n, t, *a: seen.append(t.numel()) or check(n, t, *a)
    )
    v2, g2 = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    torch.testing.assert_close(v2, v, rtol=0, atol=0)
    torch.testing.assert_close(g2, g, rtol=0, atol=0)
    assert seen == [0, 32]  # the dtype check, then the full range check
    y[0, 0, 0] = 5
    with pytest.raises(LossregError, match=r"dice: target holds class index 5, outside \[0, 3\)"):
        dice(x, y, mode="multiclass")
    assert calls == ["_SoftmaxIndexStats"] * 3


def test_too_many_classes_for_float_labels_take_the_general_path(monkeypatch, calls):
    x = torch.randn(2, 3, 5, generator=gen(14), dtype=D)
    y = torch.randint(0, 3, (2, 5), generator=gen(15))
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    monkeypatch.setattr(_overlap, "_MAX_FUSED_CLASSES", 2)
    v2, g2 = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    assert calls == ["_SoftmaxIndexStats"]  # the second call did not fuse
    torch.testing.assert_close(v2, v, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g2, g, rtol=1e-11, atol=1e-16)


def test_built_losses_take_the_fast_paths(calls):
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    lossreg.build("dice")(x, (torch.rand(2, 1, 8, 8) < 0.5).float()).backward()
    xm = torch.randn(2, 4, 8, 8, requires_grad=True)
    lossreg.build("dice", mode="multiclass")(xm, torch.randint(0, 4, (2, 8, 8))).backward()
    assert calls == ["_SigmoidStats", "_SoftmaxIndexStats"]
