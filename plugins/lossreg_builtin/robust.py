"""Robust regression losses on the residual d = input - target: the M-estimators of kornia
(charbonnier, cauchy, geman_mcclure, welsch), log-cosh and the Wing loss.

The four M-estimators are Barron's general robust loss (Barron 2019, "A General and Adaptive
Robust Loss Function", CVPR) at fixed shapes and equal kornia's ``charbonnier_loss``,
``cauchy_loss``, ``geman_mcclure_loss`` and ``welsch_loss`` (values and gradients) at
``scale`` 1, kornia's only scale; ``scale: c`` equals kornia on ``input / c, target / c``.
Differences, deliberate: ``reduction`` defaults to ``mean`` (kornia's to ``none``); half and
bfloat16 are computed in float32 and returned in the input's dtype (as kornia does).

Every loss here runs on :func:`~lossreg_builtin._residual.residual_loss`: for ``mean``/``sum``
the gradient is formed in the forward pass and is the only tensor kept for backward.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field, model_validator

from lossreg import Params, Reduction, check_floating, check_same_shape

from ._common import options
from ._residual import Rho, residual_loss

__all__ = ["cauchy", "charbonnier", "geman_mcclure", "log_cosh", "welsch", "wing"]

REDUCTION: Any = Field("mean", description="`mean` over elements, `sum`, or `none` (input's shape)")


class ResidualParams(Params):
    reduction: Reduction = REDUCTION


class ScaledParams(ResidualParams):
    scale: float = Field(
        1.0,
        gt=0,
        le=1e30,
        description="c: residuals are measured in units of c (kornia's losses are c = 1)",
    )


def _check(name: str, input: torch.Tensor, target: torch.Tensor) -> None:
    check_same_shape(name, input, target)
    check_floating(name, "input", input)


# -- rho and rho' (u = d / c). Values need no autograd; derivatives are out of place. ----------
def _charbonnier(d: torch.Tensor, c: float) -> torch.Tensor:
    # sqrt(u^2 + 1) - 1 = u^2 / (sqrt(u^2 + 1) + 1): no cancellation at small u; written as
    # |u| (|u| / (hypot + 1)) so that u^2 never overflows
    a = (d / c).abs_() if c != 1.0 else d.abs()
    return torch.hypot(a, torch.ones((), dtype=a.dtype)).add_(1).reciprocal_().mul_(a).mul_(a)


def _charbonnier_grad(d: torch.Tensor, c: float) -> torch.Tensor:
    u = d / c
    return u / (torch.hypot(u, torch.ones((), dtype=u.dtype)) * c)


def _cauchy(d: torch.Tensor, c: float) -> torch.Tensor:
    return torch.square(d / c).mul_(0.5).log1p_()


def _cauchy_grad(d: torch.Tensor, c: float) -> torch.Tensor:
    u = d / c
    return u / ((0.5 * u * u + 1) * c)


def _geman_mcclure(d: torch.Tensor, c: float) -> torch.Tensor:
    # 2 u^2 / (u^2 + 4) as 2 / (1 + 4 / u^2): 0 at u = 0, 2 (not inf/inf) where u^2 overflows
    return torch.square(d / c).reciprocal_().mul_(4).add_(1).reciprocal_().mul_(2)


def _geman_mcclure_grad(d: torch.Tensor, c: float) -> torch.Tensor:
    u = d / c
    return 16 * u / ((u * u + 4) ** 2 * c)


def _welsch(d: torch.Tensor, c: float) -> torch.Tensor:
    return torch.square(d / c).mul_(-0.5).expm1_().neg_()  # expm1: no cancellation at small u


def _welsch_grad(d: torch.Tensor, c: float) -> torch.Tensor:
    u = d / c
    return u * torch.exp(-0.5 * u * u) / c


LOG2 = math.log(2.0)


def _log_cosh(d: torch.Tensor) -> torch.Tensor:
    # |d| < 1: log1p(cosh d - 1) with cosh d - 1 = 2 sinh^2(d/2) (no cancellation);
    # otherwise |d| + log1p(exp(-2|d|)) - log 2 (no overflow: cosh(1e4) is inf even in float64)
    a = d.abs()
    small = torch.sinh(a * 0.5).square_().mul_(2).log1p_()
    large = torch.exp(-2 * a).log1p_().add_(a).sub_(LOG2)
    return torch.where(a < 1, small, large)


def _log_cosh_grad(d: torch.Tensor) -> torch.Tensor:
    return torch.tanh(d)


def _wing(d: torch.Tensor, w: float, e: float) -> torch.Tensor:
    a = d.abs()
    return torch.where(a < w, torch.log1p(a / e).mul_(w), a - (w - w * math.log1p(w / e)))


def _wing_grad(d: torch.Tensor, w: float, e: float) -> torch.Tensor:
    a = d.abs()
    return torch.sign(d) * torch.where(a < w, w / (e + a), torch.ones_like(a))


# -- fused value and gradient for mean/sum: d is overwritten, at most 3 more buffers ----------
def _charbonnier_fused(
    d: torch.Tensor, scale: float, c: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if c != 1.0:
        d.div_(c)
    h = torch.hypot(d, torch.ones((), dtype=d.dtype, device=d.device))  # sqrt(u^2 + 1)
    a = d.abs()
    v = torch.add(h, 1).reciprocal_().mul_(a)  # |u| / (h + 1)
    total = torch.dot(a.reshape(-1), v.reshape(-1)) * scale
    del a, v
    return total, d.div_(h).mul_(scale / c)  # u / h


def _cauchy_fused(d: torch.Tensor, scale: float, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    if c != 1.0:
        d.div_(c)
    s = torch.mul(d, d).mul_(0.5)
    t = torch.add(s, 1)
    total = s.log1p_().sum() * scale
    del s
    return total, torch.addcdiv(
        torch.zeros((), dtype=d.dtype, device=d.device), d, t, value=scale / c, out=d
    )


def _geman_mcclure_fused(
    d: torch.Tensor, scale: float, c: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if c != 1.0:
        d.div_(c)
    s = torch.mul(d, d).clamp_(max=torch.finfo(d.dtype).max)  # inf * 0 would be NaN below
    r = torch.add(s, 4).reciprocal_()  # 1 / (u^2 + 4)
    total = torch.dot(s.reshape(-1), r.reshape(-1)) * (2 * scale)
    del s
    return total, d.mul_(r).mul_(r).mul_(16 * scale / c)


def _welsch_fused(d: torch.Tensor, scale: float, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    if c != 1.0:
        d.div_(c)
    s = torch.mul(d, d).mul_(-0.5)
    g = torch.exp(s)
    total = s.expm1_().sum() * -scale
    del s
    return total, torch.mul(d, g, out=d).mul_(scale / c)


# -- the losses ------------------------------------------------------------------------------
def charbonnier(
    input: torch.Tensor, target: torch.Tensor, *, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Charbonnier (L1-L2) loss, sqrt((d/c)^2 + 1) - 1, with d = input - target.

    Charbonnier et al. 1994, "Two deterministic half-quadratic regularization algorithms for
    computed imaging"; Barron 2019 (alpha = 1). Quadratic for |d| << c, linear beyond. Equals
    kornia's ``charbonnier_loss`` at c = 1 (the loss on d/c for other c), computed as
    u^2 / (sqrt(u^2 + 1) + 1): exact at small residuals, no overflow at large ones.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> charbonnier(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]))
    tensor(1.2882)
    """
    options(ScaledParams, "charbonnier", locals(), local=True)
    _check("charbonnier", input, target)
    return residual_loss(
        input, target, Rho(_charbonnier, _charbonnier_grad, (scale,), _charbonnier_fused), reduction
    )


def cauchy(
    input: torch.Tensor, target: torch.Tensor, *, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Cauchy (Lorentzian) loss, log(1 + (d/c)^2 / 2), with d = input - target.

    Black and Anandan 1996; Barron 2019 (alpha = 0). Grows like log |d|: far outliers barely
    pull. Equals kornia's ``cauchy_loss`` at c = 1.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> cauchy(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]))
    tensor(1.0551)
    """
    options(ScaledParams, "cauchy", locals(), local=True)
    _check("cauchy", input, target)
    return residual_loss(
        input, target, Rho(_cauchy, _cauchy_grad, (scale,), _cauchy_fused), reduction
    )


def geman_mcclure(
    input: torch.Tensor, target: torch.Tensor, *, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Geman-McClure loss, 2 (d/c)^2 / ((d/c)^2 + 4), with d = input - target.

    Geman and McClure 1985; Barron 2019 (alpha = -2). Bounded by 2: an outlier's gradient
    vanishes. Equals kornia's ``geman_mcclure_loss`` at c = 1.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> geman_mcclure(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]))
    tensor(0.8923)
    """
    options(ScaledParams, "geman_mcclure", locals(), local=True)
    _check("geman_mcclure", input, target)
    rho = Rho(_geman_mcclure, _geman_mcclure_grad, (scale,), _geman_mcclure_fused)
    return residual_loss(input, target, rho, reduction)


def welsch(
    input: torch.Tensor, target: torch.Tensor, *, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Welsch (Leclerc) loss, 1 - exp(-(d/c)^2 / 2), with d = input - target.

    Dennis and Welsch 1978; Barron 2019 (alpha -> -inf). Bounded by 1, computed as
    -expm1(-u^2/2) (no cancellation at small residuals). Equals kornia's ``welsch_loss`` at
    c = 1.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> welsch(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0]))
    tensor(0.6912)
    """
    options(ScaledParams, "welsch", locals(), local=True)
    _check("welsch", input, target)
    return residual_loss(
        input, target, Rho(_welsch, _welsch_grad, (scale,), _welsch_fused), reduction
    )


def log_cosh(input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Log-cosh loss, log(cosh(d)), with d = input - target.

    About d^2 / 2 for small |d| and |d| - log 2 for large (a smooth Huber with delta 1; e.g.
    Chen et al. 2019, "Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder").
    Computed stably: log1p(2 sinh^2(d/2)) below |d| = 1, |d| + log1p(exp(-2|d|)) - log 2
    above, so |d| = 1e4 gives 1e4 - log 2 (cosh itself overflows there); the gradient is
    tanh(d).

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> log_cosh(torch.tensor([0.0, 1e4]), torch.tensor([1.0, 0.0]))
    tensor(4999.8701)
    """
    options(ResidualParams, "log_cosh", locals(), local=True)
    _check("log_cosh", input, target)
    return residual_loss(input, target, Rho(_log_cosh, _log_cosh_grad), reduction)


class WingParams(ResidualParams):
    width: float = Field(10.0, gt=0, le=1e30, description="w: where the log part turns linear")
    curvature: float = Field(
        2.0, gt=0, le=1e30, description="epsilon: curvature of the log part (smaller: sharper)"
    )

    @model_validator(mode="after")
    def _finite_constant(self) -> WingParams:
        if not math.isfinite(self.width - self.width * math.log1p(self.width / self.curvature)):
            raise ValueError("width and curvature give a non-finite offset C; use smaller width")
        return self


def wing(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    width: float = 10.0,
    curvature: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Wing loss (Feng et al. 2018, "Wing Loss for Robust Facial Landmark Localisation with
    Convolutional Neural Networks", CVPR), for landmark regression.

    w ln(1 + |d|/epsilon) if |d| < w, else |d| - C, with C = w - w ln(1 + w/epsilon) (so the
    two pieces meet at |d| = w); d = input - target, w = ``width``, epsilon = ``curvature``.
    Small and medium errors weigh more than under L1.

    Shape: input and target ``(*)`` (e.g. ``(N, L, 2)`` landmark coordinates), equal;
    ``none`` gives ``(*)``.

    >>> wing(torch.tensor([1.0, 20.0]), torch.tensor([0.0, 0.0]))
    tensor(15.9861)
    """
    options(WingParams, "wing", locals(), local=True)
    _check("wing", input, target)
    return residual_loss(input, target, Rho(_wing, _wing_grad, (width, curvature)), reduction)
