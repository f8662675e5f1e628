"""lossreg: a plugin-based registry of PyTorch loss functions with config composition.

>>> import lossreg, torch
>>> objective = lossreg.build("0.5*l1 + mse")
>>> float(objective(torch.ones(4), torch.zeros(4)))
1.5
"""

from ._build import available, build, describe, register, to_config
from ._checks import (
    check_class_indices,
    check_dims,
    check_floating,
    check_range,
    check_same_device,
    check_same_shape,
    check_shape,
)
from ._composite import CompositeLoss
from ._modules import Loss
from ._plugins import LossregPluginWarning
from ._registry import LossInfo
from ._schema import Params, Reduction, TensorList
from .errors import (
    ConfigError,
    DuplicateLossError,
    ExpressionError,
    LossregError,
    PluginError,
    UnknownLossError,
)
from .hookimpl import hookimpl

__version__ = "0.1.0"

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
    "TensorList",
    "UnknownLossError",
    "__version__",
    "available",
    "build",
    "check_class_indices",
    "check_dims",
    "check_floating",
    "check_range",
    "check_same_device",
    "check_same_shape",
    "check_shape",
    "describe",
    "hookimpl",
    "register",
    "to_config",
]
