"""The built-ins' manifest: every lazy reference resolves into its family module, and the
family modules hold no hook of their own (the manifest is the one list of registrations)."""

import importlib
import pkgutil

import lossreg_builtin
import pytest

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
