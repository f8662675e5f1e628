"""Focal loss kernels (Lin et al. 2017), in log space so every gamma has finite gradients.

The binary kernel is a :class:`torch.autograd.Function` with an analytic backward that saves
only its inputs; :func:`binary_focal_reference` is the plain autograd version it is tested
against (and the path taken when the target itself requires grad).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["binary_focal", "binary_focal_reference", "log1m_softmax", "softmax_focal"]


def _log_one_minus_pt(y: torch.Tensor, ls_pos: torch.Tensor, ls_neg: torch.Tensor) -> torch.Tensor:
    # 1 - p_t = y (1 - p) + (1 - y) p, as a log-sum-exp of log y + log sigmoid(-x) and
    # log(1 - y) + log sigmoid(x): for a hard target this is logsigmoid(-x * sign), never
    # log(0) while x is finite, so (1 - p_t)^gamma = exp(gamma log(1 - p_t)) has finite
    # derivatives at p_t -> 1 even for gamma < 1 (where d/dp (1 - p)^gamma is infinite).
    return torch.logaddexp(torch.log(y) + ls_neg, torch.log1p(-y) + ls_pos)


def binary_focal_reference(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """Elementwise sigmoid focal loss by plain autograd (the reference for the kernel)."""
    ls_pos = F.logsigmoid(x)
    ls_neg = F.logsigmoid(-x)
    ce = -(y * ls_pos + (1 - y) * ls_neg)  # = binary_cross_entropy_with_logits(x, y)
    loss = ce if gamma == 0 else ce * torch.exp(gamma * _log_one_minus_pt(y, ls_pos, ls_neg))
    if alpha is not None:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return loss


class _BinaryFocal(torch.autograd.Function):
    """Elementwise sigmoid focal loss; backward recomputes from (input, target) only.

    With q = 1 - p_t = y (1 - p) + (1 - y) p and ce the BCE on logits,
    d/dx [a_t ce q^g] = a_t q^g [(p - y) + g ce (1 - 2y) p (1 - p) / q], and
    p (1 - p) / q <= 2 for every y in [0, 1], computed as exp(ls_pos + ls_neg - log q).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        y: torch.Tensor,
        gamma: float,
        alpha: float | None,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        ctx.gamma, ctx.alpha = gamma, alpha  # type: ignore[attr-defined]
        ls_neg = F.logsigmoid(-x)
        ce = -(ls_neg + y * x)  # -(y ls_pos + (1 - y) ls_neg), as ls_pos = ls_neg + x
        if gamma != 0:
            ce = ce * torch.exp(gamma * _log_one_minus_pt(y, ls_neg + x, ls_neg))
        if alpha is not None:
            ce = ce * (alpha * y + (1 - alpha) * (1 - y))
        return ce

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        x, y = ctx.saved_tensors  # type: ignore[attr-defined]
        gamma, alpha = ctx.gamma, ctx.alpha  # type: ignore[attr-defined]
        ls_neg = F.logsigmoid(-x)
        ls_pos = ls_neg + x
        dx = torch.exp(ls_pos) - y
        if gamma != 0:
            log_q = _log_one_minus_pt(y, ls_pos, ls_neg)
            ce = -(ls_neg + y * x)
            ratio = torch.exp(ls_pos + ls_neg - log_q)  # p (1 - p) / q, at most 2
            dx = torch.exp(gamma * log_q) * (dx + gamma * ce * (1 - 2 * y) * ratio)
        if alpha is not None:
            dx = dx * (alpha * y + (1 - alpha) * (1 - y))
        return dx * grad, None, None, None


def binary_focal(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """Elementwise sigmoid focal loss; the custom kernel unless the target needs a gradient."""
    if y.requires_grad:
        return binary_focal_reference(x, y, gamma, alpha)
    return _BinaryFocal.apply(x, y, gamma, alpha)  # type: ignore[no-any-return]


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
