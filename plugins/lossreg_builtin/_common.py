"""Helpers shared by the built-in plugins (not part of the core: they know loss shapes)."""

from __future__ import annotations

import torch

from lossreg import reduce  # re-exported: the family modules import it from here

__all__ = ["reduce", "upcast"]


def upcast(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """half and bfloat16 to float32 (sums and ratios in float32); others unchanged."""
    return tuple(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors)
