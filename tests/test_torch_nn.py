"""torch_nn losses against torch.nn.functional: values and gradients for every option and
reduction (float64), shape and value errors, schemas."""

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg import ConfigError, LossregError

REDUCTIONS = ("mean", "sum", "none")


def _grid(**options):
    keys = list(options)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*options.values())]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _signs(gen, *shape):
    return torch.randint(0, 2, shape, generator=gen).double() * 2 - 1


def _check(name, inputs, params, reference, grad=(0,), pre=None):
    """lossreg.build(name, **params)(*inputs) == reference(*inputs), values and gradients of
    the inputs listed in ``grad``; ``pre`` maps the leaves before the call (e.g. log_softmax)."""

    def run(fn):
        leaves = [x.detach().clone().requires_grad_(i in grad) for i, x in enumerate(inputs)]
        args = list(leaves)
        if pre is not None:
            args = pre(args)
        out = fn(*args)
        grads = torch.autograd.grad(out.sum(), [leaves[i] for i in grad])
        return out.detach(), grads

    got, got_grads = run(lossreg.build(name, **params))
    want, want_grads = run(reference)
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- values and gradients


@pytest.mark.parametrize(
    "p", _grid(log_target=[False, True], reduction=["mean", "sum", "none", "batchmean"])
)
def test_kl_div(p):
    gen = _gen(1)
    x = _randn(gen, 3, 5).log_softmax(-1)
    t = _randn(gen, 3, 5).softmax(-1)
    if p["log_target"]:
        t = t.log()

    def ref(a, b):
        with warnings.catch_warnings():  # PyTorch warns about reduction='mean'; lossreg does not
            warnings.simplefilter("ignore")
            return F.kl_div(a, b, **p)

    _check("kl_div", (x, t), p, ref, grad=(0, 1))


def test_kl_div_mean_does_not_warn_and_aliases():
    x = torch.randn(2, 3).log_softmax(-1)
    lossreg.build("KLDivLoss")(x, x.exp())  # filterwarnings=error: a warning would fail here
    assert lossreg.describe("KLDivLoss").name == "kl_div"


@pytest.mark.parametrize(
    "p", _grid(log_input=[True, False], full=[False, True], eps=[1e-8, 0.5], reduction=REDUCTIONS)
)
def test_poisson_nll(p):
    gen = _gen(2)
    x = _randn(gen, 4, 3) if p["log_input"] else torch.rand(4, 3, generator=gen).double() + 0.1
    t = torch.randint(0, 6, (4, 3), generator=gen).double()
    _check("poisson_nll", (x, t), p, lambda a, b: F.poisson_nll_loss(a, b, **p))


@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1), (1, 3)])
@pytest.mark.parametrize("p", _grid(full=[False, True], eps=[1e-6, 0.3], reduction=REDUCTIONS))
def test_gaussian_nll(p, var_shape):
    gen = _gen(3)
    x, t = _randn(gen, 4, 3), _randn(gen, 4, 3)
    var = torch.rand(*var_shape, generator=gen).double() + 0.05  # some below eps = 0.3
    _check(
        "gaussian_nll",
        (x, t, var),
        p,
        lambda a, b, v: F.gaussian_nll_loss(a, b, v, **p),
        grad=(0, 1, 2),
    )


def _ctc_batch(layout):
    gen = _gen(4)
    logits = _randn(gen, 7, 3, 5)
    padded = torch.tensor([[1, 2, 2, 4], [3, 1, 0, 0], [2, 2, 2, 2]])
    lengths = torch.tensor([4, 2, 4])
    # sample 2 needs 7 frames for (2, blank, 2, blank, 2, blank, 2) but gets 5: infinite loss
    input_lengths = torch.tensor([7, 6, 5])
    targets = (
        padded
        if layout == "padded"
        else torch.cat([r[:n] for r, n in zip(padded, lengths, strict=True)])
    )
    return logits, targets, input_lengths, lengths


@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("p", _grid(zero_infinity=[False, True], reduction=REDUCTIONS))
def test_ctc(p, layout):
    logits, targets, il, tl = _ctc_batch(layout)
    if not p["zero_infinity"]:  # keep the loss finite so that gradients compare
        il = torch.tensor([7, 6, 7])
    _check(
        "ctc",
        (logits, targets, il, tl),
        p,
        lambda *a: F.ctc_loss(*a, **p),
        pre=lambda a: [a[0].log_softmax(-1), *a[1:]],
    )


def test_ctc_blank_and_unbatched():
    logits, targets, il, tl = _ctc_batch("padded")
    shifted = torch.where(targets == 4, 0, targets)  # blank=4: labels in 0..3
    il = torch.tensor([7, 6, 7])
    for args in ((logits, shifted, il, tl), (logits[:, 0], shifted[0], il[0], tl[0])):
        _check(
            "ctc",
            args,
            {"blank": 4, "reduction": "none"},
            lambda *a: F.ctc_loss(*a, blank=4, reduction="none"),
            pre=lambda a: [a[0].log_softmax(-1), *a[1:]],
        )


def test_ctc_gradcheck_through_log_softmax():
    logits, targets, il, tl = _ctc_batch("padded")
    loss = lossreg.build("ctc", reduction="sum")
    il = torch.tensor([7, 6, 7])
    assert torch.autograd.gradcheck(
        lambda z: loss(z.log_softmax(-1), targets, il, tl), (logits.requires_grad_(True),)
    )


@pytest.mark.parametrize("p", _grid(margin=[0.0, 0.5, -0.2], reduction=REDUCTIONS))
def test_margin_ranking(p):
    gen = _gen(5)
    x1, x2, y = _randn(gen, 6), _randn(gen, 6), _signs(gen, 6)
    _check("margin_ranking", (x1, x2, y), p, lambda *a: F.margin_ranking_loss(*a, **p), grad=(0, 1))


@pytest.mark.parametrize("p", _grid(margin=[1.0, 0.3, 2.5], reduction=REDUCTIONS))
def test_hinge_embedding(p):
    gen = _gen(6)
    x, y = _randn(gen, 3, 4).abs() * 2, _signs(gen, 3, 4)
    _check("hinge_embedding", (x, y), p, lambda *a: F.hinge_embedding_loss(*a, **p))


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin(reduction, batched):
    gen = _gen(7)
    x = _randn(gen, 3, 5)
    t = torch.tensor([[3, 0, -1, 1, 2], [1, 2, 3, 0, 4], [4, -1, -1, -1, -1]])
    if not batched:
        x, t = x[0], t[0]
    p = {"reduction": reduction}
    _check("multilabel_margin", (x, t), p, lambda *a: F.multilabel_margin_loss(*a, **p))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin(reduction):
    gen = _gen(8)
    x, y = _randn(gen, 3, 4) * 3, _signs(gen, 3, 4)
    p = {"reduction": reduction}
    _check("soft_margin", (x, y), p, lambda *a: F.soft_margin_loss(*a, **p))


def test_soft_margin_stays_finite_where_pytorch_overflows():
    x = torch.tensor([1e4, -1e4, 1e4], requires_grad=True)
    y = torch.tensor([-1.0, 1.0, 1.0])
    assert torch.isinf(F.soft_margin_loss(x, y, reduction="none")).any()  # PyTorch's form
    out = lossreg.build("soft_margin", reduction="none")(x, y)
    torch.testing.assert_close(out.detach(), torch.tensor([1e4, 1e4, 0.0]))
    (g,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(g, torch.tensor([1.0, -1.0, 0.0]))


@pytest.mark.parametrize("p", _grid(weight=[None, [0.5, 1.0, 2.0, 0.0]], reduction=REDUCTIONS))
def test_multilabel_soft_margin(p):
    gen = _gen(9)
    x, y = _randn(gen, 3, 4) * 2, torch.randint(0, 2, (3, 4), generator=gen).double()
    w = None if p["weight"] is None else torch.tensor(p["weight"], dtype=torch.float64)
    _check(
        "multilabel_soft_margin",
        (x, y),
        p,
        lambda *a: F.multilabel_soft_margin_loss(*a, weight=w, reduction=p["reduction"]),
    )


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("p", _grid(margin=[0.0, 0.5, -0.3], reduction=REDUCTIONS))
def test_cosine_embedding(p, batched):
    gen = _gen(10)
    x1, x2, y = _randn(gen, 5, 3), _randn(gen, 5, 3), _signs(gen, 5)
    if not batched:
        x1, x2, y = x1[0], x2[0], y[0]
    _check(
        "cosine_embedding",
        (x1, x2, y),
        p,
        lambda *a: F.cosine_embedding_loss(*a, **p),
        grad=(0, 1),
    )


@pytest.mark.parametrize(
    "p",
    _grid(p=[1, 2], margin=[1.0, 0.3], weight=[None, [1.0, 2.0, 0.5, 1.5]], reduction=REDUCTIONS),
)
def test_multi_margin(p):
    gen = _gen(11)
    x, t = _randn(gen, 5, 4), torch.tensor([0, 3, 1, 3, 2])
    w = None if p["weight"] is None else torch.tensor(p["weight"], dtype=torch.float64)
    _check("multi_margin", (x, t), p, lambda *a: F.multi_margin_loss(*a, **{**p, "weight": w}))


@pytest.mark.parametrize(
    "p",
    _grid(
        margin=[1.0, 0.1, 2.0],
        p=[2.0, 1.0, 3.5],
        eps=[1e-6, 0.0],
        swap=[False, True],
        reduction=REDUCTIONS,
    ),
)
def test_triplet_margin(p):
    gen = _gen(12)
    a, pos, neg = _randn(gen, 4, 3), _randn(gen, 4, 3), _randn(gen, 4, 3)
    _check(
        "triplet_margin",
        (a, pos, neg),
        p,
        lambda *x: F.triplet_margin_loss(*x, **p),
        grad=(0, 1, 2),
    )


def _cosine_distance(x, y):
    return 1.0 - F.cosine_similarity(x, y, dim=-1)


@pytest.mark.parametrize(
    "p",
    _grid(
        distance_function=["pairwise", "cosine"],
        margin=[1.0, 0.2],
        swap=[False, True],
        reduction=REDUCTIONS,
    ),
)
def test_triplet_margin_with_distance(p):
    gen = _gen(13)
    a, pos, neg = _randn(gen, 4, 3), _randn(gen, 4, 3), _randn(gen, 4, 3)
    dist = None if p["distance_function"] == "pairwise" else _cosine_distance
    _check(
        "triplet_margin_with_distance",
        (a, pos, neg),
        p,
        lambda *x: F.triplet_margin_with_distance_loss(*x, **{**p, "distance_function": dist}),
        grad=(0, 1, 2),
    )
    _check(  # unbatched (D,)
        "triplet_margin_with_distance",
        (a[0], pos[0], neg[0]),
        p,
        lambda *x: F.triplet_margin_with_distance_loss(*x, **{**p, "distance_function": dist}),
        grad=(0, 1, 2),
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_computed_in_float32(dtype):
    gen = _gen(14)
    a, pos, neg = (_randn(gen, 4, 3).to(dtype) for _ in range(3))
    out = lossreg.build("triplet_margin", reduction="none")(a, pos, neg)
    assert out.dtype == dtype
    want = F.triplet_margin_loss(a.float(), pos.float(), neg.float(), reduction="none")
    torch.testing.assert_close(out, want.to(dtype))
    x = torch.randn(6, 2, 4, generator=gen).log_softmax(-1).to(dtype)
    args = (torch.tensor([[1, 2], [3, 3]]), torch.tensor([6, 5]), torch.tensor([2, 2]))
    assert lossreg.build("ctc")(x, *args).dtype == dtype  # PyTorch's CPU ctc has no half kernel


# -------------------------------------------------------------------------------- errors


def test_shape_mismatch_names_both_shapes():
    x = torch.randn(3, 4).log_softmax(-1)
    with pytest.raises(LossregError, match=r"kl_div: input has shape \(3, 4\) but target has "):
        lossreg.build("kl_div")(x, torch.rand(3, 1))
    with pytest.raises(
        LossregError, match=r"input1 has shape \(3,\) but target has shape \(3, 1\)"
    ):
        lossreg.build("margin_ranking")(torch.zeros(3), torch.zeros(3), torch.ones(3, 1))
    with pytest.raises(
        LossregError, match=r"triplet_margin: anchor has shape \(2, 3\) but negative has shape"
    ):
        lossreg.build("triplet_margin")(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(1, 3))
    with pytest.raises(
        LossregError, match=r"target has shape \(4,\) but input1 has shape \(3, 2\)"
    ):
        lossreg.build("cosine_embedding")(torch.ones(3, 2), torch.ones(3, 2), torch.ones(4))
    with pytest.raises(LossregError, match=r"gaussian_nll: input has shape \(3,\) but target"):
        lossreg.build("gaussian_nll")(torch.zeros(3), torch.zeros(3, 1), torch.ones(3))
    with pytest.raises(LossregError, match=r"soft_margin: input has shape \(5,\) but target"):
        lossreg.build("soft_margin")(torch.zeros(5), torch.ones(5, 1))


def test_gaussian_nll_var_shape_and_sign():
    x = torch.zeros(4, 3)
    with pytest.raises(LossregError, match=r"var has shape \(3,\) but input has shape \(4, 3\)"):
        lossreg.build("gaussian_nll")(x, x, torch.ones(3))
    with pytest.raises(LossregError, match=r"gaussian_nll: var must be >= 0, found -0.5"):
        lossreg.build("gaussian_nll")(x, x, torch.tensor([1.0, 1.0, 1.0, -0.5]))


def test_class_indices_out_of_range():
    with pytest.raises(LossregError, match=r"multi_margin: target holds class index 4, outside"):
        lossreg.build("multi_margin")(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(LossregError, match=r"multilabel_margin: target holds 5, outside \[-1, 4\)"):
        lossreg.build("multilabel_margin")(torch.zeros(1, 4), torch.tensor([[5, -1, 0, 0]]))
    with pytest.raises(LossregError, match=r"target must be an integer tensor"):
        lossreg.build("multilabel_margin")(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(LossregError, match=r"target has shape \(2, 1\) but input has shape"):
        lossreg.build("multi_margin")(torch.zeros(2, 4), torch.zeros(2, 1, dtype=torch.long))


def test_weight_length_must_match_classes():
    with pytest.raises(LossregError, match=r"weight has 3 entries but input has 4 classes"):
        lossreg.build("multi_margin", weight=[1, 1, 1])(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(LossregError, match=r"weight has 2 entries but input has 4 classes"):
        lossreg.build("multilabel_soft_margin", weight=[1, 1])(torch.zeros(2, 4), torch.ones(2, 4))


def test_ctc_errors():
    lp = torch.randn(6, 2, 4).log_softmax(-1)
    tg, il, tl = torch.tensor([[1, 2], [3, 0]]), torch.tensor([6, 5]), torch.tensor([2, 1])
    ctc = lossreg.build("ctc")
    with pytest.raises(LossregError, match=r"ctc: blank=4 is outside \[0, 4\)"):
        lossreg.build("ctc", blank=4)(lp, tg, il, tl)
    with pytest.raises(LossregError, match=r"ctc: targets hold label 7, outside \[0, 4\)"):
        ctc(lp, torch.tensor([[1, 7], [3, 0]]), il, tl)
    with pytest.raises(LossregError, match=r"targets hold the blank label 0"):
        ctc(lp, tg, il, torch.tensor([2, 2]))  # sample 1's second label is the blank
    ctc(lp, tg, il, tl)  # the same 0 as padding, outside target_lengths, is fine
    with pytest.raises(LossregError, match=r"input_lengths has shape \(3,\) but log_probs"):
        ctc(lp, tg, torch.tensor([6, 5, 4]), tl)
    with pytest.raises(LossregError, match=r"targets must be an integer tensor"):
        ctc(lp, tg.float(), il, tl)
    with pytest.raises(LossregError, match=r"target_lengths holds 3 > S=2"):
        ctc(lp, tg, il, torch.tensor([3, 1]))
    with pytest.raises(LossregError, match=r"target_lengths sum to 3 but targets has shape \(2,\)"):
        ctc(lp, torch.tensor([1, 2]), il, tl)
    with pytest.raises(RuntimeError, match="Expected input_lengths to have value at most 6"):
        ctc(lp, tg, torch.tensor([7, 5]), tl)  # PyTorch's own message names the problem


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("multi_margin", {"p": 3}, "p"),
        ("margin_ranking", {"margin": math.nan}, "finite"),
        ("hinge_embedding", {"margin": math.inf}, "finite"),
        ("triplet_margin", {"p": 0}, "greater than 0"),
        ("triplet_margin", {"margin": 0.0}, "greater than 0"),  # PyTorch refuses it too
        ("triplet_margin", {"eps": -1e-6}, "greater than or equal to 0"),
        ("triplet_margin_with_distance", {"margin": 0.0}, "greater than 0"),
        ("triplet_margin_with_distance", {"distance_function": "os.system"}, "'pairwise'"),
        ("cosine_embedding", {"margin": 1.5}, "less than or equal to 1"),
        ("poisson_nll", {"eps": -1.0}, "greater than or equal to 0"),
        ("gaussian_nll", {"eps": 0.0}, "greater than 0"),
        ("ctc", {"blank": -1}, "greater than or equal to 0"),
        ("soft_margin", {"reduction": "batchmean"}, "reduction"),
        ("kl_div", {"size_average": True}, "deprecated"),
    ],
)
def test_schemas_refuse_bad_params(name, params, match):
    with pytest.raises(ConfigError, match=match):
        lossreg.build(name, **params)


def test_names_aliases_and_tags():
    expected = {
        "kl_div": ("KLDivLoss", "classification"),
        "poisson_nll": ("PoissonNLLLoss", "regression"),
        "gaussian_nll": ("GaussianNLLLoss", "regression"),
        "ctc": ("CTCLoss", "sequence"),
        "margin_ranking": ("MarginRankingLoss", "metric_learning"),
        "hinge_embedding": ("HingeEmbeddingLoss", "metric_learning"),
        "multilabel_margin": ("MultiLabelMarginLoss", "classification"),
        "soft_margin": ("SoftMarginLoss", "classification"),
        "multilabel_soft_margin": ("MultiLabelSoftMarginLoss", "classification"),
        "cosine_embedding": ("CosineEmbeddingLoss", "metric_learning"),
        "multi_margin": ("MultiMarginLoss", "classification"),
        "triplet_margin": ("TripletMarginLoss", "metric_learning"),
        "triplet_margin_with_distance": ("TripletMarginWithDistanceLoss", "metric_learning"),
    }
    for name, (alias, tag) in expected.items():
        info = lossreg.describe(alias)
        assert (info.name, info.tags) == (name, (tag,))
    assert lossreg.describe("ctc").inputs == (
        "log_probs",
        "targets",
        "input_lengths",
        "target_lengths",
    )
    assert lossreg.describe("triplet_margin").inputs == ("anchor", "positive", "negative")
    assert lossreg.describe("gaussian_nll").inputs == ("input", "target", "var")
