"""Conformance cases for the torch_nn plugin: float64 references written out from the formulas
in PyTorch's documentation (torch.nn loss classes), not from torch.nn.functional."""

import math

import torch

from lossreg.testing import Case
from tests.cases import reduce


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _signs(gen, *shape):
    return torch.randint(0, 2, shape, generator=gen).double() * 2 - 1


# ----------------------------------------------------------------------------- kl_div


def _kl_inputs(dtype, gen):
    x = _randn(gen, 3, 4).log_softmax(-1)
    t = _randn(gen, 3, 4).softmax(-1)
    return x.to(dtype), t.to(dtype)


def _kl_ref(x, t, log_target=False, reduction="mean"):
    loss = t.exp() * (t - x) if log_target else t * (t.log() - x)
    if reduction == "batchmean":
        return loss.sum() / x.shape[0]
    return reduce(loss, reduction)


# ------------------------------------------------------------------------ poisson / gaussian


def _poisson_inputs(dtype, gen):
    x = _randn(gen, 3, 4) * 0.5
    t = torch.randint(0, 6, (3, 4), generator=gen).double()
    return x.to(dtype), t.to(dtype)


def _poisson_ref(x, t, log_input=True, full=False, eps=1e-8, reduction="mean"):
    loss = x.exp() - t * x if log_input else x - t * (x + eps).log()
    if full:
        safe = t.clamp_min(1)  # Stirling's term only where t > 1
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + torch.where(t > 1, stirling, torch.zeros_like(t))
    return reduce(loss, reduction)


def _gaussian_inputs(dtype, gen):
    x, t = _randn(gen, 3, 4), _randn(gen, 3, 4)
    var = torch.rand(3, 4, generator=gen, dtype=torch.float64) + 0.5
    return x.to(dtype), t.to(dtype), var.to(dtype)


def _gaussian_ref(x, t, var, full=False, eps=1e-6, reduction="mean"):
    v = var.clamp_min(eps)
    loss = 0.5 * (v.log() + (x - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce(loss, reduction)


# -------------------------------------------------------------------------------------- ctc


def _ctc_inputs(dtype, gen):
    log_probs = _randn(gen, 6, 2, 4).log_softmax(-1)
    targets = torch.tensor([[1, 2, 2], [3, 1, 0]])  # second row: 2 labels, then padding
    return log_probs.to(dtype), targets, torch.tensor([6, 5]), torch.tensor([3, 2])


def ctc_reference(log_probs, targets, input_lengths, target_lengths, blank=0, **kw):
    """The CTC forward (alpha) recursion of Graves et al. 2006, eq. 6-8, in log space."""
    zero_infinity, reduction = kw.get("zero_infinity", False), kw.get("reduction", "mean")
    losses = []
    for b in range(log_probs.shape[1]):
        lp = log_probs[: int(input_lengths[b]), b]
        ext = [blank]
        for c in targets[b, : int(target_lengths[b])].tolist():
            ext += [c, blank]
        neg_inf = torch.tensor(-math.inf, dtype=lp.dtype)
        alpha = [lp[0, ext[0]], lp[0, ext[1]] if len(ext) > 1 else neg_inf]
        alpha += [neg_inf] * (len(ext) - 2)
        for t in range(1, lp.shape[0]):
            new = []
            for s, label in enumerate(ext):
                terms = [alpha[s]]
                if s >= 1:
                    terms.append(alpha[s - 1])
                if s >= 2 and label != blank and label != ext[s - 2]:
                    terms.append(alpha[s - 2])
                new.append(torch.logsumexp(torch.stack(terms), 0) + lp[t, label])
            alpha = new
        loss = -torch.logsumexp(torch.stack(alpha[-2:]), 0)
        if zero_infinity and torch.isinf(loss):
            loss = torch.zeros_like(loss)
        losses.append(loss)
    out = torch.stack(losses)
    if reduction == "mean":  # PyTorch: each loss divided by its target length, then the mean
        return (out / target_lengths.clamp_min(1).to(out.dtype)).mean()
    return reduce(out, reduction)


# ---------------------------------------------------------------------- margin / embedding


def _ranking_inputs(dtype, gen):
    return tuple(t.to(dtype) for t in (_randn(gen, 5), _randn(gen, 5), _signs(gen, 5)))


def _ranking_ref(x1, x2, y, margin=0.0, reduction="mean"):
    return reduce((-y * (x1 - x2) + margin).clamp_min(0), reduction)


def _hinge_inputs(dtype, gen):
    return (_randn(gen, 3, 4).abs() * 2).to(dtype), _signs(gen, 3, 4).to(dtype)


def _hinge_ref(x, y, margin=1.0, reduction="mean"):
    zero = torch.zeros_like(x)
    loss = torch.where(y == 1, x, zero) + torch.where(y == -1, (margin - x).clamp_min(0), zero)
    return reduce(loss, reduction)


def _mlm_inputs(dtype, gen):
    target = torch.tensor([[3, 0, -1, 1], [1, 2, 3, 0], [2, -1, 0, 0]])
    return _randn(gen, 3, 4).to(dtype), target


def _mlm_ref(x, target, reduction="mean"):
    out = []
    for xs, ts in zip(x, target, strict=True):
        labels = []
        for c in ts.tolist():
            if c < 0:
                break
            labels.append(c)
        others = [i for i in range(x.shape[1]) if i not in labels]
        terms = [(1 - (xs[j] - xs[i])).clamp_min(0) for j in labels for i in others]
        out.append(torch.stack(terms).sum() / x.shape[1] if terms else xs.sum() * 0)
    return reduce(torch.stack(out), reduction)


def _soft_inputs(dtype, gen):
    return (_randn(gen, 3, 4) * 2).to(dtype), _signs(gen, 3, 4).to(dtype)


def _soft_ref(x, y, reduction="mean"):
    return reduce(torch.log(1 + torch.exp(-y * x)), reduction)


def _mlsm_inputs(dtype, gen):
    y = torch.randint(0, 2, (3, 4), generator=gen).double()
    return (_randn(gen, 3, 4) * 2).to(dtype), y.to(dtype)


def _mlsm_ref(x, y, weight=None, reduction="mean"):
    p = torch.sigmoid(x)
    loss = -(y * p.log() + (1 - y) * (1 - p).log())
    if weight is not None:
        loss = loss * torch.tensor(weight, dtype=x.dtype)
    return reduce(loss.mean(-1), reduction)


def _cos_inputs(dtype, gen):
    return tuple(t.to(dtype) for t in (_randn(gen, 4, 3), _randn(gen, 4, 3), _signs(gen, 4)))


def _cos_ref(x1, x2, y, margin=0.0, reduction="mean"):
    cos = (x1 * x2).sum(-1) / (x1.norm(dim=-1) * x2.norm(dim=-1))
    loss = torch.where(y == 1, 1 - cos, (cos - margin).clamp_min(0))
    return reduce(loss, reduction)


def _mm_inputs(dtype, gen):
    return _randn(gen, 3, 4).to(dtype), torch.tensor([2, 0, 3])


def _mm_ref(x, target, p=1, margin=1.0, weight=None, reduction="mean"):
    w = torch.ones(x.shape[1]) if weight is None else torch.tensor(weight)
    out = []
    for xs, y in zip(x, target.tolist(), strict=True):
        terms = [
            w[y].to(x.dtype) * (margin - xs[y] + xs[i]).clamp_min(0) ** p
            for i in range(x.shape[1])
            if i != y
        ]
        out.append(torch.stack(terms).sum() / x.shape[1])
    return reduce(torch.stack(out), reduction)


def _triplet_inputs(dtype, gen):
    return tuple(_randn(gen, 3, 5).to(dtype) for _ in range(3))


def _triplet_ref(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    def dist(x, y):
        return ((x - y + eps).abs() ** p).sum(-1) ** (1 / p)

    d_an = dist(a, neg)
    if swap:
        d_an = torch.minimum(d_an, dist(pos, neg))
    return reduce((dist(a, pos) - d_an + margin).clamp_min(0), reduction)


def _triplet_dist_ref(a, pos, neg, distance_function="pairwise", margin=1.0, swap=False, **kw):
    assert distance_function == "cosine"

    def dist(x, y):
        return 1 - (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))

    d_an = dist(a, neg)
    if swap:
        d_an = torch.minimum(d_an, dist(pos, neg))
    return reduce((dist(a, pos) - d_an + margin).clamp_min(0), kw.get("reduction", "mean"))


CASES = {
    # input 0 are log-probabilities, not logits: no +-1e4 scaling
    "kl_div": Case(_kl_inputs, reference=_kl_ref, grad_inputs=(0, 1), extreme=False),
    # input 0 is a log-rate: exp(1e4) overflows in PyTorch too
    "poisson_nll": Case(
        _poisson_inputs, params={"full": True}, reference=_poisson_ref, extreme=False
    ),
    "gaussian_nll": Case(
        _gaussian_inputs, params={"full": True}, reference=_gaussian_ref, grad_inputs=(0, 1, 2)
    ),
    # PyTorch's CTC gradient is the gradient through the log_softmax that made log_probs, so a
    # raw gradcheck on log_probs cannot pass; tests/test_torch_nn.py gradchecks through it.
    "ctc": Case(_ctc_inputs, reference=ctc_reference, extreme=False, gradcheck=False),
    "margin_ranking": Case(
        _ranking_inputs, params={"margin": 0.3}, reference=_ranking_ref, grad_inputs=(0, 1)
    ),
    "hinge_embedding": Case(_hinge_inputs, params={"margin": 1.5}, reference=_hinge_ref),
    "multilabel_margin": Case(_mlm_inputs, reference=_mlm_ref),
    "soft_margin": Case(_soft_inputs, reference=_soft_ref),
    "multilabel_soft_margin": Case(
        _mlsm_inputs, params={"weight": [0.5, 1.0, 2.0, 1.0]}, reference=_mlsm_ref
    ),
    "cosine_embedding": Case(
        _cos_inputs, params={"margin": 0.2}, reference=_cos_ref, grad_inputs=(0, 1)
    ),
    "multi_margin": Case(
        _mm_inputs,
        params={"p": 2, "margin": 0.7, "weight": [1.0, 2.0, 0.5, 1.0]},
        reference=_mm_ref,
    ),
    "triplet_margin": Case(
        _triplet_inputs,
        params={"margin": 0.5, "swap": True},
        reference=_triplet_ref,
        grad_inputs=(0, 1, 2),
    ),
    "triplet_margin_with_distance": Case(
        _triplet_inputs,
        params={"distance_function": "cosine", "margin": 0.4},
        reference=_triplet_dist_ref,
        grad_inputs=(0, 1, 2),
    ),
}
