"""Conformance cases for topk_ce and poly: float64 formulas written out.

topk_ce follows nnU-Net's ``TopKLoss`` (nnunetv2/training/loss/robust_ce_loss.py: per-voxel
CE, ``torch.topk`` of int(n k / 100) values, mean) with ignored elements left out of n;
poly follows the Poly-1 code of Leng et al. 2022 (appendix: CE + epsilon (1 - p_t), p_t from
the smoothed one-hot labels)."""

import torch

from lossreg.testing import Case

IGNORE = -1


def _logits_indices(dtype, gen, n=2, c=3, h=4):
    x = torch.randn(n, c, h, generator=gen, dtype=torch.float64) * 2
    t = torch.randint(0, c, (n, h), generator=gen)
    t[0, 0] = t[1, 3] = IGNORE
    return x.to(dtype), t


def _log_softmax_ce(x, t, weight=None, label_smoothing=0.0):
    """Per-element CE with class weights and label smoothing, PyTorch's definition."""
    c = x.shape[1]
    logp = torch.log(torch.exp(x) / torch.exp(x).sum(1, keepdim=True))
    valid = t != IGNORE
    safe = torch.where(valid, t, 0)
    w = torch.ones(c, dtype=x.dtype) if weight is None else torch.tensor(weight, dtype=x.dtype)
    w_y = torch.where(valid, w[safe], 0)
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1) * w_y
    smooth = -(logp * w.view(1, c, *([1] * (x.dim() - 2)))).sum(1) / c
    ce = (1 - label_smoothing) * nll + label_smoothing * torch.where(valid, smooth, 0)
    return ce, valid, w_y, logp


def _topk(x, t, k=10.0, thresh=None, min_kept=0, weight=None, ignore_index=-100,
          label_smoothing=0.0, reduction="mean"):  # fmt: skip
    ce, valid, _, _ = _log_softmax_ce(x, t, weight, label_smoothing)
    values = ce[valid]
    kept = max(1, int(values.numel() * k / 100))
    top = torch.sort(values, descending=True).values[:kept]
    keep = valid & (ce >= top[-1])  # no ties in random data
    return {"mean": top.mean(), "sum": top.sum(), "none": torch.where(keep, ce, 0)}[reduction]


def _poly(x, t, epsilon=1.0, weight=None, ignore_index=-100, label_smoothing=0.0,
          reduction="mean"):  # fmt: skip
    ce, valid, w_y, logp = _log_softmax_ce(x, t, weight, label_smoothing)
    c = x.shape[1]
    onehot = torch.zeros_like(logp).scatter_(1, torch.where(valid, t, 0).unsqueeze(1), 1.0)
    labels = onehot * (1 - label_smoothing) + label_smoothing / c
    p_t = (labels * torch.exp(logp)).sum(1)
    loss = torch.where(valid, ce + epsilon * w_y * (1 - p_t), 0)
    return {"mean": loss.sum() / w_y.sum(), "sum": loss.sum(), "none": loss}[reduction]


CASES = {
    "topk_ce": Case(
        _logits_indices,
        params={"k": 40.0, "weight": [1.0, 2.0, 0.5], "ignore_index": IGNORE},
        reference=_topk,
    ),
    "poly": Case(
        _logits_indices,
        params={
            "epsilon": 2.0,
            "weight": [1.0, 2.0, 0.5],
            "ignore_index": IGNORE,
            "label_smoothing": 0.1,
        },
        reference=_poly,
    ),
}
