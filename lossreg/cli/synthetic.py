"""Synthetic tensors for ``lossreg eval``: each loss (each term of a composite) gets the
tensors its registration declares (``inputs=``), made by :mod:`lossreg._synthetic`.

Tensors shared between composite terms (routed to the same name) are made once.
"""

from __future__ import annotations

import torch
from torch import nn

from .._build import describe, to_config
from .._composite import CompositeLoss
from .._synthetic import DEFAULT_SHAPE, call_on, make_inputs
from ..errors import LossregError

__all__ = ["DEFAULT_SHAPE", "synth_call"]

Tensors = dict[str, torch.Tensor]


def default_shape(module: nn.Module) -> tuple[int, ...]:
    """:data:`DEFAULT_SHAPE`, with C taken from a class ``weight`` list if the config has one."""
    n, c, *spatial = DEFAULT_SHAPE
    stack = [to_config(module)]
    while stack:
        config = stack.pop()
        stack.extend((config.get("terms") or {}).values())
        weight = config.get("weight")
        if isinstance(weight, list) and len(weight) > 1:
            c = len(weight)
    return (n, c, *spatial)


def synth_call(
    module: nn.Module, shape: tuple[int, ...] | None = None, seed: int = 0
) -> tuple[torch.Tensor, Tensors, bool]:
    """Call ``module`` on synthetic tensors; return (value, the tensors used, keywords?).

    Without ``shape``: :func:`default_shape`, cut to ``(N, C)`` when a term takes boxes.
    """
    module = getattr(module, "_orig_mod", module)
    terms = dict(module.terms) if isinstance(module, CompositeLoss) else {"": module}
    if shape is None:
        shape = default_shape(module)
        if any(_kinds(t)[0] == "boxes" for t in terms.values()):  # per-box logits (N, C)
            shape = shape[:2]
    gen = torch.Generator().manual_seed(seed)
    if not isinstance(module, CompositeLoss):
        config = to_config(module)
        info = describe(config["name"])
        tensors = make_inputs(info.inputs, info.input_kinds, config, shape, gen)
        return call_on(module, info.name, info.input_kinds, tuple(tensors.values())), tensors, False
    keywords = any(route for route in module.routes.values())
    shared: Tensors = {}
    for key, term in terms.items():
        args = module.arg_names[key]
        route = module.routes.get(key) or {a: a for a in args}
        if not keywords:  # every term gets the same positional (input, target)
            route = {a: ("input", "target")[i] for i, a in enumerate(args[:2])}
        if len(route) < len(args):
            raise LossregError(
                f"eval: term {key!r} takes {len(args)} tensors {args}; call-by-position gives "
                "two (input, target): route its tensors with `inputs:`"
            )
        config = to_config(term)
        info = describe(config["name"])
        mine = {a: shared[route[a]] for a in args if route[a] in shared}
        tensors = make_inputs(args, info.input_kinds, config, shape, gen, mine)
        with torch.no_grad():  # each term on its own first: its error names it
            call_on(term, f"term {key!r} ({info.name})", info.input_kinds, tensors)
        for a, t in tensors.items():
            shared.setdefault(route[a], t)
    if keywords:
        return module(**shared), shared, True
    return module(shared["input"], shared["target"]), shared, False


def _kinds(module: nn.Module) -> list[str]:
    info = describe(to_config(module)["name"])
    return [(info.input_kinds or {}).get(a, "real") for a in info.inputs]


def describe_tensor(t: torch.Tensor) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"


def as_shape(text: str) -> tuple[int, ...]:
    """Parse ``--shape 4,3,32,32`` (or ``4x3x32x32``) into a tuple of positive ints."""
    import re

    if not re.fullmatch(r"\s*\d+(\s*[,x]\s*\d+)*\s*", text):
        raise LossregError(
            f"--shape must be integers like 4,3,32,32 (N, C, *spatial); got {text!r}"
        )
    shape = tuple(int(p) for p in re.split(r"[,x]", text))
    if any(s <= 0 for s in shape):
        raise LossregError(f"--shape must be positive integers like 4,3,32,32; got {text!r}")
    return shape
