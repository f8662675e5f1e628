"""Detection losses against torchvision's formulas written out in float64 (tests/cases/detection.py),
on random, degenerate and invalid boxes."""

import math

import pytest
import torch

import lossreg
from lossreg import LossregError
from tests.cases.detection import (
    random_boxes,
    tv_box_iou_loss,
    tv_ciou_loss,
    tv_diou_loss,
    tv_giou_loss,
)

REFS = {
    "box_iou": tv_box_iou_loss,
    "giou": tv_giou_loss,
    "diou": tv_diou_loss,
    "ciou": tv_ciou_loss,
}
NAMES = sorted(REFS)


def _values_and_grads(fn, b1, b2):
    b1 = b1.detach().clone().requires_grad_(True)
    b2 = b2.detach().clone().requires_grad_(True)
    out = fn(b1, b2)
    g1, g2 = torch.autograd.grad(out.sum(), (b1, b2))
    return out.detach(), g1, g2


def _compare(name, b1, b2, **params):
    ours = _values_and_grads(lambda a, b: lossreg.build(name, **params)(a, b), b1, b2)
    want = _values_and_grads(lambda a, b: REFS[name](a, b, **params), b1, b2)
    for got, ref in zip(ours, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [1e-7, 0.0, 0.5])
def test_values_and_grads_equal_torchvision(name, reduction, eps):
    gen = torch.Generator().manual_seed(1)
    b1, b2 = random_boxes(gen, 4, 5), random_boxes(gen, 4, 5)
    _compare(name, b1, b2, eps=eps, reduction=reduction)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 2)])
def test_none_keeps_the_boxes_shape_without_the_last_dim(name, shape):
    gen = torch.Generator().manual_seed(2)
    b1, b2 = random_boxes(gen, *shape), random_boxes(gen, *shape)
    out = lossreg.build(name, reduction="none")(b1, b2)
    assert out.shape == shape
    _compare(name, b1, b2, reduction="none")


@pytest.mark.parametrize("name", NAMES)
def test_default_reduction_is_mean_not_torchvisions_none(name):
    gen = torch.Generator().manual_seed(3)
    b1, b2 = random_boxes(gen, 6), random_boxes(gen, 6)
    got = lossreg.build(name)(b1, b2)
    assert got.shape == ()
    torch.testing.assert_close(got, REFS[name](b1, b2, reduction="none").mean())


@pytest.mark.parametrize("name", NAMES)
def test_no_boxes_mean_is_zero_with_a_gradient(name):
    b1 = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    out = lossreg.build(name)(b1, torch.zeros(0, 4, dtype=torch.float64))
    assert out.item() == 0.0 and out.requires_grad


# Degenerate geometry: each pair in both orders (prediction and target).
IDENTICAL = ([0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 2.0, 1.0])
DISJOINT = ([0.0, 0.0, 1.0, 1.0], [3.0, 2.0, 4.0, 5.0])
INSIDE = ([0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 2.0, 3.0])
TOUCHING = ([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0])
ZERO_W = ([1.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 2.0])  # w = 0, h > 0: torchvision finite
ZERO_H = ([0.0, 1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 2.0])  # h = 0: torchvision's ciou grad is NaN
POINT = ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0])  # w = h = 0: torchvision's ciou is NaN
TWO_POINTS = ([1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 3.0, 2.0])  # both areas 0: union 0
SAME_LINE = ([0.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 3.0])  # both w = 0 on x = 0: enclosing area 0
PAIRS = {
    "identical": IDENTICAL,
    "disjoint": DISJOINT,
    "inside": INSIDE,
    "touching": TOUCHING,
    "zero_w": ZERO_W,
    "zero_h": ZERO_H,
    "point": POINT,
    "two_points": TWO_POINTS,
    "same_line": SAME_LINE,
}


def _pair(which, flip):
    a, b = (torch.tensor(v, dtype=torch.float64) for v in PAIRS[which])
    return (b, a) if flip else (a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", sorted(PAIRS))
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("eps", [1e-7, 0.0])
def test_degenerate_boxes_finite_and_equal_where_torchvision_is_finite(name, which, flip, eps):
    b1, b2 = _pair(which, flip)
    ours = _values_and_grads(lambda a, b: lossreg.build(name, eps=eps)(a, b), b1, b2)
    assert all(torch.isfinite(t).all() for t in ours), ours
    want = _values_and_grads(lambda a, b: REFS[name](a, b, eps=eps), b1, b2)
    for got, ref in zip(ours, want, strict=True):
        finite = torch.isfinite(ref)
        torch.testing.assert_close(got[finite], ref[finite], rtol=1e-10, atol=1e-12)
    # the comparison above is complete except where torchvision itself is not finite:
    ref_finite = all(torch.isfinite(t).all() for t in want)
    assert ref_finite == ((name, which, eps) not in TORCHVISION_NOT_FINITE)


# Where torchvision's formula gives NaN (values or gradients) and lossreg stays finite:
TORCHVISION_NOT_FINITE = {
    # eps = 0 and both boxes of zero area: IoU = 0 / (0 + 0)
    *((n, w, 0.0) for n in NAMES for w in ("same_line", "two_points")),
    ("ciou", "identical", 0.0),  # alpha = 0 / (1 - 1 + 0 + 0)
    # h = 0: the gradient of atan(w / h) is 0 * inf; a point box: atan(0 / 0)
    *(("ciou", w, e) for w in ("zero_h", "point", "two_points") for e in (1e-7, 0.0)),
}


def test_degenerate_values_by_hand():
    # point at the centre of a 2x2 target: IoU 0, union 4 = enclosing area, centres equal, and
    # the point's aspect angle is pi/4 = the square target's, so every loss is exactly 1
    b1, b2 = _pair("point", False)
    for name in NAMES:
        assert lossreg.build(name)(b1, b2).item() == pytest.approx(1.0, abs=1e-6), name
    # zero-height box across the middle of the 2x2 target: IoU 0, giou/diou 1; ciou adds
    # alpha v with v = 4/pi^2 (pi/2 - pi/4)^2 = 1/4 and alpha = v / (1 + v) = 1/5
    b1, b2 = _pair("zero_h", False)
    assert lossreg.build("diou")(b1, b2).item() == pytest.approx(1.0, abs=1e-6)
    assert lossreg.build("ciou")(b1, b2).item() == pytest.approx(1.05, abs=1e-6)
    # disjoint unit squares side by side with a gap of 1: giou 1 + (3 - 2)/3, diou 1 + 4/10
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    b = torch.tensor([2.0, 0.0, 3.0, 1.0])
    assert lossreg.build("giou")(a, b).item() == pytest.approx(4 / 3, abs=1e-6)
    assert lossreg.build("diou")(a, b).item() == pytest.approx(1.4, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_ranges_on_random_boxes(name):
    gen = torch.Generator().manual_seed(4)
    out = lossreg.build(name, reduction="none")(random_boxes(gen, 200), random_boxes(gen, 200))
    upper = {"box_iou": 1.0, "giou": 2.0, "diou": 2.0, "ciou": 3.0}[name]
    assert (out >= -1e-12).all() and (out <= upper + 1e-12).all()


@pytest.mark.parametrize("name", ["box_iou", "giou", "diou"])
@pytest.mark.parametrize("eps", [1e-7, 0.0])
def test_gradcheck_small_random_boxes(name, eps):
    gen = torch.Generator().manual_seed(5)
    b1 = random_boxes(gen, 3).requires_grad_(True)
    b2 = random_boxes(gen, 3).requires_grad_(True)
    fn = lossreg.build(name, eps=eps, reduction="sum")
    assert torch.autograd.gradcheck(fn, (b1, b2))


def test_ciou_alpha_has_no_gradient():
    # d ciou = d diou + alpha * d v with alpha constant: check against that formula
    gen = torch.Generator().manual_seed(6)
    b1, b2 = random_boxes(gen, 5), random_boxes(gen, 5)
    b1.requires_grad_(True)
    (g,) = torch.autograd.grad(lossreg.build("ciou", reduction="sum")(b1, b2), b1)
    (g_diou,) = torch.autograd.grad(lossreg.build("diou", reduction="sum")(b1, b2), b1)
    w, h = (b1[:, 2] - b1[:, 0]).detach(), (b1[:, 3] - b1[:, 1]).detach()
    wg, hg = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
    iou = 1 - tv_box_iou_loss(b1.detach(), b2, reduction="none")
    delta = torch.atan(wg / hg) - torch.atan(w / h)
    v = 4 / math.pi**2 * delta**2
    alpha = v / (1 - iou + v + 1e-7)
    # dv/dw = -(8/pi^2) delta * h / (w^2 + h^2); dw/dx2 = 1, dw/dx1 = -1 (likewise h, y)
    dv_dw = -(8 / math.pi**2) * delta * h / (w**2 + h**2)
    dv_dh = (8 / math.pi**2) * delta * w / (w**2 + h**2)
    extra = torch.stack([-dv_dw, -dv_dh, dv_dw, dv_dh], -1) * alpha[:, None]
    torch.testing.assert_close(g, g_diou + extra)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_in_float32_out_in_input_dtype(dtype):
    gen = torch.Generator().manual_seed(7)
    b1, b2 = random_boxes(gen, 8).to(dtype), random_boxes(gen, 8).to(dtype)
    out = lossreg.build("ciou")(b1, b2)
    assert out.dtype == dtype
    want = tv_ciou_loss(b1.double(), b2.double())
    torch.testing.assert_close(out.double(), want, rtol=1e-2, atol=1e-3)


def test_integer_boxes_are_upcast_like_torchvision():
    b1 = torch.tensor([[0, 0, 2, 2]])
    b2 = torch.tensor([[1, 1, 3, 3]])
    out = lossreg.build("box_iou")(b1, b2)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(1 - 1 / 7, abs=1e-6)


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", NAMES)
def test_last_dim_must_be_4(name):
    with pytest.raises(
        LossregError, match=rf"{name}: input must have shape \(\*, 4\), got \(3, 5\)"
    ):
        lossreg.build(name)(torch.zeros(3, 5), torch.zeros(3, 5))
    with pytest.raises(
        LossregError, match=rf"{name}: target must have shape \(\*, 4\), got \(3,\)"
    ):
        lossreg.build(name)(torch.zeros(4), torch.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_shapes_name_both(name):
    with pytest.raises(
        LossregError, match=r"input has shape \(3, 4\) but target has shape \(1, 4\)"
    ):
        lossreg.build(name)(torch.zeros(3, 4), torch.zeros(1, 4))


@pytest.mark.parametrize(
    ("box", "why"),
    [
        ([2.0, 0.0, 1.0, 1.0], "x2 < x1"),
        ([0.0, 3.0, 1.0, 1.0], "y2 < y1"),
        ([0.0, 0.0, float("nan"), 1.0], "nan"),
        ([0.0, 0.0, float("inf"), 1.0], "inf"),
    ],
)
@pytest.mark.parametrize("arg", ["input", "target"])
def test_invalid_boxes_name_the_argument_index_and_box(box, why, arg):
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    bad = good.clone()
    bad[1] = torch.tensor(box)
    args = (bad, good) if arg == "input" else (good, bad)
    shown = ", ".join(str(v) for v in box)
    with pytest.raises(
        LossregError, match=rf"giou: {arg} holds an invalid box at index \(1,\): \[{shown}\]"
    ):
        lossreg.build("giou")(*args)


def test_eps_must_be_non_negative_and_aliases_resolve():
    with pytest.raises(lossreg.ConfigError, match="eps"):
        lossreg.build("giou", eps=-1e-7)
    assert lossreg.describe("generalized_box_iou").name == "giou"
    assert all(lossreg.describe(n).tags == ("detection",) for n in NAMES)
