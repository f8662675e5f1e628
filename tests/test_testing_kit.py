"""Each check of the conformance kit (``lossreg.testing``) fails on a loss that breaks what it
promises: a check that cannot fail is a defect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import lossreg
from lossreg.testing import (
    Case,
    check_compile,
    check_extreme,
    check_gradcheck,
    check_low_precision,
    check_reference,
    check_roundtrips,
)

REDUCE = {"mean": torch.mean, "sum": torch.sum, "none": lambda t: t}
REAL = {"input": "real", "target": "real"}


def pair(dtype: torch.dtype, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    return x.to(dtype), torch.randn(3, 4, generator=gen, dtype=torch.float64).to(dtype)


def sq_ref(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return REDUCE[reduction]((x - y) ** 2)  # float64, written out


def _register(name: str, factory: object, **kw: object) -> str:
    lossreg.register(name, factory, tags=("kit_test",), override=True, inputs=REAL, **kw)
    return name


def good_sq(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
    return lossreg.reduce((input - target) ** 2, reduction, "kit_good")


def test_a_correct_loss_passes_every_check() -> None:
    name = _register("kit_good", good_sq)
    case = Case(pair, reference=sq_ref)
    check_reference(name, case)
    check_roundtrips(name, case)
    check_gradcheck(name, case)
    check_low_precision(name, case)
    check_extreme(name, case)
    check_compile(name, case)


def test_reference_catches_a_wrong_value() -> None:
    def off(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return lossreg.reduce(1.001 * (input - target) ** 2, reduction)

    name = _register("kit_off", off)
    with pytest.raises(AssertionError, match="kit_off: float64 vs reference"):
        check_reference(name, Case(pair, reference=sq_ref))


def test_reference_catches_a_reduction_that_is_ignored() -> None:
    def always_mean(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return ((input - target) ** 2).mean()

    name = _register("kit_always_mean", always_mean)
    with pytest.raises(AssertionError, match=r"reduction=sum"):
        check_reference(name, Case(pair, reference=sq_ref))


def test_reference_catches_a_wrong_differentiable_flag() -> None:
    def detached(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return lossreg.reduce((input - target).detach() ** 2, reduction)

    name = _register("kit_detached", detached)
    with pytest.raises(AssertionError, match="differentiable is True but the output does not"):
        check_reference(name, Case(pair, reference=sq_ref))


def _square(factor: Callable[[], float]) -> Any:
    """x^2 as an autograd Function whose backward multiplies by ``factor()`` (right: 2)."""

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def, override]
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
            (x,) = ctx.saved_tensors
            return grad * factor() * x

    return Square


_WrongBackward = _square(lambda: 1.0)  # forgets the factor 2
# right in eager mode, wrong when traced by torch.compile
_WrongWhenCompiled = _square(lambda: 3.0 if torch.compiler.is_compiling() else 2.0)


def test_gradcheck_catches_a_wrong_backward() -> None:
    def wrong(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return lossreg.reduce(_WrongBackward.apply(input - target), reduction)

    name = _register("kit_wrong_backward", wrong)
    with pytest.raises(AssertionError, match="kit_wrong_backward: gradcheck failed"):
        check_gradcheck(name, Case(pair))


def test_compile_compares_gradients_not_only_values() -> None:
    def sq(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return lossreg.reduce(_WrongWhenCompiled.apply(input - target), reduction)

    name = _register("kit_wrong_compiled", sq)
    case = Case(pair, reference=sq_ref)
    check_gradcheck(name, case)  # eager is right
    with pytest.raises(AssertionError, match="vs eager, gradient of input 0"):
        check_compile(name, case)


class _SetsStateInForward(nn.Module):
    def __init__(self, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma = gamma
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.gamma = self.gamma + 1.0  # the bug: a parameter changed by every call
        return lossreg.reduce((input - target).abs() ** 2, self.reduction)


class _MovesBufferInForward(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction
        self.register_buffer("scale", torch.ones(1))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.scale.mul_(1.5)  # the bug: an in-place update of a buffer
        return lossreg.reduce((input - target) ** 2, self.reduction)


@pytest.mark.parametrize(
    ("module", "what"), [(_SetsStateInForward, "gamma"), (_MovesBufferInForward, "scale")]
)
def test_roundtrips_catch_state_changed_by_forward(module: type[nn.Module], what: str) -> None:
    name = _register(f"kit_{what}_mutates", module)
    with pytest.raises(AssertionError, match=f"forward changed the module's state: .*{what}"):
        check_roundtrips(name, Case(pair))


def test_low_precision_catches_a_loss_that_returns_float32_for_half() -> None:
    def upcasts(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        return lossreg.reduce((input.float() - target.float()) ** 2, reduction)

    name = _register("kit_upcasts", upcasts)
    with pytest.raises(AssertionError, match=r"torch.bfloat16 inputs gave torch.float32 output"):
        check_low_precision(name, Case(pair))


def test_extreme_catches_an_overflowing_formula() -> None:
    def naive_bce(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
        p = 1 / (1 + torch.exp(-input))  # log(0) for large negative logits
        return lossreg.reduce(-(target * p.log() + (1 - target) * (1 - p).log()), reduction)

    name = _register("kit_naive_bce", naive_bce)
    case = Case(lambda dtype, gen: (torch.randn(3, 4, dtype=dtype), torch.ones(3, 4, dtype=dtype)))
    with pytest.raises(AssertionError, match="kit_naive_bce: non-finite"):
        check_extreme(name, case)


def test_a_case_without_inputs_makes_them_from_the_declared_kinds() -> None:
    lossreg.register(
        "kit_logit_pair",
        good_sq,
        override=True,
        inputs={"input": "logits", "target": "binary_target"},
    )
    x, y = Case(shape=(2, 3)).make(torch.float64, "kit_logit_pair")
    assert x.shape == y.shape == (2, 3) and x.dtype == torch.float64
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="needs the loss's name"):
        Case().make()
