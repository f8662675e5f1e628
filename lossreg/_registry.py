"""One flat mapping of loss names and aliases to records, filled by plugins."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._inputs import check_input_kinds
from ._lazy import LazyRef
from ._records import LossInfo, LossRecord, Provider, pending_record, tensor_inputs
from ._records import first_paragraph as _first_paragraph
from ._records import plugin_error as _bad
from ._rules import find_cycle, name_problem, shown
from .errors import DuplicateLossError, LossregError, UnknownLossError

if TYPE_CHECKING:  # pydantic costs more to import than all of lossreg: only when needed
    from pydantic import BaseModel

__all__ = ["LossInfo", "LossRecord", "Provider", "Registry", "available", "registry"]


class Registry:
    """Names and aliases to records; discovery runs once, on the first lookup."""

    def __init__(self, discover: Callable[[Registry], None] | None = None) -> None:
        self._records: dict[str, LossRecord] = {}
        self._names: dict[str, str] = {}
        self._discover = discover
        self._discovered = False
        self._discovering = False
        self._lock = threading.RLock()

    # -- discovery -------------------------------------------------------------------------
    def ensure_discovered(self) -> None:
        if self._discovered:  # fast path: no lock once discovery has finished
            return
        with self._lock:  # other threads wait here until discovery is complete
            if self._discovered or self._discovering or self._discover is None:
                return  # _discovering: a plugin looking up losses while it is being loaded
            self._discovering, before = True, self.snapshot()
            try:
                self._discover(self)
                self._discovered = True
            except BaseException:  # a failed (strict) discovery leaves the registry as it
                self.restore(before)  # was: the next attempt names the real culprit
                raise
            finally:
                self._discovering = False

    def snapshot(self) -> tuple[dict[str, LossRecord], dict[str, str]]:
        """A copy of the state; :meth:`restore` withdraws every registration made since."""
        with self._lock:
            return dict(self._records), dict(self._names)

    def restore(self, state: tuple[dict[str, LossRecord], dict[str, str]]) -> None:
        with self._lock:
            self._records, self._names = dict(state[0]), dict(state[1])

    def reset(self) -> None:
        """Forget everything and discover again on the next lookup (for tests)."""
        with self._lock:
            self._records.clear()
            self._names.clear()
            self._discovered = False

    # -- writing ---------------------------------------------------------------------------
    def add_all(self, items: Iterable[tuple[LossRecord, bool]]) -> None:
        """Add ``(record, override)`` pairs atomically: every one lands, or none does."""
        items = list(items)
        with self._lock:
            new_names = dict(self._names)
            new_records = dict(self._records)
            for rec, override in items:
                for n in rec.names:
                    old = new_names.get(n)
                    if old is not None and not override:
                        first = str(new_records[old].provider)
                        raise DuplicateLossError(n, first, str(rec.provider))
                    if old is not None:
                        _drop(new_records, new_names, old)
                new_records[rec.name] = rec
                for n in rec.names:
                    new_names[n] = rec.name
            for rec, _ in items:
                if cycle := find_cycle(rec, new_records, new_names):
                    raise _bad(rec.provider, f"{rec.kind} {rec.name!r} refers to itself: {cycle}")
            self._records, self._names = new_records, new_names

    # -- reading ---------------------------------------------------------------------------
    def lookup(self, name: str, *, where: str = "") -> LossRecord:
        self.ensure_discovered()
        canonical = self._names.get(name) if isinstance(name, str) else None
        if canonical is None:
            if not isinstance(name, str):
                raise UnknownLossError(shown(name), where=where)
            if "." in name:
                where += " (dotted paths are never imported; use a registered name)"
            short = name if len(name) <= 200 else name[:197] + "..."  # a 1 MB name: no
            raise UnknownLossError(short, self.suggest(short), where=where)  # 1 MB error line
        rec = self._records[canonical]
        return rec if rec.pending is None else self._complete(rec)

    def _complete(self, rec: LossRecord) -> LossRecord:
        """Import a pending record's references, once, and store the full record."""
        with self._lock:
            # the latest under this name: completed by another thread meanwhile, or overridden
            rec = self._records.get(rec.name, rec)
            if rec.pending is None:
                return rec
            full = rec.pending()
            if self._records.get(rec.name) is rec:
                self._records[rec.name] = full
            return full

    def chain(self, rec: LossRecord) -> list[LossRecord]:
        """``rec`` and, for a preset, each record it stands on, down to its base (the last:
        a function, module or composite). The one place presets are resolved."""
        out = [rec]
        while out[-1].kind == "preset":
            name = out[-1].spec["name"]
            out.append(self.lookup(name, where=f" (base of preset {out[-1].name!r})"))
            if len(out) > 64:  # a cycle: registration refuses them, this guards the lookup
                raise LossregError(f"preset {rec.name!r}: presets of presets nest too deeply")
        return out

    def base(self, rec: LossRecord) -> LossRecord:
        """The record a preset stands on (following presets of presets); others unchanged."""
        return self.chain(rec)[-1]

    def suggest(self, name: str) -> list[str]:
        import difflib

        lowered = {n.lower(): n for n in self._names}
        hits = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
        out: list[str] = []
        for h in hits:
            canonical = self._names[lowered[h]]
            if canonical not in out:
                out.append(canonical)
        return out

    def tags(self) -> list[str]:
        """Every tag in use, sorted (without importing lazily registered losses)."""
        return sorted({t for rec in self.records() for t in rec.tags})

    def records(self) -> list[LossRecord]:
        self.ensure_discovered()
        return [self._records[n] for n in sorted(self._records)]

    def __contains__(self, name: object) -> bool:
        self.ensure_discovered()
        return name in self._names


def _drop(records: dict[str, LossRecord], names: dict[str, str], canonical: str) -> None:
    rec = records.pop(canonical)
    for n in rec.names:
        if names.get(n) == canonical:
            del names[n]


def make_record(
    name: str,
    factory: Any,
    provider: Provider,
    *,
    params: type[BaseModel] | LazyRef | None = None,
    aliases: Iterable[str] = (),
    tags: Iterable[str] = (),
    summary: str | None = None,
    differentiable: bool = True,
    inputs: Mapping[str, str] | None = None,
) -> LossRecord:
    """Check one registration and turn it into a record (no registry is touched)."""
    problem = name_problem(name, aliases)
    if problem:
        raise _bad(provider, problem)
    if isinstance(factory, LazyRef) or isinstance(params, LazyRef):
        checked, problem = check_input_kinds(inputs, None)
        if problem:
            raise _bad(provider, f"loss {name!r}: {problem}")
        return pending_record(
            name, factory, provider, params, tuple(aliases), tuple(tags), summary, differentiable,
            checked,
        )  # fmt: skip
    if params is not None:
        from pydantic import BaseModel

        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise _bad(provider, f"params of {name!r} must be a pydantic model class")
    doc = inspect.getdoc(factory) if callable(factory) else None
    text = summary or _first_paragraph(doc or "")
    common: dict[str, Any] = dict(
        provider=provider,
        aliases=tuple(aliases),
        tags=tuple(tags),
        summary=text,
        differentiable=differentiable,
    )
    if inputs is not None and (isinstance(factory, (str, Mapping))):
        raise _bad(provider, f"{name!r}: a preset or composite takes its base's inputs")
    if isinstance(factory, str) or (isinstance(factory, Mapping) and "expr" in factory):
        from ._expr import parse

        spec = {"expr": factory} if isinstance(factory, str) else dict(factory)
        parse(spec["expr"])  # syntax errors surface at registration
        return LossRecord(name, None, "composite", spec=spec, params=params, **common)
    if isinstance(factory, Mapping):
        if "name" not in factory:
            raise _bad(provider, f"preset {name!r} needs a 'name' key naming its base")
        return LossRecord(name, None, "preset", spec=dict(factory), params=params, **common)
    if inspect.isclass(factory):
        import torch

        if not issubclass(factory, torch.nn.Module):
            raise _bad(provider, f"factory of {name!r} is a class but not an nn.Module")
        kind = "module"
    elif callable(factory):
        kind = "function"
    else:
        raise _bad(
            provider,
            f"factory of {name!r} must be a function, an nn.Module class, an "
            f"expression or a mapping, got {type(factory).__name__}",
        )
    from ._params import derive_params

    args = tensor_inputs(factory, kind)
    kinds, problem = check_input_kinds(inputs, args)
    if problem:
        raise _bad(provider, f"loss {name!r}: {problem}")
    return LossRecord(
        name,
        factory,
        kind,
        params=params or derive_params(factory, name),
        inputs=args,
        input_kinds=kinds,
        **common,
    )


def available(tag: str | None = None) -> list[str]:
    """Canonical names of every registered loss, sorted; ``tag`` filters.

    Lists names from what plugins registered, without importing lazily registered losses.

    >>> import lossreg
    >>> "focal" in lossreg.available(tag="classification")
    True
    """
    return [r.name for r in registry.records() if tag is None or tag in r.tags]


def _discover(reg: Registry) -> None:
    from ._plugins import discover

    discover(reg)


registry = Registry(_discover)
