"""The thin module lossreg wraps around a functional loss, and buffer promotion for
module factories."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .errors import LossregError

__all__ = ["Loss", "as_tensor_param", "promote_buffers"]


def as_tensor_param(value: Any) -> torch.Tensor | None:
    """A config list of numbers as a float tensor (default dtype), ``None`` kept."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    return torch.tensor(list(value), dtype=torch.get_default_dtype())


class Loss(nn.Module):
    """A functional loss with its validated parameters; tensor parameters are buffers.

    ``forward(*tensors)`` calls ``fn(*tensors, **params)``, so the module and the functional
    give the same value by construction.

    >>> import torch.nn.functional as F
    >>> def mse(input, target, *, reduction: str = "mean"):
    ...     return F.mse_loss(input, target, reduction=reduction)
    >>> Loss("mse", mse, {"reduction": "sum"})(torch.ones(2), torch.zeros(2))
    tensor(2.)
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., torch.Tensor],
        params: Mapping[str, Any],
        tensor_params: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.loss_name = name
        self.fn = fn
        tensor_params = set(tensor_params)
        self.params = {k: v for k, v in params.items() if k not in tensor_params}
        self._tensor_params = tuple(sorted(tensor_params))
        for key in self._tensor_params:
            self.register_buffer(key, as_tensor_param(params[key]))
        # the optional call-time `mask` (OBJECTIVES.md): passed through to a function that
        # names it; refused with a clear error by one that does not
        self._takes_mask = "mask" in inspect.signature(fn).parameters

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        if "mask" in kwargs and not self._takes_mask:
            raise LossregError(
                f"{self.loss_name}: takes no mask; the losses that take one are tagged "
                "`masked` (describe(name).tags)"
            )
        for key in self._tensor_params:
            kwargs[key] = getattr(self, key)
        return self.fn(*args, **kwargs, **self.params)

    def extra_repr(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params.items()]
        shown += [f"{k}=<buffer>" for k in self._tensor_params if getattr(self, k) is not None]
        return ", ".join([self.loss_name, *shown])


def promote_buffers(module: nn.Module, names: Iterable[str]) -> None:
    """Make tensor parameters a module factory stored as plain attributes into buffers, so
    ``.to()`` and ``state_dict()`` carry them."""
    for key in names:
        value = module.__dict__.get(key)
        if isinstance(value, torch.Tensor) and key not in module._buffers:
            delattr(module, key)
            module.register_buffer(key, value)
