"""Sigmoid (binary / multilabel) focal loss (Lin et al. 2017): one formula, one fused path.

:func:`binary_focal` is the elementwise loss by plain autograd, in log space: the BCE term
is y softplus(-x) + (1 - y) softplus(x) (PyTorch's ``binary_cross_entropy_with_logits``
without its cancellation for confident predictions, in value and gradient), and
(1 - p_t)^gamma = exp(gamma log(1 - p_t)) with log(1 - p_t) a log-sigmoid (a log-sum-exp of
two for soft targets), so every gamma >= 0 has finite gradients at p_t -> 1. It serves
``reduction='none'``, soft targets and gamma outside the integers 1-8, and is the formula the
fused path is tested against and differentiated for ``create_graph=True``.

:func:`binary_focal_reduced` is the path ``benchmarks/run.py``'s ``binary_focal`` row
measures: ``mean``/``sum`` of a 0/1 target with integer gamma in [1, 8], value and gradient
computed together in one pass, the gradient the only tensor kept for backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["binary_focal", "binary_focal_reduced"]


def _log_one_minus_pt(y: torch.Tensor, ls_pos: torch.Tensor, ls_neg: torch.Tensor) -> torch.Tensor:
    # log(1 - p_t), 1 - p_t = y (1 - p) + (1 - y) p: logsigmoid(-x) for y = 1 and
    # logsigmoid(x) for y = 0, never log(0) while x is finite, so (1 - p_t)^gamma =
    # exp(gamma log(1 - p_t)) has finite derivatives at p_t -> 1 even for gamma < 1 (where
    # d/dp (1 - p)^gamma is infinite). A soft target takes the log-sum-exp of
    # log y + logsigmoid(-x) and log(1 - y) + logsigmoid(x); hard ones see it at y = 1/2, so
    # no branch holds log(0) (whose derivatives of any order would turn 0 into NaN).
    soft = (y > 0) & (y < 1)
    ys = torch.where(soft, y, 0.5)
    mixed = torch.logaddexp(torch.log(ys) + ls_neg, torch.log1p(-ys) + ls_pos)
    return torch.where(soft, mixed, torch.where(y >= 1, ls_neg, ls_pos))


def _bce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # -y log p - (1 - y) log(1 - p) = y softplus(-x) + (1 - y) softplus(x): two non-negative
    # terms, each softplus on its own side, so neither the value nor autograd's gradient
    # -y sigmoid(-x) + (1 - y) sigmoid(x) cancels for a confident prediction (x - x y + ...
    # loses log1p(e^-x) to rounding beside x). Past the threshold softplus is linear: at 50
    # (float64) or 20 the dropped log1p(e^-t) is below half an ulp of t.
    threshold = 50.0 if x.dtype == torch.float64 else 20.0
    return y * F.softplus(-x, threshold=threshold) + (1 - y) * F.softplus(x, threshold=threshold)


def binary_focal(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """Elementwise sigmoid focal loss, -alpha_t (1 - p_t)^gamma log p_t, by autograd.

    >>> binary_focal(torch.tensor([17.0]), torch.tensor([1.0]), 0.0, None)  # BCE's 4.14e-8
    tensor([4.1399e-08])
    """
    ce = _bce(x, y)
    if gamma != 0:
        ce = ce * torch.exp(gamma * _log_one_minus_pt(y, F.logsigmoid(x), F.logsigmoid(-x)))
    if alpha is not None:
        ce = ce * (alpha * y + (1 - alpha) * (1 - y))
    return ce


# -- reduced, 0/1 target, integer gamma: one pass that returns the value and the gradient ------
def _hard_target(t: torch.Tensor) -> bool:
    """Whether every entry of ``t = 1 - 2 y`` is exactly +-1, i.e. the target is a 0/1 mask."""
    lo, hi = torch.aminmax(t.abs())
    return float(lo) == 1.0 and float(hi) == 1.0


def _hard_focal(
    x: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    gamma: int,
    alpha: float | None,
    scale: float,
    need_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """scale * sum(alpha_t ce (1 - p_t)^gamma) for a 0/1 target, and its gradient in x.

    ``z`` holds 1 - 2y (+-1) and is overwritten. With z <- (1 - 2y) x, a 0/1 target gives
    1 - p_t = sigmoid(z) and ce = softplus(z) exactly, each on its own side (no 1 - p
    cancellation). With m = sigmoid(z): d/dz [ce m^g] = m^g [m + g ce (1 - m)], and
    d/dx = (1 - 2y) d/dz. Three input-sized buffers at most (z, m, ce); the gradient ends in z.
    """
    # softplus is linear past its threshold; at 50 (float64) or 20 the dropped log1p(e^-t)
    # is below half an ulp of t
    threshold = 50.0 if x.dtype == torch.float64 else 20.0
    z.mul_(x)
    m = torch.sigmoid(z)
    ce = F.softplus(z, threshold=threshold)
    # z <- scale a0 m^g (1 + (a1 / a0) y) = scale alpha_t m^g, alpha_t = a0 + a1 y
    a0, a1 = (1.0, 0.0) if alpha is None else (1.0 - alpha, 2.0 * alpha - 1.0)
    s = scale * a0 if a0 != 0 else scale
    if gamma == 1:
        torch.mul(m, s, out=z)
    elif gamma == 2:
        torch.addcmul(torch.zeros((), dtype=z.dtype, device=z.device), m, m, value=s, out=z)
    else:
        torch.pow(m, gamma, out=z).mul_(s)
    if a0 == 0:  # alpha = 1: alpha_t = y
        z.mul_(y)
    elif a1 != 0:
        z.addcmul_(z, y, value=a1 / a0)
    loss = torch.dot(z.reshape(-1), ce.reshape(-1))
    if not need_grad:
        return loss, None
    ce.addcmul_(ce, m, value=-1.0)  # ce (1 - m)
    torch.add(m, ce, alpha=gamma, out=ce)  # m + g ce (1 - m)
    del m
    z.mul_(ce)
    return loss, z.addcmul_(z, y, value=-2.0)  # times dz/dx = 1 - 2y


class _BinaryFocalHard(torch.autograd.Function):
    """Reduced focal loss of a 0/1 target; the gradient is computed in the forward pass (it
    shares every intermediate) and kept for backward: the saved tensor is the gradient itself
    (1x the input), so nothing is recomputed and no other intermediate is kept."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        y: torch.Tensor,
        z: torch.Tensor,
        gamma: int,
        alpha: float | None,
        scale: float,
    ) -> torch.Tensor:
        loss, dx = _hard_focal(x, y, z, gamma, alpha, scale, need_grad=True)
        assert dx is not None  # need_grad
        ctx.save_for_backward(x, y, dx)
        ctx.options = (gamma, alpha, scale)  # type: ignore[attr-defined]  # ctx holds any attribute
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None, None]:
        x, y, dx = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        if torch.is_grad_enabled():  # create_graph=True: differentiate the formula by autograd
            gamma, alpha, scale = ctx.options  # type: ignore[attr-defined]  # set in forward
            loss = binary_focal(x, y, float(gamma), alpha).sum() * scale
            (g,) = torch.autograd.grad(loss, x, create_graph=True)
            return g * grad, None, None, None, None, None
        if grad.device.type == "cpu" and float(grad) == 1.0:
            # loss.backward(): hand over the saved gradient as is (autograd copies it if the
            # graph is retained, so a second backward still sees it unchanged)
            return dx, None, None, None, None, None
        return dx * grad, None, None, None, None, None


def binary_focal_reduced(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None, reduction: str
) -> torch.Tensor:
    """``mean`` or ``sum`` of :func:`binary_focal`; the fused path for 0/1 targets and integer
    gamma in [1, 8] (value and gradient in one pass), :func:`binary_focal` otherwise."""
    n = x.numel()
    fast = n > 0 and not y.requires_grad and gamma == int(gamma) and 1 <= gamma <= 8
    if fast:
        z = torch.rsub(y, 1.0, alpha=2.0)  # 1 - 2y
        fast = _hard_target(z)
    if not fast:
        loss = binary_focal(x, y, gamma, alpha)
        return loss.mean() if reduction == "mean" else loss.sum()
    scale = 1.0 / n if reduction == "mean" else 1.0
    if torch.is_grad_enabled() and x.requires_grad:
        out: torch.Tensor = _BinaryFocalHard.apply(x, y, z, int(gamma), alpha, scale)  # type: ignore[no-untyped-call]  # Function.apply is untyped in torch's stubs
        return out
    return _hard_focal(x, y, z, int(gamma), alpha, scale, need_grad=False)[0]
