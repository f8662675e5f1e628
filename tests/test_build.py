"""build / to_config / CompositeLoss: specs, configs, routing, round trips."""

import copy
import io
import pickle

import pytest
import torch
import yaml
from omegaconf import OmegaConf

import lossreg
from lossreg import CompositeLoss, ConfigError, ExpressionError, LossregError


def xy(shape=(4, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


# -- single losses -------------------------------------------------------------------------
def test_build_by_name_alias_mapping_and_overrides_agree():
    x, y = xy()
    want = torch.nn.functional.huber_loss(x, y, delta=2.0)
    for module in (
        lossreg.build("huber", delta=2.0),
        lossreg.build("HuberLoss", delta=2.0),
        lossreg.build({"name": "huber", "delta": 2.0}),
        lossreg.build(OmegaConf.create({"name": "huber", "delta": 2.0})),
        lossreg.build({"name": "huber", "delta": 1.0}, delta=2.0),  # keyword overrides win
    ):
        assert torch.equal(module(x, y), want)


def test_to_config_uses_the_canonical_name_and_rebuilds_an_equal_module():
    m = lossreg.build("t_scaled_alias", scale=2.0, weight=[1.0, 2.0, 3.0])
    config = lossreg.to_config(m)
    assert config == {
        "name": "t_scaled",
        "scale": 2.0,
        "weight": [1.0, 2.0, 3.0],
        "reduction": "mean",
    }
    x, y = xy()
    assert torch.equal(lossreg.build(config)(x, y), m(x, y))


def test_to_config_is_a_copy():
    m = lossreg.build("t_scaled", weight=[1.0])
    lossreg.to_config(m)["weight"].append(5.0)
    assert lossreg.to_config(m)["weight"] == [1.0]


def test_to_config_of_a_foreign_module_is_an_error():
    with pytest.raises(LossregError, match="MSELoss was not built by lossreg.build"):
        lossreg.to_config(torch.nn.MSELoss())


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"gamma": 2}, "needs `name` .* or `expr`"),
        (3.0, "must be a name, an expression or a mapping, got float"),
        (torch.nn.MSELoss(), "not a module"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        lossreg.build(spec)


def test_unknown_name_suggests():
    with pytest.raises(lossreg.UnknownLossError, match=r"unknown loss 'hubber'.*'huber'") as e:
        lossreg.build("hubber")
    assert e.value.suggestions[0] == "huber"
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)


def test_preset_has_its_own_defaults_and_round_trips():
    m = lossreg.build("t_preset")
    x, y = xy()
    assert torch.allclose(m(x, y), 3.0 * (x - y).abs().mean())
    assert lossreg.to_config(m)["name"] == "t_preset"
    assert lossreg.to_config(m)["scale"] == 3.0
    assert lossreg.describe("t_preset").params().scale == 3.0
    assert lossreg.build("t_preset", scale=1.0)(x, y) == pytest.approx(float((x - y).abs().mean()))
    assert lossreg.describe("t_preset").kind == "preset"


def test_named_composite_builds_and_round_trips():
    m = lossreg.build("t_named_composite")
    assert isinstance(m, CompositeLoss)
    assert lossreg.to_config(m) == {"name": "t_named_composite"}
    x, y = xy()
    want = (x - y).abs().mean() + 2 * ((x - y) ** 2).mean()
    assert torch.allclose(lossreg.build(lossreg.to_config(m))(x, y), want)
    with pytest.raises(ConfigError, match="unknown parameter 'gamma'"):
        lossreg.build("t_named_composite", gamma=1.0)


# -- composites ----------------------------------------------------------------------------
def test_composite_value_gradient_and_last_values():
    x, y = xy()
    x.requires_grad_(True)
    objective = lossreg.build("0.5*l1 + mse - t_scaled/4")
    total = objective(x, y)
    l1, mse = (x - y).abs().mean(), ((x - y) ** 2).mean()
    want = 0.5 * l1 + mse - l1 / 4
    assert torch.allclose(total, want)
    (g,) = torch.autograd.grad(total, x)
    (g_want,) = torch.autograd.grad(want, x)
    assert torch.allclose(g, g_want)
    assert set(objective.last_values) == {"l1", "mse", "t_scaled"}
    assert not objective.last_values["mse"].requires_grad
    assert torch.allclose(objective.last_values["mse"], mse)


def test_term_used_twice_is_computed_once():
    calls = []

    def counted(input, target):
        calls.append(1)
        return (input - target).abs().mean()

    lossreg.register("t_counted", counted)
    x, y = xy()
    out = lossreg.build("t_counted + 2*t_counted - t_counted/2")(x, y)
    assert len(calls) == 1
    assert torch.allclose(out, 2.5 * (x - y).abs().mean())


def test_composite_config_with_interpolation_and_terms():
    cfg = OmegaConf.create(
        {
            "weights": {"seg": 0.25},
            "loss": {
                "expr": "${weights.seg}*seg + mse",
                "terms": {"seg": {"name": "t_scaled", "scale": 2.0}},
            },
        }
    )
    m = lossreg.build(cfg)
    assert lossreg.to_config(m) == {
        "expr": "0.25*seg + mse",
        "terms": {
            "seg": {"name": "t_scaled", "scale": 2.0, "weight": None, "reduction": "mean"},
            "mse": {"name": "mse", "reduction": "mean"},
        },
    }
    x, y = xy()
    rebuilt = lossreg.build(lossreg.to_config(m))
    assert torch.equal(rebuilt(x, y), m(x, y))
    assert "expr='0.25*seg + mse'" in repr(m)


@pytest.mark.parametrize(
    "cfg,name",
    [
        ({"loss": {"expr": "${weights.nope}*mse"}, "weights": {}}, "weights.nope"),
        ({"loss": {"name": "huber", "delta": "???"}}, "loss.delta"),
        ({"loss": {"expr": "${loss.expr}"}}, "loss.expr"),
    ],
    ids=["missing-key", "missing-value", "cyclic"],
)
def test_bad_interpolations_are_config_errors_naming_them(cfg, name):
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        lossreg.build(OmegaConf.create(cfg))


def test_yaml_python_tags_never_run(tmp_path):
    marker = tmp_path / "ran"
    text = f"loss:\n  name: !!python/object/apply:os.system ['touch {marker}']\n  delta: 1e-5\n"
    # OmegaConf loads YAML with a safe loader: the tag has no constructor, nothing runs
    with pytest.raises(
        yaml.constructor.ConstructorError, match="could not determine a constructor"
    ):
        OmegaConf.load(io.StringIO(text))
    assert not marker.exists()


def test_yaml_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  name: huber\n  delta: 1e-5\n")
    m = lossreg.build(OmegaConf.load(path))
    assert lossreg.to_config(m)["delta"] == 1e-5


def test_unused_and_misnamed_terms_are_reported_together():
    with pytest.raises(ConfigError) as info:
        lossreg.build(
            {
                "expr": "a + b",
                "terms": {
                    "a": {"name": "hubr"},
                    "b": {"name": "mse", "delta": 1},
                    "c": {"name": "mse"},
                    "bad-key": {"name": "mse"},
                },
            }
        )
    paths = sorted(p.path for p in info.value.problems)
    assert paths == ["terms.a.name", "terms.b.delta", "terms.bad-key", "terms.c"]
    assert "did you mean 'huber'" in str(info.value)


def test_expression_errors_surface_from_build():
    with pytest.raises(ExpressionError, match="power"):
        lossreg.build({"expr": "mse**2"})
    with pytest.raises(ConfigError, match=r"expr: unknown loss 'dcie'"):
        lossreg.build("0.5*dcie + mse")


def test_overrides_on_a_composite_are_refused():
    with pytest.raises(ConfigError, match="overrides apply to a single loss"):
        lossreg.build("l1 + mse", reduction="sum")


# -- routing -------------------------------------------------------------------------------
def _detection():
    return lossreg.build(
        {
            "expr": "cls + 2*box",
            "terms": {
                "cls": {"name": "t_scaled", "inputs": {"input": "logits", "target": "labels"}},
                "box": {"name": "t_box_gap", "inputs": {"pred_boxes": "pred", "boxes": "gt"}},
            },
        }
    )


def test_routed_inputs():
    logits, labels = xy((5, 2))
    pred, gt = xy((5, 4), seed=1)
    out = _detection()(logits=logits, labels=labels, pred=pred, gt=gt)
    want = (logits - labels).abs().mean() + 2 * (pred - gt).abs().mean()
    assert torch.allclose(out, want)
    assert lossreg.to_config(_detection())["terms"]["box"]["inputs"] == {
        "pred_boxes": "pred",
        "boxes": "gt",
    }


def test_missing_routed_tensor_is_named():
    logits, labels = xy((5, 2))
    with pytest.raises(LossregError, match=r"term 'box' takes tensor 'pred'.*passed: labels, "):
        _detection()(logits=logits, labels=labels)


def test_route_to_an_argument_the_loss_does_not_have():
    with pytest.raises(
        ConfigError,
        match=r"terms\.a\.inputs\.pred: \[mse\] mse has no tensor "
        r"argument 'pred'; its arguments are: input, target",
    ):
        lossreg.build({"expr": "a", "terms": {"a": {"name": "mse", "inputs": {"pred": "x"}}}})


def test_keyword_call_without_routes_uses_argument_names():
    x, y = xy()
    m = lossreg.build("l1 + mse")
    assert torch.equal(m(input=x, target=y), m(x, y))


# -- module behaviour ----------------------------------------------------------------------
def test_composite_survives_pickle_deepcopy_state_dict_and_dtype_moves():
    m = lossreg.build(
        {"expr": "0.5*a + mse", "terms": {"a": {"name": "t_scaled", "weight": [1.0, 2.0, 3.0]}}}
    )
    x, y = xy()
    want = m(x, y)
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert torch.equal(other(x, y), want)
        assert lossreg.to_config(other) == lossreg.to_config(m)
    fresh = lossreg.build(lossreg.to_config(m))
    fresh.load_state_dict(m.state_dict())
    assert "terms.a.weight" in m.state_dict()
    d = copy.deepcopy(m).double()
    assert d.terms["a"].weight.dtype == torch.float64
    assert d(x.double(), y.double()).dtype == torch.float64
    assert torch.equal(m.to("cpu")(x, y), want)


def test_forward_does_not_change_the_config():
    m = lossreg.build("0.5*l1 + mse")
    before = lossreg.to_config(m)
    m(*xy())
    assert lossreg.to_config(m) == before


def test_compile_gives_the_same_value():
    torch._dynamo.reset()
    x, y = xy()
    eager = lossreg.build("0.5*t_scaled + mse")
    compiled = lossreg.build("0.5*t_scaled + mse", compile=True)
    assert torch.allclose(compiled(x, y), eager(x, y))
    assert lossreg.to_config(compiled) == lossreg.to_config(eager)
    assert set(compiled.last_values) == {"t_scaled", "mse"}


def test_describe():
    info = lossreg.describe("t_scaled_alias")
    assert info.name == "t_scaled" and info.aliases == ("t_scaled_alias",)
    assert info.summary == "Scaled absolute error (a test loss)."
    assert info.provider == "in-process:tests.conftest" and info.distribution is None
    assert info.inputs == ("input", "target") and info.kind == "function"
    assert lossreg.describe("t_box_gap").inputs == ("pred_boxes", "boxes")
    mse = lossreg.describe("mse")
    assert (mse.provider, mse.distribution, mse.differentiable) == ("regression", "lossreg", True)


def test_available_filters_by_tag():
    assert "huber" in lossreg.available(tag="regression")
    assert "t_scaled" not in lossreg.available(tag="regression")
    assert lossreg.available() == sorted(lossreg.available())


def test_a_preset_takes_its_bases_tensor_arguments():
    lossreg.register("t_box_preset", {"name": "t_box_gap", "power": 2})
    assert lossreg.describe("t_box_preset").inputs == ("pred_boxes", "boxes")
    objective = lossreg.build(
        {"expr": "b", "terms": {"b": {"name": "t_box_preset", "inputs": {"pred_boxes": "p"}}}}
    )
    p, g = xy((3, 4))
    assert torch.allclose(objective(p=p, boxes=g), ((p - g) ** 2).mean())


def test_an_argument_left_out_of_a_route_is_named_when_missing():
    objective = lossreg.build(
        {"expr": "b", "terms": {"b": {"name": "t_box_gap", "inputs": {"pred_boxes": "p"}}}}
    )
    p, _ = xy((3, 4))
    with pytest.raises(LossregError, match=r"term 'b' takes tensor 'boxes', which was not passed"):
        objective(p=p)
