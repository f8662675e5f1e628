"""The call-time ``mask`` of the dense losses (OBJECTIVES.md "Masks and per-pixel weights").

References: a hard mask gives the loss of the selected elements alone (the subset, built
here by boolean indexing); a float mask gives sum(m l) / sum(m) of the unmasked elementwise
loss (float64 formula written here); MONAI's ``MaskedDiceLoss`` / ``MaskedLoss`` where they
define the same thing (hard masks; MONAI multiplies input and target by the mask, which for a
float mask weights TP by m^2, not m)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossreg
from lossreg import LossregError

IGNORE = 255


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


N, C, H, W = 3, 3, 5, 4


def _logits(c=C, seed=0):
    return torch.randn(N, c, H, W, generator=_gen(seed), dtype=torch.float64) * 2


def _binary_target(c=C, seed=1):
    return (torch.rand(N, c, H, W, generator=_gen(seed)) > 0.5).double()


def _labels(seed=2, ignore=False):
    t = torch.randint(0, C, (N, H, W), generator=_gen(seed))
    if ignore:
        t[0, 0] = IGNORE
    return t


def _hard_mask(seed=3):
    m = torch.rand(N, H, W, generator=_gen(seed)) > 0.4
    m[1] = False  # a whole sample masked out
    return m


def _soft_mask(seed=4):
    m = torch.rand(N, H, W, generator=_gen(seed), dtype=torch.float64)
    m[0, 0] = 0.0
    m[2, 1] = 1.0
    return m


# Each case: (name, params, inputs() -> (x, t), class_dim): class_dim says the mask drops
# dim 1 of the target (N, C, *); otherwise the mask has the target's shape.
def _bin():
    return _logits(1), _binary_target(1)


def _ml():
    return _logits(), _binary_target()


def _mc():
    return _logits(), _labels()


def _mc_probs():
    return _logits(), torch.rand(N, C, H, W, generator=_gen(5), dtype=torch.float64).softmax(1)


def _reg():
    return _logits(), torch.randn(N, C, H, W, generator=_gen(6), dtype=torch.float64)


ELEMENTWISE = [
    ("bce", {}, _ml, True),
    ("bce", {"weight": [0.5], "pos_weight": [2.0]}, _ml, True),
    ("focal", {}, _bin, True),
    ("focal", {"mode": "multilabel", "gamma": 1.5}, _ml, True),
    ("focal", {"mode": "multiclass"}, _mc, True),
    ("focal", {"mode": "multiclass", "weight": [1.0, 2.0, 0.5], "gamma": 0.5}, _mc, True),
    ("cross_entropy", {}, _mc, True),
    ("cross_entropy", {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}, _mc, True),
    ("cross_entropy", {}, _mc_probs, True),
    ("nll", {"weight": [1.0, 2.0, 0.5]}, _mc, True),
    ("weighted_cross_entropy", {"w_pos": 2.0, "w_neg": 0.5}, _bin, True),
    ("l1", {}, _reg, False),
    ("mse", {}, _reg, False),
    ("smooth_l1", {"beta": 0.5}, _reg, False),
    ("huber", {"delta": 0.7}, _reg, False),
]
OVERLAP = [
    ("dice", {}, _bin, True),
    ("dice", {"mode": "multiclass"}, _mc, True),
    ("dice", {"mode": "multiclass", "squared": True}, _mc_probs, True),
    ("iou", {"mode": "multilabel"}, _ml, True),
    ("tversky", {"mode": "multiclass", "alpha": 0.2, "beta": 0.8}, _mc, True),
    ("focal_tversky", {"mode": "multilabel"}, _ml, True),
    ("combo", {"mode": "multilabel"}, _ml, True),
    ("generalized_dice", {"mode": "multiclass"}, _mc, True),
    ("mcc", {"mode": "multilabel"}, _ml, True),
]
CASES = ELEMENTWISE + OVERLAP


def _id(case):
    name, params, inputs, _ = case
    return f"{name}-{inputs.__name__}-{'-'.join(map(str, params))}"


def _is_index(t):
    return not t.is_floating_point()


def _mask_for(m, x, t, class_dim):
    """The mask in the shape the loss takes: (N, *) beside a (N, C, *) target; the target's
    shape otherwise (binary (N, 1, *) targets take (N, 1, *))."""
    if class_dim and not _is_index(t) and t.shape[1] == 1:
        return m.unsqueeze(1)
    if not class_dim:
        return m.unsqueeze(1).expand_as(t).clone()
    return m


def _subset(x, t, m, overlap):
    """The selected pixels alone: (K, C) rows (or (1, C, K) for the overlap losses, whose
    statistics sum over every pixel of the batch)."""
    xs = x.movedim(1, -1)[m]
    ts = t[m] if _is_index(t) else t.movedim(1, -1)[m]
    if overlap:
        xs = xs.T.unsqueeze(0)
        ts = ts.unsqueeze(0) if _is_index(ts) else ts.T.unsqueeze(0)
    return xs, ts


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_hard_mask_equals_the_loss_of_the_selected_elements(case):
    name, params, inputs, class_dim = case
    x, t = inputs()
    m = _hard_mask()
    loss = lossreg.build(name, **params)
    if not class_dim:  # regression: the mask has the target's shape
        mm = _mask_for(m, x, t, False)
        want = loss(x[mm], t[mm])
        got = loss(x, t, mask=mm)
    else:
        xs, ts = _subset(x, t, m, (name, params, inputs, class_dim) in OVERLAP)
        want = loss(xs, ts)
        got = loss(x, t, mask=_mask_for(m, x, t, True))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the gradient too: masked-out elements get exactly 0
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(xg, t, mask=_mask_for(m, x, t, class_dim)), xg)
    assert torch.isfinite(g).all()
    out = ~m.unsqueeze(1).expand_as(x)
    assert (g[out] == 0).all()


def _elementwise(name, params, x, t):
    """The unmasked per-element loss and the per-element normaliser of ``mean`` (w_y for
    weighted class-index cross-entropy / nll / multiclass focal, 1 otherwise)."""
    loss = lossreg.build(name, **{**params, "reduction": "none"})
    per = loss(x, t)
    norm = torch.ones_like(per)
    if _is_index(t) and "weight" in params:
        norm = torch.tensor(params["weight"], dtype=torch.float64)[t]
    return per, norm


@pytest.mark.parametrize("case", ELEMENTWISE, ids=_id)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_float_mask_weights_each_element(case, reduction):
    name, params, inputs, class_dim = case
    x, t = inputs()
    m = _soft_mask()
    mm = _mask_for(m, x, t, class_dim)
    per, norm = _elementwise(name, params, x, t)
    mb = mm if mm.shape == per.shape else m.unsqueeze(1).expand_as(per)
    want = {
        "none": mb * per,
        "sum": (mb * per).sum(),
        "mean": (mb * per).sum() / (mb * norm).sum(),
    }[reduction]
    got = lossreg.build(name, **{**params, "reduction": reduction})(x, t, mask=mm)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def ref_masked_stats(x, t, m, mode):
    p = x.softmax(1) if mode == "multiclass" else x.sigmoid()
    y = F.one_hot(t, x.shape[1]).movedim(-1, 1).double() if _is_index(t) else t
    w = m.unsqueeze(1)
    dims = (0, 2, 3)
    return (w * p * y).sum(dims), (w * p).sum(dims), (w * y).sum(dims)


@pytest.mark.parametrize(
    ("name", "mode", "inputs"),
    [("dice", "multiclass", _mc), ("iou", "multilabel", _ml), ("tversky", "multiclass", _mc)],
)
def test_float_mask_weights_tp_fp_fn_per_element(name, mode, inputs):
    x, t = inputs()
    m = _soft_mask()
    tp, ps, ts = ref_masked_stats(x, t, m, mode)
    fp, fn = ps - tp, ts - tp
    a, b = {"dice": (0.5, 0.5), "iou": (1.0, 1.0), "tversky": (0.3, 0.7)}[name]
    if name == "dice":  # (2TP + s) / (2TP + FP + FN + s + eps)
        want = 1 - (2 * tp + 1) / (2 * tp + fp + fn + 1 + 1e-7)
    else:
        want = 1 - (tp + 1) / (tp + a * fp + b * fn + 1 + 1e-7)
    got = lossreg.build(name, mode=mode, reduction="none")(x, t, mask=m)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_empty_mask_gives_zero_and_zero_gradient(case):
    name, params, inputs, class_dim = case
    x, t = inputs()
    m = torch.zeros(N, H, W, dtype=torch.bool)
    xg = x.clone().requires_grad_(True)
    loss = lossreg.build(name, **params)(xg, t, mask=_mask_for(m, x, t, class_dim))
    # OBJECTIVES.md: an empty mask gives 0, combo included (no element counts)
    assert float(loss.detach()) == 0.0
    (g,) = torch.autograd.grad(loss, xg)
    assert (g == 0).all()


def test_mask_composes_with_ignore_index():
    x, t = _logits(), _labels(ignore=True)
    m = _hard_mask()
    both = m & (t != IGNORE)
    for name in ("dice", "cross_entropy", "mcc"):
        params = {"ignore_index": IGNORE, **({"mode": "multiclass"} if name != "cross_entropy"
                                             else {})}  # fmt: skip
        got = lossreg.build(name, **params)(x, t, mask=m)
        want = lossreg.build(name, **params)(x, torch.where(both, t, IGNORE))
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("per_image", [False, True])
def test_per_image_dice_with_mask_is_per_sample_subset(per_image):
    x, t = _logits(), _labels()
    m = _hard_mask()
    m[1, 0, 0] = True  # sample 1 keeps one pixel
    got = lossreg.build("dice", mode="multiclass", per_image=per_image, reduction="none")(
        x, t, mask=m
    )
    if not per_image:
        xs, ts = _subset(x, t, m, True)
        want = lossreg.build("dice", mode="multiclass", reduction="none")(xs, ts)
    else:
        rows = []
        for i in range(N):
            xs, ts = _subset(x[i : i + 1], t[i : i + 1], m[i : i + 1], True)
            rows.append(lossreg.build("dice", mode="multiclass", reduction="none")(xs, ts))
        want = torch.stack(rows)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_binary_mask_may_drop_the_channel():
    x, t = _bin()
    m = _hard_mask()
    for name in ("dice", "bce", "focal"):
        loss = lossreg.build(name)
        torch.testing.assert_close(loss(x, t, mask=m), loss(x, t, mask=m.unsqueeze(1)))


# -- MONAI --------------------------------------------------------------------------------------
def test_equals_monai_masked_dice_loss():
    monai = pytest.importorskip("monai.losses")
    m = _hard_mask().unsqueeze(1).double()
    for mode, (x, t) in [("binary", _bin()), ("multiclass", _mc())]:
        ours = lossreg.build("dice", mode=mode)
        act = {"sigmoid": True} if mode == "binary" else {"softmax": True}
        peer = monai.MaskedDiceLoss(**act, batch=True, smooth_nr=1.0, smooth_dr=1.0 + 1e-7)
        tt = t if mode == "binary" else F.one_hot(t, C).movedim(-1, 1).double()
        xg = x.clone().requires_grad_(True)
        mask = m if mode == "binary" else m.squeeze(1)
        v = ours(xg, t, mask=mask)
        (g,) = torch.autograd.grad(v, xg)
        xp = x.clone().requires_grad_(True)
        pv = peer(xp, tt, mask=m)
        (pg,) = torch.autograd.grad(pv, xp)
        torch.testing.assert_close(v, pv, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g, pg, rtol=1e-12, atol=1e-12)


def test_equals_monai_masked_loss_of_tversky_and_mse_sum():
    monai = pytest.importorskip("monai.losses")
    x, t = _ml()
    m = _hard_mask()
    # MaskedLoss multiplies input and target by the mask: give it probabilities
    peer = monai.MaskedLoss(
        monai.TverskyLoss(alpha=0.3, beta=0.7, batch=True, smooth_nr=1.0, smooth_dr=1.0 + 1e-7)
    )
    ours = lossreg.build("tversky", mode="multilabel")
    torch.testing.assert_close(
        ours(x, t, mask=m), peer(x.sigmoid(), t, mask=m.unsqueeze(1).double()), rtol=1e-12,
        atol=1e-12,
    )  # fmt: skip
    # MaskedLoss of a sum: the same thing; of a mean, MONAI divides by every element (ours by
    # the mask's sum): the mapping is ours_mean = theirs_sum / sum(mask)
    y = torch.randn(N, C, H, W, generator=_gen(9), dtype=torch.float64)
    mm = m.unsqueeze(1).expand_as(x).double()
    m1 = m.unsqueeze(1).double()  # MONAI takes one channel and broadcasts it
    sum_peer = monai.MaskedLoss(torch.nn.MSELoss(reduction="sum"))(x, y, mask=m1)
    torch.testing.assert_close(lossreg.build("mse", reduction="sum")(x, y, mask=mm), sum_peer)
    torch.testing.assert_close(lossreg.build("mse")(x, y, mask=mm), sum_peer / mm.sum())


# -- bad masks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dice", "bce", "cross_entropy", "mse", "mcc"])
def test_bad_masks_are_clear_errors(name):
    params = {"mode": "multiclass"} if name in ("dice", "mcc") else {}
    x, t = _mc() if name in ("dice", "mcc", "cross_entropy") else _ml()
    loss = lossreg.build(name, **params)
    good = torch.ones(N, H, W) if name != "mse" else torch.ones(N, C, H, W)
    with pytest.raises(LossregError, match=rf"{name}.*mask.*shape.*\(3, 4\)"):
        loss(x, t, mask=torch.ones(3, 4))
    with pytest.raises(LossregError, match=rf"{name}.*mask.*int64"):
        loss(x, t, mask=good.long())
    with pytest.raises(LossregError, match=rf"{name}.*mask.*\[0, 1\].*1\.5"):
        loss(x, t, mask=good * 1.5)
    with pytest.raises(LossregError, match=rf"{name}.*mask.*nan"):
        loss(x, t, mask=good * float("nan"))
    with pytest.raises(LossregError, match=rf"{name}.*mask.*list"):
        loss(x, t, mask=[1.0])
    # a mask over every class dim is not silently broadcast over the batch
    with pytest.raises(LossregError, match=rf"{name}.*mask"):
        loss(x, t, mask=torch.ones(1, H, W))


def test_mask_on_a_loss_without_it_is_a_clear_error():
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(LossregError, match="kl_div.*mask"):
        lossreg.build("kl_div")(x.log_softmax(1), x.softmax(1), mask=torch.ones(3, 4))


# -- catalog, composites, dist_sync ------------------------------------------------------------
MASKED = [
    "bce", "focal", "cross_entropy", "nll", "l1", "mse", "smooth_l1", "huber",
    "weighted_cross_entropy", "dice", "iou", "tversky", "focal_tversky", "combo",
    "generalized_dice", "mcc",
]  # fmt: skip


@pytest.mark.parametrize("name", MASKED)
def test_describe_says_the_loss_takes_a_mask(name):
    info = lossreg.describe(name)
    assert "masked" in info.tags
    assert "mask" in info.doc
    assert info.inputs == ("input", "target")  # mask is optional: not a declared input


def test_composite_routes_a_mask():
    x, t = _bin()
    m = _hard_mask().unsqueeze(1)
    objective = lossreg.build(
        {
            "expr": "dice + 0.5*bce + mse",
            "terms": {
                "dice": {"name": "dice", "inputs": {"input": "logits", "target": "y",
                                                    "mask": "valid"}},
                "bce": {"name": "bce", "inputs": {"input": "logits", "target": "y",
                                                  "mask": "valid"}},
                "mse": {"name": "mse", "inputs": {"input": "logits", "target": "y"}},
            },
        }
    )  # fmt: skip
    got = objective(logits=x, y=t, valid=m)
    want = (
        lossreg.build("dice")(x, t, mask=m)
        + 0.5 * lossreg.build("bce")(x, t, mask=m)
        + lossreg.build("mse")(x, t)
    )
    torch.testing.assert_close(got, want)
    cfg = lossreg.to_config(objective)
    assert cfg["terms"]["dice"]["inputs"]["mask"] == "valid"
    torch.testing.assert_close(lossreg.build(cfg)(logits=x, y=t, valid=m), want)


def test_composite_route_of_mask_to_a_loss_without_it_is_a_config_error():
    with pytest.raises(lossreg.ConfigError, match="terms.k.inputs.mask"):
        lossreg.build(
            {"expr": "k", "terms": {"k": {"name": "kl_div", "inputs": {"mask": "valid"}}}}
        )


def test_dist_sync_world_of_one_with_mask_is_unsynced():
    x, t = _mc()
    m = _soft_mask()
    for name in ("dice", "combo", "generalized_dice", "mcc"):
        mode = "multilabel" if name == "combo" else "multiclass"
        tt = F.one_hot(t, C).movedim(-1, 1).double() if name == "combo" else t
        a = lossreg.build(name, mode=mode, dist_sync=True)(x, tt, mask=m)
        b = lossreg.build(name, mode=mode)(x, tt, mask=m)
        assert torch.equal(a, b)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    keep=st.floats(0.0, 1.0),
    name=st.sampled_from(["dice", "mcc", "generalized_dice", "cross_entropy", "focal", "bce"]),
)
def test_property_hard_mask_is_the_kept_subset(seed, keep, name):
    g = _gen(seed)
    x = torch.randn(2, C, 3, 4, generator=g, dtype=torch.float64) * 3
    m = torch.rand(2, 3, 4, generator=g) < keep
    m[0, 0, 0] = True  # the subset is not empty (an empty mask: test_empty_mask_gives_zero...)
    if name in ("bce", "focal"):
        t = (torch.rand(2, C, 3, 4, generator=g) > 0.5).double()
        params = {"mode": "multilabel"} if name == "focal" else {}
    else:
        t = torch.randint(0, C, (2, 3, 4), generator=g)
        params = {} if name == "cross_entropy" else {"mode": "multiclass"}
    loss = lossreg.build(name, **params)
    overlap = name in ("dice", "mcc", "generalized_dice")
    xs, ts = _subset(x, t, m, overlap)
    torch.testing.assert_close(loss(x, t, mask=m), loss(xs, ts), rtol=1e-12, atol=1e-12)
