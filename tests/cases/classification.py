"""Conformance cases for the classification plugin: float64 references written out by hand
(PyTorch's documented formulas and torchvision's ``sigmoid_focal_loss``), independent of the
plugin's code."""

import torch

from lossreg.testing import Case
from tests.cases import reduce

N, C, H, W = 3, 4, 2, 2
CLASS_WEIGHT = [0.5, 1.0, 2.0, 1.5]


def logits_and_index(dtype, gen, ignore=True):
    x = torch.randn(N, C, H, W, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, C, (N, H, W), generator=gen)
    if ignore:
        y[0, 0, 0] = -100
    return x.to(dtype), y


def logits_and_probs(dtype, gen):
    x = torch.randn(N, C, H, W, generator=gen, dtype=torch.float64) * 2
    t = torch.softmax(torch.randn(N, C, H, W, generator=gen, dtype=torch.float64), dim=1)
    return x.to(dtype), t.to(dtype)


def logits_and_binary(dtype, gen, soft=False):
    x = torch.randn(N, 1, H, W, generator=gen, dtype=torch.float64) * 2
    if soft:
        y = torch.rand(N, 1, H, W, generator=gen, dtype=torch.float64)
    else:
        y = (torch.rand(N, 1, H, W, generator=gen, dtype=torch.float64) < 0.3).double()
    return x.to(dtype), y.to(dtype)


def _log_softmax(x):
    return x - torch.logsumexp(x, dim=1, keepdim=True)


def _per_class(values, x):
    return torch.tensor(values, dtype=x.dtype).view(1, -1, *([1] * (x.dim() - 2)))


def ref_cross_entropy(x, y, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    # PyTorch's documented CrossEntropyLoss: (1 - eps) * nll + eps/C * sum_c w_c (-log p_c);
    # mean divides by the sum of the targets' weights over non-ignored elements.
    logp = _log_softmax(x)
    w = _per_class(weight if weight is not None else [1.0] * x.shape[1], x)
    valid = y != ignore_index
    safe = torch.where(valid, y, 0)
    nll = -(w * logp).gather(1, safe.unsqueeze(1)).squeeze(1)
    smooth = -(w * logp).sum(dim=1) / x.shape[1]
    loss = ((1 - label_smoothing) * nll + label_smoothing * smooth) * valid
    w_y = w.expand_as(x).gather(1, safe.unsqueeze(1)).squeeze(1) * valid
    return reduce(loss, reduction, denominator=w_y.sum())


def ref_nll(x, y, weight=None, ignore_index=-100, reduction="mean"):
    w = _per_class(weight if weight is not None else [1.0] * x.shape[1], x).expand_as(x)
    valid = y != ignore_index
    safe = torch.where(valid, y, 0).unsqueeze(1)
    loss = -(w * x).gather(1, safe).squeeze(1) * valid
    return reduce(loss, reduction, denominator=(w.gather(1, safe).squeeze(1) * valid).sum())


def _last_dim(values, x):
    return (
        torch.tensor(values, dtype=x.dtype) if values is not None else torch.ones((), dtype=x.dtype)
    )


def ref_bce(x, y, from_logits=True, weight=None, pos_weight=None, reduction="mean"):
    w, pw = _last_dim(weight, x), _last_dim(pos_weight, x)
    if from_logits:
        log_p, log_1mp = -torch.log1p(torch.exp(-x)), -torch.log1p(torch.exp(x))
    else:
        log_p, log_1mp = torch.log(x).clamp_min(-100), torch.log(1 - x).clamp_min(-100)
    return reduce(-w * (pw * y * log_p + (1 - y) * log_1mp), reduction)


def ref_wce(x, y, w_pos=1.0, w_neg=1.0, balance=None, reduction="mean"):
    if balance == "batch":
        n_pos = float(y.sum())
        w_pos, w_neg = (y.numel() - n_pos) / y.numel(), n_pos / y.numel()
    p = 1 / (1 + torch.exp(-x))
    return reduce(-(w_pos * y * torch.log(p) + w_neg * (1 - y) * torch.log(1 - p)), reduction)


def ref_sigmoid_focal(x, y, mode="binary", gamma=2.0, alpha=0.25, reduction="mean", **_):
    # torchvision.ops.sigmoid_focal_loss, written out
    p = torch.sigmoid(x)
    ce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        loss = loss * (alpha * y + (1 - alpha) * (1 - y))
    return reduce(loss, reduction)


def ref_softmax_focal(
    x, y, mode="multiclass", gamma=2.0, alpha=None, weight=None, ignore_index=-100,
    reduction="mean",
):  # fmt: skip
    # -w_y (1 - p_y)^gamma log p_y; mean = sum / sum of w_y over non-ignored elements
    p = torch.softmax(x, dim=1)
    w = _per_class(weight if weight is not None else [1.0] * x.shape[1], x).expand_as(x)
    if y.is_floating_point():
        loss = (-w * y * (1 - p) ** gamma * torch.log(p)).sum(dim=1)
        return reduce(loss, reduction)
    valid = y != ignore_index
    safe = torch.where(valid, y, 0).unsqueeze(1)
    p_y = p.gather(1, safe).squeeze(1)
    w_y = w.gather(1, safe).squeeze(1) * valid
    loss = -w_y * (1 - p_y) ** gamma * torch.log(p_y)
    return reduce(loss, reduction, denominator=w_y.sum())


def ref_zero_one(x, y, mode="binary", reduction="mean"):
    if mode == "multiclass":
        wrong = [float(int(torch.argmax(v)) != int(t)) for v, t in zip(
            x.movedim(1, -1).reshape(-1, x.shape[1]), y.reshape(-1), strict=True
        )]  # fmt: skip
        loss = torch.tensor(wrong, dtype=x.dtype).reshape(y.shape)
    else:
        loss = ((x > 0).to(x.dtype) - (y >= 0.5).to(x.dtype)).abs()
    return reduce(loss, reduction)


def _probabilities(dtype, gen):
    p = torch.sigmoid(torch.randn(N, 5, generator=gen, dtype=torch.float64))
    y = (torch.rand(N, 5, generator=gen, dtype=torch.float64) < 0.5).double()
    return p.to(dtype), y.to(dtype)


def _logits_2d(dtype, gen):
    x = torch.randn(N, 5, generator=gen, dtype=torch.float64) * 2
    y = torch.rand(N, 5, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


CASES = {
    "cross_entropy": Case(
        logits_and_index,
        params={"weight": CLASS_WEIGHT, "label_smoothing": 0.1},
        reference=ref_cross_entropy,
    ),
    "nll": Case(logits_and_index, params={"weight": CLASS_WEIGHT}, reference=ref_nll),
    "bce": Case(
        _logits_2d,
        params={"weight": [1.0, 0.5, 2.0, 1.0, 0.2], "pos_weight": [3.0]},
        reference=ref_bce,
    ),
    "BCELoss": Case(
        _probabilities,
        params={"weight": [1.0, 0.5, 2.0, 1.0, 0.2]},
        reference=lambda x, y, **kw: ref_bce(x, y, **{"from_logits": False, **kw}),
        extreme=False,  # probabilities, not logits
    ),
    "weighted_cross_entropy": Case(
        logits_and_binary, params={"balance": "batch"}, reference=ref_wce
    ),
    "focal": Case(
        lambda dtype, gen: logits_and_binary(dtype, gen, soft=True),
        params={"gamma": 2.0, "alpha": 0.25},
        reference=ref_sigmoid_focal,
    ),
    "zero_one": Case(
        lambda dtype, gen: logits_and_index(dtype, gen, ignore=False),
        params={"mode": "multiclass"},
        reference=ref_zero_one,
    ),
}
