"""Knowledge distillation: the temperature-scaled KL divergence of Hinton et al. 2015."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from lossreg import Params, check_dims, check_floating, check_same_shape

from ._common import options

__all__ = ["kd_kl"]


class KDParams(Params):
    temperature: float = Field(
        4.0,
        ge=1.0,
        le=1e6,
        description="T >= 1 (as mmdet): both softmaxes at logits / T, the loss times T^2",
    )
    reduction: Literal["batchmean", "mean", "sum", "none"] = Field(
        "batchmean",
        description="`batchmean`: KL summed over classes and positions / N (torch's meaning); "
        "`mean`: averaged over positions (N and *); `sum`; or `none` (one KL per position)",
    )


def kd_kl(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    temperature: float = 4.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """Knowledge-distillation loss (Hinton et al. 2015, "Distilling the Knowledge in a Neural
    Network"): T^2 KL(softmax(t / T) || softmax(s / T)) over the class dim.

    ``input`` holds the student's logits s, ``target`` the teacher's logits t; the teacher is
    detached (no gradient reaches it). T^2 keeps the gradient's scale independent of T.
    Computed from two log-softmaxes (``F.kl_div`` with ``log_target=True``): finite for logits
    of +-1e4, classes the teacher gives probability 0 add 0.

    Reductions: ``batchmean`` (default) sums over classes and positions and divides by N, the
    KL per sample as ``torch.nn.KLDivLoss(reduction='batchmean')``; ``mean`` averages the
    per-position KL over N and the spatial positions; ``none`` gives the KL per position.
    mmdet's ``KnowledgeDistillationKLDivLoss`` averages over classes instead of summing: its
    ``none`` and ``mean`` are ours divided by C (on ``(N, C)``, its ``mean`` is our
    ``batchmean`` / C).

    Shape: input and target ``(N, C, *)`` logits, equal; ``none`` gives ``(N, *)``.

    >>> kd_kl(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[1.0, 1.0, 0.0]]), temperature=2.0)
    tensor(0.4908)
    """
    options(KDParams, "kd_kl", locals(), local=True)
    name = "kd_kl"
    check_floating(name, "input", input)
    check_floating(name, "target", target)
    check_same_shape(name, input, target)
    check_dims(name, "input", input, 2, "(N, C, *) student logits")
    dtype = input.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    t = float(temperature)
    log_p = F.log_softmax(input.to(work) / t, dim=1)
    log_q = F.log_softmax(target.detach().to(work) / t, dim=1)
    kl = F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(dim=1) * (t * t)
    if reduction == "none":
        return kl.to(dtype)
    total = kl.sum()
    if reduction == "batchmean" and kl.shape[0] > 0:
        total = total / kl.shape[0]
    elif reduction == "mean" and kl.numel() > 0:
        total = total / kl.numel()
    return total.to(dtype)
