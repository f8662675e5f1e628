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
- ``torch.compile`` equal to eager, in value and gradient;
- ``describe().differentiable`` matching whether the output requires grad;
- the built module survives ``to_config``/``build``, ``pickle``, ``deepcopy`` and
  ``state_dict`` round trips, and ``forward`` leaves the module's state (attributes,
  parameters, buffers, config) unchanged.

Without ``inputs`` a case makes tensors from the loss's declared input kinds
(``register(..., inputs=...)``), of shape ``Case.shape``.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._build import build, describe, to_config
from ._synthetic import make_inputs

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
    """How to exercise one loss: inputs, params and an independent float64 reference.

    ``inputs(dtype, generator)`` returns the tensors; ``None`` makes them from the loss's
    declared input kinds, the first of ``shape``.
    """

    inputs: Inputs | None = None
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
    shape: tuple[int, ...] = (2, 3, 4)

    def make(
        self, dtype: torch.dtype = torch.float64, name: str | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The case's tensors in ``dtype`` (floating ones only); ``name`` is needed when the
        case has no ``inputs`` and they come from the loss's declared kinds."""
        gen = torch.Generator().manual_seed(self.seed)
        if self.inputs is not None:
            return tuple(self.inputs(dtype, gen))
        if name is None:
            raise ValueError("Case.make: a case without inputs needs the loss's name")
        info = describe(name)
        config = to_config(build(name, **self.params))
        made = make_inputs(info.inputs, info.input_kinds, config, self.shape, gen)
        return tuple(t.to(dtype) if t.is_floating_point() else t for t in made.values())


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
    # a plain `reduction: str` promises the three reductions every loss takes
    return choices or ["mean", "sum", "none"]


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
    fn = _functional(name) if info.kind in ("function", "preset") else None
    if fn is not None and inspect.isclass(fn):  # a preset of a module class
        fn = None
    for reduction in _reductions(name, case.params):
        tag = f"reduction={reduction}"
        module = _build(name, case, reduction)
        x64 = case.make(torch.float64, name)
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
            x32 = case.make(torch.float32, name)
            out32 = _build(name, case, reduction)(*x32)
            _close(name, f"float32 vs reference ({tag})", out32, want, case.rtol, case.atol)
        _check_grad_flag(name, info.differentiable, module, x64, case)


def _functional(name: str) -> Callable[..., torch.Tensor]:
    return describe(name).factory  # type: ignore[no-any-return]


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
        xs = case.make(torch.float64, name)

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
        xs = case.make(torch.float32, name)
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
    xs = case.make(torch.float32, name)
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
    """``torch.compile`` (``backend``) gives the eager value and gradient (w.r.t.
    ``case.grad_inputs``, when the loss is differentiable)."""
    xs = case.make(torch.float32, name)
    module = _build(name, case, None)
    differentiable = describe(name).differentiable
    want, want_grads = _value_and_grads(module, xs, case.grad_inputs, differentiable)
    torch._dynamo.reset()
    compiled = torch.compile(module, backend=backend, fullgraph=False)
    with warnings.catch_warnings():
        # dynamo reads .grad of the intermediate tensors it receives at a graph break
        warnings.filterwarnings("ignore", "The .grad attribute of a Tensor that is not a leaf")
        got, got_grads = _value_and_grads(compiled, xs, case.grad_inputs, differentiable)
    _close(name, f"torch.compile({backend}) vs eager", got, want, 1e-5, 1e-6)
    for i, g, w in zip(case.grad_inputs, got_grads, want_grads, strict=False):
        # compiled backward graphs may decompose ops differently: float32 rounding, no more
        _close(name, f"torch.compile({backend}) vs eager, gradient of input {i}", g, w, 1e-4, 1e-6)


def _value_and_grads(
    module: Callable[..., torch.Tensor],
    xs: tuple[torch.Tensor, ...],
    which: tuple[int, ...],
    differentiable: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    args = _with_grad(xs, which if differentiable else ())
    out = module(*args)
    if not differentiable:
        return out.detach(), ()
    diff = [args[i] for i in which]
    got = torch.autograd.grad(out.sum(), diff, allow_unused=True)
    grads = tuple(torch.zeros_like(d) if g is None else g for d, g in zip(diff, got, strict=True))
    return out.detach(), grads


def check_roundtrips(name: str, case: Case) -> None:
    """to_config/build, pickle, deepcopy and state_dict give the same loss; forward leaves
    the module's state unchanged: its config, every submodule's attributes, parameters and
    buffers (a loss that sets ``self.gamma`` in ``forward`` fails here)."""
    module = _build(name, case, None).double()
    xs = case.make(torch.float64, name)
    config = to_config(module)
    before = _state(module)
    want = module(*xs)
    changed = _changed(before, _state(module))
    if changed or to_config(module) != config:
        raise AssertionError(f"{name}: forward changed the module's state: {changed or 'config'}")
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


# torch's own bookkeeping, and what a module documents as set by forward (for logging)
# a composite's logging outputs (last_values, last_levels, last_total) change on every call
_NOT_STATE = frozenset(vars(nn.Module())) | {"last_values", "last_levels", "last_total"}


def _state(module: nn.Module) -> dict[str, Any]:
    """A copy of everything ``forward`` must not change: each submodule's attributes,
    parameters and buffers."""
    state: dict[str, Any] = {}
    for prefix, sub in module.named_modules():
        for key, value in vars(sub).items():
            if key not in _NOT_STATE:
                state[f"{prefix}.{key}" if prefix else key] = _copy(value)
        for key, tensor in [
            *sub.named_parameters(recurse=False),
            *sub.named_buffers(recurse=False),
        ]:
            state[f"{prefix}.{key}" if prefix else key] = _copy(tensor)
    return state


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable (a lock, a handle): compared by identity
        return value


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [k for k in keys if k not in before or k not in after or not _same(before[k], after[k])]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and (
                torch.equal(a, b)
                or (a.is_floating_point() and bool(torch.isclose(a, b, 0, 0, True).all()))
            )
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    try:
        return a is b or bool(a == b)
    except Exception:
        return False
