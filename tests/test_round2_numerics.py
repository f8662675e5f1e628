"""Round 2 losses (topk_ce ... wing): gradients equal the written-out reference's autograd
gradients (float64 and float32, every reduction), and the numerics policy of ROBUSTNESS.md:
NaN in gives NaN out, an empty batch gives 0 with a zero gradient, half and bfloat16 are
computed in float32, targets out of range are a clear error."""

import pytest
import torch

import lossreg
from lossreg.testing import _reductions
from tests.cases import ce_variants, dense_detection, detection, distillation, multilabel, robust

CASES = {
    **ce_variants.CASES,
    **multilabel.CASES,
    **distillation.CASES,
    **dense_detection.CASES,
    **{"eiou": detection.CASES["eiou"]},
    **robust.CASES,
}


def _inputs(name, dtype):
    case = CASES[name]
    xs = case.make(torch.float64)
    return [x.to(dtype) if x.is_floating_point() else x for x in xs], case


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradient_equals_the_reference_gradient(name, dtype):
    case = CASES[name]
    for reduction in _reductions(name, case.params):
        xs, _ = _inputs(name, torch.float64)
        ref_in = [x.clone().requires_grad_(i in case.grad_inputs) for i, x in enumerate(xs)]
        want = case.reference(*ref_in, **case.params, reduction=reduction)
        want_grads = torch.autograd.grad(want.sum(), [ref_in[i] for i in case.grad_inputs])
        ours_in = [
            x.to(dtype).requires_grad_(i in case.grad_inputs) if x.is_floating_point() else x
            for i, x in enumerate(xs)
        ]
        got = lossreg.build(name, **case.params, reduction=reduction)(*ours_in)
        grads = torch.autograd.grad(got.sum(), [ours_in[i] for i in case.grad_inputs])
        tol = {"rtol": 1e-9, "atol": 1e-11} if dtype == torch.float64 else {"rtol": 1e-4}
        if dtype == torch.float32:
            tol["atol"] = 1e-6
        for g, w in zip(grads, want_grads, strict=True):
            torch.testing.assert_close(g.double(), w, **tol, msg=f"{name} {reduction}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_input_gives_nan(name):
    xs, case = _inputs(name, torch.float32)
    x = xs[0].clone()
    x.view(-1)[1] = float("nan")
    if name == "eiou":  # the box family refuses non-finite boxes outright (detection.py)
        with pytest.raises(lossreg.LossregError, match="eiou: input holds an invalid box"):
            lossreg.build(name, **case.params)(x, *xs[1:])
        return
    out = lossreg.build(name, **case.params)(x, *xs[1:])
    assert torch.isnan(out).any(), name


def _empty(x):
    return x[:0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_batch_is_zero_with_zero_gradient(name):
    xs, case = _inputs(name, torch.float32)
    empty = [_empty(x) for x in xs]
    empty[0].requires_grad_(True)
    for reduction in _reductions(name, case.params):
        out = lossreg.build(name, **case.params, reduction=reduction)(*empty)
        if reduction == "none":
            assert out.numel() == 0, (name, out.shape)
            continue
        assert out.shape == () and float(out.detach()) == 0.0, (name, reduction, out)
        (g,) = torch.autograd.grad(out, empty[0], allow_unused=True)
        assert g is None or (g == 0).all(), (name, reduction)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_computed_in_float32(name, dtype):
    xs, case = _inputs(name, torch.float32)
    low = [x.to(dtype) if x.is_floating_point() else x for x in xs]
    # the same rounded numbers in float32: equal to float32 precision, not dtype precision
    want = lossreg.build(name, **case.params)(*[x.float() if x.is_floating_point() else x
                                               for x in low])  # fmt: skip
    got = lossreg.build(name, **case.params)(*low)
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want.to(dtype).float(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "params", "target", "match"),
    [
        ("varifocal", {}, torch.tensor([[0.5, 255.0]]), r"varifocal: target .*\[0, 1\].*255"),
        ("quality_focal", {}, torch.tensor([[-0.2, 0.5]]), r"quality_focal: .*-0\.2.*clamp"),
        ("asymmetric", {}, torch.tensor([[0.0, 2.0]]), r"asymmetric: target .* found 2"),
    ],
)
def test_soft_targets_out_of_range_are_clear_errors(name, params, target, match):
    with pytest.raises(lossreg.LossregError, match=match):
        lossreg.build(name, **params)(torch.zeros(1, 2), target)


def test_distribution_focal_target_range_names_the_bins():
    with pytest.raises(lossreg.LossregError, match=r"distribution_focal: .*\[0, 5\].*5\.5"):
        lossreg.build("distribution_focal")(torch.zeros(2, 6), torch.tensor([1.0, 5.5]))
    with pytest.raises(lossreg.LossregError, match="n_bins >= 2"):
        lossreg.build("distribution_focal")(torch.zeros(2, 1), torch.tensor([0.0, 0.0]))


@pytest.mark.parametrize("name", ["varifocal", "quality_focal", "asymmetric"])
@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_focusing_exponents_below_one_keep_gradients_finite(name, gamma):
    key = {"varifocal": "gamma", "quality_focal": "beta", "asymmetric": "gamma_neg"}[name]
    x = torch.tensor([[-1e4, 1e4, -30.0, 0.0]], requires_grad=True)
    y = torch.tensor([[0.0, 1.0, 0.0, 0.5]])
    out = lossreg.build(name, **{key: gamma})(x, y)
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(out) and torch.isfinite(g).all(), (out, g)
