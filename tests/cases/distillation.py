"""Conformance case for kd_kl: Hinton et al. 2015 written out in float64 (the teacher's
softmax at temperature T, KL summed over classes, times T^2), mmdet's
``knowledge_distillation_kl_div_loss`` (mmdet/models/losses/kd_loss.py) up to its mean over
classes: tests/test_distillation.py pins that mapping."""

import torch

from lossreg.testing import Case


def _kd(s, t, temperature=4.0, reduction="batchmean"):
    q = torch.softmax(t / temperature, dim=1)
    log_p = torch.log_softmax(s / temperature, dim=1)
    kl = (q * (torch.log(q) - log_p)).sum(1) * temperature**2  # (N, *)
    return {
        "batchmean": kl.sum() / s.shape[0],
        "mean": kl.mean(),
        "sum": kl.sum(),
        "none": kl,
    }[reduction]


def _student_teacher(dtype, gen):
    s = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64) * 2
    return s.to(dtype), t.to(dtype)


CASES = {"kd_kl": Case(_student_teacher, params={"temperature": 2.5}, reference=_kd)}
