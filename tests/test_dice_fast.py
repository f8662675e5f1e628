"""The fused multiclass statistics (_SoftmaxIndexStats: float one-hot by one comparison, one
bmm, softmax's backward kernel writing the gradient over the one-hot buffer) against the
straightforward float64 formula written out here with F.one_hot: values and gradients, a
second backward through the same graph, the range check by label count (and its float64 /
full-check fallbacks beyond 2**24 labels), and the error messages naming the bad label."""

import pytest
import torch
import torch.nn.functional as F
from lossreg_builtin import _overlap
from lossreg_builtin.segmentation import dice, iou, tversky

from lossreg import LossregError

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def formula(x, y, smooth=1.0, eps=1e-7, log_loss=False, classes=None, reduction="mean"):
    """softmax, F.one_hot, three sums, dice per class; the empty rule (P + T == 0: score 1)."""
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


def value_and_grad(fn, x, seed=5):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    w = torch.randn(out.shape, generator=gen(seed), dtype=out.dtype)  # covers reduction="none"
    (g,) = torch.autograd.grad((out * w).sum(), x)
    return out.detach(), g


@pytest.fixture
def calls(monkeypatch):
    seen = []
    apply = _overlap._SoftmaxIndexStats.apply
    monkeypatch.setattr(
        _overlap._SoftmaxIndexStats, "apply", lambda *a: seen.append(1) or apply(*a)
    )
    return seen


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3), (2, 5, 3, 2, 2), (2, 1, 4)])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"log_loss": True},
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
    assert calls == [1]


def test_statistics_gradcheck_and_extremes():
    x = torch.randn(2, 3, 5, generator=gen(3), dtype=D)
    x[0, :, 0] = torch.tensor([1e4, -1e4, 0.0], dtype=D)
    y = torch.randint(0, 3, (2, 5), generator=gen(4))
    # gradcheck differentiates the same graph once per output: the retain_graph path
    assert torch.autograd.gradcheck(
        lambda x: _overlap._SoftmaxIndexStats.apply(x, y), (x.clone().requires_grad_(True),)
    )
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
    assert calls == [1, 1, 1]


def test_too_many_classes_for_float_labels_take_the_general_path(monkeypatch, calls):
    x = torch.randn(2, 3, 5, generator=gen(14), dtype=D)
    y = torch.randint(0, 3, (2, 5), generator=gen(15))
    v, g = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    monkeypatch.setattr(_overlap, "_MAX_FUSED_CLASSES", 2)
    v2, g2 = value_and_grad(lambda x: dice(x, y, mode="multiclass"), x)
    assert calls == [1]  # the second call did not fuse
    torch.testing.assert_close(v2, v, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g2, g, rtol=1e-11, atol=1e-16)
