"""lossreg: a plugin-based registry of PyTorch loss functions with config composition.

>>> import lossreg, torch
>>> objective = lossreg.build("0.5*l1 + mse")
>>> float(objective(torch.ones(4), torch.zeros(4)))
1.5
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _checks
from ._checks import *  # noqa: F403 - the input checks plugins call, listed in _checks.__all__
from ._lazy import lazy
from ._plugins import LossregPluginWarning
from ._reduce import reduce
from ._registry import LossInfo, available
from .errors import (
    ConfigError,
    DuplicateLossError,
    ExpressionError,
    LossregError,
    PluginError,
    ShapeError,
    UnknownLossError,
)
from .hookimpl import hookimpl

if TYPE_CHECKING:
    from ._build import build, describe, register, to_config
    from ._composite import CompositeLoss
    from ._loss import Loss
    from ._params import Params, Reduction, TensorList, Weights, reduction_field
    from .distance import signed_distance

__version__ = "0.1.0"

# Imported on first access (PEP 562): these pull in pydantic, whose import costs more than the
# rest of lossreg, so `import lossreg; lossreg.available()` stays cheap.
_LAZY = {
    "build": "._build",
    "describe": "._build",
    "register": "._build",
    "to_config": "._build",
    "CompositeLoss": "._composite",
    "Loss": "._loss",
    "Params": "._params",
    "Reduction": "._params",
    "TensorList": "._params",
    "Weights": "._params",
    "reduction_field": "._params",
    "signed_distance": ".distance",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lossreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CompositeLoss",
    "ConfigError",
    "DuplicateLossError",
    "ExpressionError",
    "Loss",
    "LossInfo",
    "LossregError",
    "LossregPluginWarning",
    "Params",
    "PluginError",
    "Reduction",
    "ShapeError",
    "TensorList",
    "UnknownLossError",
    "Weights",
    "__version__",
    "available",
    "build",
    "describe",
    "hookimpl",
    "lazy",
    "reduce",
    "reduction_field",
    "register",
    "signed_distance",
    "to_config",
]
__all__ += _checks.__all__
