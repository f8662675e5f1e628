"""Classification losses against torch.nn.functional and float64 formulas written out."""

import pytest
import torch
import torch.nn.functional as F
from lossreg_builtin import _focal_softmax
from lossreg_builtin.classification import (
    bce,
    cross_entropy,
    focal,
    nll,
    weighted_cross_entropy,
    zero_one,
)

import lossreg
from lossreg import ConfigError, LossregError
from lossreg.testing import Case, check_gradcheck, check_loss, check_low_precision
from tests.cases.classification import (
    CLASS_WEIGHT,
    logits_and_binary,
    logits_and_index,
    logits_and_probs,
    ref_sigmoid_focal,
    ref_softmax_focal,
    ref_wce,
)

REDUCTIONS = ("mean", "sum", "none")
GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def value_and_grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def assert_same(fn_a, fn_b, x, *args, rtol=0.0, atol=0.0, **kwargs):
    va, ga = value_and_grad(fn_a, x, *args, **kwargs)
    vb, gb = value_and_grad(fn_b, x, *args, **kwargs)
    torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)
    torch.testing.assert_close(ga, gb, rtol=rtol, atol=atol)


def _f32(w):
    """A float64 weight as the module holds it: a float32 buffer converted by ``.double()``."""
    return None if w is None else w.float().double()


# -- cross-entropy and NLL: exactly torch.nn.functional ------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("targets", ["index", "probs", "flat"])
def test_cross_entropy_equals_torch(reduction, weighted, smoothing, targets):
    if targets == "probs":
        x, y = logits_and_probs(torch.float64, gen())
    else:
        x, y = logits_and_index(torch.float64, gen())
        if targets == "flat":  # (N, C) input, and ignore_index moved to 2
            x, y = x[:, :, 0, 0], y[:, 0, 0].clamp_min(0)
            y[1] = 2
    ignore = 2 if targets == "flat" else -100
    w = torch.tensor(CLASS_WEIGHT) if weighted else None
    kw = {"ignore_index": ignore, "label_smoothing": smoothing, "reduction": reduction}

    def ours(x, y, **kw):
        return cross_entropy(x, y, weight=w, **kw)

    def theirs(x, y, **kw):
        return F.cross_entropy(x, y, weight=None if w is None else w.double(), **kw)

    assert_same(ours, theirs, x, y, **kw)
    y32 = y.float() if y.is_floating_point() else y
    assert_same(
        ours, lambda x, y, **kw: F.cross_entropy(x, y, weight=w, **kw), x.float(), y32, **kw
    )


def test_cross_entropy_module_and_aliases():
    x, y = logits_and_index(torch.float64, gen())
    for name in ("cross_entropy", "ce", "CrossEntropyLoss"):
        module = lossreg.build(name, weight=CLASS_WEIGHT, label_smoothing=0.1).double()
        want = torch.nn.CrossEntropyLoss(
            weight=torch.tensor(CLASS_WEIGHT, dtype=torch.float64), label_smoothing=0.1
        )
        torch.testing.assert_close(module(x, y), want(x, y), rtol=0, atol=0)


def test_cross_entropy_1d_input():
    x = torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(
        cross_entropy(x, torch.tensor(0)), F.cross_entropy(x, torch.tensor(0))
    )


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "focal"])
def test_all_ignored_mean_is_zero_with_finite_grad(name):
    x, y = logits_and_index(torch.float64, gen())
    y = torch.full_like(y, -100)
    kw = {"mode": "multiclass"} if name == "focal" else {}
    fn = lossreg.build(name, **kw).double()
    value, grad = value_and_grad(fn, x, y)
    assert value.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_equals_torch(reduction, weighted):
    x, y = logits_and_index(torch.float64, gen())
    logp = F.log_softmax(x, dim=1)
    w = torch.tensor(CLASS_WEIGHT, dtype=torch.float64) if weighted else None
    assert_same(
        lambda x, y, **kw: nll(x, y, weight=w, **kw),
        lambda x, y, **kw: F.nll_loss(x, y, weight=w, **kw),
        logp, y, reduction=reduction,
    )  # fmt: skip
    module = lossreg.build(
        "NLLLoss", weight=CLASS_WEIGHT if weighted else None, reduction=reduction
    )
    torch.testing.assert_close(
        module.double()(logp, y), F.nll_loss(logp, y, weight=w, reduction=reduction), rtol=0, atol=0
    )
    assert lossreg.describe("nll_loss").name == "nll"


# -- BCE ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, [0.5], [1.0, 0.5, 2.0, 1.0, 0.2]])
@pytest.mark.parametrize("pos_weight", [None, [3.0], [1.0, 2.0, 0.5, 4.0, 1.0]])
def test_bce_with_logits_equals_torch(reduction, weight, pos_weight):
    x = torch.randn(3, 5, generator=gen(), dtype=torch.float64) * 3
    y = torch.rand(3, 5, generator=gen(1), dtype=torch.float64)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    assert_same(
        lambda x, y: bce(x, y, weight=w, pos_weight=pw, reduction=reduction),
        lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, weight=w, pos_weight=pw, reduction=reduction
        ),
        x, y,
    )  # fmt: skip
    for name in (
        "bce",
        "bce_with_logits",
        "bce_logits",
        "binary_cross_entropy",
        "BCEWithLogitsLoss",
    ):
        module = lossreg.build(name, weight=weight, pos_weight=pos_weight, reduction=reduction)
        want = F.binary_cross_entropy_with_logits(  # the module's buffers are float32
            x, y, weight=_f32(w), pos_weight=_f32(pw), reduction=reduction
        )
        torch.testing.assert_close(module.double()(x, y), want, rtol=0, atol=0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, [1.0, 0.5, 2.0, 1.0, 0.2]])
def test_bce_on_probabilities_equals_torch(reduction, weight):
    p = torch.rand(3, 5, generator=gen(), dtype=torch.float64) * 0.98 + 0.01
    p[0, 0], p[0, 1] = 0.0, 1.0  # PyTorch clamps log at -100; so do we
    y = torch.rand(3, 5, generator=gen(1), dtype=torch.float64)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)

    def theirs(p, y):
        return F.binary_cross_entropy(p, y, weight=w, reduction=reduction)

    assert_same(lambda p, y: bce(p, y, from_logits=False, weight=w, reduction=reduction),
                theirs, p, y)  # fmt: skip
    preset = lossreg.build("BCELoss", weight=weight, reduction=reduction).double()
    want = F.binary_cross_entropy(p, y, weight=_f32(w), reduction=reduction)
    torch.testing.assert_close(preset(p, y), want, rtol=0, atol=0)


def test_bceloss_is_a_preset_not_an_alias():
    info = lossreg.describe("BCELoss")
    assert info.name == "BCELoss" and info.kind == "preset"
    assert "BCELoss" not in lossreg.describe("bce").aliases
    assert lossreg.describe("BCELoss").params.model_fields["from_logits"].default is False
    # same numbers, opposite meaning: BCELoss takes probabilities, bce logits
    p, y = torch.tensor([0.8, 0.3]), torch.tensor([1.0, 0.0])
    torch.testing.assert_close(lossreg.build("BCELoss")(p, y), torch.nn.BCELoss()(p, y))
    torch.testing.assert_close(lossreg.build("bce")(p, y), torch.nn.BCEWithLogitsLoss()(p, y))


def test_bce_probability_out_of_range_is_an_error():
    with pytest.raises(LossregError, match=r"bce: input \(probabilities.*\[0.0, 1.0\].*1\.5"):
        lossreg.build("BCELoss")(torch.tensor([0.2, 1.5]), torch.tensor([0.0, 1.0]))
    with pytest.raises(LossregError, match=r"bce: .*found -0\.1"):
        bce(torch.tensor([-0.1]), torch.tensor([0.0]), from_logits=False)


def test_bce_pos_weight_needs_logits():
    with pytest.raises(ConfigError, match=r"\[BCELoss\].*pos_weight applies to logits only"):
        lossreg.build("BCELoss", pos_weight=[2.0])
    with pytest.raises(ConfigError, match=r"\[bce\].*pos_weight applies to logits only"):
        lossreg.build("bce", from_logits=False, pos_weight=[2.0])
    with pytest.raises(ConfigError, match=r"\[bce\].*pos_weight applies to logits only.*tensor"):
        bce(torch.tensor([0.5]), torch.tensor([1.0]), from_logits=False, pos_weight=torch.ones(1))


def test_bce_weight_length_is_checked():
    with pytest.raises(LossregError, match=r"bce: pos_weight has 3 entries .* \(2, 5\) has 5"):
        bce(torch.zeros(2, 5), torch.zeros(2, 5), pos_weight=torch.ones(3))


# -- weighted cross-entropy -----------------------------------------------------------------
def test_wce_balance_batch_20_of_100():
    # LOSSES.md: 20 positives of 100 give w_pos 0.8 and w_neg 0.2
    x = torch.randn(100, generator=gen(), dtype=torch.float64)
    y = torch.zeros(100, dtype=torch.float64)
    y[torch.randperm(100, generator=gen(1))[:20]] = 1.0
    logp, log1mp = torch.log(torch.sigmoid(x)), torch.log(1 - torch.sigmoid(x))
    want = -(0.8 * y * logp + 0.2 * (1 - y) * log1mp)
    got = lossreg.build("wce", balance="batch", reduction="none").double()(x, y)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(weighted_cross_entropy(x, y, balance="batch"), want.mean())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_wce_special_cases_are_bce(reduction):
    x, y = logits_and_binary(torch.float64, gen(), soft=True)
    assert_same(
        lambda x, y: weighted_cross_entropy(x, y, reduction=reduction),
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
        x, y, rtol=1e-12, atol=1e-14,
    )  # fmt: skip
    assert_same(
        lambda x, y: weighted_cross_entropy(x, y, w_pos=3.0, reduction=reduction),
        lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, pos_weight=torch.tensor(3.0, dtype=x.dtype), reduction=reduction
        ),
        x, y, rtol=1e-12, atol=1e-14,
    )  # fmt: skip
    torch.testing.assert_close(
        weighted_cross_entropy(x, y, w_pos=2.0, w_neg=0.5, reduction=reduction),
        ref_wce(x, y, w_pos=2.0, w_neg=0.5, reduction=reduction),
    )


def test_wce_refuses_balance_with_weights_and_bad_targets():
    with pytest.raises(ConfigError, match="balance: batch sets w_pos and w_neg.*w_pos=2.0"):
        lossreg.build("weighted_cross_entropy", balance="batch", w_pos=2.0)
    with pytest.raises(ConfigError, match=r"w_neg.*greater than or equal to 0"):
        lossreg.build("wce", w_neg=-1.0)
    with pytest.raises(LossregError, match=r"weighted_cross_entropy: target values .* found 2\.0"):
        weighted_cross_entropy(torch.zeros(3), torch.tensor([0.0, 1.0, 2.0]))


# -- focal, binary/multilabel ---------------------------------------------------------------------
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [0.25, None, 0.7])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_focal_equals_torchvision_formula(gamma, alpha, reduction):
    x, y = logits_and_binary(torch.float64, gen(), soft=True)
    assert_same(
        lambda x, y: focal(x, y, gamma=gamma, alpha=alpha, reduction=reduction),
        lambda x, y: ref_sigmoid_focal(x, y, gamma=gamma, alpha=alpha, reduction=reduction),
        x, y, rtol=1e-10, atol=1e-12,
    )  # fmt: skip


def test_binary_focal_defaults_and_multilabel():
    x = torch.randn(4, 3, 2, generator=gen(), dtype=torch.float64)
    y = (torch.rand(4, 3, 2, generator=gen(1)) < 0.4).double()
    want = ref_sigmoid_focal(x, y, gamma=2.0, alpha=0.25)
    torch.testing.assert_close(focal(x, y), want)
    torch.testing.assert_close(lossreg.build("focal", mode="multilabel").double()(x, y), want)
    assert lossreg.to_config(lossreg.build("focal"))["alpha"] == 0.25
    assert lossreg.to_config(lossreg.build("focal", alpha=None))["alpha"] is None


def test_focal_paper_claim_100x_less_than_ce_at_pt_0_9():
    # Lin et al. 2017, sec. 3.2: "with gamma = 2, an example classified with p_t = 0.9 would
    # have 100x lower loss compared with CE"
    x = torch.tensor([torch.logit(torch.tensor(0.9, dtype=torch.float64)).item()] * 2,
                     dtype=torch.float64)  # fmt: skip
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    x = x * torch.tensor([1.0, -1.0], dtype=torch.float64)  # p_t = 0.9 for both
    fl = focal(x, y, gamma=2.0, alpha=None, reduction="none")
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    torch.testing.assert_close(ce / fl, torch.full_like(ce, 100.0))
    mc = torch.tensor([[math_log(0.9), math_log(0.1)]], dtype=torch.float64)  # p_y = 0.9
    ratio = F.cross_entropy(mc, torch.tensor([0])) / focal(mc, torch.tensor([0]), mode="multiclass")
    torch.testing.assert_close(ratio, torch.tensor(100.0, dtype=torch.float64))


def math_log(v):
    return torch.log(torch.tensor(v, dtype=torch.float64)).item()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_binary_focal_elementwise_gradcheck_and_gradgradcheck(gamma):
    # reduction none and soft targets take the elementwise formula (_focal_sigmoid.binary_focal)
    x, y = logits_and_binary(torch.float64, gen(3), soft=True)
    x = x.requires_grad_(True)
    fn = lambda x: focal(x, y, gamma=gamma, reduction="none")  # noqa: E731
    torch.autograd.gradcheck(fn, (x,))
    torch.autograd.gradgradcheck(fn, (x,))


def test_binary_focal_target_gradient_flows():
    x, y = logits_and_binary(torch.float64, gen(), soft=True)
    y = y.clamp(0.05, 0.95).requires_grad_(True)
    torch.autograd.gradcheck(lambda y: focal(x, y, gamma=1.5), (y,))


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_focal_extreme_logits_finite(gamma, mode):
    if mode == "binary":
        x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0, 50.0])
        y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    else:
        x = torch.tensor([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, 1e4, 1e4], [0.0, 0.0, 1e4]])
        y = torch.tensor([0, 0, 0, 1])
    value, grad = value_and_grad(lambda x, y: focal(x, y, mode=mode, gamma=gamma,
                                                    reduction="sum"), x, y)  # fmt: skip
    assert torch.isfinite(value).all() and torch.isfinite(grad).all(), (value, grad)
    if mode == "binary":
        # a confident miss: loss alpha_t * 1e4, gradient -alpha_t * (1 - 0); a confident hit: ~0
        assert grad[0].abs() < 1e-30 and grad[1].abs() < 1e-30
        torch.testing.assert_close(grad[2:4], torch.tensor([0.75, -0.25]))


def test_focal_gamma_below_one_gradient_is_exact_near_pt_1():
    # d/dx of (1 - p)^0.5 * (-log p) for y = 1 at x = 20 (p_t = 1 - 2e-9): float64 formula
    x = torch.tensor([20.0], dtype=torch.float64)
    _, grad = value_and_grad(lambda x, y: focal(x, y, gamma=0.5, alpha=None), x,
                                 torch.ones(1, dtype=torch.float64))  # fmt: skip
    p, g = torch.sigmoid(x), 0.5
    ce = -torch.log(p)
    want = (1 - p) ** g * (p - 1) + ce * g * (1 - p) ** (g - 1) * (-p * (1 - p))
    torch.testing.assert_close(grad, want, rtol=1e-6, atol=0)


# -- focal, multiclass ----------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["index", "probs"])
def test_multiclass_focal_gamma0_is_cross_entropy(reduction, targets):
    make = logits_and_index if targets == "index" else logits_and_probs
    x, y = make(torch.float64, gen())
    for w in (None, CLASS_WEIGHT):
        wt = None if w is None else torch.tensor(w, dtype=torch.float64)
        assert_same(
            lambda x, y, w=w: lossreg.build("focal", mode="multiclass", gamma=0.0, weight=w,
                                            reduction=reduction).double()(x, y),
            lambda x, y, wt=wt: F.cross_entropy(x, y, weight=wt, reduction=reduction),
            x, y, rtol=1e-13, atol=1e-15,
        )  # fmt: skip


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["index", "probs"])
def test_multiclass_focal_formula(gamma, reduction, targets):
    make = logits_and_index if targets == "index" else logits_and_probs
    x, y = make(torch.float64, gen(4))
    kw = {"gamma": gamma, "weight": CLASS_WEIGHT, "reduction": reduction}
    module = lossreg.build("focal", mode="multiclass", **kw).double()
    assert_same(module, lambda x, y: ref_softmax_focal(x, y, **kw), x, y, rtol=1e-10, atol=1e-12)


def test_log1m_softmax():
    x = torch.randn(5, 4, 3, generator=gen(), dtype=torch.float64) * 3
    x[0, :, 0] = torch.tensor([2.0, 2.0, -1.0, 0.0], dtype=torch.float64)  # tie at the max
    torch.testing.assert_close(
        _focal_softmax.log1m_softmax(x, 1), torch.log(1 - torch.softmax(x, 1))
    )
    torch.autograd.gradcheck(
        lambda x: _focal_softmax.log1m_softmax(x, 1), (x.requires_grad_(True),)
    )
    one = _focal_softmax.log1m_softmax(torch.zeros(2, 1, requires_grad=True), 1)
    assert torch.isinf(one).all() and not one.requires_grad


def test_focal_kit_extra_configurations():
    # the conformance kit on the configurations the one registered case does not cover
    kw = {"low_precision": True, "compile": False}
    check_loss("focal", Case(logits_and_index, params={"mode": "multiclass", "gamma": 0.5,
                                                       "weight": CLASS_WEIGHT},
                             reference=ref_softmax_focal, **kw))  # fmt: skip
    check_loss("focal", Case(logits_and_probs, params={"mode": "multiclass", "gamma": 2.0},
                             reference=ref_softmax_focal, **kw))  # fmt: skip
    hard = Case(logits_and_binary, params={"gamma": 0.5, "alpha": None},
                reference=ref_sigmoid_focal, **kw)  # fmt: skip
    check_loss("focal", hard)
    check_loss("cross_entropy", Case(logits_and_probs, params={"label_smoothing": 0.3}, **kw))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_focal_low_precision_dtype_and_closeness(dtype):
    x, y = logits_and_binary(torch.float32, gen(), soft=False)
    out = focal(x.to(dtype), y.to(dtype))
    assert out.dtype == dtype
    want = ref_sigmoid_focal(x.to(dtype).double(), y.double())
    torch.testing.assert_close(out.double(), want, rtol=1e-2, atol=1e-4)


# -- zero-one -------------------------------------------------------------------------------------
def test_zero_one_binary_and_multiclass():
    x = torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.5])  # wrong, wrong, ok; 0 vs 0.5: logit 0 is "no"
    assert zero_one(x, y, reduction="none").tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert zero_one(x, y, reduction="sum").item() == 3.0
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    module = lossreg.build("zero_one", mode="multiclass")
    assert module(logits, torch.tensor([1, 2, 2])).item() == pytest.approx(1 / 3)


def test_zero_one_has_no_gradient():
    assert lossreg.describe("zero_one").differentiable is False
    x = torch.randn(4, requires_grad=True)
    out = lossreg.build("zero_one")(x, torch.ones(4))
    assert not out.requires_grad


# -- shapes and class indices ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, kw",
    [("bce", {}), ("BCELoss", {}), ("weighted_cross_entropy", {}), ("focal", {}),
     ("zero_one", {})],
)  # fmt: skip
def test_n_vs_n1_is_refused(name, kw):
    canonical = lossreg.describe(name).name if name != "BCELoss" else "bce"
    with pytest.raises(LossregError, match=rf"{canonical}: input has shape \(4,\) but target "
                                           r"has shape \(4, 1\)"):  # fmt: skip
        lossreg.build(name, **kw)(torch.full((4,), 0.5), torch.full((4, 1), 0.5))


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "focal", "zero_one"])
def test_class_target_shape_and_range(name):
    module = lossreg.build(
        name, **({"mode": "multiclass"} if name in ("focal", "zero_one") else {})
    )
    x = torch.zeros(2, 3, 4)
    with pytest.raises(LossregError, match=rf"{name}: class-index target has shape \(2, 5\) but "
                                           r"input of shape \(2, 3, 4\) needs target shape "
                                           r"\(2, 4\)"):  # fmt: skip
        module(x, torch.zeros(2, 5, dtype=torch.long))
    bad = torch.zeros(2, 4, dtype=torch.long)
    bad[1, 2] = 3
    with pytest.raises(
        LossregError, match=rf"{name}: target holds class index 3, outside \[0, 3\)"
    ):
        module(x, bad)
    bad[1, 2] = -7
    with pytest.raises(LossregError, match=rf"{name}: target holds class index -7"):
        module(x, bad)


def test_probability_target_shape_and_weight_length():
    with pytest.raises(LossregError, match=r"cross_entropy: probability target has shape \(2, 4\) "
                                           r"but input has shape \(2, 3\)"):  # fmt: skip
        cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(LossregError, match="cross_entropy: weight has 4 entries but input has 3"):
        lossreg.build("ce", weight=CLASS_WEIGHT)(
            torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(LossregError, match="nll: target must hold class indices"):
        nll(torch.zeros(2, 3), torch.zeros(2, 3))


def test_focal_options_of_the_wrong_mode_are_refused():
    with pytest.raises(ConfigError, match="alpha applies to binary/multilabel mode"):
        lossreg.build("focal", mode="multiclass", alpha=0.25)
    with pytest.raises(ConfigError, match="weight applies to multiclass mode only"):
        lossreg.build("focal", weight=[1.0, 2.0])
    # ignore_index applies in every mode since issue 13 (kornia's binary focal has it)
    lossreg.build("focal", mode="multilabel", ignore_index=0)
    with pytest.raises(ConfigError, match=r"gamma.*greater than or equal to 0"):
        lossreg.build("focal", gamma=-1)
    with pytest.raises(LossregError, match=r"focal: input must have at least 2 dims"):
        focal(torch.zeros(3), torch.zeros(3, dtype=torch.long), mode="multiclass")


@pytest.mark.parametrize(
    "name, kw",
    [
        ("focal", {"mode": "multiclass", "alpha": 0.25}),
        ("focal", {"weight": [1.0, 2.0]}),
        ("bce", {"label_smoothing": 1.0}),
        ("focal", {"gamma": -1}),
        ("focal", {"mode": "softmax"}),
        ("bce", {"from_logits": False, "pos_weight": [2.0]}),
        ("weighted_cross_entropy", {"balance": "batch", "w_pos": 2.0}),
        ("weighted_cross_entropy", {"balance": "class"}),
        ("cross_entropy", {"label_smoothing": 1.5}),
        ("zero_one", {"mode": "multi"}),
    ],
)
def test_a_functional_refuses_options_with_builds_message(name, kw):
    # docs/plugins.md, "Option rules": the params model's rule, one wording
    fn = {"focal": focal, "bce": bce, "weighted_cross_entropy": weighted_cross_entropy,
          "cross_entropy": cross_entropy, "zero_one": zero_one}[name]  # fmt: skip
    with pytest.raises(ConfigError) as built:
        lossreg.build(name, **kw)
    tensors = {k: torch.tensor(v) for k, v in kw.items() if isinstance(v, list)}
    with pytest.raises(ConfigError) as called:
        fn(torch.zeros(2, 3), torch.zeros(2, 3), **{**kw, **tensors})
    assert str(built.value).split(" (got ")[0] == str(called.value).split(" (got ")[0]


def test_focal_alpha_auto_null_and_omitted():
    # omitted and "auto" are 0.25 outside multiclass, none in it; null is no alpha weighting
    x, y = (
        torch.randn(2, 1, 3, 3, generator=gen()),
        (torch.rand(2, 1, 3, 3, generator=gen()) > 0.5).float(),
    )
    assert lossreg.to_config(lossreg.build("focal"))["alpha"] == 0.25
    assert lossreg.to_config(lossreg.build("focal", alpha="auto"))["alpha"] == 0.25
    assert lossreg.to_config(lossreg.build("focal", alpha=None))["alpha"] is None
    assert lossreg.to_config(lossreg.build("focal", mode="multiclass"))["alpha"] is None
    for alpha in ("auto", 0.25, None):
        want = ref_sigmoid_focal(x, y, alpha=0.25 if alpha == "auto" else alpha)
        torch.testing.assert_close(focal(x, y, alpha=alpha), want)
        torch.testing.assert_close(lossreg.build("focal", alpha=alpha)(x, y), want)
    torch.testing.assert_close(focal(x, y), focal(x, y, alpha=0.25))


def test_every_option_reaches_the_kernel():
    # a parameter that changes nothing would be a silently ignored option
    x, y = logits_and_index(torch.float64, gen(), ignore=False)
    base = lossreg.build("focal", mode="multiclass").double()(x, y)
    for kw in ({"gamma": 1.0}, {"weight": CLASS_WEIGHT}, {"ignore_index": 1}):
        other = lossreg.build("focal", mode="multiclass", **kw).double()(x, y)
        assert not torch.isclose(base, other), kw
    xb, yb = logits_and_binary(torch.float64, gen(), soft=True)
    values = {
        str(a): float(lossreg.build("focal", alpha=a).double()(xb, yb)) for a in (0.25, 0.5, None)
    }
    assert len(set(values.values())) == 3


def test_kit_gradcheck_low_precision_on_bce_probabilities():
    p = Case(lambda dtype, g: (torch.rand(3, 4, generator=g, dtype=torch.float64).mul(0.9).add(0.05)
                               .to(dtype), torch.rand(3, 4, generator=g).to(dtype)))  # fmt: skip
    check_gradcheck("BCELoss", p)
    check_low_precision("BCELoss", p)
