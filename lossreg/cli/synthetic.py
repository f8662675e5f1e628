"""Synthetic tensors for ``lossreg eval``: plausible inputs for any built loss.

For each loss (each term of a composite) a few kinds of (input, target) pairs are tried in
an order guided by its tags and parameters, and the first one the loss accepts is used:

- ``dense``: logits ``shape`` and a binary target of the same shape (bce, dice, mse, ...);
- ``indices``: logits ``(N, C, *)`` and class indices ``(N, *)`` (cross-entropy, multiclass);
- ``boxes``: ``(N, 4)`` boxes as ``(x1, y1, x2, y2)`` (detection);
- ``same``: every tensor argument a standard normal of ``shape`` (triplet, cosine, ...).

Tensors shared between composite terms (routed to the same name) are generated once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from .._build import describe, to_config
from .._composite import CompositeLoss
from ..errors import LossregError

__all__ = ["DEFAULT_SHAPE", "synth_call"]

DEFAULT_SHAPE = (4, 3, 16, 16)
Tensors = dict[str, torch.Tensor]


def _dense(args: tuple[str, ...], shape: tuple[int, ...], gen: torch.Generator) -> Tensors:
    x = torch.randn(shape, generator=gen)
    y = (torch.rand(shape, generator=gen) < 0.3).float()
    return {args[0]: x, args[1]: y}


def _indices(args: tuple[str, ...], shape: tuple[int, ...], gen: torch.Generator) -> Tensors:
    if len(shape) < 2:
        shape = (shape[0] if shape else 4, 3)
    x = torch.randn(shape, generator=gen)
    y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=gen)
    return {args[0]: x, args[1]: y}


def _boxes(args: tuple[str, ...], shape: tuple[int, ...], gen: torch.Generator) -> Tensors:
    n = shape[0] if shape else 4

    def boxes() -> torch.Tensor:
        xy = torch.rand(n, 2, generator=gen) * 10
        wh = torch.rand(n, 2, generator=gen) * 5 + 1
        return torch.cat([xy, xy + wh], dim=1)

    return {args[0]: boxes(), args[1]: boxes()}


def _same(args: tuple[str, ...], shape: tuple[int, ...], gen: torch.Generator) -> Tensors:
    return {a: torch.randn(shape, generator=gen) for a in args}


Maker = Callable[[tuple[str, ...], tuple[int, ...], torch.Generator], Tensors]
_MAKERS: dict[str, Maker] = {
    "dense": _dense,
    "indices": _indices,
    "boxes": _boxes,
    "same": _same,
}


def _order(module: nn.Module) -> list[str]:
    config = to_config(module)
    info = describe(config["name"])
    if len(info.inputs) != 2:
        return ["same"]
    if "detection" in info.tags or "box" in info.name:
        return ["boxes", "indices", "dense", "same"]
    if config.get("mode") == "multiclass" or "ignore_index" in config:
        return ["indices", "dense", "boxes", "same"]
    return ["dense", "indices", "boxes", "same"]


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
    if shape is None:
        shape = default_shape(module)
        terms = module.terms.values() if isinstance(module, CompositeLoss) else [module]
        if any(_order(t)[0] == "boxes" for t in terms):  # detection: per-box logits (N, C)
            shape = shape[:2]
    gen = torch.Generator().manual_seed(seed)
    if not isinstance(module, CompositeLoss):
        tensors = _fit(module, _args(module), shape, gen, {}, "loss")
        return module(*tensors.values()), tensors, False
    keywords = any(route for route in module.routes.values())
    shared: Tensors = {}
    for key, term in module.terms.items():
        route = module.routes.get(key) or {a: a for a in module.arg_names[key]}
        if not keywords:  # every term gets the same positional (input, target)
            route = {a: ("input", "target")[i] for i, a in enumerate(module.arg_names[key][:2])}
        _fit(term, tuple(route), shape, gen, shared, f"term {key!r}", route)
    if keywords:
        return module(**shared), shared, True
    return module(shared["input"], shared["target"]), shared, False


def _args(module: nn.Module) -> tuple[str, ...]:
    return describe(to_config(module)["name"]).inputs


def _fit(
    module: nn.Module,
    args: tuple[str, ...],
    shape: tuple[int, ...],
    gen: torch.Generator,
    shared: Tensors,
    what: str,
    route: Mapping[str, str] | None = None,
) -> Tensors:
    """Find tensors ``module`` accepts, reusing those already in ``shared``; add them there."""
    route = dict(route or {a: a for a in args})
    errors = []
    kinds = describe(to_config(module)["name"]).input_kinds or {}
    for kind in _order(module):
        made = _as_declared(_MAKERS[kind](args, shape, gen), kinds)
        tensors = {a: shared.get(route[a], made[a]) for a in args}
        try:
            with torch.no_grad():
                module(*tensors.values())
        except Exception as exc:  # not this kind of input; try the next
            errors.append(f"{kind}: {' '.join(str(exc).split())[:200]}")
            continue
        for a, t in tensors.items():
            shared.setdefault(route[a], t)
        return {route[a]: t for a, t in tensors.items()}
    raise LossregError(
        f"eval: could not make synthetic inputs for {what} ({to_config(module)['name']}) "
        f"with shape {shape}; tried " + "; ".join(errors)
    )


def _as_declared(made: Tensors, kinds: Mapping[str, str]) -> Tensors:
    """Make floating tensors what their declared kind says: (log-)probabilities over dim 1,
    so e.g. ``kl_div`` is shown a true divergence (>= 0), not a number of random inputs."""
    out = dict(made)
    for arg, t in made.items():
        dim = 1 if t.dim() > 1 else 0
        if t.is_floating_point() and kinds.get(arg) == "log_probabilities":
            out[arg] = t.log_softmax(dim)
        elif t.is_floating_point() and kinds.get(arg) == "probabilities":
            out[arg] = t.softmax(dim)
    return out


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
