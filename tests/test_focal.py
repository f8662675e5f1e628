"""Sigmoid focal loss against torchvision's own focal tests and its formula in float64.

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
from lossreg_builtin.classification import focal


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
