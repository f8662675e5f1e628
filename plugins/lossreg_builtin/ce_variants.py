"""Cross-entropy variants: top-k / OHEM hard-example cross-entropy and Poly-1."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from lossreg import LossregError, Params, Reduction, TensorList, check_dims

from ._class_common import _check_class_target, _class_weight
from ._common import options, upcast

__all__ = ["poly", "topk_ce"]

WEIGHT: Any = Field(None, description="per-class weight, a list of C numbers (rescales each class)")
IGNORE: Any = Field(
    -100, description="target class index whose elements count nowhere (not even in k percent)"
)


def _indices(name: str, input: torch.Tensor, target: torch.Tensor, ignore_index: int) -> int:
    check_dims(name, "input", input, 2, "(N, C, *) logits")
    if target.is_floating_point():
        raise LossregError(
            f"{name}: target must hold class indices (an integer tensor (N, *)), got {target.dtype}"
        )
    return _check_class_target(name, input, target, ignore_index)


def _element_ce(
    name: str,
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    label_smoothing: float,
) -> tuple[int, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """What topk_ce and poly start from: the class count, the (float32 for half) logits, the
    class weights, per-element cross-entropy (0 where ignored) and the non-ignored mask."""
    c = _indices(name, input, target, ignore_index)
    (x,) = upcast(input)
    w = _class_weight(name, weight, c, x)
    ce = F.cross_entropy(
        x, target, weight=w, ignore_index=ignore_index, reduction="none",
        label_smoothing=label_smoothing,
    )  # fmt: skip
    return c, x, w, ce, target != ignore_index


# -- top-k / OHEM cross-entropy -------------------------------------------------------------------
class TopKParams(Params):
    k: float = Field(
        10.0, gt=0, le=100, description="percent of the (non-ignored) elements kept, the hardest"
    )
    thresh: float | None = Field(
        None,
        gt=0,
        le=1,
        description="OHEM instead of top-k: keep elements whose true-class probability is "
        "below thresh (mmseg's OHEMPixelSampler)",
    )
    min_kept: int = Field(
        0,
        ge=0,
        le=2**62,
        description="with thresh: keep at least this many per sample (the hardest first)",
    )
    weight: TensorList | None = WEIGHT
    ignore_index: int = IGNORE
    label_smoothing: float = Field(
        0.0, ge=0, le=1, description="mix the target with the uniform distribution (as CE)"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over the kept elements, `sum` over them, or `none` ((N, *), 0 at "
        "elements not kept)",
    )

    @model_validator(mode="after")
    def _one_rule(self) -> TopKParams:
        if self.thresh is None and self.min_kept != 0:
            raise ValueError("min_kept applies with thresh (OHEM); top-k mode keeps k percent")
        if self.thresh is not None and self.k != 10.0:
            raise ValueError("k applies without thresh; with thresh, set min_kept instead")
        return self


def topk_ce(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    k: float = 10.0,
    thresh: float | None = None,
    min_kept: int = 0,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hard-example cross-entropy: CE averaged over the hardest elements only.

    Per element, CE_i = ``cross_entropy(reduction='none')`` (with ``weight`` and
    ``label_smoothing``, so a weighted CE selects and averages weighted values, as nnU-Net).
    Elements whose target is ``ignore_index`` count nowhere, not even in the k percent.

    - top-k (default; nnU-Net's ``TopKLoss``, Wu et al. 2016 "Bridging category-level and
      instance-level semantic image segmentation"): the floor(n k / 100) largest CE_i of the n
      non-ignored elements of the batch (at least 1), averaged. nnU-Net counts ignored
      elements in n (with CE 0); with none ignored the two agree.
    - OHEM (``thresh``; Shrivastava et al. 2016, mmseg's ``OHEMPixelSampler``): the
      elements whose softmax probability of the true class is below ``thresh``, and at least
      the ``min_kept`` x N least probable ones. mmseg's decode head then averages over every
      pixel (kept or not); ours averages over the kept ones.

    The selection carries no gradient (as in both references); the kept CE terms do. NaN
    input is always kept (the loss is NaN). No element kept, or an empty batch, gives 0.

    Shape: input ``(N, C, *)`` logits; target ``(N, *)`` class indices; ``none`` gives
    ``(N, *)`` with 0 where an element is not kept.

    >>> x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 0.0]])
    >>> topk_ce(x, torch.tensor([0, 0, 0, 0]), k=50)
    tensor(1.4100)
    """
    options(TopKParams, "topk_ce", locals(), local=True)
    c, x, w, ce, valid = _element_ce(
        "topk_ce", input, target, weight, ignore_index, label_smoothing
    )
    with torch.no_grad():
        if thresh is None:
            keep = _topk_mask(ce.detach(), valid, k)
        else:
            keep = _ohem_mask(x.detach(), target, valid, thresh, min_kept * int(x.shape[0]))
    kept = torch.where(keep, ce, torch.zeros_like(ce))
    if reduction == "none":
        return kept.to(input.dtype)
    total = kept.sum()
    if reduction == "mean":
        total = total / keep.sum().clamp(min=1)
    return total.to(input.dtype)


def _topk_mask(ce: torch.Tensor, valid: torch.Tensor, k: float) -> torch.Tensor:
    n = int(valid.sum())
    keep = torch.zeros_like(valid)
    if n == 0:
        return keep
    kept = max(1, int(n * k / 100))  # nnU-Net's int(num_voxels * k / 100), at least one
    # ignored elements rank last; NaN ranks first (topk orders NaN above every number)
    scores = torch.where(valid, ce, torch.full_like(ce, float("-inf"))).reshape(-1)
    idx = torch.topk(scores, kept, sorted=False).indices
    return keep.reshape(-1).index_fill_(0, idx, True).reshape(valid.shape)


def _ohem_mask(
    x: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, thresh: float, min_kept: int
) -> torch.Tensor:
    safe = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(1)
    prob = F.softmax(x, dim=1).gather(1, safe).squeeze(1)
    keep = valid & ((prob < thresh) | prob.isnan())
    want = min(min_kept, int(valid.sum()))
    if int(keep.sum()) < want:  # the `want` least probable true classes
        scores = torch.where(valid, prob, torch.full_like(prob, float("inf"))).reshape(-1)
        idx = torch.topk(scores, want, largest=False, sorted=False).indices
        keep = keep.reshape(-1).index_fill_(0, idx, True).reshape(valid.shape)
    return keep


# -- Poly-1 --------------------------------------------------------------------------------------
class PolyParams(Params):
    epsilon: float = Field(
        1.0, ge=-1, le=1e6, description="weight of the first polynomial term (1 - p_t); >= -1"
    )
    weight: TensorList | None = WEIGHT
    ignore_index: int = Field(
        -100, description="target class index whose elements add nothing to the loss or its mean"
    )
    label_smoothing: float = Field(
        0.0, ge=0, le=1, description="smooth the one-hot target (CE and p_t both use it)"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` (weighted over non-ignored elements, as cross_entropy), `sum`, or "
        "`none` ((N, *))",
    )


def poly(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    epsilon: float = 1.0,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Poly-1 loss (Leng et al. 2022, "PolyLoss: A Polynomial Expansion Perspective of
    Classification Loss Functions", ICLR): CE + epsilon (1 - p_t).

    p_t = sum_c t_c softmax(input)_c with t the one-hot target, smoothed by
    ``label_smoothing`` as in the paper's code (t = (1 - e) onehot + e / C). CE is
    ``cross_entropy`` with the same ``weight``, ``ignore_index`` and ``label_smoothing``; the
    poly term of an element is weighted by its class's weight w_y, and ``mean`` divides by the
    sum of w_y over non-ignored elements, so epsilon = 0 is exactly ``cross_entropy``.

    Shape: input ``(N, C, *)`` logits; target ``(N, *)`` class indices; ``none`` gives
    ``(N, *)``.

    >>> poly(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
    tensor(0.3261)
    """
    options(PolyParams, "poly", locals(), local=True)
    c, x, w, ce, valid = _element_ce("poly", input, target, weight, ignore_index, label_smoothing)
    safe = torch.where(valid, target, torch.zeros_like(target)).unsqueeze(1)
    prob = F.softmax(x, dim=1)
    p_t = prob.gather(1, safe).squeeze(1)
    if label_smoothing > 0:  # sum_c t_c p_c with t = (1 - e) onehot + e / C; sum_c p_c = 1
        p_t = (1 - label_smoothing) * p_t + label_smoothing / c
    w_y = torch.ones_like(p_t) if w is None else w[safe.squeeze(1)]
    w_y = torch.where(valid, w_y, torch.zeros_like(w_y))
    loss = ce + epsilon * w_y * (1 - p_t)
    if reduction == "none":
        return loss.to(input.dtype)
    if reduction == "sum":
        return loss.sum().to(input.dtype)
    norm = w_y.sum()
    return torch.where(norm > 0, loss.sum() / torch.where(norm > 0, norm, 1.0), 0 * loss.sum()).to(
        input.dtype
    )
