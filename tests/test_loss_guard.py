"""The promises the generic ``Loss`` wrapper keeps for every function loss (ROBUSTNESS.md,
Round 2, Tensors): binding, dtypes, [0, 1] targets, autocast, empty batches, tensor results,
and ``to_config`` after ``load_state_dict``. Each case reproduces a report of issue 11."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg import LossregError

X = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
MASK255 = (torch.arange(32).reshape(2, 1, 4, 4) % 2).to(torch.uint8) * 255


# -- call signatures -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda f, x: f(x), "missing tensor 'target'"),
        (lambda f, x: f(input=x), "missing tensor 'target'"),
        (lambda f, x: f(x, x, x), "3 positional tensors"),
        (lambda f, x: f(x, target=x, weights=x), "unexpected tensor 'weights'"),
        (lambda f, x: f(x, input=x), "both by position and by name"),
        (lambda f, x: f(x, reduction="sum"), "reduction is a parameter"),
        (lambda f, x: f([1.0, 2.0], x), "input must be a torch.Tensor, got list"),
        (lambda f, x: f(x, np.zeros(3)), "target must be a torch.Tensor, got ndarray"),
    ],
)
def test_wrong_call_names_the_inputs(call, said):
    with pytest.raises(LossregError, match=r"^l1: .*") as err:
        call(lossreg.build("l1"), torch.zeros(3))
    assert said in str(err.value)
    assert "(input (real), target (real))" in str(err.value)


def test_keywords_bind_by_name():
    f = lossreg.build("l1")
    a, b = torch.tensor([1.0, 2.0]), torch.zeros(2)
    assert f(target=b, input=a) == f(a, b) == F.l1_loss(a, b)


# -- dtypes --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sobolev", "poisson_nll", "l1", "mse", "bce", "dice"])
def test_complex_input_is_refused(name):
    x = torch.randn(2, 1, 4, 4, dtype=torch.complex64)
    with pytest.raises(LossregError, match=rf"^{name}: input is complex \(torch.complex64\)"):
        lossreg.build(name)(x, x.real.sigmoid())


def test_complex_gaussian_nll_and_triplet():
    z = torch.randn(3, 2, dtype=torch.complex64)
    with pytest.raises(LossregError, match="gaussian_nll: var is complex"):
        lossreg.build("gaussian_nll")(z.real, z.real, z)
    with pytest.raises(LossregError, match="triplet_margin: positive is complex"):
        lossreg.build("triplet_margin")(z.real, z, z.real)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
@pytest.mark.parametrize("name", ["l1", "bce", "dice", "focal", "huber"])
def test_integer_input_names_the_dtype(name, dtype):
    x = torch.ones(2, 1, 4, 4, dtype=dtype)
    with pytest.raises(LossregError, match=rf"^{name}: input must be a floating-point .*{dtype}"):
        lossreg.build(name)(x, torch.ones(2, 1, 4, 4))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
@pytest.mark.parametrize("name", ["bce", "dice", "iou", "focal", "multilabel_soft_margin"])
def test_integer_01_targets_are_fine(name, dtype):
    x = X.reshape(2, 16)
    y = (torch.arange(32).reshape(2, 16) % 3 == 0).to(dtype)
    assert torch.equal(lossreg.build(name)(x, y), lossreg.build(name)(x, y.float()))


# -- targets in [0, 1] ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["bce", "dice", "iou", "focal", "combo", "tversky", "focal_tversky", "zero_one"]
)
def test_255_mask_is_refused_with_the_fix(name):
    with pytest.raises(LossregError) as err:
        lossreg.build(name)(X, MASK255)
    msg = str(err.value)
    assert msg.startswith(f"{name}: target values must lie in [0, 1]"), msg
    assert "found 255 (values span [0, 255])" in msg and "divide it by 255" in msg


@pytest.mark.parametrize("bad", [2.0, -1.0])
@pytest.mark.parametrize("name", ["bce", "dice", "focal", "weighted_cross_entropy"])
def test_soft_targets_outside_unit_interval_are_refused(name, bad):
    y = torch.full_like(X, 0.5)
    y[0, 0, 0, 0] = bad
    with pytest.raises(LossregError, match=rf"^{name}: target values must lie in \[0, 1\]"):
        lossreg.build(name)(X, y)


def test_multilabel_mode_checks_and_multiclass_mode_names_the_mode():
    x = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 3, 4, 4))
    with pytest.raises(LossregError, match="in mode 'multilabel', found 2 .*multiclass"):
        lossreg.build("dice", mode="multilabel")(x, y)
    lossreg.build("dice", mode="multiclass")(x, y[:, 0])  # class indices: no [0, 1] check


def test_ignore_index_may_sit_outside_unit_interval():
    y = (X > 0).float()
    y[0, 0, 0] = 255
    out = lossreg.build("lovasz_hinge", ignore_index=255)(X, y)
    assert torch.isfinite(out)


# -- results -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, "0.5", [torch.tensor(1.0)]])
def test_factory_returning_a_non_tensor_names_the_loss(bad):
    lossreg.register("t_bad_result", lambda input, target: bad, override=True)
    with pytest.raises(LossregError, match="^t_bad_result: the loss function returned"):
        lossreg.build("t_bad_result")(torch.ones(2), torch.ones(2))
    with pytest.raises(LossregError, match="^t_bad_result: the loss function returned"):
        lossreg.build("t_bad_result + l1")(torch.ones(2), torch.ones(2))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["l1", "bce", "dice", "focal", "cross_entropy", "dice_bce"])
def test_autocast_returns_float32_like_pytorch(name, dtype):
    x = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 3, (2, 4, 4)) if name == "cross_entropy" else torch.rand(2, 3, 4, 4)
    with torch.autocast("cpu", dtype=dtype):
        ours = lossreg.build(name)(x.to(dtype), y)
        theirs = F.l1_loss(x.to(dtype), x)
    assert theirs.dtype == torch.float32
    assert ours.dtype == torch.float32
    # computed in float32 from the half input, as PyTorch's own losses are
    assert torch.allclose(ours, lossreg.build(name)(x.to(dtype).float(), y))


def test_to_config_reports_loaded_tensor_parameters():
    m = lossreg.build("bce", pos_weight=[2.0])
    m.load_state_dict({"pos_weight": torch.tensor([5.0])})
    x, y = X, (X > 0.3).float()
    assert lossreg.to_config(m)["pos_weight"] == [5.0]
    assert torch.equal(lossreg.build(lossreg.to_config(m))(x, y), m(x, y))
    c = lossreg.build({"expr": "dice + b", "terms": {"b": {"name": "bce", "pos_weight": [2.0]}}})
    c.load_state_dict({**c.state_dict(), "terms.b.pos_weight": torch.tensor([0.25])})
    assert torch.equal(lossreg.build(lossreg.to_config(c))(x, y), c(x, y))
    # unchanged, even in float64, the config keeps its own numbers
    assert lossreg.to_config(lossreg.build("bce", pos_weight=[0.3]).double())["pos_weight"] == [0.3]


# -- empty batches -------------------------------------------------------------------------
EMPTY = {
    "multi_margin": (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)),
    "multilabel_margin": (torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)),
    "bce": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4)),
    "weighted_cross_entropy": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4)),
    "focal": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4)),
    "0.5*dice + bce": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4)),
    "combo": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4)),
}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("spec", list(EMPTY))
def test_empty_batch_is_zero_with_zero_gradient(spec, reduction):
    x, y = EMPTY[spec]
    x = x.clone().requires_grad_()
    loss = lossreg.build(spec if "*" in spec else {"name": spec, "reduction": reduction})
    out = loss(x, y)
    assert out.shape == () and out.item() == 0.0  # bit-exact: never uninitialised memory
    out.backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("spec", ["multi_margin", "bce", "focal", "multilabel_margin"])
def test_empty_batch_none_is_empty(spec):
    x, y = EMPTY[spec]
    assert lossreg.build(spec, reduction="none")(x, y).numel() == 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_functionals_on_an_empty_batch(reduction):
    from lossreg_builtin import _nn_margin

    x = torch.zeros(0, 3, requires_grad=True)
    for out in (
        _nn_margin.multi_margin(x, torch.zeros(0, dtype=torch.long), reduction=reduction),
        _nn_margin.multilabel_margin(x, torch.zeros(0, 3, dtype=torch.long), reduction=reduction),
    ):
        assert out.shape == ((0,) if reduction == "none" else ())
        assert out.numel() == 0 or out.item() == 0.0
        out.sum().backward()
        assert torch.equal(x.grad, torch.zeros(0, 3))


# -- parameters that make a loss meaningless -----------------------------------------------
@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"name": "dice", "smooth": 3.5e38}, "smooth: .*overflows float32"),
        ({"name": "multi_margin", "margin": 1e308}, "margin: .*overflows float32"),
        ({"name": "cross_entropy", "ignore_index": 99999999999999999999999}, "overflows int64"),
        ({"name": "cross_entropy", "weight": [1e39, 1.0]}, "weight: .*overflows float32"),
        ({"name": "multi_margin", "weight": [0.0, 0.0, 0.0]}, "weight: .*all 0"),
        ({"name": "multilabel_soft_margin", "weight": [-1.0, 0.5]}, "weight: .*>= 0, found -1"),
        ({"name": "cross_entropy", "weight": [0, 0, 0]}, "weight: .*all 0"),
        ({"name": "cross_entropy", "weight": [-1, 0.5, 0.5]}, "weight: .*>= 0, found -1"),
        ({"name": "nll", "weight": [0.0, 0.0]}, "weight: .*all 0"),
        ({"name": "bce", "pos_weight": [-5]}, "pos_weight: .*>= 0, found -5"),
        ({"name": "bce", "weight": [0.0]}, "weight: .*all 0"),
        ({"name": "focal", "mode": "multiclass", "weight": [1, -1]}, "weight: .*>= 0"),
    ],
)
def test_meaningless_parameters_are_refused_at_build(spec, said):
    with pytest.raises(lossreg.ConfigError, match=said) as err:
        lossreg.build(spec)
    assert "Value error" not in str(err.value)


def test_largest_float32_and_int64_still_build():
    lossreg.build("dice", smooth=3.4e38)
    lossreg.build("cross_entropy", ignore_index=-(2**63))
    lossreg.build("multi_margin", weight=[0.0, 1.0])


# -- NaN and guidance in the overlap losses --------------------------------------------------
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_focal_tversky_nan_logit_is_nan(mode):
    c = 1 if mode == "binary" else 3
    x = torch.randn(2, c, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    y = torch.randint(0, 3, (2, 4, 4)) if mode == "multiclass" else (torch.rand(2, c, 4, 4) > 0.5)
    assert torch.isnan(lossreg.build("focal_tversky", mode=mode)(x, y.float() if c == 1 else y))


@pytest.mark.parametrize("spec", ["0.5*dice + ce", "iou", "tversky", "combo"])
def test_mode_shape_errors_suggest_the_mode(spec):
    x, y = torch.randn(8, 4, 16, 16), torch.randint(0, 2, (8, 16, 16))
    with pytest.raises(LossregError, match="mode binary takes .*set `mode: multiclass`"):
        lossreg.build(spec)(x, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nan_off_the_target_entry_reaches_nll_and_zero_one(reduction):
    x = torch.randn(4, 3).log_softmax(1)
    x[0, 1] = float("nan")  # not the target's entry: nll_loss never reads it
    t = torch.tensor([0, 2, 1, 0])
    out = lossreg.build("nll", reduction=reduction)(x, t)
    assert torch.isnan(out).any() and (reduction != "none" or torch.isfinite(out[1:]).all())
    assert torch.isnan(
        lossreg.build("zero_one", mode="multiclass", reduction=reduction)(x, t)
    ).any()


def test_minus_inf_log_probabilities_stay_legitimate():
    lp = torch.randn(6, 2, 3).log_softmax(2)
    lp[:, :, 2] = -float("inf")  # class 2 impossible: log 0
    out = lossreg.build("ctc")(
        lp, torch.ones(2, 2, dtype=torch.long), torch.tensor([6, 6]), torch.tensor([2, 2])
    )
    assert torch.isfinite(out)
    x = torch.tensor([[0.0, -float("inf")]])
    assert torch.isfinite(lossreg.build("nll")(x, torch.tensor([0])))


def test_eval_shows_kl_div_a_true_divergence():
    # `lossreg eval` fed kl_div random logits as "log-probabilities": a negative KL divergence
    from lossreg.cli.synthetic import synth_call

    for seed in range(3):
        value, tensors, _ = synth_call(lossreg.build("kl_div"), seed=seed)
        assert value >= 0, (seed, value)
        assert torch.allclose(tensors["input"].exp().sum(1), torch.ones(()))
