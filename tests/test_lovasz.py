"""lovasz_hinge and lovasz_softmax against a float64 reference written from the paper's
Algorithm 1 (tests/cases/lovasz.py: one Python loop iteration per image and class, ignored
pixels dropped), hand-derived worked examples, the Jaccard property at hard predictions,
gradcheck, empty cases and error messages."""

import pytest
import torch
from lossreg_builtin.lovasz import lovasz_hinge, lovasz_softmax

import lossreg
from lossreg import LossregError
from tests.cases.lovasz import ref_lovasz_hinge, ref_lovasz_softmax

REDUCTIONS = ("mean", "sum", "none")


def _binary(n=3, h=5, w=6, seed=0, ignore=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, h, w, generator=gen, dtype=torch.float64) * 2
    y = (torch.rand(n, 1, h, w, generator=gen, dtype=torch.float64) > 0.6).double()
    if ignore is not None:
        y[torch.rand(n, 1, h, w, generator=gen, dtype=torch.float64) < 0.25] = ignore
    return x, y


def _multiclass(n=3, c=4, h=5, w=6, seed=0, ignore=None, absent=3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, c, (n, h, w), generator=gen)
    y[y == absent] = 0  # one class absent from the batch
    if n > 1:
        y[1] = y[1].clamp_max(1)  # image 1 lacks class 2, present in the batch
    if ignore is not None:
        y[torch.rand(n, h, w, generator=gen) < 0.25] = ignore
    return x, y


def _value_and_grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _assert_same(fn, ref, x, *args, **kwargs):
    got, got_grad = _value_and_grad(fn, x, *args, **kwargs)
    want, want_grad = _value_and_grad(ref, x, *args, **kwargs)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


# -- against the Algorithm-1 reference: values and gradients -----------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [None, -1, 0])
@pytest.mark.parametrize("per_image", [False, True])
def test_hinge_matches_reference(per_image, ignore_index, reduction):
    x, y = _binary(ignore=ignore_index if ignore_index != 0 else None)
    kw = dict(per_image=per_image, ignore_index=ignore_index, reduction=reduction)
    _assert_same(lovasz_hinge, ref_lovasz_hinge, x, y, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("classes", ["present", "all", [2, 0], [3]])
@pytest.mark.parametrize("ignore_index", [None, 255, 1])
@pytest.mark.parametrize("per_image", [False, True])
def test_softmax_matches_reference(per_image, ignore_index, classes, reduction):
    x, y = _multiclass(ignore=ignore_index)
    kw = dict(classes=classes, per_image=per_image, ignore_index=ignore_index)
    _assert_same(lovasz_softmax, ref_lovasz_softmax, x, y, **kw, reduction=reduction)


@pytest.mark.parametrize("per_image", [False, True])
def test_softmax_on_probabilities_matches_reference(per_image):
    x, y = _multiclass(seed=3)
    p = x.softmax(1)
    kw = dict(per_image=per_image, from_logits=False)
    _assert_same(lovasz_softmax, ref_lovasz_softmax, p, y, **kw)


@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("per_image", [False, True])
def test_float32_radix_path_matches_reference(per_image, ignore_index):
    # float32 takes the integer radix sort (float64 the comparison sort): same values and
    # gradients, rows kept apart, ignored pixels last
    x, y = _binary(n=4, seed=11, ignore=ignore_index)
    kw = dict(per_image=per_image, ignore_index=ignore_index, reduction="none")
    got, got_grad = _value_and_grad(lovasz_hinge, x.float(), y.float(), **kw)
    want, want_grad = _value_and_grad(ref_lovasz_hinge, x, y, **kw)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_grad.double(), want_grad, rtol=1e-5, atol=1e-6)
    xs, ys = _multiclass(n=4, seed=11, ignore=ignore_index)
    kw = dict(per_image=per_image, ignore_index=ignore_index, classes="present")
    got, got_grad = _value_and_grad(lovasz_softmax, xs.float(), ys, **kw)
    want, want_grad = _value_and_grad(ref_lovasz_softmax, xs, ys, **kw)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_grad.double(), want_grad, rtol=1e-5, atol=1e-6)


def test_float32_large_input_stays_close_to_float64():
    # 2 x 128 x 128 pixels: the closed-form weights keep float32 close; differences of J, as
    # in Algorithm 1, would lose about 3 digits at this size
    x, y = _binary(n=2, h=128, w=128, seed=5)
    want = ref_lovasz_hinge(x, y)
    torch.testing.assert_close(lovasz_hinge(x.float(), y.float()).double(), want, rtol=2e-6, atol=0)
    xs, ys = _multiclass(n=2, h=64, w=64, seed=5)
    want = ref_lovasz_softmax(xs, ys, per_image=True)
    got = lovasz_softmax(xs.float(), ys, per_image=True).double()
    torch.testing.assert_close(got, want, rtol=2e-6, atol=0)


def test_ties_give_the_reference_value():
    # the Lovasz extension does not depend on how ties are ordered (values only: the
    # gradient at a tie is a subgradient)
    x = torch.tensor([[1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(lovasz_hinge(x, y), ref_lovasz_hinge(x, y))
    torch.testing.assert_close(lovasz_hinge(x.float(), y), ref_lovasz_hinge(x, y).float())


# -- worked examples, derived by hand ---------------------------------------------------------
def test_hinge_worked_example():
    # x = (2, -1, 0.5, -3), y = (1, 1, 0, 0), s = (1, 1, -1, -1): errors 1 - x*s = (-1, 2, 1.5,
    # -2). Sorted: 2 (y=1), 1.5 (y=0), -1 (y=1), -2 (y=0); G = 2.
    # intersection = G - cumsum(y) = (1, 1, 0, 0); union = G + cumsum(1-y) = (2, 3, 3, 4);
    # J = 1 - I/U = (1/2, 2/3, 1, 1); g = (1/2, 1/6, 1/3, 0).
    # loss = relu(2)*1/2 + relu(1.5)*1/6 + 0 + 0 = 1.25; d loss / d x = -s * g * [e > 0] in the
    # original order: (0, -1/2, 1/6, 0).
    x = torch.tensor([[2.0, -1.0, 0.5, -3.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    loss = lovasz_hinge(x, y)
    assert loss.item() == pytest.approx(1.25, abs=1e-15)
    loss.backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, -0.5, 1 / 6, 0.0]]).double())


def test_hinge_empty_mask_is_relu_of_largest_error():
    # y = 0 everywhere: G = 0, intersection = 0, union = (1, 2, ...), J = (1, 1, ...),
    # g = (1, 0, ...): the loss is the largest error, 1 + max x = 1.5, as in the reference code
    x = torch.tensor([[0.5, -2.0, 0.25]], requires_grad=True)
    loss = lovasz_hinge(x, torch.zeros(1, 3))
    assert loss.item() == pytest.approx(1.5)
    loss.backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0]]
    # all errors <= 0: 0
    assert lovasz_hinge(torch.full((1, 3), -4.0), torch.zeros(1, 3)).item() == 0.0


def test_softmax_worked_example():
    # 2 classes, 3 pixels, labels (0, 0, 1), p_1 = (0.2, 0.6, 0.7), p_0 = 1 - p_1.
    # class 0: fg (1, 1, 0), errors |fg - p_0| = (0.2, 0.6, 0.3): sorted 0.6 (fg 1), 0.3 (0),
    #   0.2 (1); G = 2: I = (1, 1, 0), U = (2, 3, 3), J = (1/2, 2/3, 1), g = (1/2, 1/6, 1/3):
    #   0.3 + 0.05 + 0.2/3 = 0.41667
    # class 1: fg (0, 0, 1), errors (0.2, 0.6, 0.3): sorted 0.6 (0), 0.3 (1), 0.2 (0); G = 1:
    #   I = (1, 0, 0), U = (2, 2, 3), J = (1/2, 1, 1), g = (1/2, 1/2, 0): 0.3 + 0.15 = 0.45
    # mean = (0.41667 + 0.45) / 2 = 0.43333
    p1 = torch.tensor([0.2, 0.6, 0.7])
    p = torch.stack([1 - p1, p1]).unsqueeze(0)  # (1, 2, 3)
    loss = lovasz_softmax(p, torch.tensor([[0, 0, 1]]), from_logits=False)
    assert loss.item() == pytest.approx((0.3 + 0.05 + 0.2 / 3 + 0.45) / 2, abs=1e-6)


# -- the Lovasz extension at hard predictions is the Jaccard loss -------------------------------
def _iou(pred, true):
    inter = (pred & true).sum().item()
    union = (pred | true).sum().item()
    return inter / union


@pytest.mark.parametrize("seed", range(5))
def test_softmax_one_hot_is_one_minus_iou(seed):
    gen = torch.Generator().manual_seed(seed)
    c = 4
    y = torch.randint(0, c - 1, (2, 6, 7), generator=gen)  # class 3 absent from the target
    pred = torch.randint(0, c, (2, 6, 7), generator=gen)
    p = (pred.unsqueeze(1) == torch.arange(c).view(1, c, 1, 1)).double()
    present = [k for k in range(c) if (y == k).any()]
    want = sum(1 - _iou(pred == k, y == k) for k in present) / len(present)
    got = lovasz_softmax(p, y, from_logits=False)
    assert got.item() == pytest.approx(want, abs=1e-12)
    all_classes = (
        sum(
            1 - _iou(pred == k, y == k) if (pred == k).any() or (y == k).any() else 0
            for k in range(c)
        )
        / c
    )
    assert lovasz_softmax(p, y, classes="all", from_logits=False).item() == pytest.approx(
        all_classes, abs=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_hinge_at_unit_logits_is_twice_one_minus_iou(seed):
    # logits +-1: errors 0 on correct pixels and 2 on wrong ones; the extension is positively
    # homogeneous, so the loss is 2 * Jaccard loss of the set of wrong pixels = 2 (1 - IoU)
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(1, 1, 8, 9, generator=gen) > 0.5
    pred = torch.rand(1, 1, 8, 9, generator=gen) > 0.5
    x = pred.double() * 2 - 1
    got = lovasz_hinge(x, y.double())
    assert got.item() == pytest.approx(2 * (1 - _iou(pred, y)), abs=1e-12)
    assert lovasz_hinge(y.double() * 2 - 1, y.double()).item() == 0.0  # perfect prediction


# -- ignore_index equals dropping the pixels ------------------------------------------------------
def test_ignore_index_equals_dropping_pixels():
    x, y = _binary(n=1, seed=7, ignore=-1)
    keep = y != -1
    got, got_grad = _value_and_grad(lovasz_hinge, x, y, ignore_index=-1)
    x_kept = x[keep].detach().clone().requires_grad_(True)
    want = lovasz_hinge(x_kept.view(1, -1), y[keep].view(1, -1))
    want.backward()
    torch.testing.assert_close(got, want.detach())
    torch.testing.assert_close(got_grad[keep], x_kept.grad)
    assert (got_grad[~keep] == 0).all()

    xs, ys = _multiclass(n=1, seed=7, ignore=255)
    keep = ys[0] != 255
    got = lovasz_softmax(xs, ys, ignore_index=255)
    kept = xs[0][:, keep].unsqueeze(0)  # (1, C, P)
    torch.testing.assert_close(got, lovasz_softmax(kept, ys[0][keep].unsqueeze(0)))


# -- gradcheck (distinct errors: the loss is piecewise linear, smooth away from ties) -----------
@pytest.mark.parametrize("per_image", [False, True])
def test_gradcheck(per_image):
    x = (torch.arange(12, dtype=torch.float64).view(2, 6) * 0.37 - 1.9).requires_grad_(True)
    y = torch.tensor([[1, 0, 1, 1, 0, -1], [0, 0, 1, 0, 1, 1]], dtype=torch.float64)
    # errors 1 - x*s are pairwise distinct and nonzero for these x
    torch.autograd.gradcheck(
        lambda t: lovasz_hinge(t, y, per_image=per_image, ignore_index=-1, reduction="sum"), (x,)
    )
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    ys = torch.tensor([[0, 1, 2, 2, 255], [1, 1, 0, 2, 0]])
    torch.autograd.gradcheck(
        lambda t: lovasz_softmax(t, ys, per_image=per_image, ignore_index=255), (xs,)
    )


# -- empty cases, shapes, dtypes -----------------------------------------------------------------
def test_all_ignored_image_contributes_zero_and_counts_in_mean():
    x, y = _binary(n=2, seed=2)
    y[1] = 7
    x.requires_grad_(True)
    per = lovasz_hinge(x, y, per_image=True, ignore_index=7, reduction="none")
    assert per[1].item() == 0.0
    mean = lovasz_hinge(x, y, per_image=True, ignore_index=7)
    assert mean.item() == pytest.approx(per[0].item() / 2)
    mean.backward()
    assert (x.grad[1] == 0).all() and torch.isfinite(x.grad).all()
    everything = torch.full_like(y, 7)
    assert lovasz_hinge(x, everything, ignore_index=7).item() == 0.0
    xs, ys = _multiclass(n=2)
    ys[:] = 255
    for per_image in (False, True):
        assert lovasz_softmax(xs, ys, ignore_index=255, per_image=per_image).item() == 0.0


def test_empty_batch_gives_zero():
    for per_image in (False, True):
        out = lovasz_hinge(torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4), per_image=per_image)
        assert out.item() == 0.0
        out = lovasz_softmax(
            torch.zeros(0, 3, 4), torch.zeros(0, 4, dtype=torch.long), per_image=per_image
        )
        assert out.item() == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduction_shapes(reduction):
    x, y = _binary(n=3)
    xs, ys = _multiclass(n=3)
    per = (3,) if reduction == "none" else ()
    assert lovasz_hinge(x, y, per_image=True, reduction=reduction).shape == per
    assert lovasz_hinge(x, y, reduction=reduction).shape == ()
    assert lovasz_softmax(xs, ys, per_image=True, reduction=reduction).shape == per
    assert lovasz_softmax(xs, ys, reduction=reduction).shape == ()
    one = lovasz_hinge(x, y)
    assert lovasz_hinge(x, y, reduction=reduction).item() == one.item()  # one scalar


def test_squeezed_and_channel_shapes_agree():
    x, y = _binary()
    torch.testing.assert_close(lovasz_hinge(x[:, 0], y[:, 0]), lovasz_hinge(x, y))


def test_channels_last_and_non_contiguous():
    x, y = _binary(n=2, h=6, w=6)
    xs, ys = _multiclass(n=2, h=6, w=6)
    torch.testing.assert_close(
        lovasz_softmax(xs.to(memory_format=torch.channels_last), ys), lovasz_softmax(xs, ys)
    )
    xt = x.transpose(2, 3)
    torch.testing.assert_close(
        lovasz_hinge(xt, y.transpose(2, 3), per_image=True),
        lovasz_hinge(xt.contiguous(), y.transpose(2, 3).contiguous(), per_image=True),
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_in_float32(dtype):
    x, y = _binary(n=2, h=16, w=16)
    xl = x.to(dtype)
    out = lovasz_hinge(xl, y.to(dtype), per_image=True)
    assert out.dtype == dtype
    want = ref_lovasz_hinge(xl.double(), y, per_image=True)
    torch.testing.assert_close(out.double(), want, rtol=1e-2, atol=1e-3)
    xs, ys = _multiclass(n=2, h=8, w=8)
    out = lovasz_softmax(xs.to(dtype), ys)
    assert out.dtype == dtype
    torch.testing.assert_close(
        out.double(), ref_lovasz_softmax(xs.to(dtype).double(), ys), rtol=1e-2, atol=1e-3
    )


def test_float64_in_float64_out_and_extreme_logits():
    x, y = _binary()
    assert lovasz_hinge(x, y).dtype == torch.float64
    for scale in (1e4, -1e4):
        xe = (torch.sign(x) * scale).float().requires_grad_(True)
        out = lovasz_hinge(xe, y.float(), per_image=True)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(xe.grad).all()
        xs, ys = _multiclass()
        xse = (xs.sign() * scale).float().requires_grad_(True)
        out = lovasz_softmax(xse, ys, classes="all")
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(xse.grad).all()


def test_module_and_registration():
    info = lossreg.describe("lovasz_softmax")
    assert info.tags == ("segmentation",) and lossreg.describe("lovasz_hinge").tags == info.tags
    x, y = _multiclass()
    loss = lossreg.build("lovasz_softmax", classes=[0, 2], per_image=True)
    torch.testing.assert_close(loss(x, y), lovasz_softmax(x, y, classes=[0, 2], per_image=True))


# -- errors, pinned --------------------------------------------------------------------------------
def test_errors():
    x, y = _binary()
    with pytest.raises(
        LossregError,
        match=r"lovasz_hinge: input has shape \(3, 1, 5, 6\) but "
        r"target has shape \(3, 5, 6\)",
    ):
        lovasz_hinge(x, y[:, 0])
    y2 = y.clone()
    y2[0, 0, 0, 0] = 0.5
    with pytest.raises(LossregError, match=r"lovasz_hinge: target must hold 0 or 1, found 0\.5"):
        lovasz_hinge(x, y2)
    y2[0, 0, 0, 0] = 3
    with pytest.raises(LossregError, match=r"0 or 1 or ignore_index=-1, found 3\.0"):
        lovasz_hinge(x, y2, ignore_index=-1)
    xs, ys = _multiclass()
    ys[0, 0, 0] = 4
    with pytest.raises(
        LossregError,
        match=r"lovasz_softmax: target holds class index 4, "
        r"outside \[0, 4\)",
    ):
        lovasz_softmax(xs, ys)
    with pytest.raises(
        LossregError,
        match=r"target has shape \(3, 5, 6\) but input has shape "
        r"\(3, 4, 5, 7\); the target must hold class indices of shape \(3, 5, 7\)",
    ):
        lovasz_softmax(xs[..., :7].repeat(1, 1, 1, 2)[..., :7], ys)
    _, ys = _multiclass()
    with pytest.raises(LossregError, match=r"classes holds 9, outside \[0, 4\)"):
        lovasz_softmax(xs, ys, classes=[0, 9])
    with pytest.raises(LossregError, match=r"classes must be 'present', 'all' or a list"):
        lovasz_softmax(xs, ys, classes="some")
    with pytest.raises(LossregError, match=r"input has 1 class\(es\).*needs C >= 2"):
        lovasz_softmax(xs[:, :1], ys)
    with pytest.raises(
        LossregError,
        match=r"input \(probabilities, from_logits=false\) values "
        r"must lie in \[0\.0, 1\.0\]",
    ):
        lovasz_softmax(xs, ys, from_logits=False)
    with pytest.raises(lossreg.ConfigError, match=r"classes"):
        lossreg.build("lovasz_softmax", classes="some")
    with pytest.raises(
        lossreg.ConfigError,
        match=r"unknown parameter 'ignore_idx'; did you mean "
        r"'ignore_index'",
    ):
        lossreg.build("lovasz_hinge", ignore_idx=3)
