"""Lazy references: a plugin names its factory and params as ``"module:attribute"``, and
lossreg imports them on the first lookup of that loss, not at discovery.

``lossreg.available()`` then lists every loss without importing a single loss module (nor
pydantic, which the params models need): the built-ins register this way.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["LazyRef", "lazy"]

_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


@dataclass(frozen=True)
class LazyRef:
    """A ``"package.module:attribute"`` reference, resolved by :meth:`load`."""

    ref: str

    def load(self) -> Any:
        """Import the module and return the attribute (dotted attributes walk the object)."""
        module, _, attr = self.ref.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def __str__(self) -> str:
        return self.ref


def lazy(ref: str) -> LazyRef:
    """Refer to a factory or params model by ``"module:attribute"``, imported on first use.

    For plugins whose loss modules are costly to import: ``register`` accepts the reference
    wherever it takes a factory or a ``params`` model, and keeps the name, aliases, tags and
    summary as given. The module is imported when the loss is first looked up (``build``,
    ``describe``); a reference that fails then raises :class:`lossreg.PluginError` naming the
    loss and the reference. Only plugin code makes references: configs name registered
    losses and are never imported from.

    >>> import lossreg
    >>> ref = lossreg.lazy("torch.nn.functional:l1_loss")
    >>> ref.load().__name__
    'l1_loss'
    """
    if not isinstance(ref, str) or not _REF.match(ref):
        raise ValueError(f"lossreg.lazy: expected 'package.module:attribute', got {ref!r}")
    return LazyRef(ref)
