"""Synthetic tensors for a loss, made from what its registration declares (``inputs=``).

One function, :func:`make_tensor`, maps a kind (``lossreg._inputs.INPUT_KINDS``), a shape and
the loss's config to a tensor; :func:`make_inputs` applies it to each tensor argument of a
built loss. ``lossreg eval``, ``lossreg plot`` and :mod:`lossreg.testing` use them. Nothing is
guessed from a loss's name or tags, and nothing is retried: the loss is called once on what
its declaration says it takes, so its own error (or bug) is the one reported.

A loss that declares nothing (a third party's) gets real-valued tensors of one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .errors import LossregError, format_shape

__all__ = ["DEFAULT_SHAPE", "arg_shape", "effective_kind", "make_inputs", "make_tensor"]

#: (N, C, H, W): the shape of the first tensor argument when none is given
DEFAULT_SHAPE = (4, 3, 16, 16)


def effective_kind(kind: str, config: Mapping[str, Any]) -> str:
    """The kind a tensor takes under the loss's config: ``mode_target`` follows ``mode``,
    ``from_logits: false`` turns logits into probabilities, ``log_target: true``
    probabilities into log-probabilities.

    >>> effective_kind("mode_target", {"mode": "multiclass"})
    'class_indices'
    >>> effective_kind("logits", {"from_logits": False})
    'probabilities'
    """
    if kind == "mode_target":
        return "class_indices" if config.get("mode") == "multiclass" else "binary_target"
    if kind == "logits" and config.get("from_logits") is False:
        return "probabilities"
    if kind == "probabilities" and config.get("log_target") is True:
        return "log_probabilities"
    return kind


def arg_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of an argument of ``kind`` beside a first argument of ``shape`` (N, C, *):
    class indices drop the class dim 1, boxes are (N, 4), lengths (N,); others keep it."""
    n = shape[0] if shape else 1
    if kind == "class_indices":
        return shape[:1] + shape[2:] if len(shape) >= 2 else ()
    if kind == "boxes":
        return (n, 4)
    if kind == "lengths":
        return (n,)
    return shape


def make_tensor(
    kind: str, shape: tuple[int, ...], gen: torch.Generator, *, num_classes: int = 2
) -> torch.Tensor:
    """A random tensor of ``kind`` and ``shape`` (float32; class indices and lengths int64).

    Probabilities sum to 1 over dim 1 when it has more than one entry (a softmax), so a
    KL divergence of two of them is >= 0; otherwise they are sigmoids.

    >>> gen = torch.Generator().manual_seed(0)
    >>> make_tensor("class_indices", (2, 5), gen, num_classes=3).max() < 3
    tensor(True)
    """
    if kind in ("logits", "real"):
        return torch.randn(shape, generator=gen)
    if kind in ("probabilities", "log_probabilities"):
        scores = torch.randn(shape, generator=gen)
        softmax = len(shape) >= 2 and shape[1] > 1
        if kind == "log_probabilities":
            return scores.log_softmax(1) if softmax else torch.nn.functional.logsigmoid(scores)
        return scores.softmax(1) if softmax else scores.sigmoid()
    if kind == "class_indices":
        return torch.randint(0, max(num_classes, 1), shape, generator=gen)
    if kind == "binary_target":
        return (torch.rand(shape, generator=gen) < 0.3).float()
    if kind == "sign":
        return torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
    if kind == "lengths":
        return torch.full(shape, shape[0] if shape else 1, dtype=torch.long)
    if kind == "nonnegative":  # counts
        return (torch.rand(shape, generator=gen) * 4).floor()
    if kind == "variance":
        return torch.rand(shape, generator=gen) + 0.1
    if kind == "boxes":
        xy = torch.rand(*shape[:-1], 2, generator=gen) * 10
        return torch.cat([xy, xy + torch.rand(*shape[:-1], 2, generator=gen) * 5 + 1], dim=-1)
    if kind == "distance_map":  # negative inside the object, positive outside
        return torch.randn(shape, generator=gen)
    raise LossregError(f"no synthetic tensor for input kind {kind!r}")


def make_inputs(
    args: tuple[str, ...],
    kinds: Mapping[str, str] | None,
    config: Mapping[str, Any],
    shape: tuple[int, ...],
    gen: torch.Generator,
    shared: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """One tensor per argument of a loss, from its declared ``kinds`` and built ``config``.

    ``shape`` is the first argument's (boxes take its N); ``shared`` maps argument names to
    tensors already made (a composite's terms share them). Undeclared: every argument real
    with ``shape``.
    """
    shared = shared or {}
    first = effective_kind((kinds or {}).get(args[0], "real"), config) if args else "real"
    base = arg_shape(first, shape) if first == "boxes" else shape
    classes = shape[1] if len(shape) >= 2 else (shape[0] if shape else 2)
    weight = config.get("weight")
    if isinstance(weight, list) and len(weight) > 1:
        classes = len(weight)
    out: dict[str, torch.Tensor] = {}
    for arg in args:
        if arg in shared:
            out[arg] = shared[arg]
            continue
        kind = effective_kind((kinds or {}).get(arg, "real"), config)
        out[arg] = make_tensor(kind, arg_shape(kind, base), gen, num_classes=classes)
    return out


def call_on(
    module: torch.nn.Module, name: str, kinds: Mapping[str, str] | None, tensors: Any
) -> torch.Tensor:
    """Call ``module`` on synthetic ``tensors`` (a dict: keywords; a tuple: positional).

    A loss that declared its inputs reports its own error; one that did not gets an error
    naming it and suggesting ``inputs=``.
    """
    try:
        out: torch.Tensor = module(**tensors) if isinstance(tensors, dict) else module(*tensors)
        return out
    except Exception as exc:
        if kinds is not None and not isinstance(exc, LossregError):
            raise  # a declared loss failing on its declared inputs: its own bug, shown as is
        given = tensors.values() if isinstance(tensors, dict) else tensors
        shapes = ", ".join(format_shape(t.shape) for t in given)
        if kinds is None:
            raise LossregError(
                f"{name} declares no input kinds, and real-valued tensors of shapes {shapes} "
                f"failed: {exc}",
                hint=f"declare what {name} takes: register(..., inputs={{'input': 'logits', "
                "'target': 'binary_target'}}) (kinds: lossreg._inputs.INPUT_KINDS)",
            ) from exc
        raise LossregError(
            f"{name} refused synthetic inputs of shapes {shapes}: {exc}",
            hint=f"pass --shape to match its layout; `lossreg show {name}` shows it",
        ) from exc
