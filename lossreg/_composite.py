"""CompositeLoss: named terms in a ModuleDict, combined by a parsed expression."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn

from ._expr import Bin, Name, Neg, Node, Num, names, parse
from .errors import LossregError

__all__ = ["CompositeLoss", "parse_cached"]


@functools.lru_cache(maxsize=256)
def _parse_str(expr: str) -> Node:
    return parse(expr)


def parse_cached(expr: str) -> Node:
    """``parse`` with a cache: trees are immutable, and every build of a composite parses."""
    return _parse_str(expr) if isinstance(expr, str) else parse(expr)


class CompositeLoss(nn.Module):
    """A weighted combination of losses, e.g. ``0.5*dice + bce``, as one module.

    Each term is computed once per call, however often the expression names it; after a call
    ``last_values`` maps each term to its detached value, for logging.

    Called with positional tensors, every term gets the same ``(input, target)``. Called with
    keyword tensors, a term with ``inputs: {input: logits, target: mask}`` takes the tensors
    so named, and a term without ``inputs`` takes the keywords named like its arguments.

    >>> import lossreg, torch
    >>> objective = lossreg.build("0.5*l1 + mse")
    >>> objective(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
    tensor(6.)
    >>> objective.last_values
    {'l1': tensor(2.), 'mse': tensor(5.)}
    """

    def __init__(
        self,
        expr: str,
        terms: Mapping[str, nn.Module],
        routes: Mapping[str, Mapping[str, str] | None],
        arg_names: Mapping[str, tuple[str, ...]],
    ) -> None:
        super().__init__()
        self.expr = expr
        self.tree: Node = parse_cached(expr)
        self.terms = nn.ModuleDict(dict(terms))
        self.routes = {k: dict(v) if v else None for k, v in routes.items()}
        self.arg_names = dict(arg_names)
        # keyword binding of each term, fixed here: arguments a route leaves out take the
        # keyword tensor of their own name; an optional one (a mask) binds only when routed
        self._bindings = {
            k: {
                **{arg: arg for arg in self.arg_names[k]},
                **(self.routes.get(k) or {}),
            }
            for k in self.terms
        }
        self._order = tuple(names(self.tree))
        self.last_values: dict[str, torch.Tensor] = {}

    def forward(self, *args: torch.Tensor, **tensors: torch.Tensor) -> torch.Tensor:
        values = {key: self._term(key, args, tensors) for key in self._order}
        self.last_values = {key: v.detach() for key, v in values.items()}
        out = _evaluate(self.tree, values)
        if not isinstance(out, torch.Tensor):  # pragma: no cover - parse requires a name
            raise LossregError(f"expression {self.expr!r} names no loss")
        return out

    def _term(
        self, key: str, args: tuple[torch.Tensor, ...], tensors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        term = self.terms[key]
        if args and self.routes.get(key) is None:
            out: torch.Tensor = term(*args, **tensors)
            return out
        route = self._bindings[key]
        missing = [src for src in route.values() if src not in tensors]
        if missing:
            passed = ", ".join(sorted(tensors)) or "none"
            raise LossregError(
                f"composite term {key!r} takes tensor {missing[0]!r}, which was not passed "
                f"(passed: {passed}); call the objective with {missing[0]}=..."
            )
        routed: torch.Tensor = term(**{arg: tensors[src] for arg, src in route.items()})
        return routed

    def extra_repr(self) -> str:
        return f"expr={self.expr!r}"


def _evaluate(node: Node, values: Mapping[str, torch.Tensor]) -> torch.Tensor | float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        return values[node.id]
    if isinstance(node, Neg):
        return -_evaluate(node.operand, values)
    assert isinstance(node, Bin)
    a, b = _evaluate(node.left, values), _evaluate(node.right, values)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    return a / b
