"""Conformance case for asymmetric: timm's ``AsymmetricLossMultiLabel.forward``
(timm/loss/asymmetric_loss.py, read from huggingface/pytorch-image-models) written out in
float64, timm itself not imported (it needs torchvision, which does not install beside this
torch). Its ``sum`` is our ``sum``, its ``mean`` our ``mean``."""

import torch

from lossreg.testing import Case


def timm_asl(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, eps=1e-8, reduction="mean"):
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = 1 - x_sigmoid
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    if gamma_neg > 0 or gamma_pos > 0:
        pt = xs_pos * y + xs_neg * (1 - y)
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        loss = loss * torch.pow(1 - pt, one_sided_gamma)
    loss = -loss
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def _multilabel(dtype, gen):
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64) * 2
    y = (torch.rand(3, 4, generator=gen, dtype=torch.float64) > 0.5).to(torch.float64)
    y[0, 0] = 0.3  # a soft label too
    return x.to(dtype), y.to(dtype)


CASES = {
    "asymmetric": Case(
        _multilabel, params={"gamma_pos": 1.0, "gamma_neg": 3.0, "clip": 0.05}, reference=timm_asl
    ),
}
