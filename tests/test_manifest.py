"""The built-ins' manifest: every lazy reference resolves into its family module, the
family modules hold no hook of their own (the manifest is the one list of registrations),
and every functional's keyword options are its params model's fields, with equal defaults."""

import importlib
import inspect
import pkgutil
import typing

import lossreg_builtin
import pytest

import lossreg
from lossreg._registry import registry

BUILTIN = [r.name for r in registry.records() if r.provider.distribution == "lossreg"]


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_resolves_into_the_family_module_its_plugin_names(name):
    rec = registry.lookup(name)
    assert rec.pending is None and rec.kind in ("function", "module", "preset", "composite")
    if rec.kind in ("function", "module"):
        family = rec.provider.plugin  # the entry point name is the family module's name
        module = importlib.import_module(f"lossreg_builtin.{family}")
        assert getattr(module, rec.factory.__name__) is rec.factory
        assert getattr(module, rec.params.__name__) is rec.params
        assert rec.summary  # from the docstring, as an eager registration would have it


def test_family_modules_define_no_hooks():
    modules = [m.name for m in pkgutil.iter_modules(lossreg_builtin.__path__)]
    assert "manifest" in modules
    for name in modules:
        if name != "manifest":
            module = importlib.import_module(f"lossreg_builtin.{name}")
            assert not hasattr(module, "register_losses"), name


def _keyword_options(fn):
    """A functional's keyword options: {name: default}, with ``**options: Unpack[TD]``'s keys
    mapped to ``DEFAULT_OF_MODEL`` (they take the params model's defaults by construction)."""
    out = {}
    hints = typing.get_type_hints(fn, include_extras=True)
    for p in inspect.signature(fn).parameters.values():
        if p.name in CALL_TIME_TENSORS:
            continue
        if p.kind is p.KEYWORD_ONLY:
            out[p.name] = p.default
        elif p.kind is p.VAR_KEYWORD:
            (bundle,) = typing.get_args(hints[p.name])  # Unpack[SomeOptions]
            out.update(dict.fromkeys(typing.get_type_hints(bundle), DEFAULT_OF_MODEL))
    return out


DEFAULT_OF_MODEL = object()
# optional tensors given at call time (OBJECTIVES.md "Masks"), not options of the params model
CALL_TIME_TENSORS = ("mask",)


def _mismatches(fn, model):
    fields = model.model_fields
    keywords = _keyword_options(fn)
    out = [f"{k}: not an option of the functional" for k in set(fields) - set(keywords)]
    out += [f"{k}: not a field of the model" for k in set(keywords) - set(fields)]
    out += [
        f"{k}: default {d!r} but the model's is {fields[k].default!r}"
        for k, d in keywords.items()
        if k in fields and d is not DEFAULT_OF_MODEL and d != fields[k].default
    ]
    return out


@pytest.mark.parametrize("name", BUILTIN)
def test_every_functional_takes_its_params_models_options_with_its_defaults(name):
    # one place per fact: a functional called directly behaves as the module built by name
    rec = registry.lookup(name)
    if rec.kind != "function":
        pytest.skip(f"{name} is a {rec.kind}")
    assert _mismatches(rec.factory, rec.params) == []


def test_the_defaults_check_can_fail():
    from lossreg_builtin.segmentation import DiceParams, dice

    def bad(input, target, *, gamma: float = 3.0, eps: float = 0.1):
        raise AssertionError

    class BadParams(lossreg.Params):
        gamma: float = 2.0
        reduction: str = "mean"

    assert sorted(_mismatches(bad, BadParams)) == [
        "eps: not a field of the model",
        "gamma: default 3.0 but the model's is 2.0",
        "reduction: not an option of the functional",
    ]
    assert _mismatches(dice, BadParams) != []
    assert _mismatches(dice, DiceParams) == []
