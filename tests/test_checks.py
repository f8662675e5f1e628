"""The shape/value check helpers plugins call before any kernel runs."""

import warnings

import pytest
import torch

from lossreg import (
    LossregError,
    check_class_indices,
    check_dims,
    check_range,
    check_same_shape,
    check_shape,
)


def test_same_shape_refuses_the_classic_broadcast_trap():
    with pytest.raises(
        LossregError,
        match=r"mse: input has shape \(3,\) but target has shape "
        r"\(3, 1\)",
    ):
        check_same_shape("mse", torch.zeros(3), torch.zeros(3, 1))


def test_device_mismatch_names_both(monkeypatch):
    meta = torch.zeros(3, device="meta")
    with pytest.raises(LossregError, match="input is on cpu but target is on meta"):
        check_same_shape("mse", torch.zeros(3), meta)


@pytest.mark.parametrize(
    "shape,ok", [((2, 4), True), ((4,), True), ((2, 3, 4), True), ((2, 5), False), ((), False)]
)
def test_named_shape_pattern(shape, ok):
    t = torch.zeros(shape)
    if ok:
        check_shape("giou", "boxes", t, ["*", "4"])
    else:
        with pytest.raises(LossregError, match=r"giou: boxes must have shape \(\*, 4\)"):
            check_shape("giou", "boxes", t, ["*", "4"])


def test_check_dims():
    with pytest.raises(LossregError, match=r"dice: input must have at least 3 dims \(N, C, \*\)"):
        check_dims("dice", "input", torch.zeros(2, 2), 3, "(N, C, *)")


@pytest.mark.parametrize("bad", [7, -1, 4])
@pytest.mark.parametrize("ignore", [None, 255, -100, 2])
def test_class_indices_out_of_range_name_the_value(bad, ignore):
    target = torch.randint(0, 4, (2, 5, 5), generator=torch.Generator().manual_seed(0))
    if ignore is not None:
        target[0, 0, 0] = ignore
    target[1, 2, 3] = bad
    if bad == ignore:
        pytest.skip("the bad value is the ignored one")
    with pytest.raises(LossregError, match=rf"target holds class index {bad}, outside \[0, 4\)"):
        check_class_indices("ce", target, 4, ignore)


@pytest.mark.parametrize("ignore", [255, -100, 0, 3])
def test_ignored_values_are_allowed(ignore):
    target = torch.tensor([[0, 3, ignore, 1]])
    check_class_indices("ce", target, 4, ignore)
    check_class_indices("ce", torch.full((2, 2), ignore), 4, ignore)  # every pixel ignored


def test_float_target_is_not_class_indices():
    with pytest.raises(LossregError, match="must be an integer tensor, got torch.float32"):
        check_class_indices("ce", torch.zeros(3), 4)


def test_check_range_on_a_tensor_that_requires_grad_does_not_warn():
    x = torch.full((3,), 0.5, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_range("bce", "input", x)
    with pytest.raises(
        LossregError,
        match=r"bce: input values must lie in \[0.0, 1.0\], "
        r"found 1.5",
    ):
        check_range("bce", "input", torch.tensor([0.2, 1.5]))
    with pytest.raises(LossregError, match="found nan"):
        check_range("bce", "input", torch.tensor([0.2, float("nan")]))
