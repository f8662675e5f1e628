"""``register(..., inputs=...)``: declared tensor kinds are validated and exposed by describe."""

from __future__ import annotations

import pytest

import lossreg
from lossreg._registry import Provider, make_record

P = Provider("test")


def _fn(input, target, *, scale: float = 1.0):
    return (input - target).abs().mean() * scale


def test_declared_kinds_follow_the_signature_order() -> None:
    rec = make_record("x_abs", _fn, P, inputs={"target": "real", "input": "logits"})
    assert list(rec.input_kinds or {}) == ["input", "target"]
    assert rec.input_kinds == {"input": "logits", "target": "real"}


def test_undeclared_is_none() -> None:
    assert make_record("x_abs", _fn, P).input_kinds is None


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"input": "logits", "target": "pixels"}, r"input 'target' has unknown kind 'pixels'"),
        (
            {"input": "logits"},
            r"declares \['input'\] but the loss takes tensors \['input', 'target'\]",
        ),
        (["logits"], r"inputs must map argument names to kinds, got list"),
    ],
)
def test_bad_declarations_are_refused(inputs: object, match: str) -> None:
    with pytest.raises(lossreg.PluginError, match=match):
        make_record("x_abs", _fn, P, inputs=inputs)  # type: ignore[arg-type]


def test_lazy_registration_checks_kinds_at_once_and_args_on_completion() -> None:
    with pytest.raises(lossreg.PluginError, match="unknown kind"):
        make_record("x_lazy", lossreg.lazy("tests.test_inputs:_fn"), P, inputs={"input": "?"})
    rec = make_record(
        "x_lazy", lossreg.lazy("tests.test_inputs:_fn"), P, inputs={"input": "logits"}
    )
    assert rec.pending is not None
    with pytest.raises(lossreg.PluginError, match="declares"):
        rec.pending()


def test_presets_take_their_base_inputs() -> None:
    with pytest.raises(lossreg.PluginError, match="takes its base's inputs"):
        make_record("x_preset", {"name": "l1"}, P, inputs={"input": "real"})


def test_describe_exposes_declared_kinds() -> None:
    lossreg.register("x_described", _fn, inputs={"input": "real", "target": "real"}, override=True)
    assert lossreg.describe("x_described").input_kinds == {"input": "real", "target": "real"}


def test_every_builtin_declares_its_inputs() -> None:
    """Built-ins say what they take (presets and composites through their base and terms)."""
    undeclared = [
        name
        for name in lossreg.available()
        if (info := lossreg.describe(name)).provider != "in-process"
        and not info.provider.startswith("in-process")
        and info.kind not in ("composite",)
        and info.input_kinds is None
    ]
    assert undeclared == []
