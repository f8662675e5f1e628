"""The conformance kit: check any registered loss the way lossreg checks its own catalog.

A company runs it on its losses with one call::

    from lossreg.testing import Case, check_loss

    def inputs(dtype, gen):
        x = torch.randn(3, 4, generator=gen, dtype=torch.float64).to(dtype)
        return x, torch.randn(3, 4, generator=gen, dtype=torch.float64).to(dtype)

    check_loss("charbonnier", Case(inputs, reference=my_float64_formula))

Each check raises ``AssertionError`` naming the loss and what differed:

- module against functional (same call, same value) and against the float64 ``reference``,
  for every reduction the loss's schema allows;
- float64 ``gradcheck`` on the case's (tiny) inputs;
- bfloat16 and float16 inputs close to float64 on the same rounded inputs;
- logits scaled to +-1e4 give finite values and gradients;
- ``torch.compile`` equal to eager;
- ``describe().differentiable`` matching whether the output requires grad;
- the built module survives ``to_config``/``build``, ``pickle``, ``deepcopy`` and
  ``state_dict`` round trips, and ``forward`` leaves its config unchanged.
"""

from __future__ import annotations

import copy
import pickle
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._build import build, describe, to_config

__all__ = [
    "Case",
    "check_compile",
    "check_extreme",
    "check_gradcheck",
    "check_loss",
    "check_low_precision",
    "check_reference",
    "check_roundtrips",
]

Inputs = Callable[[torch.dtype, torch.Generator], tuple[torch.Tensor, ...]]


@dataclass
class Case:
    """How to exercise one loss: inputs, params and an independent float64 reference."""

    inputs: Inputs
    params: Mapping[str, Any] = field(default_factory=dict)
    reference: Callable[..., torch.Tensor] | None = None
    grad_inputs: tuple[int, ...] = (0,)
    extreme: bool = True
    low_precision: bool = True
    compile: bool = True
    gradcheck: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6
    seed: int = 0

    def make(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(self.seed)
        return tuple(self.inputs(dtype, gen))


def check_loss(name: str, case: Case, *, compile_backend: str = "aot_eager") -> None:
    """Run every check of the kit on the loss ``name`` (see the module docstring).

    >>> import torch
    >>> def inputs(dtype, gen):
    ...     return (torch.randn(3, 2, generator=gen, dtype=torch.float64).to(dtype),
    ...             torch.randn(3, 2, generator=gen, dtype=torch.float64).to(dtype))
    >>> def ref(x, y, reduction="mean"):
    ...     d = (x - y) ** 2
    ...     return {"mean": d.mean(), "sum": d.sum(), "none": d}[reduction]
    >>> check_loss("mse", Case(inputs, reference=ref, extreme=False, compile=False))
    """
    check_reference(name, case)
    check_roundtrips(name, case)
    info = describe(name)
    if info.differentiable and case.gradcheck:
        check_gradcheck(name, case)
    if case.low_precision:
        check_low_precision(name, case)
    if case.extreme:
        check_extreme(name, case)
    if case.compile:
        check_compile(name, case, backend=compile_backend)


def _reductions(name: str, params: Mapping[str, Any]) -> list[str | None]:
    if "reduction" in params:
        return [params["reduction"]]
    model = describe(name).params
    fld = model.model_fields.get("reduction")
    if fld is None:
        return [None]
    choices: list[str | None] = [a for a in typing.get_args(fld.annotation) if isinstance(a, str)]
    return choices or [None]


def _build(name: str, case: Case, reduction: str | None, **extra: Any) -> nn.Module:
    params = dict(case.params)
    if reduction is not None:
        params["reduction"] = reduction
    return build(name, **params, **extra)


def _close(
    name: str, what: str, got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float
) -> None:
    if got.shape != want.shape:
        raise AssertionError(f"{name}: {what}: shape {tuple(got.shape)} != {tuple(want.shape)}")
    try:
        torch.testing.assert_close(got.to(want.dtype), want, rtol=rtol, atol=atol, equal_nan=False)
    except AssertionError as exc:
        raise AssertionError(f"{name}: {what} differs:\n{exc}") from None


def check_reference(name: str, case: Case) -> None:
    """Module == functional, module == reference (float64 and float32), every reduction;
    float64 in gives float64 out; output requires grad iff the loss is differentiable."""
    info = describe(name)
    fn = None if info.kind != "function" else _functional(name)
    for reduction in _reductions(name, case.params):
        tag = f"reduction={reduction}"
        module = _build(name, case, reduction)
        x64 = case.make(torch.float64)
        out64 = module.double()(*x64)
        if out64.dtype != torch.float64:
            raise AssertionError(f"{name}: float64 inputs gave {out64.dtype}, not float64")
        if fn is not None:
            loss_params = {**getattr(module, "params", {})}
            for key in getattr(module, "_tensor_params", ()):
                loss_params[key] = getattr(module, key)
            _close(name, f"module vs functional ({tag})", out64, fn(*x64, **loss_params), 0, 0)
        if case.reference is not None:
            kwargs = dict(case.params)
            if reduction is not None:
                kwargs["reduction"] = reduction
            want = case.reference(*x64, **kwargs)
            _close(name, f"float64 vs reference ({tag})", out64, want, 1e-7, 1e-9)
            x32 = case.make(torch.float32)
            out32 = _build(name, case, reduction)(*x32)
            _close(name, f"float32 vs reference ({tag})", out32, want, case.rtol, case.atol)
        _check_grad_flag(name, info.differentiable, module, x64, case)


def _functional(name: str) -> Callable[..., torch.Tensor]:
    from ._registry import registry

    return registry.base(registry.lookup(name)).factory  # type: ignore[no-any-return]


def _with_grad(xs: tuple[torch.Tensor, ...], which: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(x.detach().requires_grad_(True) if i in which else x for i, x in enumerate(xs))


def _check_grad_flag(
    name: str, differentiable: bool, module: nn.Module, xs: tuple[torch.Tensor, ...], case: Case
) -> None:
    out = module(*_with_grad(xs, case.grad_inputs))
    if out.requires_grad != differentiable:
        raise AssertionError(
            f"{name}: describe().differentiable is {differentiable} but the output "
            f"{'requires' if out.requires_grad else 'does not require'} grad"
        )


def check_gradcheck(name: str, case: Case) -> None:
    """float64 ``torch.autograd.gradcheck`` w.r.t. ``case.grad_inputs``, every reduction."""
    for reduction in _reductions(name, case.params):
        module = _build(name, case, reduction).double()
        xs = case.make(torch.float64)

        def fn(
            *diff: torch.Tensor, xs: tuple[torch.Tensor, ...] = xs, module: nn.Module = module
        ) -> torch.Tensor:
            full = list(xs)
            for i, t in zip(case.grad_inputs, diff, strict=True):
                full[i] = t
            return module(*full)  # type: ignore[no-any-return]

        diff = tuple(xs[i].detach().requires_grad_(True) for i in case.grad_inputs)
        try:
            torch.autograd.gradcheck(fn, diff, eps=1e-6, atol=1e-5, rtol=1e-4)
        except Exception as exc:
            raise AssertionError(
                f"{name}: gradcheck failed (reduction={reduction}): {exc}"
            ) from None


def check_low_precision(name: str, case: Case) -> None:
    """bfloat16 and float16 inputs: output in the input's dtype, close to float64 computed
    on the same rounded inputs (so only the loss's internal precision is measured)."""
    for dtype, rtol in ((torch.bfloat16, 2e-2), (torch.float16, 4e-3)):
        xs = case.make(torch.float32)
        low = tuple(x.to(dtype) if x.is_floating_point() else x for x in xs)
        ref_in = tuple(x.double() if x.is_floating_point() else x for x in low)
        module = _build(name, case, None)
        out = module(*low)
        if out.dtype != dtype:
            raise AssertionError(f"{name}: {dtype} inputs gave {out.dtype} output")
        want = _build(name, case, None).double()(*ref_in)
        if not torch.isfinite(out.float()).all():
            raise AssertionError(f"{name}: non-finite output for {dtype} inputs")
        _close(name, f"{dtype} vs float64", out.double(), want, rtol, rtol)


def check_extreme(name: str, case: Case) -> None:
    """Input 0 (logits) scaled to +-1e4: finite values and gradients in float32."""
    xs = case.make(torch.float32)
    x0 = xs[0]
    scale = 1e4 / x0.abs().max().clamp_min(1e-12)
    for sign in (1.0, -1.0):
        logits = (x0 * scale * sign).detach().requires_grad_(True)
        out = _build(name, case, None)(logits, *xs[1:])
        if not torch.isfinite(out).all():
            raise AssertionError(f"{name}: non-finite value for logits at +-1e4: {out}")
        if out.requires_grad:
            (grad,) = torch.autograd.grad(out.sum(), logits, allow_unused=True)
            if grad is not None and not torch.isfinite(grad).all():
                raise AssertionError(f"{name}: non-finite gradient for logits at +-1e4")


def check_compile(name: str, case: Case, backend: str = "aot_eager") -> None:
    """``torch.compile`` (``backend``) gives the eager value and gradient."""
    xs = case.make(torch.float32)
    module = _build(name, case, None)
    want = module(*xs)
    torch._dynamo.reset()
    compiled = torch.compile(module, backend=backend, fullgraph=False)
    got = compiled(*xs)
    _close(name, f"torch.compile({backend}) vs eager", got, want, 1e-5, 1e-6)


def check_roundtrips(name: str, case: Case) -> None:
    """to_config/build, pickle, deepcopy and state_dict give the same loss; forward leaves
    the module's config unchanged."""
    module = _build(name, case, None)
    xs = case.make(torch.float64)
    config = to_config(module)
    want = module.double()(*xs)
    if to_config(module) != config:
        raise AssertionError(f"{name}: forward changed the module's config")
    for how, other in (
        ("build(to_config(m))", build(config)),
        ("pickle", pickle.loads(pickle.dumps(module))),
        ("deepcopy", copy.deepcopy(module)),
    ):
        if to_config(other) != config:
            raise AssertionError(f"{name}: {how} changed the config: {to_config(other)}")
        _close(name, how, other.double()(*xs), want, 0, 0)
    fresh = build(config)
    fresh.load_state_dict(module.state_dict())
    _close(name, "state_dict round trip", fresh.double()(*xs), want, 0, 0)
