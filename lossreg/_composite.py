"""CompositeLoss: named terms combined by a parsed expression, with named (scheduled) weights,
learned balancing and deep supervision. The contract is OBJECTIVES.md."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ._deep_supervision import level_weights, split_levels
from ._expr import Node, names, parse
from ._logging import mean_across_ranks
from ._program import compile_program, run_program
from ._schedules import Schedule
from .errors import LossregError

__all__ = ["CompositeLoss", "TermDict", "parse_cached"]


@functools.lru_cache(maxsize=256)
def _parse_str(expr: str) -> Node:
    return parse(expr)


def parse_cached(expr: str) -> Node:
    """``parse`` with a cache: trees are immutable, and every build of a composite parses."""
    return _parse_str(expr) if isinstance(expr, str) else parse(expr)


class TermDict(nn.ModuleDict):
    """A ``ModuleDict`` whose keys are free identifiers: ``training``, ``to``, ``keys`` or
    ``forward`` name a term like any other (``nn.ModuleDict`` refuses keys that are attributes).
    Index it (``terms["to"]``); attribute access still means the ``nn.Module`` attribute.
    """

    def __setitem__(self, key: str, module: nn.Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise LossregError(f"a term name must be a non-empty identifier, got {key!r}")
        if not isinstance(module, nn.Module):
            raise LossregError(f"term {key!r} must be an nn.Module, got {type(module).__name__}")
        self._modules[key] = module


class CompositeLoss(nn.Module):
    """A weighted combination of losses, e.g. ``0.5*dice + w*bce``, as one module.

    Each term is computed once per call, however often the expression names it; after a call
    ``last_values`` maps each term to its detached value. Named weights (constants or
    schedules of the step counter) live in buffers, so ``state_dict`` resumes them exactly and
    moving the counter never recompiles a compiled objective.

    Called with positional tensors, every term gets the same ``(input, target)``. Called with
    keyword tensors, a term with ``inputs: {input: logits, target: mask}`` takes the tensors
    so named, and a term without ``inputs`` takes the keywords named like its arguments.

    >>> import lossreg, torch
    >>> objective = lossreg.build("0.5*l1 + mse")
    >>> objective(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
    tensor(6.)
    >>> objective.last_values
    {'l1': tensor(2.), 'mse': tensor(5.)}
    >>> ramped = lossreg.build({"expr": "l1 + w*mse",
    ...     "weights": {"w": {"schedule": "linear", "start": 0, "end": 1, "steps": 4}}})
    >>> ramped.step(2); ramped.current_weights()
    {'w': 0.5}
    """

    def __init__(
        self,
        expr: str,
        terms: Mapping[str, nn.Module],
        routes: Mapping[str, Mapping[str, str] | None],
        arg_names: Mapping[str, tuple[str, ...]],
        *,
        weights: Mapping[str, Schedule] | None = None,
        balance: Mapping[str, Any] | None = None,
        deep_supervision: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.expr = expr
        self.terms = TermDict(dict(terms))
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
        self.schedules = dict(weights or {})
        self._weight_index = {name: i for i, name in enumerate(self.schedules)}
        self._order = tuple(n for n in names(parse_cached(expr)) if n not in self._weight_index)
        # a flat program, never the (possibly very deep) tree: see _program.py
        self._program = compile_program(parse_cached(expr))
        self.step_count: torch.Tensor
        self.weight_values: torch.Tensor
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        self.register_buffer(
            "weight_values", torch.tensor([s.value(0) for s in self.schedules.values()])
        )
        balance = dict(balance or {})
        self.balance = balance or None
        self._balance_index = {k: i for i, k in enumerate(balance.get("terms", ()))}
        if self._balance_index:
            init = float(balance.get("init", 0.0))
            # s_k = log sigma_k^2 of Kendall et al. 2018; the optimizer trains them
            self.balance_s: torch.Tensor = nn.Parameter(
                torch.full((len(self._balance_index),), init)
            )
        self.deep_supervision = dict(deep_supervision) if deep_supervision is not None else None
        self.last_values: dict[str, torch.Tensor] = {}
        self.last_levels: list[torch.Tensor] = []
        self.last_total: torch.Tensor | None = None

    @property
    def tree(self) -> Node:
        """The parsed expression (cached; not stored on the module, see ``_program.py``)."""
        return parse_cached(self.expr)

    # -- schedule ------------------------------------------------------------------------
    @property
    def step_number(self) -> int:
        """The step counter, as an ``int``."""
        return int(self.step_count)

    def step(self, n: int = 1) -> None:
        """Advance the step counter by ``n`` (optimizer steps or epochs: the caller's unit)."""
        self.set_step(self.step_number + _steps(n, "n"))

    def set_step(self, t: int) -> None:
        """Set the step counter to ``t`` and every scheduled weight to its value at ``t``."""
        t = _steps(t, "t")
        with torch.no_grad():
            self.step_count.fill_(t)
            if self.schedules:
                values = [s.value(t) for s in self.schedules.values()]
                self.weight_values.copy_(torch.tensor(values, dtype=torch.float64))

    def current_weights(self) -> dict[str, float]:
        """``{name: value}`` of every named weight at the current step, and ``exp(-s_k)`` of
        every learned (``balance``) term under the term's name."""
        t = self.step_number
        out = {name: s.value(t) for name, s in self.schedules.items()}
        if self._balance_index:
            s = self.balance_s.detach()
            out.update({k: float(torch.exp(-s[i])) for k, i in self._balance_index.items()})
        return out

    # -- forward -------------------------------------------------------------------------
    def forward(self, *args: Any, **tensors: Any) -> torch.Tensor:
        levels = split_levels(args, tensors) if self.deep_supervision is not None else None
        if levels is None:
            total, values = self._evaluate(args, tensors)
            self.last_values = {k: v.detach() for k, v in values.items()}
            self.last_levels = []
        else:
            total, per_term, level_totals = self._levels(levels)
            self.last_values = per_term
            self.last_levels = level_totals
        self.last_total = total.detach()
        return total

    def _levels(
        self, levels: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[torch.Tensor]]:
        assert self.deep_supervision is not None
        weights = level_weights(self.deep_supervision, len(levels))
        total: Any = 0.0
        per_term: dict[str, torch.Tensor] = {}
        level_totals: list[torch.Tensor] = []
        for w, (a, kw) in zip(weights, levels, strict=True):
            level_total, values = self._evaluate(a, kw)
            total = total + w * level_total if level_totals else w * level_total
            level_totals.append(level_total.detach())
            for k, v in values.items():
                weighted = w * v.detach()
                per_term[k] = per_term[k] + weighted if k in per_term else weighted
        return total, per_term, level_totals

    def _evaluate(
        self, args: tuple[Any, ...], tensors: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {key: self._term(key, args, tensors) for key in self._order}
        scope: dict[str, Any] = dict(values)
        if self._balance_index:
            s = self.balance_s
            for k, i in self._balance_index.items():
                scope[k] = torch.exp(-s[i]) * values[k] + s[i]
        if self._weight_index:
            first = next(iter(values.values()))
            w = self.weight_values.to(first.dtype)
            for name, i in self._weight_index.items():
                scope[name] = w[i]
        out = run_program(self._program, scope)
        if not isinstance(out, torch.Tensor):  # pragma: no cover - build requires a term
            raise LossregError(f"expression {self.expr!r} names no loss")
        return out, values

    def _term(self, key: str, args: tuple[Any, ...], tensors: Mapping[str, Any]) -> torch.Tensor:
        term = self.terms[key]
        if args and self.routes.get(key) is None:
            out: torch.Tensor = term(*args, **tensors)
        else:
            route = self._bindings[key]
            missing = [src for src in route.values() if src not in tensors]
            if missing:
                passed = ", ".join(sorted(tensors)) or "none"
                raise LossregError(
                    f"composite term {key!r} takes tensor {missing[0]!r}, which was not passed "
                    f"(passed: {passed}); call the objective with {missing[0]}=..."
                )
            out = term(**{arg: tensors[src] for arg, src in route.items()})
        if not isinstance(out, torch.Tensor) or out.dim() != 0:
            got = (
                f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            )
            raise LossregError(
                f"composite term {key!r} returned {got}, not a scalar; a term must reduce "
                "to one number (reduction 'mean' or 'sum')"
            )
        return out

    # -- logging -------------------------------------------------------------------------
    def log_dict(self, prefix: str = "loss/", sync: bool = False) -> dict[str, torch.Tensor]:
        """Detached scalars of the last call for a logger: ``prefix + "total"``, ``prefix +
        term`` for every term, ``prefix + "w/" + name`` for every named and learned weight.
        ``sync=True`` averages them across the ``torch.distributed`` group (every rank must
        call it, as for any collective)."""
        if self.last_total is None:
            raise LossregError("log_dict: the objective has not been called yet")
        device = self.last_total.device
        out = {f"{prefix}total": self.last_total}
        out.update({f"{prefix}{k}": v for k, v in self.last_values.items()})
        out.update(
            {
                f"{prefix}w/{k}": torch.tensor(v, device=device)
                for k, v in self.current_weights().items()
            }
        )
        return mean_across_ranks(out) if sync else out

    def extra_repr(self) -> str:
        extra = [f"expr={self.expr!r}"]
        if self.schedules:
            extra.append(f"weights={list(self.schedules)}")
        if self.balance:
            extra.append(f"balance={self.balance}")
        if self.deep_supervision is not None:
            extra.append(f"deep_supervision={self.deep_supervision}")
        return ", ".join(extra)


def _steps(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LossregError(f"step counter: {what} must be an integer >= 0, got {value!r}")
    return value


def iter_composites(module: nn.Module) -> Iterable[CompositeLoss]:
    """Every :class:`CompositeLoss` in ``module`` (itself included)."""
    return (m for m in module.modules() if isinstance(m, CompositeLoss))
