"""Classification losses: cross-entropy, NLL and BCE (equal to ``torch.nn``), weighted
cross-entropy, focal (Lin et al. 2017) and the 0-1 loss.

One module per idea, gathered here (the ``classification`` plugin's family module):
:mod:`._cross_entropy` (class-index targets: cross-entropy, NLL, 0-1), :mod:`._binary_ce`
(BCE, weighted BCE), :mod:`._focal` (focal; its math in :mod:`._focal_sigmoid` and
:mod:`._focal_softmax`), and the checks they share in :mod:`._class_common`.
"""

from __future__ import annotations

from ._binary_ce import BCEParams, WeightedCEParams, bce, weighted_cross_entropy
from ._class_common import ClassificationParams
from ._cross_entropy import (
    CrossEntropyParams,
    NLLParams,
    ZeroOneParams,
    cross_entropy,
    nll,
    zero_one,
)
from ._focal import FocalParams, focal

__all__ = [
    "BCEParams",
    "ClassificationParams",
    "CrossEntropyParams",
    "FocalParams",
    "NLLParams",
    "WeightedCEParams",
    "ZeroOneParams",
    "bce",
    "cross_entropy",
    "focal",
    "nll",
    "weighted_cross_entropy",
    "zero_one",
]
