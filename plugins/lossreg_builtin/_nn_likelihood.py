"""torch.nn likelihood losses: KL divergence, Poisson and Gaussian NLL, CTC."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import (
    Params,
    Reduction,
    check_floating,
    check_same_device,
    check_same_shape,
)

from ._common import options, reduce, upcast
from ._nn_common import REDUCTION, _check_ndim, _fail, _shape

# ---------------------------------------------------------------------------------- kl_div


class KLDivParams(Params):
    log_target: bool = Field(False, description="target holds log-probabilities, not probabilities")
    reduction: Literal["mean", "sum", "none", "batchmean"] = Field(
        "mean",
        description="`batchmean` (sum / batch size) is the true KL divergence; `mean` divides by "
        "every element as PyTorch's default does; `sum`; `none` (input's shape)",
    )


def kl_div(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    log_target: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Kullback-Leibler divergence of log-probabilities; equals ``torch.nn.KLDivLoss``.

    KL(target || exp(input)) elementwise: target * (log target - input), or with
    ``log_target`` exp(target) * (target - input). ``reduction='mean'`` keeps PyTorch's
    per-element mean (without its warning); ``batchmean`` is the true KL averaged over the batch.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> logp = torch.tensor([[0.25, 0.75]]).log()
    >>> kl_div(logp, torch.tensor([[0.5, 0.5]]), reduction="batchmean")
    tensor(0.1438)
    """
    options(KLDivParams, "kl_div", locals(), local=True)
    check_same_shape("kl_div", input, target)
    x, t = upcast(input, target)
    if reduction == "batchmean":
        loss = F.kl_div(x, t, reduction="batchmean", log_target=log_target)
    else:  # PyTorch's 'mean' is the mean of the elementwise loss; computed so, without a warning
        loss = F.kl_div(x, t, reduction="none", log_target=log_target)
        loss = reduce(loss, reduction, "kl_div")
    return loss.to(input.dtype)


# ------------------------------------------------------------------------- poisson / gaussian


class PoissonNLLParams(Params):
    log_input: bool = Field(
        True, description="input is the log-rate (exp(input) - target*input); else the rate"
    )
    full: bool = Field(False, description="add the Stirling term log(target!) for target > 1")
    eps: float = Field(
        1e-8, ge=0, description="added to the rate inside log when log_input is false"
    )
    reduction: Reduction = REDUCTION


def poisson_nll(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    """Poisson negative log-likelihood; equals ``torch.nn.PoissonNLLLoss``.

    exp(input) - target * input (``log_input``), else
    input - target * log(input + eps); ``full`` adds Stirling's
    target*log(target) - target + 0.5*log(2*pi*target) where target > 1.

    With ``log_input`` the input is a log-rate, so a
    log-rate of 1e4 overflows exp exactly as in PyTorch (it is not a logit).

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> poisson_nll(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))
    tensor(0.8591)
    """
    options(PoissonNLLParams, "poisson_nll", locals(), local=True)
    check_same_shape("poisson_nll", input, target)
    x, t = upcast(input, target)
    out = F.poisson_nll_loss(x, t, log_input=log_input, full=full, eps=eps, reduction=reduction)
    return out.to(input.dtype)


class GaussianNLLParams(Params):
    full: bool = Field(False, description="add the constant 0.5*log(2*pi)")
    eps: float = Field(
        1e-6, gt=0, description="var is clamped below at eps (no gradient through the clamp)"
    )
    reduction: Reduction = REDUCTION


def gaussian_nll(
    input: torch.Tensor,
    target: torch.Tensor,
    var: torch.Tensor,
    *,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    """Gaussian negative log-likelihood with a predicted variance; equals GaussianNLLLoss.

    Nix and Weigend 1994: 0.5 * (log(max(var, eps)) + (input - target)^2 / max(var, eps)),
    plus 0.5*log(2*pi) if ``full``. Call order ``(input, target, var)``.

    Shape: input and target ``(*)``, equal (PyTorch would broadcast them; lossreg refuses);
    var ``(*)`` like input, or input's shape without its last dim, or input's shape with one
    dim set to 1 (homoscedastic, as PyTorch allows); var >= 0. ``none`` gives ``(*)``.

    >>> gaussian_nll(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0]), torch.tensor([1.0, 4.0]))
    tensor(0.5966)
    """
    options(GaussianNLLParams, "gaussian_nll", locals(), local=True)
    name = "gaussian_nll"
    check_same_shape(name, input, target)
    check_same_device(name, input, var, ("input", "var"))
    if var.shape != input.shape:
        drop_last = input.dim() >= 1 and var.shape == input.shape[:-1]
        one_dim = var.dim() == input.dim() and [
            v for i, v in zip(input.shape, var.shape, strict=True) if i != v
        ] == [1]
        if not (drop_last or one_dim):
            _fail(
                name,
                f"var has shape {_shape(var)} but input has shape {_shape(input)}; var must "
                "equal input's shape, drop its last dim, or be 1 in exactly one dim",
            )
    if var.numel() and bool((var < 0).any()):
        _fail(name, f"var must be >= 0, found {float(var.min())}")
    x, t, v = upcast(input, target, var)
    return F.gaussian_nll_loss(x, t, v, full=full, eps=eps, reduction=reduction).to(input.dtype)


# ------------------------------------------------------------------------------------- ctc


class CTCParams(Params):
    blank: int = Field(0, ge=0, description="index of the blank label, in [0, C)")
    zero_infinity: bool = Field(
        False, description="infinite losses (input too short for its target) become 0"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` of each sample's loss divided by its target length (PyTorch's "
        "definition), `sum`, or `none` ((N,))",
    )


def ctc(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Connectionist Temporal Classification loss; equals ``torch.nn.CTCLoss``.

    Graves et al. 2006: -log of the total probability of every alignment of ``targets`` to
    ``log_probs``. The gradient is PyTorch's, which is the gradient through the
    ``log_softmax`` that produced ``log_probs`` (so gradcheck it through that log_softmax).

    Shape: log_probs ``(T, N, C)`` (or ``(T, C)``) log-softmax outputs; targets ``(N, S)``
    padded or ``(sum(target_lengths),)`` concatenated (``(S,)`` unbatched), integer labels in
    ``[0, C)`` other than ``blank``; input_lengths and target_lengths ``(N,)`` (``()``
    unbatched). ``none`` gives ``(N,)``.

    >>> lp = torch.full((3, 1, 2), 0.5).log()
    >>> ctc(lp, torch.tensor([[1]]), torch.tensor([3]), torch.tensor([1]))
    tensor(0.2877)
    """
    options(CTCParams, "ctc", locals(), local=True)
    name = "ctc"
    check_floating(name, "log_probs", log_probs)
    _check_ndim(name, "log_probs", log_probs, (2, 3), "(T, N, C) or (T, C)")
    num_classes = log_probs.shape[-1]
    if blank >= num_classes:
        _fail(
            name, f"blank={blank} is outside [0, {num_classes}) for log_probs with C={num_classes}"
        )
    for arg, t in (("targets", targets), ("input_lengths", input_lengths)):
        check_same_device(name, log_probs, t, ("log_probs", arg))
    for arg, t in (("targets", targets), ("target_lengths", target_lengths)):
        if t.is_floating_point() or t.dtype == torch.bool:
            _fail(name, f"{arg} must be an integer tensor, got {t.dtype}")
    batched = log_probs.dim() == 3
    lengths_shape = (log_probs.shape[1],) if batched else ()
    for arg, t in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if tuple(t.shape) != lengths_shape:
            _fail(
                name,
                f"{arg} has shape {_shape(t)} but log_probs has shape {_shape(log_probs)}; "
                f"expected {lengths_shape} (one length per sample)",
            )
    _check_ctc_targets(targets, target_lengths, batched, num_classes, blank, log_probs)
    (lp,) = upcast(log_probs)
    out = F.ctc_loss(lp, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    return out.to(log_probs.dtype)


def _check_ctc_targets(
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    batched: bool,
    num_classes: int,
    blank: int,
    log_probs: torch.Tensor,
) -> None:
    name = "ctc"
    lengths = target_lengths.reshape(-1).long()
    if lengths.numel() and int(lengths.min()) < 0:
        _fail(name, f"target_lengths must be >= 0, found {int(lengths.min())}")
    if batched and targets.dim() == 2:
        if targets.shape[0] != log_probs.shape[1]:
            _fail(
                name,
                f"targets has shape {_shape(targets)} but log_probs has shape "
                f"{_shape(log_probs)}; expected (N, S) with N={log_probs.shape[1]}",
            )
        width = targets.shape[1]
        if lengths.numel() and int(lengths.max()) > width:
            _fail(name, f"target_lengths holds {int(lengths.max())} > S={width} of targets")
        # only the first target_lengths[i] labels of each row are read; padding may be anything
        used = targets[torch.arange(width, device=targets.device) < lengths[:, None]]
    elif targets.dim() == 1:
        total = int(lengths.sum()) if lengths.numel() else 0
        if total > targets.numel():
            _fail(
                name,
                f"target_lengths sum to {total} but targets has shape {_shape(targets)}",
            )
        used = targets[:total]
    else:
        layout = "(N, S) or (sum(target_lengths),)" if batched else "(S,)"
        _fail(name, f"targets must have shape {layout}, got {_shape(targets)}")
    if used.numel():
        lo, hi = int(used.min()), int(used.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            _fail(name, f"targets hold label {bad}, outside [0, {num_classes}) for C={num_classes}")
        if bool((used == blank).any()):
            _fail(name, f"targets hold the blank label {blank} within target_lengths")
