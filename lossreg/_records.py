"""What the registry holds: records of registered losses, where they came from, what
:func:`lossreg.describe` tells, and the pending records of lazy registrations."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._lazy import LazyRef
from .errors import LossregError, PluginError

if TYPE_CHECKING:  # pydantic costs more to import than all of lossreg: only when needed
    from pydantic import BaseModel

__all__ = ["LossInfo", "LossRecord", "Provider", "pending_record", "plugin_error", "tensor_inputs"]


@dataclass(frozen=True)
class Provider:
    """Where a loss came from: an entry point of a distribution, or in-process code."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution is None:
            return f"{self.plugin!r}"
        return f"plugin {self.plugin!r} ({self.distribution} {self.version})"


@dataclass(frozen=True)
class LossInfo:
    """What :func:`lossreg.describe` tells about a loss: everything a renderer needs.

    A preset's ``summary``, ``doc``, ``inputs``, ``input_kinds`` and ``factory`` are its
    base's (following presets of presets) unless it has its own; ``spec`` is a preset's
    mapping or a composite's config (``None`` for functions and modules).
    """

    name: str
    aliases: tuple[str, ...]
    provider: str
    summary: str
    tags: tuple[str, ...]
    params: type[BaseModel]
    differentiable: bool
    kind: str  # "function", "module", "preset" or "composite"
    distribution: str | None = None
    version: str | None = None
    inputs: tuple[str, ...] = ("input", "target")
    doc: str = ""
    #: each tensor argument's declared kind (``lossreg._inputs.INPUT_KINDS``); None if undeclared
    input_kinds: Mapping[str, str] | None = None
    spec: Mapping[str, Any] | None = None
    #: the registered function or module class (a preset's base's); None for composites
    factory: Any = None


@dataclass
class LossRecord:
    """A registered loss. ``params`` of presets and composites are derived on first use.

    A record registered with :func:`lossreg.lazy` references is ``pending``: it knows its
    names, tags and provider; ``pending()`` imports the rest and returns the full record,
    which replaces it on the first lookup.
    """

    name: str
    factory: Any
    kind: str
    provider: Provider
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    summary: str = ""
    differentiable: bool = True
    params: type[BaseModel] | None = None
    inputs: tuple[str, ...] = ("input", "target")
    input_kinds: dict[str, str] | None = None
    spec: Any = None  # preset mapping or composite config
    pending: Callable[[], LossRecord] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def tensor_inputs(factory: Callable[..., Any], kind: str) -> tuple[str, ...]:
    """Names of the tensor arguments a loss is called with (for ``inputs:`` routing)."""
    target = getattr(factory, "forward") if kind == "module" else factory  # noqa: B009
    names = []
    for p in inspect.signature(target).parameters.values():
        if p.name == "self":
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and (
            kind == "module" or p.default is p.empty
        ):
            names.append(p.name)
    return tuple(names)


def plugin_error(provider: Provider, message: str) -> PluginError:
    return PluginError(f"{provider}: {message}", plugin=provider.plugin)


def pending_record(
    name: str,
    factory: Any,
    provider: Provider,
    params: Any,
    aliases: tuple[str, ...],
    tags: tuple[str, ...],
    summary: str | None,
    differentiable: bool,
    inputs: dict[str, str] | None,
) -> LossRecord:
    """A record that imports its lazy references on first lookup, then checks them exactly
    as an eager registration is checked."""

    def load(ref: Any, what: str) -> Any:
        if not isinstance(ref, LazyRef):
            return ref
        try:
            obj = ref.load()
        except Exception as exc:
            raise plugin_error(
                provider,
                f"{what} of loss {name!r} could not be loaded from {ref}: "
                f"{type(exc).__name__}: {exc}",
            ) from exc
        if what == "factory" and not callable(obj):
            raise plugin_error(
                provider,
                f"factory of loss {name!r} at {ref} must be a function or an nn.Module "
                f"class, got {type(obj).__name__}",
            )
        return obj

    def complete() -> LossRecord:
        try:
            from ._registry import make_record  # the registry checks what is loaded

            return make_record(
                name,
                load(factory, "factory"),
                provider,
                params=load(params, "params"),
                aliases=aliases,
                tags=tags,
                summary=summary,
                differentiable=differentiable,
                inputs=inputs,
            )
        except LossregError:
            raise
        except Exception as exc:  # e.g. a signature the params cannot be derived from
            raise plugin_error(
                provider, f"loss {name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc

    return LossRecord(
        name,
        None,
        "pending",
        provider,
        aliases=aliases,
        tags=tags,
        summary=summary or "",
        differentiable=differentiable,
        pending=complete,
    )


def first_paragraph(doc: str) -> str:
    """A docstring's first paragraph on one line, without a trailing ``::`` (a summary)."""
    para = doc.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in para.splitlines()).rstrip(":").rstrip(",")
