"""Round-2 parameters on existing losses (LOSSES.md): ``class_weights`` on dice, iou, tversky,
focal_tversky, lovasz_softmax (the true weighted mean sum_c w_c L_c / sum_c w_c); ``squared``
on dice (V-Net denominator, MONAI ``squared_pred``); ``label_smoothing`` on bce (smp
``smooth_factor``); ``ignore_index`` on bce (smp ``SoftBCEWithLogitsLoss``) and on
binary/multilabel focal (kornia ``binary_focal_loss_with_logits``)."""

import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg import ConfigError, LossregError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


N, C, H, W = 3, 4, 5, 4


def _mc(dtype=torch.float64):
    x = torch.randn(N, C, H, W, generator=_gen(0), dtype=torch.float64) * 2
    t = torch.randint(0, C, (N, H, W), generator=_gen(1))
    return x.to(dtype), t


def _ml(dtype=torch.float64):
    x = torch.randn(N, C, H, W, generator=_gen(2), dtype=torch.float64) * 2
    t = (torch.rand(N, C, H, W, generator=_gen(3)) > 0.5).double()
    return x.to(dtype), t.to(dtype)


def _grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


WEIGHTS = [0.5, 2.0, 0.0, 1.5]


# -- class_weights -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dice", "iou", "tversky", "focal_tversky"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("per_image", [False, True])
def test_class_weights_are_the_weighted_mean_of_the_class_losses(name, mode, per_image):
    x, t = _mc() if mode == "multiclass" else _ml()
    base = lossreg.build(name, mode=mode, per_image=per_image, reduction="none")
    per_class = base(x, t)  # (C,) or (N, C)
    w = torch.tensor(WEIGHTS, dtype=torch.float64)
    weighted = lossreg.build(name, mode=mode, per_image=per_image, class_weights=WEIGHTS)
    want = ((per_class * w).sum(-1) / w.sum()).mean()
    v, g = _grad(weighted, x, t)
    torch.testing.assert_close(v, want, rtol=1e-12, atol=1e-12)
    # gradient: the same weighted mean taken by autograd on the unweighted per-class losses
    _, want_g = _grad(lambda z, y: ((base(z, y) * w).sum(-1) / w.sum()).mean(), x, t)
    torch.testing.assert_close(g, want_g, rtol=1e-12, atol=1e-12)
    # sum and none: the weighted class losses w_c L_c (MONAI's `weight`)
    s = lossreg.build(name, mode=mode, per_image=per_image, class_weights=WEIGHTS,
                      reduction="none")  # fmt: skip
    torch.testing.assert_close(s(x, t), per_class * w)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("per_image", [False, True])
def test_class_weights_equal_monai_weight_when_they_sum_to_c(dtype, per_image):
    monai = pytest.importorskip("monai.losses")
    x, t = _mc(dtype)
    w = [0.5, 1.5, 0.25, 1.75]  # sums to C = 4: MONAI's mean of w_c L_c is then ours
    ours = lossreg.build("dice", mode="multiclass", class_weights=w, per_image=per_image)
    peer = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=not per_image, weight=w,
                          smooth_nr=1.0, smooth_dr=1.0 + 1e-7)  # fmt: skip
    v, g = _grad(ours, x, t)
    pv, pg = _grad(peer, x, t.unsqueeze(1))
    tol = {} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(v, pv, **tol)
    torch.testing.assert_close(g, pg, **tol)


def test_class_weights_with_classes_subset_index_by_class():
    # one weight per class of the input; `classes` then picks the classes averaged over
    x, t = _mc()
    per_class = lossreg.build("dice", mode="multiclass", reduction="none")(x, t)
    got = lossreg.build("dice", mode="multiclass", classes=[1, 3], class_weights=WEIGHTS)(x, t)
    want = (per_class[1] * 2.0 + per_class[3] * 1.5) / 3.5
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("classes", ["all", [0, 2, 3]])
def test_lovasz_softmax_class_weights(classes):
    x, t = _mc()
    t[t == 1] = 0  # class 1 absent
    ids = range(C) if classes == "all" else classes
    per_class = torch.stack([lossreg.build("lovasz_softmax", classes=[c])(x, t) for c in range(C)])
    w = torch.tensor(WEIGHTS, dtype=torch.float64)
    sel = list(ids)
    want = (per_class[sel] * w[sel]).sum() / w[sel].sum()
    got = lossreg.build("lovasz_softmax", classes=classes, class_weights=WEIGHTS)(x, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # `present` leaves absent class 1 out of numerator and denominator alike
    present = [0, 2, 3]
    want = (per_class[present] * w[present]).sum() / w[present].sum()
    got = lossreg.build("lovasz_softmax", class_weights=WEIGHTS)(x, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_bad_class_weights():
    with pytest.raises(ConfigError, match="class_weights"):
        lossreg.build("dice", class_weights=[1.0, -1.0])
    with pytest.raises(ConfigError, match="class_weights"):
        lossreg.build("dice", class_weights=[0.0, 0.0])
    x, t = _mc()
    with pytest.raises(LossregError, match=r"dice.*class_weights.*3.*4 classes"):
        lossreg.build("dice", mode="multiclass", class_weights=[1.0, 2.0, 3.0])(x, t)


# -- squared dice -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_squared_dice_equals_monai_squared_pred(mode, per_image, dtype):
    monai = pytest.importorskip("monai.losses")
    if mode == "multiclass":
        x, t = _mc(dtype)
        tt = F.one_hot(t, C).movedim(-1, 1).to(dtype)
        act = {"softmax": True}
    else:
        x, t = _ml(dtype)
        if mode == "binary":
            x, t = x[:, :1], t[:, :1]
        tt, act = t, {"sigmoid": True}
    ours = lossreg.build("dice", mode=mode, squared=True, per_image=per_image)
    # Milletari et al. 2016 (V-Net): 1 - (2 sum p t + s) / (sum p^2 + sum t^2 + s)
    peer = monai.DiceLoss(**act, squared_pred=True, batch=not per_image, smooth_nr=1.0,
                          smooth_dr=1.0 + 1e-7)  # fmt: skip
    v, g = _grad(ours, x, t)
    pv, pg = _grad(peer, x, tt)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(v, pv, **tol)
    torch.testing.assert_close(g, pg, **tol)


def test_squared_dice_formula_with_ignore_index():
    x, t = _mc()
    t[0, 0] = 255
    p = x.softmax(1)
    valid = (t != 255).unsqueeze(1).double()
    y = F.one_hot(t.clamp_max(C - 1), C).movedim(-1, 1).double() * valid
    dims = (0, 2, 3)
    tp = (p * y * valid).sum(dims)
    den = (p.square() * valid).sum(dims) + (y.square()).sum(dims)
    want = (1 - (2 * tp + 1) / (den + 1 + 1e-7)).mean()
    got = lossreg.build("dice", mode="multiclass", squared=True, ignore_index=255)(x, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# -- bce label_smoothing and ignore_index -----------------------------------------------------
def smp_soft_bce(x, y, *, smooth_factor=None, ignore_index=-100, reduction="mean"):
    """smp ``segmentation_models_pytorch/losses/soft_bce.py`` (SoftBCEWithLogitsLoss.forward),
    written out: soft targets (1 - y) e + y (1 - e); loss times (y != ignore_index); its
    ``mean`` divides by every element, ignored ones included."""
    soft = y if smooth_factor is None else (1 - y) * smooth_factor + y * (1 - smooth_factor)
    loss = F.binary_cross_entropy_with_logits(x, soft, reduction="none")
    if ignore_index is not None:
        loss = loss * (y != ignore_index).to(loss.dtype)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("e", [0.0, 0.1, 0.45])
def test_bce_label_smoothing_equals_smp_smooth_factor(reduction, e):
    x, t = _ml()
    t[0, 0, 0, 0] = 0.3  # a soft target is smoothed by the same formula
    ours = lossreg.build("bce", label_smoothing=e, reduction=reduction)
    v, g = _grad(ours, x, t)
    pv, pg = _grad(smp_soft_bce, x, t, smooth_factor=e, reduction=reduction)
    torch.testing.assert_close(v, pv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, pg, rtol=1e-12, atol=1e-12)


def test_bce_label_smoothing_bounds():
    with pytest.raises(ConfigError, match="label_smoothing"):
        lossreg.build("bce", label_smoothing=1.0)
    with pytest.raises(ConfigError, match="label_smoothing"):
        lossreg.build("bce", label_smoothing=-0.1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_ignore_index_counts_nowhere(reduction):
    x, t = _ml()
    t[0, 0] = -1
    t[2, 3, :2] = -1
    ours = lossreg.build("bce", ignore_index=-1, reduction=reduction)
    v, g = _grad(ours, x, t)
    # smp's sum and none are ours; its mean counts ignored elements in the denominator,
    # ours does not: ours_mean = smp_sum / (number of non-ignored elements)
    smp_red = "sum" if reduction == "mean" else reduction
    pv, pg = _grad(smp_soft_bce, x, t, ignore_index=-1, reduction=smp_red)
    n_valid = (t != -1).sum()
    if reduction == "mean":
        pv, pg = pv / n_valid, pg / n_valid
    torch.testing.assert_close(v, pv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, pg, rtol=1e-12, atol=1e-12)
    # and the loss of the non-ignored elements alone
    if reduction == "mean":
        keep = t != -1
        torch.testing.assert_close(v, lossreg.build("bce")(x[keep], t[keep]))


def test_bce_ignore_index_with_smoothing_and_all_ignored():
    x, t = _ml()
    t[1] = 7
    got = lossreg.build("bce", ignore_index=7, label_smoothing=0.1)(x, t)
    want = smp_soft_bce(x, t, smooth_factor=0.1, ignore_index=7, reduction="sum") / (t != 7).sum()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    xg = x.clone().requires_grad_(True)
    loss = lossreg.build("bce", ignore_index=7)(xg, torch.full_like(t, 7.0))
    assert float(loss.detach()) == 0.0  # nothing left: 0, not nan
    (g,) = torch.autograd.grad(loss, xg)
    assert (g == 0).all()


def test_bce_target_outside_unit_interval_still_an_error_unless_ignored():
    x, t = _ml()
    t[0, 0, 0, 0] = -1
    with pytest.raises(LossregError, match="bce.*target"):
        lossreg.build("bce", ignore_index=-2)(x, t)


# -- focal ignore_index (binary and multilabel) -----------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_binary_focal_ignore_index_equals_kornia(mode, reduction, gamma):
    kornia = pytest.importorskip("kornia.losses")
    x, t = _ml()
    if mode == "binary":
        x, t = x[:, :1], t[:, :1]
    t[0, 0, :2] = -100
    ours = lossreg.build("focal", mode=mode, gamma=gamma, alpha=0.25, ignore_index=-100,
                         reduction=reduction)  # fmt: skip
    v, g = _grad(ours, x, t)
    # kornia keeps ignored elements in its mean's denominator; ours does not
    k_red = "sum" if reduction == "mean" else reduction
    pv, pg = _grad(
        lambda z, y: kornia.binary_focal_loss_with_logits(
            z, y, alpha=0.25, gamma=gamma, reduction=k_red, ignore_index=-100
        ),
        x,
        t,
    )
    if reduction == "mean":
        n_valid = (t != -100).sum()
        pv, pg = pv / n_valid, pg / n_valid
    torch.testing.assert_close(v, pv, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g, pg, rtol=1e-10, atol=1e-12)


def test_focal_ignore_index_float32_fast_path_and_all_ignored():
    x, t = _ml(torch.float32)
    t[1] = -100
    keep = t != -100
    got = lossreg.build("focal", mode="multilabel", ignore_index=-100)(x, t)
    torch.testing.assert_close(got, lossreg.build("focal")(x[keep], t[keep]))
    t[:] = -100
    xg = x.clone().requires_grad_(True)
    loss = lossreg.build("focal", mode="multilabel")(xg, t)
    assert float(loss.detach()) == 0.0
    (g,) = torch.autograd.grad(loss, xg)
    assert (g == 0).all()
