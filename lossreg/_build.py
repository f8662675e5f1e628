"""``build``, ``to_config``, ``describe`` and in-process ``register``."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from pydantic import BaseModel
from torch import nn

from ._build_composite import build_composite, deep_supervised
from ._expr import names, parse
from ._loss import Loss, as_tensor_param, live_config, promote_buffers
from ._params import Params, class_name, tensor_fields, validate_params
from ._registry import LossInfo, LossRecord, Provider, make_record, registry
from .errors import ConfigError, ConfigProblem, LossregError

__all__ = ["build", "describe", "register", "to_config"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONFIG_ATTR = "_lossreg_config"


# -- reading the registry ------------------------------------------------------------------
def describe(name: str) -> LossInfo:
    """Everything registered about one loss (name or alias).

    A preset's summary, doc, inputs and factory are resolved through its base; ``spec`` is a
    preset's or a composite's definition.

    >>> import lossreg
    >>> info = lossreg.describe("CrossEntropyLoss")
    >>> info.name, info.provider
    ('cross_entropy', 'classification')
    >>> preset = lossreg.describe("BCELoss")
    >>> preset.kind, preset.spec, preset.input_kinds == lossreg.describe("bce").input_kinds
    ('preset', {'name': 'bce', 'from_logits': False}, True)
    """
    rec = registry.lookup(name)
    chain = registry.chain(rec)
    base = chain[-1]
    return LossInfo(
        name=rec.name,
        aliases=rec.aliases,
        provider=rec.provider.plugin,
        summary=next((r.summary for r in chain if r.summary), ""),
        tags=rec.tags,
        params=params_model(rec),
        differentiable=all(r.differentiable for r in chain) and _differentiable(base),
        kind=rec.kind,
        distribution=rec.provider.distribution,
        version=rec.provider.version,
        inputs=base.inputs,
        doc=next((d for d in map(_doc, chain) if d), ""),
        input_kinds=base.input_kinds,
        spec=copy.deepcopy(rec.spec),
        factory=base.factory,
    )


def _doc(rec: LossRecord) -> str:
    return (rec.factory.__doc__ or "").strip() if rec.factory is not None else ""


def _differentiable(rec: LossRecord) -> bool:
    """Whether a base record (not a preset) has a gradient: a composite's every term."""
    if rec.kind != "composite":
        return rec.differentiable
    terms = rec.spec.get("terms") or {}
    refs = [terms.get(n, n) for n in names(parse(rec.spec["expr"]))]
    return rec.differentiable and all(
        describe(t if isinstance(t, str) else t.get("name", n)).differentiable
        for n, t in zip(names(parse(rec.spec["expr"])), refs, strict=True)
    )


def params_model(rec: LossRecord) -> type[BaseModel]:
    """The params model of a record; for presets, the base's model with new defaults."""
    if rec.params is None:
        if rec.kind == "preset":
            base_name = rec.spec["name"]
            base = params_model(registry.lookup(base_name, where=f" (base of preset {rec.name!r})"))
            defaults = {k: v for k, v in rec.spec.items() if k != "name"}
            inst, problems = validate_params(base, defaults, loss=rec.name)
            if problems:
                raise ConfigError(problems)
            fields: dict[str, Any] = {}
            for key, field in base.model_fields.items():
                new = copy.copy(field)
                new.default = getattr(inst, key)
                fields[key] = (field.annotation, new)
            rec.params = pydantic.create_model(
                class_name(rec.name, "Params"), __base__=base, **fields
            )
        else:
            rec.params = pydantic.create_model(class_name(rec.name, "Params"), __base__=Params)
    assert rec.params is not None
    return rec.params


# -- registering in-process ----------------------------------------------------------------
def register(
    name: str,
    factory: Any = None,
    *,
    params: type[BaseModel] | None = None,
    aliases: tuple[str, ...] | list[str] = (),
    tags: tuple[str, ...] | list[str] = (),
    summary: str | None = None,
    override: bool = False,
    differentiable: bool = True,
    inputs: Mapping[str, str] | None = None,
) -> Any:
    """Register a loss in this process (a plugin's hook gets the same signature).

    Used as a decorator when ``factory`` is omitted. See :mod:`lossreg.hookspecs` for what a
    factory may be.

    >>> import lossreg, torch
    >>> @lossreg.register("doc_abs_error", tags=("regression",))
    ... def abs_error(input, target, *, scale: float = 1.0):
    ...     return scale * (input - target).abs().mean()
    >>> lossreg.build("doc_abs_error", scale=2.0)(torch.ones(3), torch.zeros(3))
    tensor(2.)
    """
    options: dict[str, Any] = dict(
        params=params,
        aliases=aliases,
        tags=tags,
        summary=summary,
        differentiable=differentiable,
        inputs=inputs,
    )
    if factory is None:

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            register(name, f, override=override, **options)
            return f

        return decorator
    registry.ensure_discovered()  # conflicts with plugins are reported here, not later
    module = getattr(factory, "__module__", None) or "__main__"
    rec = make_record(name, factory, Provider(f"in-process:{module}"), **options)
    registry.add_all([(rec, override)])
    return factory


# -- building ------------------------------------------------------------------------------
def build(spec: Any, /, *, compile: bool = False, **overrides: Any) -> nn.Module:
    """Build a loss module from a name, an expression, a mapping or an OmegaConf config.

    >>> import lossreg
    >>> lossreg.build("mse")
    Loss(mse, reduction='mean')
    >>> lossreg.build({"expr": "0.5*l1 + mse"})
    CompositeLoss(
      expr='0.5*l1 + mse'
      (terms): TermDict(
        (l1): Loss(l1, reduction='mean')
        (mse): Loss(mse, reduction='mean')
      )
    )
    """
    module = _build_top(plain_spec(spec), overrides)
    if compile:
        import torch

        return torch.compile(module)  # type: ignore[return-value]
    return module


def plain_spec(spec: Any) -> Any:
    """A spec as plain Python containers: OmegaConf configs resolved, and the spec under a
    top-level ``loss:`` key (beside other keys a config file keeps) taken out.

    >>> plain_spec({"loss": {"name": "l1"}, "weights": {"a": 1}})
    {'name': 'l1'}
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(spec, (DictConfig, ListConfig)):
        try:
            spec = OmegaConf.to_container(spec, resolve=True, throw_on_missing=True)
        except OmegaConfBaseException as exc:
            key = str(getattr(exc, "full_key", None) or "")
            why = " ".join(str(exc).split())
            raise ConfigError.single(key, f"cannot resolve interpolation: {why}") from exc
    if isinstance(spec, Mapping) and "loss" in spec and not ({"name", "expr"} & set(spec)):
        return spec["loss"]
    return spec


def _build_top(spec: Any, overrides: Mapping[str, Any]) -> nn.Module:
    if isinstance(spec, str) and (spec in registry or _IDENT.match(spec)):
        return build_named(spec, dict(overrides), "")
    if isinstance(spec, str) or (isinstance(spec, Mapping) and "expr" in spec):
        if overrides:
            raise ConfigError(
                "keyword overrides apply to a single loss; set a composite's "
                "parameters under `terms`"
            )
        return build_composite({"expr": spec} if isinstance(spec, str) else dict(spec), "")
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" in spec:
            if spec.get("inputs") is not None:
                return _routed_single(spec, overrides)
            name = spec.pop("name")
            spec.pop("inputs", None)
            deep = spec.pop("deep_supervision", None)
            module = build_named(name, {**spec, **overrides}, "")
            if deep is None:
                return module
            module, problems = deep_supervised(module, deep, "")
            if problems:
                raise ConfigError(problems)
            return module
        raise ConfigError.single(
            "", "a loss spec needs `name` (one loss) or `expr` (a composite)", value=spec
        )
    if isinstance(spec, nn.Module):
        raise ConfigError(
            "build takes a spec (name, expression or mapping), not a module; "
            "use lossreg.to_config(module) to get its spec"
        )
    raise ConfigError.single(
        "",
        f"a loss spec must be a name, an expression or a mapping, got {type(spec).__name__}",
        value=spec,
    )


def _routed_single(spec: dict[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
    """``{name: l1, inputs: {input: logits}}``: one loss with routed tensors, built as a
    composite of that one term, so the routing is applied (never silently dropped)."""
    name = spec["name"]
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConfigError([ConfigProblem("name", "must be a registered loss name", value=name)])
    return build_composite({"expr": name, "terms": {name: {**spec, **overrides}}}, "")


def build_named(name: Any, params: Mapping[str, Any], path: str) -> nn.Module:
    """Validate ``params`` for the loss ``name`` and construct it."""
    module, problems = _try_named(name, params, path)
    if problems:
        raise ConfigError(problems)
    assert module is not None
    return module


def _try_named(
    name: Any, params: Mapping[str, Any], path: str
) -> tuple[nn.Module | None, list[ConfigProblem]]:
    rec = registry.lookup(name)
    model = params_model(rec)
    inst, problems = validate_params(model, params, loss=rec.name, path=path)
    if problems:
        return None, problems
    assert inst is not None
    values = {k: getattr(inst, k) for k in type(inst).model_fields}
    module = _instantiate(rec, values, tensor_fields(model), path)
    setattr(module, _CONFIG_ATTR, {"name": rec.name, **inst.model_dump(mode="json")})
    return module, []


def _instantiate(
    rec: LossRecord, values: dict[str, Any], tensors: frozenset[str], path: str
) -> nn.Module:
    if rec.kind == "function":
        return Loss(rec.name, rec.factory, values, tensors, rec.inputs, rec.input_kinds)
    if rec.kind == "module":
        kwargs = {k: as_tensor_param(v) if k in tensors else v for k, v in values.items()}
        try:
            module = rec.factory(**kwargs)
        except LossregError:
            raise
        except (TypeError, ValueError) as exc:  # a factory refusing its own params
            raise ConfigError.single(path, str(exc), loss=rec.name) from exc
        if not isinstance(module, nn.Module):
            raise LossregError(
                f"{rec.name}: its factory returned {type(module).__name__}, not an nn.Module"
            )
        promote_buffers(module, tensors)
        return module
    if rec.kind == "preset":
        return build_named(rec.spec["name"], values, path)
    return build_composite(rec.spec, path)


def _check_route(
    route: Any, args: tuple[str, ...], path: str, loss: str, optional: tuple[str, ...] = ()
) -> list[ConfigProblem]:
    if route is None:
        return []
    if not isinstance(route, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in route.items()
    ):
        return [
            ConfigProblem(
                path,
                "must map argument names to tensor names, e.g. {input: logits, target: mask}",
                loss,
                route,
            )
        ]
    return [
        ConfigProblem(
            f"{path}.{k}",
            f"{loss} has no tensor argument {k!r}; its arguments are: {', '.join(args)}",
            loss,
            v,
        )
        for k, v in route.items()
        if k not in args and k not in optional
    ]


def to_config(module: nn.Module) -> dict[str, Any]:
    """The plain-dict spec a module was built from; ``build(to_config(m))`` rebuilds it.

    >>> import lossreg
    >>> lossreg.to_config(lossreg.build("huber", delta=2.0))
    {'name': 'huber', 'reduction': 'mean', 'delta': 2.0}
    """
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    config = getattr(module, _CONFIG_ATTR, None)
    if config is None:
        raise LossregError(
            f"to_config: {type(module).__name__} was not built by lossreg.build, so it has no spec"
        )
    copied: dict[str, Any] = _copy(config)
    return live_config(module, copied)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
