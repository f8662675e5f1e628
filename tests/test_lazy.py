"""Lazy registration: ``lossreg.lazy("module:attr")`` references resolved on first lookup."""

import sys
import textwrap
import threading

import pytest
import torch

import lossreg
from lossreg._lazy import LazyRef
from lossreg._registry import Provider, Registry, make_record

PROVIDER = Provider("acme", "acme-losses", "1.0")

IMPL = '''
import lossreg
from pydantic import Field

IMPORTS = []  # one entry per execution of this module
IMPORTS.append(1)


class CubeParams(lossreg.Params):
    scale: float = Field(1.0, gt=0, description="multiplies the loss")


def cube(input, target, *, scale: float = 1.0):
    """Mean cubed absolute error.

    More text that is not the summary.
    """
    return scale * (input - target).abs().pow(3).mean()


NOT_CALLABLE = 3
NOT_A_MODEL = dict
'''


@pytest.fixture
def impl(tmp_path, monkeypatch):
    """A fresh importable module ``<name>`` per test, unloaded afterwards."""
    name = f"lazy_impl_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(IMPL))
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    sys.modules.pop(f"{name}_broken", None)


def registry_with(*records):
    reg = Registry()
    reg.add_all([(rec, False) for rec in records])
    return reg


@pytest.mark.parametrize("ref", ["mod", "mod:", ":attr", "a b:c", "mod:attr:x", "1mod:attr", 3])
def test_lazy_refuses_a_malformed_reference(ref):
    with pytest.raises(ValueError, match=r"lossreg.lazy: expected 'package.module:attribute', got"):
        lossreg.lazy(ref)


def test_lazy_walks_dotted_attributes():
    assert lossreg.lazy("torch.nn:functional.mse_loss").load() is torch.nn.functional.mse_loss


def test_pending_record_imports_nothing_until_looked_up(impl):
    rec = make_record(
        "cube",
        lossreg.lazy(f"{impl}:cube"),
        PROVIDER,
        params=lossreg.lazy(f"{impl}:CubeParams"),
        aliases=("cubed",),
        tags=("regression",),
    )
    reg = registry_with(rec)
    assert rec.kind == "pending" and impl not in sys.modules
    assert [r.name for r in reg.records()] == ["cube"] and "cubed" in reg
    assert impl not in sys.modules  # listing and membership import nothing

    full = reg.lookup("cubed")
    module = sys.modules[impl]
    assert full.kind == "function" and full.factory is module.cube
    assert full.params is module.CubeParams and full.inputs == ("input", "target")
    assert full.summary == "Mean cubed absolute error."
    assert (full.aliases, full.tags, full.provider) == (("cubed",), ("regression",), PROVIDER)
    assert reg.lookup("cube") is full and reg.records() == [full]  # completed once, stored


def test_lazy_factory_alone_derives_params_from_its_signature(impl):
    reg = registry_with(make_record("cube", lossreg.lazy(f"{impl}:cube"), PROVIDER))
    params = reg.lookup("cube").params
    assert list(params.model_fields) == ["scale"] and params().scale == 1.0


def test_explicit_summary_wins_over_the_docstring(impl):
    rec = make_record("cube", lossreg.lazy(f"{impl}:cube"), PROVIDER, summary="Cubes.")
    assert rec.summary == "Cubes." and registry_with(rec).lookup("cube").summary == "Cubes."


@pytest.mark.parametrize(
    ("factory", "params", "message"),
    [
        (
            "{m}:gone",
            None,
            "plugin 'acme' (acme-losses 1.0): factory of loss 'cube' could not be loaded from "
            "{m}:gone: AttributeError: module '{m}' has no attribute 'gone'",
        ),
        (
            "{m}_broken:cube",
            None,
            "plugin 'acme' (acme-losses 1.0): factory of loss 'cube' could not be loaded from "
            "{m}_broken:cube: RuntimeError: boom at import",
        ),
        (
            "{m}:NOT_CALLABLE",
            None,
            "plugin 'acme' (acme-losses 1.0): factory of loss 'cube' at {m}:NOT_CALLABLE must "
            "be a function or an nn.Module class, got int",
        ),
        (
            "{m}:cube",
            "{m}:NOT_A_MODEL",
            "plugin 'acme' (acme-losses 1.0): params of 'cube' must be a pydantic model class",
        ),
        (
            "{m}:cube",
            "{m}:Gone",
            "plugin 'acme' (acme-losses 1.0): params of loss 'cube' could not be loaded from "
            "{m}:Gone: AttributeError: module '{m}' has no attribute 'Gone'",
        ),
    ],
)
def test_a_broken_reference_fails_at_lookup_naming_loss_and_reference(
    impl, factory, params, message
):
    rec = make_record(
        "cube",
        lossreg.lazy(factory.format(m=impl)),
        PROVIDER,
        params=lossreg.lazy(params.format(m=impl)) if params else None,
    )
    other = make_record("other", lossreg.lazy(f"{impl}:cube"), PROVIDER)
    reg = registry_with(rec, other)
    for _ in range(2):  # a failure is not cached as a half-built record: it fails again
        with pytest.raises(lossreg.PluginError) as info:
            reg.lookup("cube")
        assert str(info.value) == message.format(m=impl)
        assert info.value.plugin == "acme"
    assert reg.lookup("other").kind == "function"  # the rest of the plugin is unaffected
    assert reg.records()[0].kind == "pending"


def test_concurrent_first_lookups_complete_the_record_once(impl):
    # without the lock each thread could derive its own params model from the signature
    reg = registry_with(make_record("cube", lossreg.lazy(f"{impl}:cube"), PROVIDER))
    barrier = threading.Barrier(8)
    seen = []

    def look():
        barrier.wait()
        seen.append(reg.lookup("cube"))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(rec is seen[0] for rec in seen)
    assert sys.modules[impl].IMPORTS == [1]


def test_an_override_registered_before_completion_wins(impl):
    reg = registry_with(make_record("cube", lossreg.lazy(f"{impl}:cube"), PROVIDER))
    eager = make_record("cube", torch.nn.functional.l1_loss, Provider("in-process:test"))
    reg.add_all([(eager, True)])
    assert reg.lookup("cube") is eager and impl not in sys.modules


def test_register_builds_and_round_trips_a_lazy_loss(impl):
    lossreg.register(
        "t_lazy_cube",
        lossreg.lazy(f"{impl}:cube"),
        params=lossreg.lazy(f"{impl}:CubeParams"),
        tags=("regression",),
    )
    assert "t_lazy_cube" in lossreg.available(tag="regression")
    loss = lossreg.build("t_lazy_cube", scale=2.0)
    x, y = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    assert float(loss(x, y)) == pytest.approx(2.0 * (1 + 8) / 2)
    assert lossreg.to_config(loss) == {"name": "t_lazy_cube", "scale": 2.0}
    with pytest.raises(
        lossreg.ConfigError, match=r"scale: \[t_lazy_cube\] Input should be greater than 0"
    ):
        lossreg.build("t_lazy_cube", scale=0.0)


def test_lazy_ref_is_plain_data():
    ref = lossreg.lazy("torch.nn.functional:l1_loss")
    assert ref == LazyRef("torch.nn.functional:l1_loss") and str(ref) == ref.ref


def test_completing_a_stale_record_gives_the_latest_registration(impl):
    # a lookup that read the record just before an override completes the newer one
    reg = registry_with(make_record("cube", lossreg.lazy(f"{impl}:cube"), PROVIDER))
    stale = reg._records["cube"]
    newer = make_record("cube", lossreg.lazy("torch.nn.functional:l1_loss"), PROVIDER)
    reg.add_all([(newer, True)])
    assert reg._complete(stale).factory is torch.nn.functional.l1_loss
    assert reg.lookup("cube").factory is torch.nn.functional.l1_loss
    assert impl not in sys.modules
