"""Softmax (multiclass) focal loss (Lin et al. 2017): one formula, one fused path.

:func:`softmax_focal` is the elementwise loss by plain autograd: -w_y (1 - p_y)^gamma log p_y
with (1 - p_y)^gamma = exp(gamma log(1 - p_y)), log(1 - p_y) from :func:`log1m_softmax` (a
log-sum-exp over the other classes), so every gamma >= 0 has finite gradients at p_y -> 1. It
serves ``reduction='none'``, probability targets and gamma outside the integers 1-8, and is the
formula the fused path is tested against.

:func:`softmax_focal_reduced` is the path ``benchmarks/run.py``'s ``multiclass_focal`` and
``classification_focal`` rows measure: ``mean``/``sum`` of class-index targets with integer
gamma in [1, 8], value and gradient in one pass, the gradient the only tensor kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["log1m_softmax", "softmax_focal", "softmax_focal_reduced"]


def _softmax_focal_hard(
    x: torch.Tensor,
    t: torch.Tensor,
    gamma: int,
    w: torch.Tensor | None,
    scale: float,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """scale * sum(-w (1 - p_y)^gamma log p_y) over class-index targets, and its gradient.

    With l = log p_y (log_softmax gathered at the label: finite for finite logits), u = 1 - p_y
    and P = softmax(x): d/dx_c = scale w u^(g-1) (u - g p_y l) (P_c - [c = y]). Integer gamma
    >= 1 only (finite derivative at p_y -> 1). One input-sized buffer (log_softmax, turned into
    the gradient in place); the rest is (N, *)-sized.
    """
    logp = F.log_softmax(x, 1)
    t1 = t.unsqueeze(1)
    ell = logp.gather(1, t1).squeeze(1)
    p = ell.exp()
    u = torch.rsub(p, 1.0)
    u1 = None if gamma == 1 else u if gamma == 2 else u.pow(gamma - 1)  # u^(g-1)
    a = ell if u1 is None else u1 * ell
    if w is not None:
        a = a * w
    loss = torch.dot(a.reshape(-1), u.reshape(-1)) * -scale
    if not need_grad:
        return loss, None
    v = torch.addcmul(u, p, ell, value=-float(gamma))  # u - g p l
    v = (
        v.mul_(scale)
        if u1 is None
        else v.mul_(u1).mul_(scale)
        if gamma > 2
        else (
            torch.addcmul(torch.zeros((), dtype=v.dtype, device=v.device), v, u, value=scale, out=v)
        )
    )
    if w is not None:
        v.mul_(w)
    v1 = v.unsqueeze(1)
    dx = logp.exp_().mul_(v1)  # v P
    return loss, dx.scatter_add_(1, t1, v1.neg())  # minus v at the label


class _SoftmaxFocalHard(torch.autograd.Function):
    """Reduced multiclass focal loss; the gradient is computed with the value (they share
    log_softmax and the gathered terms) and is the only tensor kept for backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        t: torch.Tensor,
        gamma: int,
        w: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        loss, dx = _softmax_focal_hard(x, t, gamma, w, scale, need_grad=True)
        ctx.save_for_backward(x, t, w, dx)  # type: ignore[arg-type]  # w may be None: torch saves None
        ctx.options = (gamma, scale)  # type: ignore[attr-defined]  # ctx holds any attribute
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        x, t, w, dx = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        if torch.is_grad_enabled():  # create_graph=True: differentiate the formula by autograd
            gamma, scale = ctx.options  # type: ignore[attr-defined]  # set in forward
            loss, _ = softmax_focal(x, t, float(gamma), None, -1)
            loss = (loss if w is None else loss * w).sum() * scale
            (g,) = torch.autograd.grad(loss, x, create_graph=True)
            return g * grad, None, None, None, None
        if grad.device.type == "cpu" and float(grad) == 1.0:
            return dx, None, None, None, None  # autograd copies it if the graph is retained
        return dx * grad, None, None, None, None


def softmax_focal_reduced(
    x: torch.Tensor,
    t: torch.Tensor,
    gamma: int,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
) -> torch.Tensor:
    """``mean`` (weighted, 0 when everything is ignored) or ``sum`` of the multiclass focal
    loss of class-index targets (already checked to lie in [0, C) or equal ``ignore_index``)
    for integer gamma >= 1, value and gradient in one pass."""
    c = x.shape[1]
    if 0 <= ignore_index < c:
        ignored = bool((t == ignore_index).any())
    else:  # every other value is in [0, C): the ignored ones are the extremes
        lo, hi = torch.aminmax(t)
        ignored = int(lo) < 0 or int(hi) >= c
    w = None
    if ignored:
        valid = t != ignore_index
        t = t.masked_fill(~valid, 0)
        w = valid.to(x.dtype) if weight is None else weight[t] * valid
    elif weight is not None:
        w = weight[t]
    if reduction == "sum":
        scale = 1.0
    else:
        norm = float(t.numel()) if w is None else float(w.sum())
        scale = 1.0 / norm if norm > 0 else 0.0  # nothing left: loss 0, gradient 0
    if torch.is_grad_enabled() and x.requires_grad:
        out: torch.Tensor = _SoftmaxFocalHard.apply(x, t, gamma, w, scale)  # type: ignore[no-untyped-call]  # Function.apply is untyped in torch's stubs
        return out
    return _softmax_focal_hard(x, t, gamma, w, scale, need_grad=False)[0]


def log1m_softmax(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """log(1 - softmax(x)) along ``dim``, with finite values and gradients for finite x.

    For a class that is not the largest logit, 1 - p_c = (S - e_c) / S with e = exp(x - max)
    and S - e_c >= 1 (the maximum's own term), so no cancellation. For the largest one,
    log(1 - p_c) is the log-sum-exp of the other logits minus the full one.
    """
    if x.shape[dim] == 1:  # p = 1: log(1 - p) = -inf, constant
        return torch.full_like(x, float("-inf")).detach()
    m, arg = x.detach().max(dim=dim, keepdim=True)
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    is_max = torch.zeros_like(x, dtype=torch.bool).scatter_(dim, arg, True)
    others = torch.log(torch.where(is_max, 1.0, s - e)) - torch.log(s)
    rest = torch.logsumexp(x.masked_fill(is_max, float("-inf")), dim=dim, keepdim=True)
    top = rest - (torch.log(s) + m)
    return torch.where(is_max, top, others)


def softmax_focal(
    x: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    weight: torch.Tensor | None,
    ignore_index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multiclass focal loss per element, -w_y (1 - p_y)^gamma log p_y, and the per-element
    normaliser (w_y, 0 where ignored; 1 for probability targets) for the weighted mean."""
    logp = F.log_softmax(x, dim=1)
    if target.is_floating_point():  # probabilities: sum over classes of t_c w_c focal_c
        terms = -target * logp
        if gamma != 0:
            terms = terms * torch.exp(gamma * log1m_softmax(x, 1))
        if weight is not None:
            terms = terms * weight.view(1, -1, *([1] * (x.dim() - 2)))
        loss = terms.sum(dim=1)
        return loss, torch.ones_like(loss)
    valid = target != ignore_index
    safe = torch.where(valid, target, 0).unsqueeze(1)  # any class: masked out below
    loss = -logp.gather(1, safe).squeeze(1)
    if gamma != 0:
        log1m = log1m_softmax(x, 1).gather(1, safe).squeeze(1)
        loss = loss * torch.exp(gamma * log1m)
    w = valid.to(x.dtype) if weight is None else weight[safe.squeeze(1)] * valid
    return loss * w, w
