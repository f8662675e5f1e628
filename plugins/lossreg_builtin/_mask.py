"""The call-time ``mask`` of the dense losses (OBJECTIVES.md, "Masks and per-pixel weights"):
one validation and one masked reduction, shared by every loss that takes a mask.

A mask weights each element of the loss: 0 counts nowhere (numerator, denominator and the
mean's count), a float in (0, 1] weights its contribution, ``mean`` is sum(m l) / sum(m) (0
for an empty mask). It has the target's shape; where the target has a class dim (dim 1 of an
``(N, C, *)`` target) it may leave it out, ``(N, *)``, or give it as 1, ``(N, 1, *)``: it
broadcasts over classes only, never over the batch or a spatial dim.
"""

from __future__ import annotations

import torch

from lossreg import LossregError

__all__ = ["MASK_DOC", "check_mask", "masked_reduce"]

#: the docstring note of every loss that takes a mask
MASK_DOC = (
    "``mask`` (call time, optional): per-element weights, bool or floating in [0, 1], of the "
    "target's shape (without its class dim where it has one); 0 counts nowhere, ``mean`` "
    "is sum(mask * loss) / sum(mask), 0 for an empty mask."
)


def _shape(s: torch.Size | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(d) for d in s)


def check_mask(
    name: str,
    mask: object,
    shape: torch.Size | tuple[int, ...],
    *,
    class_dim: bool,
    like: torch.Tensor,
) -> torch.Tensor:
    """The validated mask in ``like``'s floating dtype, shaped to broadcast against ``shape``
    (a class dim left out comes back as 1). ``class_dim``: dim 1 of ``shape`` holds classes.
    Any other mask is a :class:`~lossreg.LossregError` naming the loss and what is wrong."""
    if not isinstance(mask, torch.Tensor):
        raise LossregError(
            f"{name}: mask must be a torch.Tensor (bool or floating in [0, 1]), got "
            f"{type(mask).__name__}"
        )
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise LossregError(
            f"{name}: mask must be bool or floating in [0, 1], got dtype {mask.dtype}"
        )
    if mask.device != like.device:
        raise LossregError(
            f"{name}: mask is on {mask.device} but the input is on {like.device}; "
            "they must be on the same device"
        )
    want = _shape(shape)
    got = _shape(mask.shape)
    if got != want:
        dropped = want[:1] + want[2:] if len(want) >= 2 else None
        if class_dim and dropped is not None and got == dropped:
            mask = mask.unsqueeze(1)
        elif not (class_dim and len(want) >= 2 and got == (want[0], 1, *want[2:])):
            also = f", {dropped} or {(want[0], 1, *want[2:])}" if class_dim and dropped else ""
            raise LossregError(
                f"{name}: mask has shape {got} but the target has shape {want}; the mask "
                f"takes shape {want}{also} (it broadcasts over the class dim only)"
            )
    if mask.dtype != torch.bool and mask.numel() > 0:
        lo, hi = torch.aminmax(mask.detach())
        lo_, hi_ = float(lo), float(hi)
        if not (lo_ >= 0.0 and hi_ <= 1.0):  # NaN fails both comparisons
            raise LossregError(f"{name}: mask must lie in [0, 1], got values in [{lo_:g}, {hi_:g}]")
    dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
    return mask.to(dtype)


def masked_reduce(
    loss: torch.Tensor,
    mask: torch.Tensor,
    reduction: str,
    name: str,
    norm: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce an elementwise ``loss`` weighted by ``mask`` (broadcastable to it): ``none``
    gives mask * loss, ``sum`` its sum, ``mean`` its sum over the mask's (times ``norm``, a
    per-element normaliser such as cross-entropy's class weight of the target) sum, 0 when
    that is 0."""
    weighted = loss * mask
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction != "mean":
        raise LossregError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if norm is not None:
        count = (mask * norm).sum()
    else:  # broadcast over classes: each kept element counts once per class
        count = mask.sum() * (loss.numel() // max(mask.numel(), 1))
    total = weighted.sum()
    # an empty mask leaves total exactly 0 (and its gradient 0): 0 / tiny = 0, not 0 / 0
    return total / count.clamp_min(torch.finfo(total.dtype).tiny)
