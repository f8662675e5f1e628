"""torch.nn margin, ranking, embedding and triplet losses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, cast

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import (
    Params,
    Reduction,
    TensorList,
    check_class_indices,
    check_dims,
    check_same_device,
    check_same_shape,
)

from ._common import options, reduce, upcast
from ._nn_common import REDUCTION, _as, _check_ndim, _check_weight, _fail, _shape

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
    options(MarginRankingParams, "margin_ranking", locals(), local=True)
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
    options(HingeEmbeddingParams, "hinge_embedding", locals(), local=True)
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
    options(MultilabelMarginParams, "multilabel_margin", locals(), local=True)
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
        outside = torch.compiler.disable(F.multilabel_margin_loss)  # type: ignore[no-untyped-call]  # untyped in torch
        return cast(torch.Tensor, outside(x, target, reduction=reduction))
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
    options(SoftMarginParams, "soft_margin", locals(), local=True)
    check_same_shape("soft_margin", input, target)
    x, y = upcast(input, target)
    z = -y * x
    loss = z.clamp_min(0) + torch.log1p(torch.exp(-z.abs()))
    return reduce(loss, reduction, "soft_margin").to(input.dtype)


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
    options(MultilabelSoftMarginParams, "multilabel_soft_margin", locals(), local=True)
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
    options(CosineEmbeddingParams, "cosine_embedding", locals(), local=True)
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
    options(MultiMarginParams, "multi_margin", locals(), local=True)
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


def _check_triplet(
    name: str, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
) -> None:
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
    options(TripletMarginParams, "triplet_margin", locals(), local=True)
    _check_triplet("triplet_margin", anchor, positive, negative)
    a, pos, neg = upcast(anchor, positive, negative)
    out = F.triplet_margin_loss(
        a, pos, neg, margin=margin, p=p, eps=eps, swap=swap, reduction=reduction
    )
    return out.to(anchor.dtype)


def _cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(x, y, dim=-1)  # dim=-1: (D,) triplets work too


# Named distances only: a config never names a callable or an import path.
DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "pairwise": F.pairwise_distance,
    "cosine": _cosine_distance,
}


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
    options(TripletMarginWithDistanceParams, "triplet_margin_with_distance", locals(), local=True)
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
