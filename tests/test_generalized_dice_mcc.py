"""generalized_dice and mcc: exact against MONAI (values and gradients, float64 and float32,
every mode), a float64 formula written out here (ignore_index, mask, per_image), smp's binary
MCCLoss formula, and the pinned conventions of LOSSES.md "Round 2" (an absent class takes the
largest finite weight; every class absent follows the empty-mask policy, not MONAI's 0; MCC
is finite, with finite gradients, at perfect and empty batches)."""

import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg import ConfigError, LossregError

monai_losses = pytest.importorskip("monai.losses")

IGNORE = 255


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _build(name, **params):
    return lossreg.build(name, **params)


def _inputs(mode, dtype=torch.float64, seed=0, n=3, c=3, hw=(5, 4)):
    """(logits, our target, MONAI's one-hot target (N, C, *))."""
    g = _gen(seed)
    if mode == "binary":
        x = torch.randn(n, 1, *hw, generator=g, dtype=torch.float64) * 2
        t = (torch.rand(n, 1, *hw, generator=g) > 0.6).double()
        return x.to(dtype), t.to(dtype), t.to(dtype)
    x = torch.randn(n, c, *hw, generator=g, dtype=torch.float64) * 2
    if mode == "multilabel":
        t = (torch.rand(n, c, *hw, generator=g) > 0.6).double()
        return x.to(dtype), t.to(dtype), t.to(dtype)
    t = torch.randint(0, c, (n, *hw), generator=g)
    t[0, 0] = 2  # a class present in every batch; class 1 absent from image 1
    t[1][t[1] == 1] = 0
    onehot = F.one_hot(t, c).movedim(-1, 1).to(dtype)
    return x.to(dtype), t, onehot


def _act(mode):
    return {"sigmoid": True} if mode != "multiclass" else {"softmax": True}


# -- float64 formula, written out from LOSSES.md ----------------------------------------------
def ref_stats(x, t, mode, per_image, weight=None):
    """(TP, P, T, count) per class, float64: (C,) or (N, C). ``weight`` (N, 1, *) or None
    weights each pixel (ignore_index: 0/1; mask: its value)."""
    x = x.double()
    c = x.shape[1]
    p = x.softmax(1) if mode == "multiclass" else x.sigmoid()
    if mode == "multiclass" and t.dim() == x.dim() - 1:
        y = (t.unsqueeze(1) == torch.arange(c).view(1, c, *[1] * (t.dim() - 1))).double()
    else:
        y = t.double()
    w = torch.ones_like(p[:, :1]) if weight is None else weight.double()
    dims = tuple(range(2, x.dim())) if per_image else (0, *range(2, x.dim()))
    tp = (w * p * y).sum(dims)
    fp = (w * p * (1 - y)).sum(dims)
    fn = (w * (1 - p) * y).sum(dims)
    tn = (w * (1 - p) * (1 - y)).sum(dims)
    return tp, fp, fn, tn


def ref_gdl(x, t, mode, *, weight_type="square", smooth=1e-5, eps=1e-7, per_image=False, w=None):
    tp, fp, fn, _ = ref_stats(x, t, mode, per_image, w)
    vol = tp + fn
    wc = {"square": 1 / vol**2, "simple": 1 / vol, "uniform": torch.ones_like(vol)}[weight_type]
    inf = torch.isinf(wc)
    finite = torch.where(inf, 0.0, wc)
    big = finite.amax(-1, keepdim=True)
    wc = torch.where(inf, big, wc)
    # every class absent: uniform weights (the empty-mask policy), not MONAI's 0
    wc = torch.where(inf.all(-1, keepdim=True), 1.0, wc)
    num = 2 * (wc * tp).sum(-1) + smooth
    den = (wc * (2 * tp + fp + fn)).sum(-1) + smooth + eps
    return 1 - num / den


def ref_mcc(x, t, mode, *, smooth=0.0, eps=1e-5, per_image=False, w=None):
    tp, fp, fn, tn = ref_stats(x, t, mode, per_image, w)
    num = tp * tn - fp * fn + smooth
    den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + eps)
    loss = 1 - num / den
    return torch.where((fp == 0) & (fn == 0), 0.0, loss)


def _grad(fn, x, *args):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


# -- generalized_dice against MONAI ----------------------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_generalized_dice_equals_monai(mode, weight_type, per_image, dtype):
    x, t, onehot = _inputs(mode, dtype)
    smooth, eps = 1e-5, 1e-7
    ours = _build(
        "generalized_dice", mode=mode, weight_type=weight_type, per_image=per_image,
        smooth=smooth, eps=eps,
    )  # fmt: skip
    # MONAI: numerator 2 sum w TP + smooth_nr, denominator sum w (2TP + FP + FN) + smooth_dr;
    # batch=True sums over the batch as our default, batch=False is our per_image
    peer = monai_losses.GeneralizedDiceLoss(
        **_act(mode), w_type=weight_type, batch=not per_image, smooth_nr=smooth,
        smooth_dr=smooth + eps,
    )  # fmt: skip
    v, g = _grad(ours, x, t)
    pv, pg = _grad(peer, x, onehot)
    # MONAI rounds its weights to float32 (ground_o.float()): float64 agrees to ~1e-7
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(v, pv.reshape(()), **tol)
    torch.testing.assert_close(g, pg, **tol)
    assert v.dtype == dtype


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("weight_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("per_image", [False, True])
def test_generalized_dice_equals_formula(mode, weight_type, per_image):
    x, t, _ = _inputs(mode)
    fn = _build("generalized_dice", mode=mode, weight_type=weight_type, per_image=per_image,
                reduction="none")  # fmt: skip
    want = ref_gdl(x, t, mode, weight_type=weight_type, per_image=per_image)
    torch.testing.assert_close(fn(x, t), want, rtol=1e-12, atol=1e-12)
    assert fn(x, t).shape == ((3,) if per_image else ())


def test_generalized_dice_include_background_is_classes():
    # MONAI's include_background=False drops channel 0 before the weights: our classes=[1, 2]
    x, t, onehot = _inputs("multiclass")
    ours = _build("generalized_dice", mode="multiclass", classes=[1, 2], eps=0.0)
    peer = monai_losses.GeneralizedDiceLoss(softmax=True, include_background=False, batch=True)
    torch.testing.assert_close(ours(x, t), peer(x, onehot).reshape(()), rtol=1e-6, atol=1e-7)


def test_generalized_dice_absent_class_takes_largest_finite_weight():
    x, t, onehot = _inputs("multiclass")
    t[t == 1] = 0  # class 1 absent from the whole batch
    onehot = F.one_hot(t, 3).movedim(-1, 1).double()
    ours = _build("generalized_dice", mode="multiclass", eps=0.0)
    peer = monai_losses.GeneralizedDiceLoss(softmax=True, batch=True)
    torch.testing.assert_close(ours(x, t), peer(x, onehot).reshape(()), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours(x, t), ref_gdl(x, t, "multiclass", eps=0.0), rtol=1e-12,
                               atol=0)  # fmt: skip


def test_generalized_dice_every_class_absent_follows_the_empty_mask_policy():
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    t = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    loss = _build("generalized_dice")(x, t)
    # uniform weights: 1 - smooth / (sum p + smooth + eps) > 0, pushing p down (MONAI gives 0)
    p = x.detach().sigmoid()
    torch.testing.assert_close(loss.detach(), 1 - 1e-5 / (p.sum() + 1e-5 + 1e-7))
    assert 0 < float(loss.detach()) <= 1
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all() and (g > 0).all()  # descending lowers every logit
    # empty prediction too: loss 0 exactly
    sure = torch.full((2, 1, 4, 4), -1e4, dtype=torch.float64, requires_grad=True)
    assert float(_build("generalized_dice")(sure, t).detach()) == 0.0


def test_generalized_dice_ignore_index_and_mask_formula():
    x, t, _ = _inputs("multiclass")
    t2 = t.clone()
    t2[2, :2] = IGNORE
    valid = (t2 != IGNORE).unsqueeze(1).double()
    fn = _build("generalized_dice", mode="multiclass", ignore_index=IGNORE)
    torch.testing.assert_close(fn(x, t2), ref_gdl(x, t2.clamp_max(2), "multiclass", w=valid))
    m = torch.rand(3, 5, 4, generator=_gen(3), dtype=torch.float64)
    got = _build("generalized_dice", mode="multiclass")(x, t, mask=m)
    torch.testing.assert_close(got, ref_gdl(x, t, "multiclass", w=m.unsqueeze(1)))


def test_generalized_dice_bad_weight_type():
    with pytest.raises(ConfigError, match="weight_type"):
        _build("generalized_dice", weight_type="cubic")


def test_gdl_alias_and_inputs():
    assert lossreg.describe("gdl").name == "generalized_dice"
    assert lossreg.describe("generalized_dice").input_kinds == {
        "input": "logits", "target": "mode_target"
    }  # fmt: skip


# -- mcc against MONAI -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mcc_equals_monai(mode, per_image, reduction, dtype):
    x, t, onehot = _inputs(mode, dtype)
    ours = _build("mcc", mode=mode, per_image=per_image, reduction=reduction)
    # our eps (1e-5, under the square root) is MONAI's smooth_dr; smooth 0 its smooth_nr
    peer = monai_losses.MCCLoss(**_act(mode), batch=not per_image, reduction=reduction,
                                smooth_nr=0.0, smooth_dr=1e-5)  # fmt: skip
    v, g = _grad(ours, x, t)
    pv, pg = _grad(peer, x, onehot)
    # float32: our TN = count - P - T + TP against MONAI's direct sum of (1 - p)(1 - t)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-5}
    torch.testing.assert_close(v, pv, **tol)
    torch.testing.assert_close(g, pg, **tol)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_mcc_equals_formula_with_ignore_and_mask(mode):
    x, t, _ = _inputs(mode)
    m = torch.rand(3, 5, 4, generator=_gen(4), dtype=torch.float64)
    m[0, 0] = 0
    mshape = (3, 1, 5, 4) if mode == "binary" else (3, 5, 4)
    got = _build("mcc", mode=mode, reduction="none")(x, t, mask=m.reshape(mshape))
    torch.testing.assert_close(got, ref_mcc(x, t, mode, w=m.unsqueeze(1)), rtol=1e-10, atol=1e-12)
    if mode == "multiclass":
        t2 = t.clone()
        t2[1, 1:3] = IGNORE
        valid = (t2 != IGNORE).unsqueeze(1).double()
        got = _build("mcc", mode=mode, ignore_index=IGNORE, reduction="none")(x, t2)
        want = ref_mcc(x, t2.clamp_max(2), mode, w=valid)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_mcc_binary_equals_smp_formula_without_eps():
    """smp ``segmentation_models_pytorch/losses/mcc.py`` (MCCLoss, binary): eps added to each of
    TP, TN, FP, FN, then 1 - (TP TN - FP FN) / sqrt(prod of the four sums). With eps = 0 (ours
    and theirs) both are the plain soft MCC; with the defaults they differ by O(eps)."""
    x, t, _ = _inputs("binary")
    p = x.sigmoid()
    tp, tn = (p * t).sum(), ((1 - p) * (1 - t)).sum()
    fp, fn = (p * (1 - t)).sum(), ((1 - p) * t).sum()
    smp = 1 - (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    torch.testing.assert_close(_build("mcc", eps=0.0)(x, t), smp, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_build("mcc")(x, t), smp, rtol=1e-4, atol=1e-5)


def test_mcc_perfect_batch_is_zero_with_finite_gradient():
    t = (torch.rand(2, 1, 4, 4, generator=_gen(5)) > 0.5).double()
    x = ((t * 2 - 1) * 1e4).requires_grad_(True)  # saturated: probabilities exactly 0/1
    loss = _build("mcc")(x, t)
    assert float(loss.detach()) == 0.0
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all()
    for dtype in (torch.float32, torch.float16):
        assert float(_build("mcc")(x.detach().to(dtype), t.to(dtype))) == 0.0


def test_mcc_empty_batches_are_finite_and_documented():
    # empty target, empty prediction: perfect, loss 0
    x = torch.full((2, 1, 4, 4), -1e4, dtype=torch.float64, requires_grad=True)
    t = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    assert float(_build("mcc")(x, t).detach()) == 0.0
    # empty target, non-empty prediction: TP = FN = 0, the coefficient is 0/0; the loss is
    # 1 - smooth / sqrt(eps) = 1 (smooth 0), constant in the prediction: gradient exactly 0
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=_gen(6), requires_grad=True)
    loss = _build("mcc")(x, t)
    assert float(loss.detach()) == 1.0
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all() and (g == 0).all()
    # float32 logits at +-1e4: finite
    x32 = (torch.randn(2, 3, 4, 4, generator=_gen(7)) * 1e4).requires_grad_(True)
    t32 = torch.randint(0, 3, (2, 4, 4), generator=_gen(8))
    loss = _build("mcc", mode="multiclass")(x32, t32)
    (g,) = torch.autograd.grad(loss, x32)
    assert torch.isfinite(loss) and torch.isfinite(g).all()


def test_mcc_large_counts_do_not_overflow_float32():
    # (TP+FP)(TP+FN)(TN+FP)(TN+FN) of 4e6 pixels is ~1e26 per factor pair: the formula must
    # not overflow float32 (or lose the value) on big volumes
    x = torch.zeros(1, 1, 2000, 2000)
    t = torch.zeros(1, 1, 2000, 2000)
    t[..., :1000, :] = 1
    x[..., :1000, :] = 3.0
    x[..., 1000:, :] = -3.0
    got = _build("mcc")(x, t)
    want = ref_mcc(x[..., ::50, ::50], t[..., ::50, ::50], "binary").mean()  # same fractions
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


def test_mcc_alias_and_inputs():
    assert lossreg.describe("matthews").name == "mcc"
    assert lossreg.describe("mcc").input_kinds == {"input": "logits", "target": "mode_target"}


def test_mcc_rejects_bad_classes():
    x, t, _ = _inputs("multiclass")
    with pytest.raises(LossregError, match="mcc.*classes"):
        _build("mcc", mode="multiclass", classes=[5])(x, t)


@pytest.mark.parametrize("name", ["generalized_dice", "mcc"])
def test_dist_sync_world_of_one_is_unsynced(name):
    x, t, _ = _inputs("multiclass")
    a = _build(name, mode="multiclass", dist_sync=True)(x, t)
    b = _build(name, mode="multiclass")(x, t)
    assert torch.equal(a, b)
