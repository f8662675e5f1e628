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

import lossreg

from ._nn_likelihood import (
    CTCParams,
    GaussianNLLParams,
    KLDivParams,
    PoissonNLLParams,
    ctc,
    gaussian_nll,
    kl_div,
    poisson_nll,
)
from ._nn_margin import (
    CosineEmbeddingParams,
    HingeEmbeddingParams,
    MarginRankingParams,
    MultilabelMarginParams,
    MultilabelSoftMarginParams,
    MultiMarginParams,
    SoftMarginParams,
    TripletMarginParams,
    TripletMarginWithDistanceParams,
    cosine_embedding,
    hinge_embedding,
    margin_ranking,
    multi_margin,
    multilabel_margin,
    multilabel_soft_margin,
    soft_margin,
    triplet_margin,
    triplet_margin_with_distance,
)


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
