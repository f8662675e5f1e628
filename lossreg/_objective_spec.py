"""Validation of a composite's objective keys: ``weights``, ``balance``, ``deep_supervision``.

Each function returns what it validated and a list of path-naming problems, so the builder
reports every problem of a config at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._deep_supervision import validate_deep_supervision
from ._schedules import Schedule, validate_weight
from .errors import ConfigProblem

__all__ = ["OBJECTIVE_KEYS", "validate_balance", "validate_weights"]

OBJECTIVE_KEYS = ("weights", "balance", "deep_supervision")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BALANCE_KEYS = ("method", "terms", "init")


def validate_weights(
    spec: Any, prefix: str, expr: str, tree_names: Sequence[str], terms_spec: Mapping[str, Any]
) -> tuple[dict[str, Schedule], list[ConfigProblem]]:
    """The ``weights`` block: name -> :class:`Schedule`, or every problem in it."""
    path = f"{prefix}weights"
    if spec is None:
        return {}, []
    if not isinstance(spec, Mapping):
        return {}, [
            ConfigProblem(
                path, "must be a mapping of weight name to number or schedule", value=spec
            )
        ]
    schedules: dict[str, Schedule] = {}
    problems = []
    for name, value in spec.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _IDENT.match(name):
            problems.append(ConfigProblem(where, "a weight name must be an identifier", value=name))
            continue
        if name in terms_spec:
            problems.append(
                ConfigProblem(where, f"{name!r} is both a weight and a term; rename one")
            )
            continue
        if name not in tree_names:
            problems.append(
                ConfigProblem(where, f"weight is defined but `expr` ({expr!r}) never uses it")
            )
            continue
        schedule, found = validate_weight(value, where)
        problems += found
        if schedule is not None:
            schedules[name] = schedule
    return schedules, problems


def validate_balance(
    spec: Any, prefix: str, term_names: Sequence[str]
) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """The ``balance`` block with ``init`` filled in, or every problem in it."""
    path = f"{prefix}balance"
    if spec is None:
        return None, []
    if not isinstance(spec, Mapping):
        msg = "must be a mapping, e.g. {method: uncertainty, terms: [seg, det]}"
        return None, [ConfigProblem(path, msg, value=spec)]
    problems = [
        ConfigProblem(
            f"{path}.{k}", f"unknown key; expected: {', '.join(_BALANCE_KEYS)}", value=spec[k]
        )
        for k in spec
        if k not in _BALANCE_KEYS
    ]
    method = spec.get("method")
    if method != "uncertainty":
        msg = "missing" if "method" not in spec else "unknown method"
        problems.append(
            ConfigProblem(
                f"{path}.method",
                f"{msg}; expected: uncertainty",
                value=method if method is not None else ...,
            )
        )
    terms = spec.get("terms")
    if (
        not isinstance(terms, (list, tuple))
        or not terms
        or not all(isinstance(t, str) for t in terms)
    ):
        problems.append(
            ConfigProblem(
                f"{path}.terms",
                "must be a non-empty list of term names",
                value=terms if terms is not None else ...,
            )
        )
        terms = []
    for i, t in enumerate(terms):
        if t not in term_names:
            known = ", ".join(term_names)
            problems.append(
                ConfigProblem(
                    f"{path}.terms.{i}",
                    f"no term {t!r} in the expression; terms are: {known}",
                    value=t,
                )
            )
        elif list(terms).index(t) != i:
            problems.append(
                ConfigProblem(f"{path}.terms.{i}", f"term {t!r} is listed twice", value=t)
            )
    init = spec.get("init", 0.0)
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not math.isfinite(init):
        problems.append(ConfigProblem(f"{path}.init", "must be a finite number", value=init))
    if problems:
        return None, problems
    return {"method": method, "terms": list(terms), "init": float(init)}, []


def validate_ds(spec: Any, prefix: str) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """The ``deep_supervision`` block with defaults, ``None`` when absent, or its problems."""
    if spec is None:
        return None, []
    block, problems = validate_deep_supervision(spec, f"{prefix}deep_supervision")
    return (None if problems else block), problems
