"""Building a :class:`CompositeLoss` from its config: terms, routes, and the objective keys
``weights``, ``balance`` and ``deep_supervision`` (OBJECTIVES.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from . import _build as _b  # circular on purpose: _build imports this module's builders
from ._composite import CompositeLoss, parse_cached
from ._deep_supervision import DeepSupervisedLoss
from ._expr import names
from ._objective_spec import OBJECTIVE_KEYS, validate_balance, validate_ds, validate_weights
from ._registry import registry
from .errors import ConfigError, ConfigProblem, LossregError

__all__ = ["build_composite", "deep_supervised"]


def build_composite(spec: Mapping[str, Any], path: str) -> CompositeLoss:
    """Build a :class:`CompositeLoss` from ``{"expr": ..., "terms": {...}}`` and the objective
    keys ``weights``, ``balance`` and ``deep_supervision`` (OBJECTIVES.md)."""
    prefix = f"{path}." if path else ""
    unknown = set(spec) - {"expr", "terms", *OBJECTIVE_KEYS}
    problems = [
        ConfigProblem(
            f"{prefix}{k}",
            "unknown key in a composite; expected `expr`, `terms`, `weights`, `balance`, "
            "`deep_supervision`",
            value=spec[k],
        )
        for k in sorted(unknown, key=str)
    ]
    expr = spec["expr"]
    if not isinstance(expr, str):
        raise ConfigError([ConfigProblem(f"{prefix}expr", "must be a string", value=expr)])
    tree_names = names(parse_cached(expr))
    terms_spec = spec.get("terms") or {}
    if not isinstance(terms_spec, Mapping):
        raise ConfigError(
            [
                ConfigProblem(
                    f"{prefix}terms",
                    "must be a mapping of term name to loss spec",
                    value=terms_spec,
                )
            ]
        )
    for key in terms_spec:
        if key not in tree_names:
            problems.append(
                ConfigProblem(
                    f"{prefix}terms.{key}", f"term is defined but `expr` ({expr!r}) never uses it"
                )
            )
    # a name in `weights` is a number in `expr`, never a loss: it shadows a registered name
    schedules, found = validate_weights(spec.get("weights"), prefix, expr, tree_names, terms_spec)
    problems += found
    weight_names = (
        set(spec.get("weights") or {}) if isinstance(spec.get("weights"), Mapping) else set()
    )
    term_names = [n for n in tree_names if n not in weight_names]
    if not term_names:
        problems.append(ConfigProblem(f"{prefix}expr", f"expression {expr!r} names no loss"))
    balance, found = validate_balance(spec.get("balance"), prefix, term_names)
    problems += found
    deep, found = validate_ds(spec.get("deep_supervision"), prefix)
    problems += found
    modules: dict[str, nn.Module] = {}
    routes: dict[str, dict[str, str] | None] = {}
    arg_names: dict[str, tuple[str, ...]] = {}
    configs: dict[str, Any] = {}
    for key in term_names:
        term_path = f"{prefix}terms.{key}"
        term = terms_spec.get(key, {"name": key})
        if isinstance(term, str):
            term = {"name": term}
        if not isinstance(term, Mapping):
            problems.append(ConfigProblem(term_path, "must be a mapping with `name`", value=term))
            continue
        term = dict(term)
        route = term.pop("inputs", None)
        term_ds = term.pop("deep_supervision", None)
        name = term.pop("name", key if key not in terms_spec else None)
        if name is None:
            problems.append(ConfigProblem(f"{term_path}.name", "every term needs `name`"))
            continue
        try:
            module, found = _b._try_named(name, term, term_path)
        except LossregError as exc:  # unknown name: keep collecting, report all at once
            where = f"{term_path}.name" if key in terms_spec else f"{prefix}expr"
            problems.append(ConfigProblem(where, str(exc), cause=exc))
            continue
        problems += found
        if module is None:
            continue
        rec = registry.lookup(name)
        config = getattr(module, _b._CONFIG_ATTR)
        if config.get("reduction") == "none":
            problems.append(
                ConfigProblem(
                    f"{term_path}.reduction",
                    "a composite term must reduce to one number; use 'mean' or 'sum'",
                    rec.name,
                    "none",
                )
            )
            continue
        base = registry.base(rec)
        arg_names[key] = base.inputs
        # the optional call-time mask routes too, to a loss that takes one (tagged `masked`)
        optional = ("mask",) if "masked" in (*rec.tags, *base.tags) else ()
        route_problems = _b._check_route(
            route, arg_names[key], f"{term_path}.inputs", rec.name, optional
        )
        problems += route_problems
        if term_ds is not None:
            module, found = deep_supervised(module, term_ds, term_path)
            problems += found
        modules[key], routes[key] = module, route
        configs[key] = {**getattr(module, _b._CONFIG_ATTR), **({"inputs": route} if route else {})}
    if problems:
        raise ConfigError(problems)
    composite = CompositeLoss(
        expr,
        modules,
        routes,
        arg_names,
        weights=schedules,
        balance=balance,
        deep_supervision=deep,
    )
    config = {"expr": expr, "terms": configs}
    config.update({k: _b._copy(spec[k]) for k in OBJECTIVE_KEYS if spec.get(k) is not None})
    setattr(composite, _b._CONFIG_ATTR, config)
    return composite


def deep_supervised(
    module: nn.Module, spec: Any, path: str
) -> tuple[nn.Module, list[ConfigProblem]]:
    """``module`` applied to every output level (a single loss's ``deep_supervision`` key)."""
    block, problems = validate_ds(spec, path.rstrip(".") + "." if path else "")
    if problems or block is None:
        return module, problems
    wrapped = DeepSupervisedLoss(module, block)
    setattr(
        wrapped,
        _b._CONFIG_ATTR,
        {**getattr(module, _b._CONFIG_ATTR), "deep_supervision": _b._copy(spec)},
    )
    return wrapped, []
