"""Plugin discovery as a small pipeline: find entry points, de-duplicate by distribution,
sort (the built-ins first), then load each on its own so one broken plugin never takes the
others down: whatever it raises (``SystemExit`` too; only ``KeyboardInterrupt`` passes),
every registration it made is withdrawn and the next plugin loads.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from ._registry import LossRecord, Provider, Registry, make_record
from .errors import LossregError, PluginError

__all__ = ["LossregPluginWarning", "PluginStatus", "discover", "plugin_statuses"]

GROUP = "lossreg"
BUILTIN = "lossreg"  # the distribution whose plugins load before any third party's


class LossregPluginWarning(UserWarning):
    """A plugin failed to load; its losses are missing, every other plugin's are not."""


@dataclass
class PluginStatus:
    """One plugin's provenance and how its loading went, for ``lossreg plugins``."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    status: str = "pending"  # "loaded", "failed" or "disabled"
    error: str | None = None
    losses: list[str] = field(default_factory=list)

    @property
    def provider(self) -> Provider:
        return Provider(self.name, self.distribution, self.version)

    @property
    def label(self) -> str:
        return f"{self.distribution}[{self.name}] {self.version} ({self.value})"


_statuses: list[PluginStatus] = []


def plugin_statuses() -> list[PluginStatus]:
    """Every plugin found by the last discovery, in load order."""
    return list(_statuses)


def find_entry_points(
    entry_points: Iterable[md.EntryPoint] | None = None,
) -> list[tuple[md.EntryPoint, PluginStatus]]:
    """Entry points of the ``lossreg`` group (or those given), sorted: the built-ins first,
    then by distribution and entry-point name.

    Built-ins first: a third party that claims a built-in name is the one refused (unless it
    passes ``override=True``), and its hook can ``describe()`` any built-in.
    ``md.entry_points`` reads only each distribution's ``entry_points.txt`` and already keeps
    one distribution per normalised name (the same distribution on ``sys.path`` twice is one
    plugin); only the few distributions that declare a plugin have their metadata parsed.
    """
    found = []
    meta: dict[int, tuple[str, str | None]] = {}  # parsed once per distribution
    if entry_points is None:
        entry_points = md.entry_points(group=GROUP)
    for ep in entry_points:
        dist = ep.dist
        if dist is None:  # pragma: no cover - entry points from a custom finder
            dname, version = "?", None
        else:
            if id(dist) not in meta:
                data = dist.metadata  # parsed on each access: read it once
                meta[id(dist)] = (data["Name"] or "?", data["Version"])
            dname, version = meta[id(dist)]
        found.append((ep, PluginStatus(ep.name, ep.value, dname, version)))
    found.sort(
        key=lambda pair: (pair[1].distribution != BUILTIN, pair[1].distribution or "", pair[1].name)
    )
    return found


def _disabled() -> set[str]:
    raw = os.environ.get("LOSSREG_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("LOSSREG_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def discover(reg: Registry, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
    """Load every plugin into ``reg``; failures become warnings (or errors in strict mode).

    ``entry_points`` replaces the installed ones (tests build them in-process).
    """
    disabled, strict = _disabled(), _strict()
    statuses = []
    failures = []
    for ep, status in find_entry_points(entry_points):
        statuses.append(status)
        if status.name in disabled or f"{status.distribution}:{status.name}" in disabled:
            status.status = "disabled"
            continue
        before = reg.snapshot()
        try:
            load_plugin(reg, ep.load, status, complete=strict)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit at import (argparse, sys.exit) included
            reg.restore(before)  # withdraw all it registered, `@lossreg.register` included
            status.status, status.error = "failed", _cause(exc)
            if strict:
                _statuses[:] = statuses
                raise PluginError(
                    f"lossreg plugin {status.label} failed to load: {status.error}",
                    plugin=status.name,
                ) from exc
            failures.append(status)
        else:
            status.status = "loaded"
    _statuses[:] = statuses
    for status in failures:
        _warn(
            f"lossreg plugin {status.label} failed to load and was skipped: {status.error} "
            "(LOSSREG_STRICT_PLUGINS=1 makes this an error; "
            f"LOSSREG_DISABLE_PLUGINS={status.distribution}:{status.name} silences it)"
        )


def _cause(exc: BaseException) -> str:
    """``Type: message`` on one line, at most about 300 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def _warn(message: str) -> None:
    """Warn about a broken plugin. Where warnings are errors (``-W error``, pytest's
    ``filterwarnings = error``) the warning is shown, not raised: one broken plugin must
    not make every lookup fail. ``LOSSREG_STRICT_PLUGINS=1`` is the way to fail on it."""
    try:
        warnings.warn(message, LossregPluginWarning, stacklevel=4)
    except LossregPluginWarning as exc:
        warnings.showwarning(exc, LossregPluginWarning, __file__, 0)


def load_plugin(
    reg: Registry, load: Callable[[], Any], status: PluginStatus, *, complete: bool = False
) -> None:
    """Import one plugin, validate its hooks with pluggy, call its hook, commit atomically.

    ``complete`` (strict mode) also resolves every lazy registration now, so a reference that
    would fail at its first lookup fails the plugin in CI instead.
    """
    obj = load()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    pm.register(obj, name=status.name)  # validates hook arguments against the spec
    pm.check_pending()  # a misspelt hook name is an error, never zero losses in silence
    if not pm.hook.register_losses.get_hookimpls():
        raise PluginError(f"{status.label} implements no register_losses hook")
    staged: list[tuple[LossRecord, bool]] = []
    pm.hook.register_losses(register=_collector(status.provider, staged))
    if complete:
        staged = [(rec.pending() if rec.pending else rec, over) for rec, over in staged]
    reg.add_all(staged)
    status.losses = [r.name for r, _ in staged]


def _collector(provider: Provider, staged: list[tuple[LossRecord, bool]]) -> Callable[..., Any]:
    """The ``register`` callback handed to one plugin: it stages, the loader commits."""

    def register(
        name: str,
        factory: Any = None,
        *,
        override: bool = False,
        **options: Any,
    ) -> Any:
        if factory is None:  # used as a decorator
            return lambda f: (register(name, f, override=override, **options), f)[1]
        try:
            staged.append((make_record(name, factory, provider, **options), override))
        except TypeError as exc:
            raise PluginError(f"{provider}: bad registration of {name!r}: {exc}") from exc
        except LossregError:
            raise
        return factory

    return register
