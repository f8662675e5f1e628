"""Plugin discovery with fake installed distributions (a ``*.dist-info`` with
``entry_points.txt``), in-process: the global registry's discovery is pointed at the
built-in entry points plus the fake ones. Three subprocess tests remain, for what only a
fresh interpreter shows: the real metadata scan and the import cost of discovery."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import lossreg
from lossreg import DuplicateLossError
from lossreg._plugins import GROUP, _statuses, discover, plugin_statuses
from lossreg._registry import registry

GOOD = """
import lossreg, torch

def fake_abs(input, target, *, scale: float = 1.0):
    '''A fake plugin loss.'''
    return scale * (input - target).abs().mean()

@lossreg.hookimpl
def register_losses(register):
    register("fake_abs", fake_abs, tags=("fake",))
"""


def make_dist(root, dist, module, source, *, ep_name=None, version="1.0"):
    """Write an importable module and a dist-info declaring it under the lossreg group."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[lossreg]\n{ep_name or module} = {module}\n")
    return root


BUILTIN_EPS = [ep for ep in md.entry_points(group=GROUP) if ep.dist and ep.dist.name == "lossreg"]


class Fake:
    """Fake distributions on ``sys.path``; ``discover`` runs the global registry's discovery
    over the built-ins and them, and reports what a user would see."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.mp = tmp_path, monkeypatch
        self.roots: list[Path] = []
        self.modules: set[str] = set()
        monkeypatch.delenv("LOSSREG_STRICT_PLUGINS", raising=False)
        monkeypatch.delenv("LOSSREG_DISABLE_PLUGINS", raising=False)
        # the session's registry (with conftest's in-process losses) comes back at close
        self.saved = registry.snapshot(), registry._discovered, plugin_statuses()
        monkeypatch.setattr(registry, "_discover", self._discover)
        registry.reset()

    def dist(self, dist: str, module: str, source: str, **kw: Any) -> Path:
        root = make_dist(self.tmp / dist / module, dist, module, source, **kw)
        self.mp.syspath_prepend(str(root))
        self.roots.append(root)
        self.modules.add(module)
        return root

    def entry_points(self) -> list[md.EntryPoint]:
        found = list(BUILTIN_EPS)
        for d in md.distributions(path=[str(r) for r in self.roots]):
            found += [ep for ep in d.entry_points if ep.group == GROUP]
        return found

    def _discover(self, reg: Any) -> None:
        discover(reg, self.entry_points())

    def outcome(self) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = lossreg.available()
        return {
            "names": names,
            "warnings": [str(w.message) for w in caught],
            "plugins": {
                s.name: [s.status, s.distribution, s.version, s.losses] for s in plugin_statuses()
            },
        }

    def close(self) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in self.modules:
                del sys.modules[name]
        state, discovered, statuses = self.saved
        registry.restore(state)
        registry._discovered = discovered
        _statuses[:] = statuses


@pytest.fixture
def fake(tmp_path, monkeypatch):
    f = Fake(tmp_path, monkeypatch)
    yield f
    f.close()


def test_good_plugin_is_found_with_provenance(fake):
    fake.dist("acme-fake", "acme_fake_plugin", GOOD, ep_name="acme")
    info = lossreg.describe("fake_abs")
    value = lossreg.build("fake_abs", scale=2.0)(torch.ones(2), torch.zeros(2))
    assert (info.provider, info.distribution, info.version, info.tags) == (
        "acme",
        "acme-fake",
        "1.0",
        ("fake",),
    )
    assert float(value) == 2.0


LAZY = """
import lossreg

@lossreg.hookimpl
def register_losses(register):
    register("lazy_abs", lossreg.lazy("acme_lazy_impl:lazy_abs"), tags=("fake",))
    register("lazy_gone", lossreg.lazy("acme_lazy_impl:not_there"), tags=("fake",))
"""
LAZY_IMPL = '''
def lazy_abs(input, target, *, scale: float = 1.0):
    """Absolute error, registered lazily."""
    return scale * (input - target).abs().mean()
'''


def test_lazy_plugin_imports_its_losses_on_first_lookup_only(fake):
    root = fake.dist("acme-lazy", "acme_lazy_plugin", LAZY)
    (root / "acme_lazy_impl.py").write_text(LAZY_IMPL)
    fake.modules.add("acme_lazy_impl")
    assert lossreg.available(tag="fake") == ["lazy_abs", "lazy_gone"]
    assert "acme_lazy_impl" not in sys.modules
    info = lossreg.describe("lazy_abs")
    assert info.summary == "Absolute error, registered lazily."
    assert list(info.params.model_fields) == ["scale"]
    with pytest.raises(lossreg.PluginError) as caught:
        lossreg.build("lazy_gone")
    assert str(caught.value) == (
        "plugin 'acme_lazy_plugin' (acme-lazy 1.0): factory of loss 'lazy_gone' could not be "
        "loaded from acme_lazy_impl:not_there: AttributeError: module 'acme_lazy_impl' has no "
        "attribute 'not_there'"
    )


BROKEN_IMPORT = "import lossreg\nraise RuntimeError('boom at import')\n"
RAISING_HOOK = """
import lossreg

def half(input, target):
    return input.mean()

@lossreg.hookimpl
def register_losses(register):
    register("half_registered", half)
    raise KeyError("boom in hook")
"""
MISSPELT_HOOK = """
import lossreg

@lossreg.hookimpl
def register_loss(register):
    register("never", lambda input, target: input.mean())
"""
WRONG_ARGUMENT = """
import lossreg

@lossreg.hookimpl
def register_losses(registrar):
    registrar("never", lambda input, target: input.mean())
"""
NO_HOOK = "X = 1\n"
EXIT_AT_IMPORT = "import sys\nsys.exit(3)\n"
ARGPARSE_AT_IMPORT = """
import argparse
argparse.ArgumentParser(prog="bad").parse_args(["--no-such-option"])
"""
EXIT_IN_HOOK = """
import lossreg

@lossreg.hookimpl
def register_losses(register):
    register("never", lambda input, target: input.mean())
    raise SystemExit("bye")
"""
REGISTERS_AT_IMPORT_THEN_FAILS = """
import lossreg

@lossreg.register("half_registered")
def half(input, target):
    return input.mean()

raise ImportError("a dependency is missing")
"""


@pytest.mark.parametrize(
    "source,cause",
    [
        (BROKEN_IMPORT, "RuntimeError: boom at import"),
        (RAISING_HOOK, "KeyError: 'boom in hook'"),
        (MISSPELT_HOOK, "unknown hook 'register_loss'"),
        (WRONG_ARGUMENT, "registrar"),
        (NO_HOOK, "implements no register_losses hook"),
        (EXIT_AT_IMPORT, "SystemExit: 3"),
        (ARGPARSE_AT_IMPORT, "SystemExit: 2"),
        (EXIT_IN_HOOK, "SystemExit: bye"),
        (REGISTERS_AT_IMPORT_THEN_FAILS, "ImportError: a dependency is missing"),
    ],
    ids=[
        "broken-import",
        "raising-hook",
        "misspelt-hook",
        "wrong-argument",
        "no-hook",
        "exit-at-import",
        "argparse-at-import",
        "exit-in-hook",
        "registers-at-import-then-fails",
    ],
)
def test_a_failing_plugin_is_a_warning_and_the_others_load(fake, source, cause):
    fake.dist("bad-dist", "bad_plugin", source, version="0.3")
    fake.dist("acme-fake", "acme_fake_plugin", GOOD)
    result = fake.outcome()
    assert "fake_abs" in result["names"] and "mse" in result["names"]
    assert "half_registered" not in result["names"]  # a half-failed plugin leaves nothing
    assert "never" not in result["names"]
    (warning,) = [w for w in result["warnings"] if "bad_plugin" in w]
    assert "bad-dist[bad_plugin] 0.3" in warning and cause in warning
    assert "LOSSREG_DISABLE_PLUGINS=bad-dist:bad_plugin silences it" in warning
    assert result["plugins"]["bad_plugin"][0] == "failed"
    assert result["plugins"]["acme_fake_plugin"][0] == "loaded"


def test_warnings_as_errors_never_break_the_registry(fake):
    fake.dist("bad-dist", "bad_plugin", BROKEN_IMPORT)
    shown = []
    with warnings.catch_warnings():  # restores showwarning too
        warnings.simplefilter("error")  # -W error, pytest's filterwarnings = error
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        assert "mse" in lossreg.available()
        assert lossreg.describe("l1").name == "l1"  # and every later lookup works
    (message,) = shown  # shown, not raised
    assert "bad-dist[bad_plugin] 1.0" in message
    assert plugin_statuses()[-1].status == "failed"


def test_strict_mode_raises_plugin_error(fake, monkeypatch):
    fake.dist("bad-dist", "bad_plugin", BROKEN_IMPORT)
    monkeypatch.setenv("LOSSREG_STRICT_PLUGINS", "1")
    for _ in range(2):  # the second attempt names the same culprit, not a built-in
        with pytest.raises(lossreg.PluginError) as caught:
            lossreg.available()
        assert str(caught.value).startswith("lossreg plugin bad-dist[bad_plugin] 1.0")
        assert repr(caught.value.__cause__) == "RuntimeError('boom at import')"
        assert registry._records == {}  # a failed strict discovery leaves nothing behind


def test_disabled_plugin_is_never_imported(fake, monkeypatch):
    fake.dist("bad-dist", "bad_plugin", BROKEN_IMPORT)
    monkeypatch.setenv("LOSSREG_DISABLE_PLUGINS", "bad_plugin, other")
    result = fake.outcome()
    assert result["warnings"] == []
    assert result["plugins"]["bad_plugin"][0] == "disabled"


def test_disable_names_one_distribution_exactly(fake, monkeypatch):
    # a third party's entry point named like a built-in one: `dist:name` picks one of them
    fake.dist("zeta-losses", "zeta_plugin", GOOD, ep_name="regression")
    monkeypatch.setenv("LOSSREG_DISABLE_PLUGINS", "zeta-losses:regression")
    result = fake.outcome()
    assert "mse" in result["names"] and "fake_abs" not in result["names"]
    statuses = {(s.distribution, s.name): s.status for s in plugin_statuses()}
    assert statuses[("zeta-losses", "regression")] == "disabled"
    assert statuses[("lossreg", "regression")] == "loaded"


def test_builtins_have_no_back_door(fake, monkeypatch):
    monkeypatch.setenv("LOSSREG_DISABLE_PLUGINS", "lossreg:regression")
    result = fake.outcome()
    assert "mse" not in result["names"] and "huber" not in result["names"]
    assert result["plugins"]["regression"][0] == "disabled"


CLAIMS_MSE = """
import lossreg

def my_mse(input, target):
    return ((input - target) ** 2).sum()

@lossreg.hookimpl
def register_losses(register):
    register("other_name", my_mse, aliases=("mse",))
"""
OVERRIDES_MSE = CLAIMS_MSE.replace('aliases=("mse",))', 'aliases=("mse",), override=True)')
CLAIMS_DICE = """
import lossreg

@lossreg.hookimpl
def register_losses(register):
    register("dice", lambda input, target: input.sum())
"""


def test_two_distributions_claiming_one_name_name_both(fake):
    fake.dist("zeta-losses", "zeta_plugin", CLAIMS_MSE, version="2.0")
    result = fake.outcome()
    (warning,) = result["warnings"]
    assert "loss name 'mse' is registered by plugin 'regression' (lossreg 0.1.0)" in warning
    assert "again by plugin 'zeta_plugin' (zeta-losses 2.0)" in warning
    assert "override=True" in warning
    assert "other_name" not in result["names"]


def test_a_third_party_sorting_first_never_removes_a_built_in(fake, monkeypatch):
    # "aaa" < "lossreg": before the fix it loaded first and the built-in family was refused
    fake.dist("aaa-losses", "aaa_plugin", CLAIMS_DICE)
    result = fake.outcome()
    assert {"dice", "iou", "tversky", "dice_bce"} <= set(result["names"])
    assert lossreg.describe("dice").provider == "segmentation"
    (warning,) = result["warnings"]
    assert "registered by plugin 'segmentation' (lossreg" in warning
    assert "again by plugin 'aaa_plugin' (aaa-losses 1.0)" in warning
    assert result["plugins"]["aaa_plugin"][0] == "failed"
    monkeypatch.setenv("LOSSREG_STRICT_PLUGINS", "1")
    registry.reset()
    with pytest.raises(lossreg.PluginError, match="'dice' is registered by plugin 'segmentation'"):
        lossreg.available()


DESCRIBES_BUILTIN = """
import lossreg

@lossreg.hookimpl
def register_losses(register):
    base = lossreg.describe("focal")  # a built-in, from a distribution that sorts first
    register("aaa_focal", {"name": "focal", "gamma": 3.0}, summary=base.summary)
"""


def test_a_third_party_hook_can_describe_a_built_in(fake):
    fake.dist("aaa-losses", "aaa_plugin", DESCRIBES_BUILTIN)
    result = fake.outcome()
    assert result["warnings"] == [] and "aaa_focal" in result["names"]
    assert lossreg.to_config(lossreg.build("aaa_focal"))["gamma"] == 3.0


def test_override_replaces_explicitly(fake):
    fake.dist("zeta-losses", "zeta_plugin", OVERRIDES_MSE)
    assert lossreg.describe("mse").name == "other_name"
    assert float(lossreg.build("mse")(torch.ones(3), torch.zeros(3))) == 3.0


COUNTING = """
import lossreg, time

CALLS = []

@lossreg.hookimpl
def register_losses(register):
    CALLS.append(1)
    time.sleep(0.05)  # widen the race window
    register("counted_abs", lambda input, target: (input - target).abs().mean())
"""


def test_sixteen_threads_racing_see_one_discovery(fake):
    fake.dist("race-dist", "race_plugin", COUNTING)
    results, errors = [], []
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        try:
            results.append(tuple(lossreg.available()))
        except Exception as exc:  # pragma: no cover - what the test is looking for
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    import race_plugin

    assert [len(race_plugin.CALLS), len(set(results)), len(results), errors] == [1, 1, 16, []]
    assert "counted_abs" in results[0]


def test_strict_mode_resolves_lazy_references_at_discovery(fake, monkeypatch):
    root = fake.dist("acme-lazy", "acme_lazy_plugin", LAZY)
    (root / "acme_lazy_impl.py").write_text(LAZY_IMPL)
    fake.modules.add("acme_lazy_impl")
    monkeypatch.setenv("LOSSREG_STRICT_PLUGINS", "1")
    with pytest.raises(lossreg.PluginError) as caught:
        lossreg.available()
    assert str(caught.value) == (
        "lossreg plugin acme-lazy[acme_lazy_plugin] 1.0 (acme_lazy_plugin) failed to load: "
        "PluginError: plugin 'acme_lazy_plugin' (acme-lazy 1.0): factory of loss 'lazy_gone' "
        "could not be loaded from acme_lazy_impl:not_there: AttributeError: module "
        "'acme_lazy_impl' has no attribute 'not_there'"
    )


# -- in-process registration -------------------------------------------------------------------
@pytest.fixture
def scratch():
    """Registrations made by the test are withdrawn after it (other tests list every loss)."""
    registry.ensure_discovered()
    state = registry.snapshot()
    yield
    registry.restore(state)


def test_in_process_duplicate_and_override():
    lossreg.register("t_dup_once", lambda input, target: input.sum())
    with pytest.raises(DuplicateLossError, match=r"'t_dup_once' is registered by 'in-process:"):
        lossreg.register("t_dup_once", lambda input, target: input.sum())
    with pytest.raises(DuplicateLossError, match="'mae' is registered by plugin 'regression'"):
        lossreg.register("t_new_name", lambda input, target: input.sum(), aliases=["mae"])
    assert "t_new_name" not in lossreg.available()  # the failed registration left nothing
    lossreg.register("t_dup_once", lambda input, target: 2 * input.sum(), override=True)


def test_bad_registrations_are_plugin_errors():
    with pytest.raises(lossreg.PluginError, match="must be a function, an nn.Module class"):
        lossreg.register("t_bad", 42)
    with pytest.raises(lossreg.PluginError, match="aliases of 't_bad' must be a list"):
        lossreg.register("t_bad", lambda input, target: input, aliases="x")
    with pytest.raises(lossreg.ExpressionError, match="power"):
        lossreg.register("t_bad", "mse**2")


@pytest.mark.parametrize(
    "name",
    ["0.5*dice + bce", "0-1", "ｌ1", "mse ", "a\nb", "x\x1b[31m", "a" * 65, "1abc", "a-b", ""],
    ids=["expression", "arithmetic", "fullwidth", "space", "newline", "escape", "long",
         "digit-first", "hyphen", "empty"],
)  # fmt: skip
def test_names_and_aliases_are_short_ascii_identifiers(scratch, name):
    def f(input, target):
        return input.sum()

    with pytest.raises(lossreg.PluginError) as caught:
        lossreg.register(name, f)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
    with pytest.raises(lossreg.PluginError, match="alias of 't_good_name'"):
        lossreg.register("t_good_name", f, aliases=[name])
    assert "t_good_name" not in lossreg.available()


def test_a_64_character_name_is_fine(scratch):
    lossreg.register("t" * 64, lambda input, target: input.sum())
    assert "t" * 64 in lossreg.available()


def test_no_alias_reads_as_arithmetic():
    # `zero_one` had the alias `0-1`, which made "bce + 0-1" mean "bce - 1"; now it is an
    # expression with a constant, folded, and never a loss name
    assert "0-1" not in lossreg.describe("zero_one").aliases
    x, y = torch.tensor([0.3, -2.0]), torch.tensor([1.0, 0.0])
    value = lossreg.build("bce + 0-1")(x, y)
    assert torch.equal(value, lossreg.build("bce")(x, y) - 1)


@pytest.mark.parametrize(
    "registrations,cycle",
    [
        ([("focal", {"name": "focal", "gamma": 3.0})], "focal -> focal"),
        ([("t_cyc_a", {"expr": "l1 + t_cyc_a"})], "t_cyc_a -> t_cyc_a"),
        (
            [("t_cyc_b", {"name": "t_cyc_c"}), ("t_cyc_c", "0.5*t_cyc_b + l1")],
            "t_cyc_c -> t_cyc_b -> t_cyc_c",
        ),
        (
            [("t_cyc_d", {"expr": "x + l1", "terms": {"x": {"name": "t_cyc_d"}}})],
            "t_cyc_d -> t_cyc_d",
        ),
    ],
    ids=["preset-of-itself", "composite-of-itself", "preset-composite", "via-terms"],
)
def test_a_self_referencing_preset_or_composite_is_refused(scratch, registrations, cycle):
    *first, (name, spec) = registrations
    for n, s in first:
        lossreg.register(n, s, override=True)
    with pytest.raises(lossreg.PluginError, match="refers to itself: " + cycle):
        lossreg.register(name, spec, override=True)
    assert lossreg.describe("focal").name == "focal"  # the refused override left nothing
    assert lossreg.to_config(lossreg.build("focal"))["gamma"] == 2.0


# -- subprocesses: real installed metadata and import cost -----------------------------------
def run(code, *paths, **env):
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    full_env.pop("LOSSREG_STRICT_PLUGINS", None)
    full_env.pop("LOSSREG_DISABLE_PLUGINS", None)
    full_env.update(env)
    prelude = "import json, sys\nimport lossreg\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_import_lossreg_imports_no_plugin_and_first_lookup_discovers(tmp_path):
    root = make_dist(tmp_path / "a", "acme-fake", "acme_fake_plugin", GOOD)
    proc = run(
        """
        def loaded():
            return sorted(m for m in sys.modules if m.startswith(("lossreg_builtin", "acme_fake")))

        steps = [loaded()]
        lossreg.describe("fake_abs")
        steps.append(loaded())
        lossreg.describe("mse")
        steps.append(loaded())
        print(json.dumps(steps))
        """,
        root,
    )
    assert proc.returncode == 0, proc.stderr
    before, after_fake, after_mse = json.loads(proc.stdout)
    assert before == []
    # discovery imports the eager plugin and the built-ins' manifest, no built-in loss module
    assert after_fake == ["acme_fake_plugin", "lossreg_builtin", "lossreg_builtin.manifest"]
    # the first lookup of a built-in imports its family module (and the shared helpers it
    # uses: options, masks), and no other family
    assert set(after_mse) - set(after_fake) == {
        "lossreg_builtin._common",
        "lossreg_builtin._mask",
        "lossreg_builtin.regression",
    }


@pytest.mark.slow
def test_available_imports_neither_pydantic_nor_any_loss_module():
    """Why ``import lossreg; lossreg.available()`` is cheap (docs/performance.md has the time):
    the built-ins register lazy references, and the pydantic-backed API loads on first use."""
    proc = run(
        """
        names = lossreg.available()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "omegaconf")
                       or m.startswith("lossreg_builtin.") and m != "lossreg_builtin.manifest")
        print(json.dumps([len(names), heavy]))
        lossreg.build("dice")  # and the lazily imported API still works in the same process
        """
    )
    assert proc.returncode == 0, proc.stderr
    count, heavy = json.loads(proc.stdout)
    builtin = [r for r in registry.records() if r.provider.distribution == "lossreg"]
    assert count == len(builtin) and heavy == []


@pytest.mark.slow
def test_same_distribution_on_the_path_twice_is_one_plugin(tmp_path):
    one = make_dist(tmp_path / "one", "acme-fake", "acme_fake_plugin", GOOD)
    two = make_dist(tmp_path / "two", "acme-fake", "acme_fake_plugin", GOOD)
    proc = run(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = lossreg.available()
        print(json.dumps([names.count("fake_abs"), [str(w.message) for w in caught]]))
        """,
        one,
        two,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [1, []]
