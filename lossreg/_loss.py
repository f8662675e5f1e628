"""The thin module lossreg wraps around a functional loss, and buffer promotion for
module factories."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ._checks import check_input_dtype, check_sign, check_unit_interval
from .errors import LossregError

__all__ = ["Loss", "as_tensor_param", "live_config", "promote_buffers"]


def as_tensor_param(value: Any) -> torch.Tensor | None:
    """A config list of numbers as a float tensor (default dtype), ``None`` kept."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    return torch.tensor(list(value), dtype=torch.get_default_dtype())


_HALF = (torch.float16, torch.bfloat16)
_MODE_RANGED = ("binary", "multilabel")


class Loss(nn.Module):
    """A functional loss with its validated parameters; tensor parameters are buffers.

    ``forward(*tensors)`` calls ``fn(*tensors, **params)``, so the module and the functional
    give the same value by construction. Around that call it keeps the promises every loss
    shares (``docs/numerics.md``), once for all, driven by the declared input kinds:

    - the tensors are bound to the loss's arguments (``inputs``) by position or name; a wrong
      count, name or a non-tensor is a :class:`~lossreg.errors.LossregError` naming them;
    - dtypes the kinds cannot hold are refused (complex always, integers for model outputs);
      binary and multilabel targets must lie in [0, 1] (one fused min/max);
    - under autocast, half inputs are computed in float32 and the loss is float32;
    - an empty batch gives 0 (attached to the graph, zero gradient); with ``reduction: none``
      zeros of the loss's output shape (empty for per-sample losses);
    - the function must return a tensor.

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
        inputs: Iterable[str] | None = None,
        input_kinds: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.loss_name = name
        self.fn = fn
        tensor_params = set(tensor_params)
        self.params = {k: v for k, v in params.items() if k not in tensor_params}
        self._tensor_params = tuple(sorted(tensor_params))
        for key in self._tensor_params:
            self.register_buffer(key, as_tensor_param(params[key]))
        self.inputs: tuple[str, ...] | None = None if inputs is None else tuple(inputs)
        kinds = dict(input_kinds or {})
        mode = params.get("mode")
        self._kinds = tuple(kinds.get(a) for a in self.inputs or ())
        # arguments whose values must lie in [0, 1]: checked by one aminmax per call
        self._ranged = tuple(
            i
            for i, kind in enumerate(self._kinds)
            if kind == "binary_target" or (kind == "mode_target" and mode in _MODE_RANGED)
        )
        self._signs = tuple(i for i, kind in enumerate(self._kinds) if kind == "sign")
        self._mode = mode if isinstance(mode, str) else None
        ignore = params.get("ignore_index")
        self._ignore = ignore if isinstance(ignore, int) else None
        self._keep_empty = params.get("reduction") == "none"  # empty batch: zeros, same shape
        # the optional call-time `mask` (OBJECTIVES.md): passed through to a function that
        # names it; refused with a clear error by one that does not
        self._takes_mask = "mask" in inspect.signature(fn).parameters

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        name = self.loss_name
        masked = "mask" in kwargs
        if masked and not self._takes_mask:
            raise LossregError(
                f"{name}: takes no mask; the losses that take one are tagged "
                "`masked` (describe(name).tags)"
            )
        mask = kwargs.pop("mask", None)
        tensors = self._bind(args, kwargs)
        for i, t in enumerate(tensors):
            if t.is_complex() or (not t.is_floating_point() and self._kinds):
                check_input_dtype(name, self._arg(i), t, self._kinds[i] if self._kinds else None)
        for i in self._ranged:
            check_unit_interval(name, self._arg(i), tensors[i], self._mode, self._ignore)
        for i in self._signs:
            check_sign(name, self._arg(i), tensors[i])
        extra = {key: getattr(self, key) for key in self._tensor_params}
        if masked:
            extra["mask"] = mask
        device = tensors[0].device.type if tensors else "cpu"
        if torch.is_autocast_enabled(device):
            # as PyTorch's own losses (autocast's float32 list): compute in float32
            tensors = tuple(t.float() if t.dtype in _HALF else t for t in tensors)
            with torch.autocast(device, enabled=False):
                out = self.fn(*tensors, **extra, **self.params)
            if isinstance(out, torch.Tensor) and out.dtype in _HALF:
                out = out.float()
        elif tensors and tensors[0].numel() == 0:
            try:
                out = self.fn(*tensors, **extra, **self.params)
            except LossregError:
                raise
            except RuntimeError:  # a kernel that refuses empty input: the rule gives the value
                out = tensors[0].new_zeros((0,)) if self._keep_empty else tensors[0].sum()
        else:
            out = self.fn(*tensors, **extra, **self.params)
        if not isinstance(out, torch.Tensor):
            raise LossregError(
                f"{name}: the loss function returned {type(out).__name__}, not a tensor; "
                "a loss must return a torch.Tensor"
            )
        if tensors and tensors[0].numel() == 0:
            out = _empty_batch_zero(out, tensors, self._keep_empty)
        return out

    def _arg(self, i: int) -> str:
        return self.inputs[i] if self.inputs is not None and i < len(self.inputs) else f"#{i}"

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """The tensors in argument order, or a LossregError naming what the loss takes."""
        names = self.inputs
        if names is None:  # arguments not known: pass through as given
            if kwargs:
                raise LossregError(f"{self.loss_name}: pass its tensors by position")
            tensors = args
        elif not kwargs and len(args) == len(names):
            tensors = args
        else:
            tensors = self._bind_slow(args, kwargs, names)
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                kind = type(t).__name__
                raise LossregError(
                    f"{self.loss_name}: {self._arg(i)} must be a torch.Tensor, got {kind}; "
                    f"convert it with torch.as_tensor(...) (the loss takes {self._takes()})"
                )
        return tuple(tensors)

    def _bind_slow(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]
    ) -> tuple[Any, ...]:
        takes = self._takes()
        if len(args) > len(names):
            raise LossregError(
                f"{self.loss_name}: called with {len(args)} positional tensors, but the loss "
                f"takes {len(names)}: {takes}"
            )
        bound = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                extra = (
                    f" ({key} is a parameter: set it when building the loss)"
                    if key in self.params or key in self._tensor_params
                    else ""
                )
                raise LossregError(
                    f"{self.loss_name}: unexpected tensor {key!r}{extra}; the loss takes {takes}"
                )
            if key in bound:
                raise LossregError(
                    f"{self.loss_name}: {key!r} passed both by position and by name; "
                    f"the loss takes {takes}"
                )
            bound[key] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise LossregError(
                f"{self.loss_name}: missing tensor {', '.join(repr(m) for m in missing)}; "
                f"the loss takes {takes}"
            )
        return tuple(bound[n] for n in names)

    def _takes(self) -> str:
        names = self.inputs or ()
        kinds = self._kinds or (None,) * len(names)
        parts = [f"{n} ({k})" if k else n for n, k in zip(names, kinds, strict=True)]
        return "(" + ", ".join(parts) + ")"

    def extra_repr(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params.items()]
        shown += [f"{k}=<buffer>" for k in self._tensor_params if getattr(self, k) is not None]
        return ", ".join([self.loss_name, *shown])


def _empty_batch_zero(
    out: torch.Tensor, tensors: tuple[torch.Tensor, ...], keep_shape: bool
) -> torch.Tensor:
    """0 for an empty batch (``out``'s shape with ``reduction: none``, else a scalar), in
    ``out``'s dtype, attached to every input that needs a gradient (so ``backward()`` runs and
    gives zero, empty gradients): never the NaN of an empty mean or uninitialised memory."""
    dtype = out.dtype if out.is_floating_point() else torch.get_default_dtype()
    zero = torch.zeros(out.shape if keep_shape else (), dtype=dtype, device=out.device)
    for t in tensors:
        if t.requires_grad:
            zero = zero + (t * 0.0).sum().to(dtype)
    return zero


def promote_buffers(module: nn.Module, names: Iterable[str]) -> None:
    """Make tensor parameters a module factory stored as plain attributes into buffers, so
    ``.to()`` and ``state_dict()`` carry them."""
    for key in names:
        value = module.__dict__.get(key)
        if isinstance(value, torch.Tensor) and key not in module._buffers:
            delattr(module, key)
            module.register_buffer(key, value)


def live_config(module: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the tensor parameters the module holds now (after ``load_state_dict``
    or an in-place edit), so ``build(to_config(m))`` equals ``m``."""
    if "expr" in config:
        terms = getattr(module, "terms", None)
        for key, term_config in (config.get("terms") or {}).items():
            if terms is not None and key in terms:
                config["terms"][key] = live_config(terms[key], term_config)
        return config
    for key, buf in module.named_buffers(recurse=False):
        if key not in config or buf is None:
            continue
        now = buf.detach().cpu().reshape(-1)
        was = config[key]
        # unchanged (up to the float32 the config is built in, e.g. after .double()): keep the
        # config's own numbers
        if was is None or not torch.equal(now.float(), torch.tensor(was).float().reshape(-1)):
            config[key] = now.double().tolist()
    return config
