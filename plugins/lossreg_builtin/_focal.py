"""Focal loss kernels (Lin et al. 2017), in log space so every gamma has finite gradients.

The binary kernel is a :class:`torch.autograd.Function` with an analytic backward that saves
only its inputs; :func:`binary_focal_reference` is the plain autograd version it is tested
against (and the path taken when the target itself requires grad).

``mean``/``sum`` with integer gamma in [1, 8] take fused paths that compute the value and the
gradient together in the forward pass and keep only the gradient for backward (the scalar
upstream gradient is folded in): binary with a 0/1 target (:func:`binary_focal_reduced`; soft
targets take the kernel above) and multiclass with class indices
(:func:`softmax_focal_reduced`). ``create_graph=True`` gets an out-of-place gradient formula.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "binary_focal",
    "binary_focal_reduced",
    "binary_focal_reference",
    "log1m_softmax",
    "softmax_focal",
    "softmax_focal_reduced",
]


def _log_one_minus_pt(y: torch.Tensor, ls_pos: torch.Tensor, ls_neg: torch.Tensor) -> torch.Tensor:
    # 1 - p_t = y (1 - p) + (1 - y) p, as a log-sum-exp of log y + log sigmoid(-x) and
    # log(1 - y) + log sigmoid(x): for a hard target this is logsigmoid(-x * sign), never
    # log(0) while x is finite, so (1 - p_t)^gamma = exp(gamma log(1 - p_t)) has finite
    # derivatives at p_t -> 1 even for gamma < 1 (where d/dp (1 - p)^gamma is infinite).
    # log(0) of a hard target is taken through a where whose other branch is finite, so a
    # target that requires grad gets finite gradients too.
    ninf = torch.tensor(float("-inf"), dtype=y.dtype, device=y.device)
    log_y = torch.where(y > 0, torch.log(torch.where(y > 0, y, 1.0)), ninf)
    log_1my = torch.where(y < 1, torch.log1p(-torch.where(y < 1, y, 0.0)), ninf)
    return torch.logaddexp(log_y + ls_neg, log_1my + ls_pos)


def binary_focal_reference(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """Elementwise sigmoid focal loss by plain autograd in log space (the kernel's reference)."""
    ls_pos = F.logsigmoid(x)
    ls_neg = F.logsigmoid(-x)
    ce = -(y * ls_pos + (1 - y) * ls_neg)  # = binary_cross_entropy_with_logits(x, y)
    loss = ce if gamma == 0 else ce * torch.exp(gamma * _log_one_minus_pt(y, ls_pos, ls_neg))
    if alpha is not None:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return loss


def _pow(q: torch.Tensor, gamma: float) -> torch.Tensor:
    # q^gamma; 0^gamma = 0 for gamma > 0. pow has fast paths for these exponents.
    if gamma in (0.5, 1.0, 2.0, 3.0):
        return q.pow(gamma)
    return torch.exp(gamma * torch.log(q))


def _bce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # (1 - y) x - logsigmoid(x), PyTorch's own BCE-with-logits formula, with -logsigmoid(x)
    # as softplus(-x): no side buffer. softplus is linear past its threshold; at 50 (float64)
    # or 20 the dropped log1p(e^-t) is below half an ulp of t.
    threshold = 50.0 if x.dtype == torch.float64 else 20.0
    return F.softplus(-x, threshold=threshold).add_(x).addcmul_(y, x, value=-1)


def _alpha_t(y: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.mul(y, 2 * alpha - 1).add_(1 - alpha)  # alpha y + (1 - alpha)(1 - y)


class _BinaryFocal(torch.autograd.Function):
    """Elementwise sigmoid focal loss; backward recomputes from (input, target) only.

    q = 1 - p_t = y sigmoid(-x) + (1 - y) sigmoid(x): a sum of two non-negative terms, each
    sigmoid evaluated on its own side, so q keeps full relative precision as p_t -> 1 (no
    1 - p cancellation). ce = (1 - y) x - logsigmoid(x) is the BCE on logits. Then
    d/dx [a_t ce q^g] = a_t q^g [(p - y) + g ce (1 - 2y) p (1 - p) / q], where
    p (1 - p) / q <= 2 for every y in [0, 1]; where q underflows to 0, p (1 - p) does too, and
    the clamped denominator turns 0/0 into the true limit 0 (finite for every gamma >= 0).
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        y: torch.Tensor,
        gamma: float,
        alpha: float | None,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        ctx.gamma, ctx.alpha = gamma, alpha  # type: ignore[attr-defined]
        # in place throughout (forward runs without autograd): at most ~3 input-sized temporaries
        loss = _bce(x, y)
        if gamma != 0:
            q = _one_minus_pt(x, y)
            loss.mul_(_pow_(q, gamma))
            del q
        if alpha is not None:
            loss.mul_(_alpha_t(y, alpha))
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        x, y = ctx.saved_tensors  # type: ignore[attr-defined]
        gamma, alpha = ctx.gamma, ctx.alpha  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # create_graph=True: the same formula, out of place
            return _focal_grad_graph(x, y, gamma, alpha) * grad, None, None, None
        if gamma == 0:
            dx = torch.sigmoid(x).sub_(y)
        else:  # ordered so that at most four input-sized tensors are alive at once
            ce = _bce(x, y)
            ce.addcmul_(ce, y, value=-2)  # ce (1 - 2y)
            p = torch.sigmoid(x)
            q = torch.addcmul(p, p, y, value=-1)
            p_neg = torch.neg(x).sigmoid_()
            q.addcmul_(y, p_neg)  # 1 - p_t
            ce.mul_(p_neg.mul_(p))  # ce (1 - 2y) p (1 - p)
            del p_neg
            dx = p.sub_(y)
            q.clamp_min_(torch.finfo(q.dtype).tiny)  # 0/0 -> 0 where q underflows
            dx.add_(ce.div_(q), alpha=gamma).mul_(_pow_(q, gamma))
            del ce, q
        if alpha is not None:
            dx.mul_(_alpha_t(y, alpha))
        return dx.mul_(grad), None, None, None


def _one_minus_pt(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # q = (1 - y) sigmoid(x) + y sigmoid(-x), each sigmoid on its own side: full precision
    q = torch.sigmoid(x)
    q.addcmul_(q, y, value=-1)
    return q.addcmul_(y, torch.neg(x).sigmoid_())


def _pow_(q: torch.Tensor, gamma: float) -> torch.Tensor:
    # q^gamma in place (0^gamma = 0 for gamma > 0); pow has fast paths for these exponents
    if gamma in (0.5, 1.0, 2.0, 3.0):
        return q.pow_(gamma)
    return q.log_().mul_(gamma).exp_()


def _focal_grad_graph(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """d loss / d x out of place, so autograd can differentiate it again (gradgrad)."""
    p = torch.sigmoid(x)
    dx = p - y
    if gamma != 0:
        p_neg = torch.sigmoid(-x)
        q = p * (1 - y) + y * p_neg
        ratio = (p * p_neg) / q.clamp_min(torch.finfo(q.dtype).tiny)
        ce = (1 - y) * x - F.logsigmoid(x)
        dx = _pow(q, gamma) * (dx + gamma * ce * (1 - 2 * y) * ratio)
    if alpha is not None:
        dx = dx * _alpha_t(y, alpha)
    return dx


def binary_focal(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None
) -> torch.Tensor:
    """Elementwise sigmoid focal loss; the custom kernel unless the target needs a gradient."""
    if y.requires_grad:
        return binary_focal_reference(x, y, gamma, alpha)
    return _BinaryFocal.apply(x, y, gamma, alpha)  # type: ignore[no-untyped-call, no-any-return]


# -- reduced binary focal: one pass that returns the value and the gradient ----------------------
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
        ctx.save_for_backward(x, y, dx)  # type: ignore[arg-type]  # dx is set (need_grad)
        ctx.gamma, ctx.alpha, ctx.scale = gamma, alpha, scale  # type: ignore[attr-defined]
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None, None]:
        x, y, dx = ctx.saved_tensors  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            g = _focal_grad_graph(x, y, float(ctx.gamma), ctx.alpha)  # type: ignore[attr-defined]
            return g * (grad * ctx.scale), None, None, None, None, None  # type: ignore[attr-defined]
        if grad.device.type == "cpu" and float(grad) == 1.0:
            # loss.backward(): hand over the saved gradient as is (autograd copies it if the
            # graph is retained, so a second backward still sees it unchanged)
            return dx, None, None, None, None, None
        return dx * grad, None, None, None, None, None


def binary_focal_reduced(
    x: torch.Tensor, y: torch.Tensor, gamma: float, alpha: float | None, reduction: str
) -> torch.Tensor:
    """``mean`` or ``sum`` of :func:`binary_focal`; a fused path for 0/1 targets and integer
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
        return _BinaryFocalHard.apply(x, y, z, int(gamma), alpha, scale)  # type: ignore[no-untyped-call, no-any-return]
    return _hard_focal(x, y, z, int(gamma), alpha, scale, need_grad=False)[0]


# -- reduced multiclass focal (class-index targets): value and gradient in one pass ---------------
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


def _softmax_focal_grad_graph(
    x: torch.Tensor, t: torch.Tensor, gamma: int, w: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """The gradient of :func:`_softmax_focal_hard` out of place (differentiable again)."""
    logp = F.log_softmax(x, 1)
    t1 = t.unsqueeze(1)
    ell = logp.gather(1, t1).squeeze(1)
    p = ell.exp()
    u = 1 - p
    v = scale * u ** (gamma - 1) * (u - gamma * p * ell)
    if w is not None:
        v = v * w
    v1 = v.unsqueeze(1)
    return logp.exp() * v1 - torch.zeros_like(x).scatter_add(1, t1, v1)


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
        ctx.save_for_backward(x, t, w, dx)  # type: ignore[arg-type]  # w may be None
        ctx.gamma, ctx.scale = gamma, scale  # type: ignore[attr-defined]
        return loss

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        x, t, w, dx = ctx.saved_tensors  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # create_graph=True
            g = _softmax_focal_grad_graph(x, t, ctx.gamma, w, ctx.scale)  # type: ignore[attr-defined]
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
        return _SoftmaxFocalHard.apply(x, t, gamma, w, scale)  # type: ignore[no-untyped-call, no-any-return]
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
