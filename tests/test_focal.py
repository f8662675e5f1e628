"""Focal loss: torchvision's own focal tests, the precision of confident predictions, and
the fused paths (binary 0/1 targets, multiclass class indices; value and gradient in one
pass) against the float64 formulas written out here: values, gradients, gradcheck and
gradgradcheck, extreme logits, soft targets, graph reuse.

torchvision cannot be installed here (it would replace torch), so its ``sigmoid_focal_loss``
(torchvision/ops/focal_loss.py) is written out below in float64, and the inputs and checks of
``TestFocalLoss.test_correct_ratio`` (pytorch/vision, test/test_ops.py) are ported: logits of
probabilities in [0, 0.2), [0.8, 1) and [0, 1) against all-0, all-1 and random 0/1 targets,
``reduction='none'``, float32, tolerance 1e-5 (theirs); alpha -1 (theirs for "no alpha") is
our ``alpha=None``; their float32 ``ce_loss`` is taken in float64 (see the test). Gamma 0.5
and 1 are added to their 0 and 2 (issue 11).
"""

import pytest
import torch
import torch.nn.functional as F
from lossreg_builtin import _focal_sigmoid
from lossreg_builtin.classification import focal

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tv_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss with reduction='none', written out (float64)."""
    inputs, targets = inputs.double(), targets.double()
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


def diverse_pair(seed, shape=(5, 2)):
    """torchvision's ``_generate_diverse_input_target_pair``: (45, 2) logits and targets."""
    g = torch.Generator().manual_seed(seed)
    ranges = {"small": (0.0, 0.2), "big": (0.8, 1.0), "random": (0.0, 1.0)}

    def target(kind):
        if kind == "random_binary":
            return torch.randint(0, 2, shape, generator=g).float()
        return torch.full(shape, 0.0 if kind == "zeros" else 1.0)

    inputs, targets = [], []
    for i in ("small", "big", "random"):
        for t in ("zeros", "ones", "random_binary"):
            lo, hi = ranges[i]
            p = lo + (hi - lo) * torch.rand(shape, generator=g)
            inputs.append(torch.log(p / (1 - p)))
            targets.append(target(t))
    return torch.cat(inputs), torch.cat(targets)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.58, 1.0])
def test_torchvision_correct_ratio(alpha, gamma, seed):
    inputs, targets = diverse_pair(seed)
    a = None if alpha < 0 else alpha
    focal_loss = focal(inputs, targets, gamma=gamma, alpha=a, reduction="none")
    # their ce_loss in float64: PyTorch's float32 kernel, log(e^-m + e^(-x-m)), is off by up
    # to 1e-4 relative for confident predictions, where ours is exact to float32 rounding
    ce_loss = F.binary_cross_entropy_with_logits(
        inputs.double(), targets.double(), reduction="none"
    )
    assert torch.all(focal_loss.double() <= ce_loss * (1 + 2**-23))
    loss_ratio = (focal_loss.double() / ce_loss).float().squeeze()
    prob = torch.sigmoid(inputs)
    p_t = prob * targets + (1 - prob) * (1 - targets)
    correct_ratio = (1.0 - p_t) ** gamma
    if alpha >= 0:
        correct_ratio = correct_ratio * (alpha * targets + (1 - alpha) * (1 - targets))
    torch.testing.assert_close(correct_ratio, loss_ratio, rtol=1e-5, atol=1e-5)
    # and the float64 formula, to float32 precision
    want = tv_sigmoid_focal_loss(inputs, targets, alpha, gamma).float()
    torch.testing.assert_close(focal_loss, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_torchvision_equal_ce_loss(reduction, seed):
    # their test_equal_ce_loss: alpha none and gamma 0 is BCE, values and gradients
    inputs, targets = diverse_pair(seed)
    x1, x2 = inputs.clone().requires_grad_(), inputs.clone().requires_grad_()
    fl = focal(x1, targets, gamma=0.0, alpha=None, reduction=reduction)
    ce = F.binary_cross_entropy_with_logits(x2, targets, reduction=reduction)
    torch.testing.assert_close(fl, ce, rtol=1e-5, atol=1e-5)
    fl.backward()
    ce.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.5, 2.0])
@pytest.mark.parametrize("soft", [False, True])
def test_confident_predictions_keep_full_precision(gamma, soft):
    # issue 11: (softplus(-x) + x) - y x cancelled: x = 8, y = 1 gave 3.35693e-4 for PyTorch's
    # 3.35406e-4 and x = 17 gave 0.0 for 4.14e-8. Values and gradients against the float64
    # formula, reduction none (the elementwise path) and sum (soft targets: elementwise too)
    # |x| <= 17: where the float64 formula's own 1 - p (rounding 1e-16) is still exact enough
    x = torch.tensor([8.0, 17.0, 3.0, -8.0, -17.0, 0.5])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    if soft:
        y = torch.where(y > 0, 1 - 1e-3, 1e-3)
    for reduction in ("none", "sum"):
        xg = x.clone().requires_grad_()
        out = focal(xg, y, gamma=gamma, alpha=None, reduction=reduction)
        x64 = x.double().requires_grad_()
        want = tv_sigmoid_focal_loss(x64, y, -1.0, gamma)
        want = want if reduction == "none" else want.sum()
        torch.testing.assert_close(out.double(), want.detach(), rtol=2e-6, atol=0)
        (g,) = torch.autograd.grad(out.sum(), xg)
        (g64,) = torch.autograd.grad(want.sum(), x64)
        torch.testing.assert_close(g.double(), g64, rtol=2e-5, atol=1e-30)
    if not soft and gamma == 0:  # the numbers, PyTorch's own BCE
        got = focal(x[:2], y[:2], gamma=0.0, alpha=None, reduction="none")
        bce = F.binary_cross_entropy_with_logits(x[:2], y[:2], reduction="none")
        torch.testing.assert_close(got, bce, rtol=1e-6, atol=0)
        assert got[1] > 0


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.75])
def test_gamma_below_one_has_finite_gradients_at_pt_1(gamma):
    # naive (1 - p_t)^gamma has an infinite derivative at p_t = 1
    x = torch.tensor([20.0, 40.0, 1e4, -20.0, -40.0, -1e4], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    for reduction in ("none", "mean"):
        out = focal(x, y, gamma=gamma, reduction=reduction)
        (g,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(out).all() and torch.isfinite(g).all(), (out, g)


# -- fused paths: binary (_BinaryFocalHard) and multiclass (_SoftmaxFocalHard) ------------------
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


def test_binary_fused_is_taken_and_matches_elementwise_formula():
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
