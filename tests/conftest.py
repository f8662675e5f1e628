"""Shared fixtures: a few in-process losses registered once for the core tests."""

import os

import torch
from hypothesis import settings

import lossreg
from lossreg import Params, TensorList


class ScaledParams(Params):
    scale: float = 1.0
    weight: TensorList | None = None
    reduction: lossreg.Reduction = "mean"


def scaled_abs(input, target, *, scale=1.0, weight=None, reduction="mean"):
    """Scaled absolute error (a test loss)."""
    lossreg.check_same_shape("t_scaled", input, target)
    loss = scale * (input - target).abs()
    if weight is not None:
        loss = loss * weight.to(loss)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def box_gap(pred_boxes, boxes, *, power: int = 1):
    """Mean gap between boxes (a routed test loss with non-default argument names)."""
    return (pred_boxes - boxes).abs().pow(power).mean()


class ModuleLoss(torch.nn.Module):
    """An nn.Module factory whose tensor parameter arrives as a plain attribute."""

    def __init__(self, offset: float = 0.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.offset = offset
        self.weight = weight

    def forward(self, input, target):
        d = (input - target + self.offset) ** 2
        return (d * self.weight).mean() if self.weight is not None else d.mean()


# CI explores the same examples every run (a red CI must be reproducible); locally each run
# draws new ones, which is where hypothesis finds things.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    lossreg.register("t_scaled", scaled_abs, params=ScaledParams, aliases=("t_scaled_alias",))
    lossreg.register("t_box_gap", box_gap)
    lossreg.register("t_module", ModuleLoss)
    lossreg.register("t_preset", {"name": "t_scaled", "scale": 3.0})
    lossreg.register("t_named_composite", "t_scaled + 2*mse")
