"""Benchmark rows, one module per family. Each module defines ``ROWS`` (a list of
:class:`harness.Row`) and may set ``ORDER`` (default 50) to place its rows in the table;
modules of equal order print in name order, the import and build rows last."""

from __future__ import annotations

import importlib
import pkgutil

from harness import Row


def all_rows() -> list[Row]:
    """Every row of every module in this package, in table order; keys are unique."""
    modules = [importlib.import_module(f"rows.{m.name}") for m in pkgutil.iter_modules(__path__)]
    modules.sort(key=lambda m: (getattr(m, "ORDER", 50), m.__name__))
    rows: list[Row] = []
    for module in modules:
        for row in module.ROWS:
            if any(r.key == row.key for r in rows):
                raise ValueError(f"benchmark row {row.key!r} defined twice ({module.__name__})")
            rows.append(row)
    return rows
