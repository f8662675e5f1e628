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

__all__ = [
    "CTCParams",
    "CosineEmbeddingParams",
    "GaussianNLLParams",
    "HingeEmbeddingParams",
    "KLDivParams",
    "MarginRankingParams",
    "MultiMarginParams",
    "MultilabelMarginParams",
    "MultilabelSoftMarginParams",
    "PoissonNLLParams",
    "SoftMarginParams",
    "TripletMarginParams",
    "TripletMarginWithDistanceParams",
    "cosine_embedding",
    "ctc",
    "gaussian_nll",
    "hinge_embedding",
    "kl_div",
    "margin_ranking",
    "multi_margin",
    "multilabel_margin",
    "multilabel_soft_margin",
    "poisson_nll",
    "soft_margin",
    "triplet_margin",
    "triplet_margin_with_distance",
]
