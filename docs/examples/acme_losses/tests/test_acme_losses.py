"""ACME's plugin under the lossreg conformance kit, plus values derived by hand."""

import math

import pytest
import torch

import lossreg
from lossreg.testing import Case, check_loss


def inputs(dtype, gen):
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def reference(input, target, *, eps=1e-3, reduction="mean"):
    # float64, independent of the plugin: sqrt(d^2 + eps^2)
    loss = ((input - target) ** 2 + eps**2).sqrt()
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


def test_found_through_the_entry_point():
    info = lossreg.describe("acme_charbonnier")
    assert (info.name, info.provider, info.distribution) == (
        "acme_charbonnier",
        "acme",
        "acme-losses",
    )


def test_conformance():
    check_loss("acme_charbonnier", Case(inputs, params={"eps": 0.1}, reference=reference))


def test_value_by_hand():
    # sqrt(3^2 + 4^2) = 5 for d = (3, 4) with eps = 4 ... and eps = 0 is refused
    value = lossreg.build("acme_charbonnier", eps=4.0)(torch.tensor([3.0]), torch.zeros(1))
    assert math.isclose(float(value), 5.0, rel_tol=1e-7)
    with pytest.raises(lossreg.ConfigError, match="eps"):
        lossreg.build("acme_charbonnier", eps=0.0)
