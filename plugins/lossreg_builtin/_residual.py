"""One autograd kernel for losses that are a function rho of the residual d = input - target.

Each loss gives ``rho(d)`` (value, evaluated without autograd: any stable form) and its
derivative ``rho'(d)`` (out-of-place torch ops, so differentiable again). For ``mean``/``sum``
the forward pass computes both and keeps only the reduced gradient for backward (one
input-sized tensor; nothing of the value's intermediates); ``none`` keeps the inputs and
evaluates rho' in backward. ``create_graph=True`` always re-evaluates rho' from the saved
inputs under autograd, so second derivatives are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Rho", "residual_loss"]


@dataclass(frozen=True)
class Rho:
    """rho and rho' of the residual: ``value(d, *params)`` and ``deriv(d, *params)`` take and
    return tensors of the residual's shape (module-level functions and plain floats, so the
    kernel stays a constant for ``torch.compile``)."""

    value: Callable[..., torch.Tensor]
    deriv: Callable[..., torch.Tensor]
    params: tuple[float, ...] = ()
    #: optional ``fused(d, scale, *params) -> (scale * sum(rho(d)), scale * rho'(d))`` that may
    #: overwrite ``d`` (a fresh buffer): fewer passes and buffers than value + deriv
    fused: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        return self.value(d, *self.params)

    def grad(self, d: torch.Tensor) -> torch.Tensor:
        return self.deriv(d, *self.params)


class _Residual(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        y: torch.Tensor,
        rho: Rho,
        scale: float | None,
    ) -> torch.Tensor:
        d = x - y
        ctx.rho, ctx.scale = rho, scale  # type: ignore[attr-defined]  # ctx holds any attribute
        if scale is None:  # reduction none
            ctx.save_for_backward(x, y)
            return rho(d)
        if rho.fused is not None:
            total, g = rho.fused(d, scale, *rho.params)
        else:
            total = rho(d).sum() * scale
            g = rho.grad(d).mul_(scale)  # d(reduced loss)/dx, computed while d is at hand
        ctx.save_for_backward(x, y, g)
        return total

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        saved = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        x, y = saved[0], saved[1]
        rho, scale = ctx.rho, ctx.scale  # type: ignore[attr-defined]  # set in forward
        if scale is None or torch.is_grad_enabled():  # none, or create_graph=True
            g = rho.grad(x - y) * (grad if scale is None else grad * scale)
        elif grad.device.type == "cpu" and float(grad) == 1.0:
            g = saved[2]  # handed over as is; autograd copies it if the graph is retained
        else:
            g = saved[2] * grad
        need_x, need_y = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        return (g if need_x else None), (-g if need_y else None), None, None


def residual_loss(
    input: torch.Tensor, target: torch.Tensor, rho: Rho, reduction: str
) -> torch.Tensor:
    """rho(input - target) reduced; half and bfloat16 computed in float32.

    ``mean`` of no elements is 0 (with a zero gradient), not NaN.
    """
    dtype = input.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    x, y = input.to(work), target.to(work)
    if not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        loss = rho(x - y)  # no gradient wanted: the value alone
        if reduction != "none":
            loss = loss.sum() / max(loss.numel(), 1) if reduction == "mean" else loss.sum()
        return loss.to(dtype)
    if reduction == "none":
        out: torch.Tensor = _Residual.apply(x, y, rho, None)  # type: ignore[no-untyped-call]  # Function.apply is untyped in torch's stubs
        return out.to(dtype)
    n = x.numel()
    scale = 1.0 / n if reduction == "mean" and n > 0 else 1.0
    out = _Residual.apply(x, y, rho, scale)  # type: ignore[no-untyped-call]  # Function.apply is untyped in torch's stubs
    return out.to(dtype)
