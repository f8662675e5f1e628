"""Errors as small classes with their facts, ``reduce`` and the helpers plugin authors share."""

from __future__ import annotations

import pytest
import torch

import lossreg
from lossreg import errors
from lossreg._params import class_name
from lossreg.cli.output import hint_for as _hint
from lossreg.errors import ConfigError, ConfigProblem, ShapeError


def test_config_error_takes_one_problem_in_one_line() -> None:
    err = ConfigError.single("terms.a.gamma", "must be >= 0", value=-1.0, loss="focal")
    assert err.problems == [ConfigProblem("terms.a.gamma", "must be >= 0", "focal", -1.0)]
    assert str(err) == "invalid config: terms.a.gamma: [focal] must be >= 0 (got -1.0)"
    assert ConfigError(ConfigProblem("x", "bad")).problems == [ConfigProblem("x", "bad")]
    assert str(ConfigError("plain message")) == "invalid config: plain message"


def test_shape_errors_carry_the_shapes() -> None:
    with pytest.raises(ShapeError) as e:
        lossreg.check_same_shape("mse", torch.zeros(3), torch.zeros(3, 1))
    assert e.value.loss == "mse" and e.value.shapes == {"input": (3,), "target": (3, 1)}
    with pytest.raises(ShapeError) as e:
        lossreg.check_shape("giou", "boxes", torch.zeros(2, 5), ["*", "4"])
    assert (e.value.shapes, e.value.expected) == ({"boxes": (2, 5)}, "(*, 4)")
    assert isinstance(e.value, lossreg.LossregError)


def test_class_weight_check_names_the_counts() -> None:
    lossreg.check_class_weight("ce", None, 3)
    lossreg.check_class_weight("ce", torch.ones(3), 3)
    with pytest.raises(
        ShapeError, match=r"ce: weight has 2 entries but input has 3 classes \(dim 1\)"
    ):
        lossreg.check_class_weight("ce", torch.ones(2), 3)


def test_a_composite_keeps_the_suggestions_of_an_unknown_name() -> None:
    with pytest.raises(ConfigError) as e:
        lossreg.build("dcie + l1")
    (unknown,) = e.value.unknown_losses
    assert unknown.name == "dcie" and unknown.suggestions[0] == "dice"


def test_the_command_line_decides_by_type_not_by_message() -> None:
    unknown_hint = _hint(lossreg.UnknownLossError("x"))
    assert "lossreg list" in unknown_hint
    with pytest.raises(ConfigError) as e:
        lossreg.build({"expr": "a + l1", "terms": {"a": {"name": "nope_nope"}}})
    assert _hint(e.value) == unknown_hint
    # a message that merely mentions an unknown loss is not one
    assert _hint(lossreg.LossregError("my_loss: unknown loss weighting 'x'")) == ""
    assert _hint(errors.CliError("no such tag", "tags in use: a")) == "tags in use: a"
    assert "--debug" in _hint(RuntimeError("boom"))


def test_error_classes_live_in_errors_and_stay_importable_from_old_places() -> None:
    from lossreg.cli import CliError
    from lossreg.cli.config_file import ConfigFileError

    assert CliError is errors.CliError and ConfigFileError is errors.ConfigFileError
    assert issubclass(ConfigFileError, lossreg.LossregError)
    assert ConfigFileError("bad file", "fix it").hint == "fix it"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reduce_honours_every_reduction(reduction: str) -> None:
    loss = torch.tensor([1.0, 2.0, 6.0])
    want = {"mean": torch.tensor(3.0), "sum": torch.tensor(9.0), "none": loss}[reduction]
    torch.testing.assert_close(lossreg.reduce(loss, reduction), want)


def test_reduce_refuses_an_unknown_reduction_naming_the_loss() -> None:
    with pytest.raises(lossreg.LossregError, match="my_loss: reduction must be 'mean'"):
        lossreg.reduce(torch.ones(2), "avg", "my_loss")
    assert lossreg.reduce(torch.ones(0), "mean").isnan()
    empty = torch.ones(0, requires_grad=True)
    zero = lossreg.reduce(empty, "mean", empty_mean="zero")
    assert float(zero.detach()) == 0.0 and zero.requires_grad


@pytest.mark.parametrize("name", ["box_iou", "giou", "diou", "ciou"])
def test_box_losses_refuse_an_unknown_reduction(name: str) -> None:
    # the functional used to return the unreduced tensor for any unknown reduction; its
    # options are now checked by its params model, and _finish reduces with lossreg.reduce
    from lossreg_builtin import detection

    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(lossreg.LossregError, match=rf"reduction: \[{name}\] Input should be"):
        getattr(detection, name)(box, box, reduction="avg")
    with pytest.raises(lossreg.LossregError, match=f"{name}: reduction must be"):
        detection._finish(box[:, 0], "avg", torch.float32, name)


def test_the_hookspec_example_reduces_none_to_the_elementwise_loss() -> None:
    import lossreg.hookspecs

    doc = lossreg.hookspecs.register_losses.__doc__ or ""
    code = doc.split("A complete plugin module::", 1)[1].split("``lossreg.reduce``")[0]
    scope: dict[str, object] = {}
    exec(compile(_dedent(code), "<hookspec example>", "exec"), scope)  # the documented code
    x, y = torch.tensor([3.0, 0.0]), torch.zeros(2)
    got = scope["charbonnier"](x, y, eps=0.0, reduction="none")  # type: ignore[operator]
    torch.testing.assert_close(got, torch.tensor([3.0, 0.0]))


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text.strip("\n"))


def test_class_names_of_loss_names() -> None:
    assert class_name("focal_tversky", "Params") == "FocalTverskyParams"
    assert class_name("BCELoss") == "BCELoss" and class_name("my-loss.v2") == "MyLossV2"


def test_reduction_field_documents_none() -> None:
    field = lossreg.reduction_field("input's shape")
    assert field.default == "mean" and "(input's shape)" in field.description
