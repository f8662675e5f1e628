"""Overlap losses: float64 references (tests/cases/segmentation.py, written from the formulas),
identities, confusion-count checks, the empty-mask policy, numerics and errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from lossreg_builtin.segmentation import combo, dice, focal_tversky, iou, tversky

import lossreg
from lossreg import ConfigError, LossregError
from tests.cases.segmentation import (
    IGNORE,
    binary_inputs,
    multiclass_inputs,
    multilabel_inputs,
    ref_combo,
    ref_dice,
    ref_focal_tversky,
    ref_iou,
    ref_tversky,
)

OVERLAP = {"dice": dice, "iou": iou, "tversky": tversky, "focal_tversky": focal_tversky}
REFS = {
    "dice": ref_dice,
    "iou": ref_iou,
    "tversky": ref_tversky,
    "focal_tversky": ref_focal_tversky,
    "combo": ref_combo,
}
FNS = {**OVERLAP, "combo": combo}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


MODES = {
    "binary": lambda: binary_inputs(torch.float64, _gen()),
    "binary_flat": lambda: binary_inputs(torch.float64, _gen(), (3, 5, 6)),
    "multilabel": lambda: multilabel_inputs(torch.float64, _gen()),
    "multiclass": lambda: multiclass_inputs(torch.float64, _gen(), ignore=False),
    "multiclass_ignore": lambda: multiclass_inputs(torch.float64, _gen()),
    "multiclass_probs": lambda: (
        multiclass_inputs(torch.float64, _gen())[0],
        torch.rand(3, 4, 4, 4, generator=_gen(1), dtype=torch.float64).softmax(1),
    ),
}


def _mode_params(key):
    mode = key.split("_")[0] if key != "binary_flat" else "binary"
    return {"mode": mode, **({"ignore_index": IGNORE} if key == "multiclass_ignore" else {})}


# -- references: values and gradients ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FNS))
@pytest.mark.parametrize("key", sorted(MODES))
@pytest.mark.parametrize("per_image", [False, True])
def test_matches_float64_reference(name, key, per_image):
    if name == "combo" and key.startswith("multiclass"):
        pytest.skip("combo is binary/multilabel")
    x, t = MODES[key]()
    params = {**_mode_params(key), "per_image": per_image, "smooth": 0.5, "eps": 1e-6}
    if name == "dice":
        params["log_loss"] = per_image  # both variants
    for reduction in ("mean", "sum", "none"):
        xg = x.clone().requires_grad_(True)
        xr = x.clone().requires_grad_(True)
        got = FNS[name](xg, t, **params, reduction=reduction)
        want = REFS[name](xr, t, **params, reduction=reduction)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        (gg,) = torch.autograd.grad(got.sum(), xg)
        (gw,) = torch.autograd.grad(want.sum(), xr)
        torch.testing.assert_close(gg, gw, rtol=1e-9, atol=1e-12)


def test_none_shapes_and_classes():
    x, t = multiclass_inputs(torch.float64, _gen())
    kw = {"mode": "multiclass", "ignore_index": IGNORE}
    assert dice(x, t, **kw, reduction="none").shape == (4,)
    assert dice(x, t, **kw, reduction="none", per_image=True).shape == (3, 4)
    full = dice(x, t, mode="multiclass", reduction="none", ignore_index=IGNORE)
    sub = dice(x, t, mode="multiclass", classes=[1, 3], ignore_index=IGNORE)
    torch.testing.assert_close(sub, full[[1, 3]].mean())
    xb, tb = binary_inputs(torch.float64, _gen())
    assert iou(xb, tb, reduction="none").shape == (1,)


def test_worked_example_by_hand():
    # prediction [1, 1, 0, 0] against target [1, 0, 1, 0]: TP = 1, FP = 1, FN = 1
    p = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    kw = {"from_logits": False, "smooth": 0.0, "eps": 0.0}
    assert dice(p, y, **kw).item() == pytest.approx(1 - 2 / 4)  # 1 - 2TP / (2TP + FP + FN)
    assert iou(p, y, **kw).item() == pytest.approx(1 - 1 / 3)  # 1 - TP / (TP + FP + FN)
    assert tversky(p, y, **kw).item() == pytest.approx(1 - 1 / (1 + 0.3 + 0.7))
    assert focal_tversky(p, y, **kw, gamma=2.0).item() == pytest.approx(0.5**2)
    # smooth 1: dice = 1 - (2 + 1) / (4 + 1)
    assert dice(p, y, from_logits=False, eps=0.0).item() == pytest.approx(1 - 3 / 5)


# -- identities ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["binary", "multilabel", "multiclass_ignore"])
def test_tversky_identities(key):
    x, t = MODES[key]()
    kw = _mode_params(key)
    torch.testing.assert_close(
        tversky(x, t, alpha=0.5, beta=0.5, smooth=0.0, eps=0.0, **kw),
        dice(x, t, smooth=0.0, eps=0.0, **kw),
    )
    # with smoothing, tversky(0.5, 0.5) is dice with smooth and eps doubled
    torch.testing.assert_close(
        tversky(x, t, alpha=0.5, beta=0.5, smooth=0.7, eps=1e-3, **kw),
        dice(x, t, smooth=1.4, eps=2e-3, **kw),
    )
    torch.testing.assert_close(
        tversky(x, t, alpha=1.0, beta=1.0, smooth=0.7, **kw), iou(x, t, smooth=0.7, **kw)
    )
    torch.testing.assert_close(
        focal_tversky(x, t, gamma=1.0, **kw), tversky(x, t, **kw), rtol=1e-12, atol=1e-12
    )


def _confusion(pred, target, c):
    tp = fp = fn = 0
    for p_, t_ in zip(pred.tolist(), target.tolist(), strict=True):
        tp += p_ == c and t_ == c
        fp += p_ == c and t_ != c
        fn += p_ != c and t_ == c
    return tp, fp, fn


def test_hard_predictions_are_f1_and_jaccard_from_confusion_counts():
    gen = _gen(3)
    c = 3
    labels = torch.randint(0, c, (2, 5, 5), generator=gen)
    pred = torch.randint(0, c, (2, 5, 5), generator=gen)
    onehot = torch.zeros(2, c, 5, 5, dtype=torch.float64).scatter_(1, pred.unsqueeze(1), 1.0)
    kw = {"mode": "multiclass", "from_logits": False, "smooth": 0.0, "eps": 0.0}
    d = dice(onehot, labels, reduction="none", **kw)
    j = iou(onehot, labels, reduction="none", **kw)
    for k in range(c):
        tp, fp, fn = _confusion(pred.flatten(), labels.flatten(), k)
        precision, recall = tp / (tp + fp), tp / (tp + fn)
        f1 = 2 * precision * recall / (precision + recall)
        assert d[k].item() == pytest.approx(1 - f1, abs=1e-12)
        assert j[k].item() == pytest.approx(1 - tp / (tp + fp + fn), abs=1e-12)
    # binary, the same from 0/1 maps
    pb, tb = (pred == 1).double(), (labels == 1).double()
    tp, fp, fn = _confusion(pb.flatten().long(), tb.flatten().long(), 1)
    bkw = {"from_logits": False, "smooth": 0.0, "eps": 0.0}
    assert dice(pb, tb, **bkw).item() == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn))
    assert iou(pb, tb, **bkw).item() == pytest.approx(1 - tp / (tp + fp + fn))


# -- properties -----------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 50),
    smooth=st.floats(0, 2),
    name=st.sampled_from(sorted(OVERLAP)),
    mode=st.sampled_from(["binary", "multilabel", "multiclass"]),
)
def test_values_in_unit_interval(seed, scale, smooth, name, mode):
    gen = _gen(seed)
    if mode == "multiclass":
        x, t = multiclass_inputs(torch.float64, gen)
        params = {"ignore_index": IGNORE}
    else:
        x, t = binary_inputs(torch.float64, gen, (2, 3, 3, 3))
        params = {}
    out = OVERLAP[name](x * scale, t, mode=mode, smooth=smooth, reduction="none", **params)
    assert torch.isfinite(out).all()
    assert (out >= -1e-12).all() and (out <= 1 + 1e-12).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), name=st.sampled_from(sorted(OVERLAP)))
def test_perfect_prediction_is_about_zero(seed, name):
    _, t = binary_inputs(torch.float64, _gen(seed), (2, 1, 4, 4))
    t[0, 0, 0, 0] = 1.0  # at least one positive
    fn = OVERLAP[name]
    # eps = 1e-7 in the denominator leaves 1 - TI <= 1e-7 / (TP + smooth); focal_tversky raises
    # that to gamma = 0.75, so its residual is up to (1e-7)**0.75 = 5.6e-6
    tol = 1e-7**0.75 if name == "focal_tversky" else 1e-6
    assert fn(t, t, from_logits=False).item() == pytest.approx(0.0, abs=tol)
    assert fn(40 * (2 * t - 1), t).item() == pytest.approx(0.0, abs=tol)
    _, labels = multiclass_inputs(torch.float64, _gen(seed), ignore=False)
    logits = 40 * torch.zeros(3, 4, 4, 4, dtype=torch.float64).scatter_(1, labels[:, None], 1.0)
    assert fn(
        logits, labels, mode="multiclass", classes=sorted(set(labels.flatten().tolist()))
    ).item() == pytest.approx(0.0, abs=tol)


# -- empty-mask policy ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OVERLAP))
@pytest.mark.parametrize("smooth,eps", [(1.0, 1e-7), (0.0, 1e-7), (0.0, 0.0), (1.0, 0.0)])
def test_empty_target_and_empty_prediction_is_zero(name, smooth, eps):
    fn = OVERLAP[name]
    zeros = torch.zeros(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    out = fn(zeros, zeros.detach(), from_logits=False, smooth=smooth, eps=eps)
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, zeros)
    assert torch.isfinite(g).all()
    logits = torch.full((2, 1, 3, 3), -1e4, requires_grad=True)  # sigmoid is exactly 0
    out = fn(logits, torch.zeros(2, 1, 3, 3), smooth=smooth, eps=eps)
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, logits)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", sorted(OVERLAP))
def test_empty_target_with_false_positives_is_pushed_down(name):
    fn = OVERLAP[name]
    p = torch.full((2, 1, 3, 3), 0.2, dtype=torch.float64, requires_grad=True)
    out = fn(p, torch.zeros_like(p), from_logits=False)
    assert out.item() > 0
    (g,) = torch.autograd.grad(out, p)
    assert (g > 0).all()  # gradient descent lowers the prediction
    # smooth = 0: the score is 0, the loss at its maximum, finite and without NaN gradient
    p2 = p.detach().requires_grad_(True)
    out = fn(p2, torch.zeros_like(p2), from_logits=False, smooth=0.0, eps=0.0)
    assert out.item() == pytest.approx(1.0)
    (g,) = torch.autograd.grad(out, p2)
    assert torch.isfinite(g).all()


def test_tversky_zero_denominator_is_finite():
    # alpha = 0, smooth = eps = 0, no target: denominator TP + 0 FP = 0 -> score 1 (policy)
    p = torch.full((1, 1, 2, 2), 0.3, dtype=torch.float64, requires_grad=True)
    out = tversky(p, torch.zeros_like(p), from_logits=False, alpha=0.0, smooth=0.0, eps=0.0)
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, p)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", sorted(FNS))
def test_every_pixel_ignored_is_zero(name):
    x, _ = binary_inputs(torch.float64, _gen())
    x.requires_grad_(True)
    t = torch.full_like(x, IGNORE)
    out = FNS[name](x, t, ignore_index=IGNORE)
    assert out.item() == (0.0 if name != "combo" else -0.5)  # combo: its minimum
    (g,) = torch.autograd.grad(out, x)
    assert (g == 0).all()
    if name != "combo":
        xm, _ = multiclass_inputs(torch.float64, _gen())
        tm = torch.full((3, 4, 4), IGNORE)
        assert FNS[name](xm, tm, mode="multiclass", ignore_index=IGNORE).item() == 0.0


def test_ignored_pixels_contribute_nothing():
    x, t = multiclass_inputs(torch.float64, _gen(), ignore=False)
    keep = dice(x[1:], t[1:], mode="multiclass", reduction="none")
    t2 = t.clone()
    t2[0] = IGNORE
    torch.testing.assert_close(
        dice(x, t2, mode="multiclass", ignore_index=IGNORE, reduction="none"), keep
    )


def test_class_absent_from_batch():
    x, t = multiclass_inputs(torch.float64, _gen(), ignore=False)
    t[t == 2] = 1
    x.requires_grad_(True)
    per_class = dice(x, t, mode="multiclass", reduction="none")
    p2 = x.softmax(1)[:, 2].sum()
    # an empty target: 1 - smooth / (FP + smooth + eps), positive, and pushes class 2 down
    torch.testing.assert_close(per_class[2], 1 - 1 / (p2 + 1 + 1e-7))
    (g,) = torch.autograd.grad(per_class[2], x)
    assert (g[:, 2] > 0).all()
    excluded = dice(x, t, mode="multiclass", classes=[0, 1, 3])
    torch.testing.assert_close(excluded, per_class[[0, 1, 3]].mean())


@pytest.mark.parametrize("name", sorted(FNS))
def test_empty_batch(name):
    fn = FNS[name]
    x = torch.zeros(0, 1, 4, 4, requires_grad=True)
    for per_image in (False, True):
        for reduction in ("mean", "sum"):
            out = fn(x, torch.zeros(0, 1, 4, 4), per_image=per_image, reduction=reduction)
            # combo's minimum -(1 - ce_ratio) for empty masks; no sample to average: 0
            want = -0.5 if name == "combo" and not per_image else 0.0
            assert out.item() == want
            (g,) = torch.autograd.grad(out, x)
            assert g.shape == x.shape
    assert fn(x, torch.zeros(0, 1, 4, 4), per_image=True, reduction="none").shape == (0, 1)
    if name != "combo":
        xm = torch.zeros(0, 3, 4, 4)
        assert fn(xm, torch.zeros(0, 4, 4, dtype=torch.long), mode="multiclass").item() == 0.0


# -- numerics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FNS))
@pytest.mark.parametrize("key", ["binary", "multilabel", "multiclass_ignore"])
def test_extreme_logits_are_finite(name, key):
    if name == "combo" and key.startswith("multiclass"):
        pytest.skip("combo is binary/multilabel")
    x, t = MODES[key]()
    for params in ({}, {"smooth": 0.0, "eps": 0.0}, {"per_image": True}):
        for sign in (1.0, -1.0):
            logits = (sign * 1e4 * x.sign()).float().requires_grad_(True)
            tt = t if not t.is_floating_point() else t.float()
            out = FNS[name](logits, tt, **_mode_params(key), **params)
            (g,) = torch.autograd.grad(out, logits)
            assert torch.isfinite(out) and torch.isfinite(g).all()


def test_focal_tversky_gamma_below_one_at_perfect_prediction():
    t = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)
    for p in (t.clone(), t * 0.999999 + 1e-7):
        p.requires_grad_(True)
        out = focal_tversky(p, t, from_logits=False, gamma=0.5)
        (g,) = torch.autograd.grad(out, p)
        assert torch.isfinite(out) and torch.isfinite(g).all()


def test_log_loss_finite_when_coefficient_is_zero():
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    out = dice(p, y, from_logits=False, smooth=0.0, eps=0.0, log_loss=True)
    (g,) = torch.autograd.grad(out, p)
    assert out.item() == pytest.approx(-math.log(torch.finfo(torch.float64).eps))
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", sorted(FNS))
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 4e-3), (torch.bfloat16, 2e-2)])
def test_low_precision_in_float32(name, dtype, tol):
    x, t = binary_inputs(torch.float32, _gen(), (2, 1, 16, 16))
    xl, tl = x.to(dtype), t.to(dtype)
    out = FNS[name](xl, tl)
    assert out.dtype == dtype
    want = FNS[name](xl.double(), tl.double())
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol)


def test_gradcheck_modes():
    for key in ("multiclass_ignore", "multiclass_probs", "multilabel"):
        x, t = MODES[key]()
        for fn in OVERLAP.values():
            x.requires_grad_(True)
            params = {**_mode_params(key), "per_image": True, "reduction": "none"}
            assert torch.autograd.gradcheck(
                lambda x, fn=fn, t=t, params=params: fn(x, t, **params), x
            )
            x = x.detach()


def test_non_contiguous_and_channels_last():
    x, t = multilabel_inputs(torch.float32, _gen())
    want = dice(x, t, mode="multilabel", reduction="none")
    xc = x.to(memory_format=torch.channels_last)
    torch.testing.assert_close(dice(xc, t, mode="multilabel", reduction="none"), want)
    xt, tt = x.transpose(2, 3), t.transpose(2, 3)
    torch.testing.assert_close(dice(xt, tt, mode="multilabel", reduction="none"), want)


def test_dist_sync_without_process_group_is_unsynced():
    x, t = multiclass_inputs(torch.float64, _gen())
    kw = {"mode": "multiclass", "ignore_index": IGNORE}
    assert torch.equal(dice(x, t, **kw, dist_sync=True), dice(x, t, **kw))


def test_module_and_dice_bce():
    x, t = binary_inputs(torch.float32, _gen())
    assert torch.equal(lossreg.build("dice_loss", smooth=0.5)(x, t), dice(x, t, smooth=0.5))
    assert lossreg.describe("jaccard").name == "iou"
    assert set(lossreg.available(tag="segmentation")) >= {
        "combo",
        "dice",
        "dice_bce",
        "focal_tversky",
        "iou",
        "tversky",
    }
    if "bce" not in lossreg.available():
        pytest.skip("bce (classification plugin) not registered yet")
    want = dice(x, t) + F.binary_cross_entropy_with_logits(x, t)
    torch.testing.assert_close(lossreg.build("dice_bce")(x, t), want)
    torch.testing.assert_close(lossreg.build("0.5*dice + bce")(x, t), want - 0.5 * dice(x, t))


# -- errors ---------------------------------------------------------------------------------
def test_class_index_out_of_range_names_value():
    x, t = multiclass_inputs(torch.float32, _gen(), ignore=False)
    t[0, 0, 0] = 7
    with pytest.raises(LossregError, match=r"dice: target holds class index 7, outside \[0, 4\)"):
        dice(x, t, mode="multiclass")
    t[0, 0, 0] = -1
    with pytest.raises(LossregError, match="class index -1"):
        iou(x, t, mode="multiclass", ignore_index=IGNORE)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(LossregError, match=r"dice: input has shape \(4,\) .* \(4, 1\)"):
        dice(torch.zeros(4), torch.zeros(4, 1))
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(
        LossregError, match=r"tversky: target has shape \(2, 5, 4\) .* \(2, 3, 4, 4\)"
    ):
        tversky(x, torch.zeros(2, 5, 4, dtype=torch.long), mode="multiclass")
    with pytest.raises(
        LossregError, match=r"iou: input has shape \(2, 3, 4, 4\) .* \(2, 3, 4, 5\)"
    ):
        iou(x, torch.zeros(2, 3, 4, 5), mode="multilabel")
    with pytest.raises(LossregError, match=r"dice: input must have at least 2 dims"):
        dice(torch.zeros(4), torch.zeros(4), mode="multiclass")


def test_other_input_errors():
    x = torch.zeros(2, 3, 4, 4)
    t = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(LossregError, match=r"dice: classes holds 3, outside \[0, 3\)"):
        dice(x, t, mode="multiclass", classes=[0, 3])
    with pytest.raises(LossregError, match=r"iou: input \(probabilities.* found 2.0"):
        iou(torch.full((2, 1, 2), 2.0), torch.zeros(2, 1, 2), from_logits=False)
    with pytest.raises(LossregError, match="floating-point"):
        dice(t, t)
    with pytest.raises(LossregError, match=r"dice: input is on cpu but target is on meta"):
        dice(x, torch.zeros(2, 3, 4, 4, device="meta"), mode="multilabel")


def test_a_functional_refuses_options_as_build_does():
    # one rule, one wording (docs/plugins.md, "Option rules"): the params model's
    x, t = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    for fn, kw in [
        (combo, {"mode": "multiclass"}),
        (dice, {"mode": "multi"}),
        (tversky, {"alpha": -0.1}),
        (dice, {"smoth": 1.0}),
        (iou, {"classes": []}),
    ]:
        with pytest.raises(ConfigError) as built:
            lossreg.build(fn.__name__, **kw)
        with pytest.raises(ConfigError) as called:
            fn(x, t, **kw)
        assert str(called.value) == str(built.value)


def test_config_errors():
    with pytest.raises(ConfigError, match="alpha"):
        lossreg.build("tversky", alpha=-0.1)
    with pytest.raises(ConfigError, match="gamma"):
        lossreg.build("focal_tversky", gamma=0.0)
    with pytest.raises(ConfigError, match="ce_ratio"):
        lossreg.build("combo", ce_ratio=1.5)
    with pytest.raises(ConfigError, match="mode"):
        lossreg.build("combo", mode="multiclass")
    with pytest.raises(ConfigError, match="did you mean 'smooth'"):
        lossreg.build("dice", smoth=1.0)
    with pytest.raises(ConfigError, match="classes"):
        lossreg.build("dice", classes=[])
