"""The rest of the ``torch.nn`` loss family, each equal to ``torch.nn.functional`` in values and
gradients, with its parameters validated by a schema and its shapes checked before any kernel.

Deliberate differences from PyTorch, each documented at the loss:

- shape mismatches are a :class:`~lossreg.LossregError` naming both shapes (PyTorch broadcasts
  ``kl_div``, ``gaussian_nll``'s input/target, ``margin_ranking``, ``soft_margin``... silently);
- half and bfloat16 are computed in float32 and returned in the input's dtype;
- ``kl_div`` with ``reduction='mean'`` gives PyTorch's value without PyTorch's warning;
- ``soft_margin`` uses the stable ``softplus`` form, so logits at +-1e4 give finite values
  (PyTorch's ``log1p(exp(-y x))`` overflows to ``inf``); elsewhere it matches to rounding;
- ``ctc`` refuses target labels outside ``[0, C)`` or equal to ``blank`` (PyTorch's CPU kernel
  reads them silently).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

import lossreg
from lossreg import (
    LossregError,
    Params,
    Reduction,
    TensorList,
    check_class_indices,
    check_dims,
    check_floating,
    check_same_device,
    check_same_shape,
)

from ._common import upcast

REDUCTION = Field("mean", description="`mean` over elements, `sum`, or `none` (see Shape:)")


def _shape(t: torch.Tensor) -> str:
    dims = tuple(int(d) for d in t.shape)
    return f"({dims[0]},)" if len(dims) == 1 else str(dims)


def _fail(loss: str, message: str) -> None:
    raise LossregError(f"{loss}: {message}")


def _check_ndim(loss: str, name: str, t: torch.Tensor, allowed: tuple[int, ...], layout: str):  # type: ignore[no-untyped-def]
    if t.dim() not in allowed:
        _fail(loss, f"{name} must have shape {layout}, got {_shape(t)}")


def _check_weight(loss: str, weight: torch.Tensor | None, num_classes: int) -> None:
    if weight is not None and weight.numel() != num_classes:
        _fail(
            loss,
            f"weight has {weight.numel()} entries but input has {num_classes} classes "
            "(last dim); give one weight per class",
        )


def _as(weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if weight is None else weight.to(dtype=like.dtype, device=like.device)


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
    check_same_shape("kl_div", input, target)
    x, t = upcast(input, target)
    if reduction == "batchmean":
        loss = F.kl_div(x, t, reduction="batchmean", log_target=log_target)
    else:  # PyTorch's 'mean' is the mean of the elementwise loss; computed so, without a warning
        loss = F.kl_div(x, t, reduction="none", log_target=log_target)
        loss = loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
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


def _check_ctc_targets(  # type: ignore[no-untyped-def]
    targets, target_lengths, batched, num_classes, blank, log_probs
):
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


# ------------------------------------------------------------------------- margin / ranking


class MarginRankingParams(Params):
    margin: float = Field(0.0, description="required gap between the two scores")
    reduction: Reduction = REDUCTION


def margin_ranking(
    input1: torch.Tensor,
    input2: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Margin ranking loss of two scores; equals ``torch.nn.MarginRankingLoss``.

    max(0, -y * (x1 - x2) + margin), y = 1 when ``input1`` should rank
    higher, -1 when ``input2`` should.

    Shape: input1, input2, target ``(N,)`` or ``()``, all equal; ``none`` gives ``(N,)``.

    >>> margin_ranking(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5]), torch.tensor([1.0, 1.0]))
    tensor(0.2500)
    """
    name = "margin_ranking"
    check_same_shape(name, input1, input2, ("input1", "input2"))
    check_same_shape(name, input1, target, ("input1", "target"))
    x1, x2, y = upcast(input1, input2, target)
    return F.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction).to(input1.dtype)


class HingeEmbeddingParams(Params):
    margin: float = Field(1.0, description="distances below margin are penalised when y = -1")
    reduction: Reduction = REDUCTION


def hinge_embedding(
    input: torch.Tensor, target: torch.Tensor, *, margin: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Hinge embedding loss; equals ``torch.nn.HingeEmbeddingLoss``.

    x where y = 1, max(0, margin - x) where y = -1 (``input`` is
    usually a distance).

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> hinge_embedding(torch.tensor([0.3, 0.4]), torch.tensor([1.0, -1.0]))
    tensor(0.4500)
    """
    check_same_shape("hinge_embedding", input, target)
    x, y = upcast(input, target)
    return F.hinge_embedding_loss(x, y, margin=margin, reduction=reduction).to(input.dtype)


class MultilabelMarginParams(Params):
    reduction: Reduction = REDUCTION


def multilabel_margin(
    input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Multi-label hinge loss; equals ``torch.nn.MultiLabelMarginLoss``.

    Sum over target labels j and non-target classes i of
    max(0, 1 - (x[j] - x[i])) / C.

    Shape: input ``(N, C)`` or ``(C,)``; target of the same shape, integer class indices,
    read up to the first -1; ``none`` gives ``(N,)`` (or ``()``).

    >>> multilabel_margin(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([[3, 0, -1, 1]]))
    tensor(0.8500)
    """
    name = "multilabel_margin"
    _check_ndim(name, "input", input, (1, 2), "(N, C) or (C,)")
    check_same_shape(name, input, target)
    if target.is_floating_point() or target.dtype == torch.bool:
        _fail(name, f"target must be an integer tensor of class indices, got {target.dtype}")
    num_classes = input.shape[-1]
    if target.numel():
        lo, hi = int(target.min()), int(target.max())
        if lo < -1 or hi >= num_classes:
            bad = lo if lo < -1 else hi
            _fail(
                name,
                f"target holds {bad}, outside [-1, {num_classes}) for input with "
                f"{num_classes} classes (-1 ends a sample's labels)",
            )
    (x,) = upcast(input)
    return _multilabel_margin_eager(x, target, reduction).to(input.dtype)


# torch.compile's decomposition of this op sums padded target slots (after the first -1) as if
# they were class 0: wrong values and gradients (pytorch/pytorch#141017, #185464; fixed after
# torch 2.13). Running PyTorch's own kernel outside the graph keeps compiled == eager.
# The disabled wrapper is made on first use under compile: `torch.compiler.disable` imports
# torch._dynamo (about 2 s), which plain eager users should never pay for at plugin load.
def _multilabel_margin_eager(x: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    if torch.compiler.is_compiling():  # torch._dynamo is loaded already when this is true
        outside = torch.compiler.disable(F.multilabel_margin_loss)
        return outside(x, target, reduction=reduction)
    return F.multilabel_margin_loss(x, target, reduction=reduction)


class SoftMarginParams(Params):
    reduction: Reduction = REDUCTION


def soft_margin(
    input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Two-class logistic loss, labels in {1, -1}; equals ``torch.nn.SoftMarginLoss``.

    log(1 + exp(-y x)), equal to PyTorch's to rounding. Computed as max(z, 0) + log1p(exp(-|z|)),
    z = -y x, so logits at +-1e4 stay finite where PyTorch's ``log1p(exp(z))`` gives inf.

    Shape: input and target ``(*)``, equal; ``none`` gives ``(*)``.

    >>> soft_margin(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))
    tensor(0.7201)
    """
    check_same_shape("soft_margin", input, target)
    x, y = upcast(input, target)
    z = -y * x
    loss = z.clamp_min(0) + torch.log1p(torch.exp(-z.abs()))
    out = loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
    return out.to(input.dtype)


class MultilabelSoftMarginParams(Params):
    weight: TensorList | None = Field(None, description="one weight per class (C entries)")
    reduction: Reduction = Field(
        "mean", description="`mean` over samples, `sum`, or `none` (input's shape without C)"
    )


def multilabel_soft_margin(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-label one-versus-all logistic loss; equals MultiLabelSoftMarginLoss.

    -mean over classes of w_c (y log sigmoid(x) + (1 - y) log sigmoid(-x)).

    Shape: input ``(N, C)`` (any ``(*, C)``) logits; target of the same shape in [0, 1];
    ``none`` gives ``(N,)`` (input's shape without C).

    >>> multilabel_soft_margin(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    tensor(1.4100)
    """
    name = "multilabel_soft_margin"
    check_dims(name, "input", input, 1, "(N, C), classes last")
    check_same_shape(name, input, target)
    _check_weight(name, weight, input.shape[-1])
    x, y = upcast(input, target)
    out = F.multilabel_soft_margin_loss(x, y, weight=_as(weight, x), reduction=reduction)
    return out.to(input.dtype)


class CosineEmbeddingParams(Params):
    margin: float = Field(
        0.0, ge=-1, le=1, description="dissimilar pairs are penalised above this cosine"
    )
    reduction: Reduction = REDUCTION


def cosine_embedding(
    input1: torch.Tensor,
    input2: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cosine embedding loss of pairs; equals ``torch.nn.CosineEmbeddingLoss``.

    1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where
    y = -1.

    Shape: input1 and input2 ``(N, D)`` or ``(D,)``, equal; target ``(N,)`` or ``()``;
    ``none`` gives ``(N,)``.

    >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> cosine_embedding(a, torch.tensor([[1.0, 1.0], [0.0, 1.0]]), torch.tensor([1.0, -1.0]))
    tensor(0.1464)
    """
    name = "cosine_embedding"
    _check_ndim(name, "input1", input1, (1, 2), "(N, D) or (D,)")
    check_same_shape(name, input1, input2, ("input1", "input2"))
    check_same_device(name, input1, target, ("input1", "target"))
    if target.shape != input1.shape[:-1]:
        _fail(
            name,
            f"target has shape {_shape(target)} but input1 has shape {_shape(input1)}; "
            f"expected {tuple(input1.shape[:-1])} (one label per pair)",
        )
    x1, x2, y = upcast(input1, input2, target)
    return F.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction).to(input1.dtype)


class MultiMarginParams(Params):
    p: Literal[1, 2] = Field(1, description="1 for the hinge, 2 for the squared hinge")
    margin: float = Field(1.0, description="required gap between the true class and the others")
    weight: TensorList | None = Field(None, description="one weight per class (C entries)")
    reduction: Reduction = Field("mean", description="`mean` over samples, `sum`, or `none` ((N,))")


def multi_margin(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-class hinge loss; equals ``torch.nn.MultiMarginLoss``.

    Weston and Watkins 1999 (as in PyTorch): per sample, the sum over i != y of
    w_y max(0, margin - x[y] + x[i])^p, divided by C.

    Shape: input ``(N, C)`` or ``(C,)``; target ``(N,)`` or ``()`` class indices in [0, C);
    ``none`` gives ``(N,)``.

    >>> multi_margin(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([3]))
    tensor(0.3250)
    """
    name = "multi_margin"
    _check_ndim(name, "input", input, (1, 2), "(N, C) or (C,)")
    check_same_device(name, input, target)
    if target.shape != input.shape[:-1]:
        _fail(
            name,
            f"target has shape {_shape(target)} but input has shape {_shape(input)}; expected "
            f"{tuple(input.shape[:-1])} (one class index per sample)",
        )
    check_class_indices(name, target, input.shape[-1])
    _check_weight(name, weight, input.shape[-1])
    (x,) = upcast(input)
    out = F.multi_margin_loss(
        x, target, p=p, margin=margin, weight=_as(weight, x), reduction=reduction
    )
    return out.to(input.dtype)


# ---------------------------------------------------------------------------------- triplets


def _check_triplet(name: str, anchor, positive, negative) -> None:  # type: ignore[no-untyped-def]
    _check_ndim(name, "anchor", anchor, (1, 2), "(N, D) or (D,)")
    check_same_shape(name, anchor, positive, ("anchor", "positive"))
    check_same_shape(name, anchor, negative, ("anchor", "negative"))


class TripletMarginParams(Params):
    margin: float = Field(1.0, gt=0, description="required gap d(a, n) - d(a, p); > 0")
    p: float = Field(2.0, gt=0, description="degree of the pairwise p-norm distance")
    eps: float = Field(1e-6, ge=0, description="added to the difference inside the norm")
    swap: bool = Field(
        False, description="distance swap (Balntas et al. 2016): use min(d(a, n), d(p, n))"
    )
    reduction: Reduction = Field("mean", description="`mean`, `sum`, or `none` ((N,))")


def triplet_margin(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet margin loss with a p-norm distance; equals ``torch.nn.TripletMarginLoss``.

    Schroff et al. 2015 (FaceNet), Balntas et al. 2016: max(0, d(a, p) - d(a, n) + margin)
    with d(x, y) = ||x - y + eps||_p.

    Shape: anchor, positive, negative ``(N, D)`` or ``(D,)``, all equal; ``none`` gives
    ``(N,)``.

    >>> a = torch.tensor([[0.0, 0.0]])
    >>> triplet_margin(a, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.5]]), eps=0.0)
    tensor(0.5000)
    """
    _check_triplet("triplet_margin", anchor, positive, negative)
    a, pos, neg = upcast(anchor, positive, negative)
    out = F.triplet_margin_loss(
        a, pos, neg, margin=margin, p=p, eps=eps, swap=swap, reduction=reduction
    )
    return out.to(anchor.dtype)


def _cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(x, y, dim=-1)  # dim=-1: (D,) triplets work too


# Named distances only: a config never names a callable or an import path.
DISTANCES = {"pairwise": F.pairwise_distance, "cosine": _cosine_distance}


class TripletMarginWithDistanceParams(Params):
    distance_function: Literal["pairwise", "cosine"] = Field(
        "pairwise",
        description="a named distance: `pairwise` (F.pairwise_distance, Euclidean with eps "
        "1e-6, PyTorch's default) or `cosine` (1 - cosine similarity). Callables and import "
        "paths are not accepted from a config; register a new loss for another distance",
    )
    margin: float = Field(1.0, gt=0, description="required gap d(a, n) - d(a, p); > 0")
    swap: bool = Field(False, description="distance swap: use min(d(a, n), d(p, n))")
    reduction: Reduction = Field("mean", description="`mean`, `sum`, or `none` ((N,))")


def triplet_margin_with_distance(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    *,
    distance_function: str = "pairwise",
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet margin loss with a named distance; equals TripletMarginWithDistanceLoss.

    max(0, d(a, p) - d(a, n) + margin).
    Equals ``torch.nn.TripletMarginWithDistanceLoss`` with ``distance_function`` None
    (``pairwise``) or ``lambda x, y: 1 - F.cosine_similarity(x, y)`` (``cosine``). Only named
    distances exist: nothing in a config is imported or called.

    Shape: anchor, positive, negative ``(N, D)`` or ``(D,)``, all equal; ``none`` gives
    ``(N,)``.

    >>> a = torch.tensor([[1.0, 0.0]])
    >>> pos, neg = torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]])
    >>> triplet_margin_with_distance(a, pos, neg, distance_function="cosine")
    tensor(0.2929)
    """
    name = "triplet_margin_with_distance"
    if distance_function not in DISTANCES:
        _fail(
            name, f"distance_function must be one of {sorted(DISTANCES)}, got {distance_function!r}"
        )
    _check_triplet(name, anchor, positive, negative)
    a, pos, neg = upcast(anchor, positive, negative)
    out = F.triplet_margin_with_distance_loss(
        a,
        pos,
        neg,
        distance_function=DISTANCES[distance_function],
        margin=margin,
        swap=swap,
        reduction=reduction,
    )
    return out.to(anchor.dtype)


@lossreg.hookimpl
def register_losses(register):  # type: ignore[no-untyped-def]
    cls, reg, metric = ("classification",), ("regression",), ("metric_learning",)
    register("kl_div", kl_div, params=KLDivParams, aliases=("KLDivLoss",), tags=cls)
    register(
        "poisson_nll", poisson_nll, params=PoissonNLLParams, aliases=("PoissonNLLLoss",), tags=reg
    )
    register(
        "gaussian_nll",
        gaussian_nll,
        params=GaussianNLLParams,
        aliases=("GaussianNLLLoss",),
        tags=reg,
    )
    register("ctc", ctc, params=CTCParams, aliases=("CTCLoss",), tags=("sequence",))
    register(
        "margin_ranking",
        margin_ranking,
        params=MarginRankingParams,
        aliases=("MarginRankingLoss",),
        tags=metric,
    )
    register(
        "hinge_embedding",
        hinge_embedding,
        params=HingeEmbeddingParams,
        aliases=("HingeEmbeddingLoss",),
        tags=metric,
    )
    register(
        "multilabel_margin",
        multilabel_margin,
        params=MultilabelMarginParams,
        aliases=("MultiLabelMarginLoss",),
        tags=cls,
    )
    register(
        "soft_margin", soft_margin, params=SoftMarginParams, aliases=("SoftMarginLoss",), tags=cls
    )
    register(
        "multilabel_soft_margin",
        multilabel_soft_margin,
        params=MultilabelSoftMarginParams,
        aliases=("MultiLabelSoftMarginLoss",),
        tags=cls,
    )
    register(
        "cosine_embedding",
        cosine_embedding,
        params=CosineEmbeddingParams,
        aliases=("CosineEmbeddingLoss",),
        tags=metric,
    )
    register(
        "multi_margin",
        multi_margin,
        params=MultiMarginParams,
        aliases=("MultiMarginLoss",),
        tags=cls,
    )
    register(
        "triplet_margin",
        triplet_margin,
        params=TripletMarginParams,
        aliases=("TripletMarginLoss",),
        tags=metric,
    )
    register(
        "triplet_margin_with_distance",
        triplet_margin_with_distance,
        params=TripletMarginWithDistanceParams,
        aliases=("TripletMarginWithDistanceLoss",),
        tags=metric,
    )
