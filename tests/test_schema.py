"""Parameter schemas: validation, refusals, derived models, every problem at once."""

import pytest
import torch

import lossreg
from lossreg import ConfigError, Params, TensorList
from lossreg._params import derive_params, tensor_fields


@pytest.mark.parametrize(
    "value,message",
    [(float("nan"), "finite"), (float("inf"), "finite"), (1e309, "finite"), ("x", "valid number")],
)
def test_non_finite_and_wrong_type_floats_refused(value, message):
    with pytest.raises(ConfigError, match=rf"scale: \[t_scaled\] .*{message}"):
        lossreg.build("t_scaled", scale=value)


def test_unknown_key_suggests_the_closest_parameter():
    with pytest.raises(ConfigError, match=r"unknown parameter 'scael'; did you mean 'scale'\?"):
        lossreg.build({"name": "t_scaled", "scael": 2.0})


def test_unknown_key_without_a_close_match_lists_the_parameters():
    with pytest.raises(ConfigError, match="parameters are: scale, weight, reduction"):
        lossreg.build("t_scaled", zzz=1)


def test_constraint_is_named():
    with pytest.raises(ConfigError, match=r"delta: \[huber\] Input should be greater than 0"):
        lossreg.build("huber", delta=0.0)
    with pytest.raises(ConfigError, match=r"reduction: \[mse\] Input should be 'mean', 'sum'"):
        lossreg.build("mse", reduction="avg")


@pytest.mark.parametrize("key", ["size_average", "reduce"])
def test_deprecated_torch_arguments_point_to_reduction(key):
    with pytest.raises(ConfigError, match=rf"'{key}' is deprecated in PyTorch.*use reduction"):
        lossreg.build({"name": "mse", key: True})


@pytest.mark.parametrize("key", ["_target_", "_component_", "type"])
def test_import_keys_are_refused(key):
    with pytest.raises(ConfigError, match="builds registered names only; nothing is imported"):
        lossreg.build({"name": "mse", key: "os.system"})


def test_dotted_import_path_is_never_imported():
    with pytest.raises(lossreg.UnknownLossError, match="dotted paths are never imported"):
        lossreg.build({"name": "torch.nn.MSELoss"})


def test_every_problem_is_reported_at_once_with_its_path():
    spec = {
        "expr": "a + b + c",
        "terms": {
            "a": {"name": "huber", "delta": -1.0, "reduction": "avg"},
            "b": {"name": "t_scaled", "scale": float("nan")},
            "c": {"name": "mse", "size_average": True},
        },
    }
    with pytest.raises(ConfigError) as info:
        lossreg.build({"loss": spec})
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == [
        "terms.a.delta",
        "terms.a.reduction",
        "terms.b.scale",
        "terms.c.size_average",
    ]
    assert {p.loss for p in info.value.problems} == {"huber", "t_scaled", "mse"}
    assert {p.path: p.value for p in info.value.problems}["terms.a.delta"] == -1.0
    assert "4 problems" in str(info.value)


def test_tensor_list_becomes_a_buffer_that_moves_and_saves():
    m = lossreg.build("t_scaled", weight=[1.0, 2.0])
    assert isinstance(m.weight, torch.Tensor) and "weight" in dict(m.named_buffers())
    assert m.double().weight.dtype == torch.float64
    assert torch.equal(m.state_dict()["weight"], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert lossreg.to_config(m)["weight"] == [1.0, 2.0]


def test_tensor_list_refuses_non_finite_entries():
    with pytest.raises(ConfigError, match=r"weight\.1: .*finite"):
        lossreg.build("t_scaled", weight=[1.0, float("inf")])


def test_derived_model_from_function_signature():
    def fn(input, target, *, alpha: float = 0.5, w: torch.Tensor | None = None, k: int = 3):
        return input

    model = derive_params(fn, "my_loss")
    assert model.__name__ == "MyLossParams"
    assert list(model.model_fields) == ["alpha", "w", "k"]
    assert tensor_fields(model) == {"w"}
    assert model().alpha == 0.5
    with pytest.raises(Exception, match="finite"):
        model(alpha=float("nan"))


def test_derived_model_without_keyword_only_uses_defaults():
    def fn(input, target, margin: float = 1.0):
        return input

    assert list(derive_params(fn, "m").model_fields) == ["margin"]


def test_derived_model_from_module_init():
    info = lossreg.describe("t_module")
    assert list(info.params.model_fields) == ["offset", "weight"]
    assert tensor_fields(info.params) == {"weight"}


def test_module_factory_tensor_becomes_buffer():
    m = lossreg.build("t_module", weight=[2.0])
    assert "weight" in dict(m.named_buffers())
    assert m(torch.ones(3), torch.zeros(3)).item() == pytest.approx(2.0)


def test_params_base_is_strict():
    class P(Params):
        x: float = 1.0
        w: TensorList = [1.0]

    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        P(y=1)
    assert tensor_fields(P) == {"w"}
