"""Plugin discovery with fake installed distributions (a ``*.dist-info`` with
``entry_points.txt`` on PYTHONPATH), each scenario in a fresh subprocess."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import lossreg
from lossreg import DuplicateLossError
from lossreg._registry import registry

pytestmark = pytest.mark.slow

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


def run(code, *paths, **env):
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    full_env.pop("LOSSREG_STRICT_PLUGINS", None)
    full_env.pop("LOSSREG_DISABLE_PLUGINS", None)
    full_env.update(env)
    prelude = (
        "import json, sys, warnings\nwarnings.simplefilter('always')\n"
        "import lossreg\nfrom lossreg._plugins import plugin_statuses\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc


def outcome(*paths, **env):
    proc = run(
        """
        with warnings.catch_warnings(record=True) as caught:
            names = lossreg.available()
        print(json.dumps({
            "names": names,
            "warnings": [str(w.message) for w in caught],
            "plugins": {s.name: [s.status, s.distribution, s.version, s.losses]
                        for s in plugin_statuses()},
        }))
        """,
        *paths,
        **env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_good_plugin_is_found_with_provenance(tmp_path):
    root = make_dist(tmp_path / "a", "acme-fake", "acme_fake_plugin", GOOD, ep_name="acme")
    proc = run(
        """
        import torch
        info = lossreg.describe("fake_abs")
        value = lossreg.build("fake_abs", scale=2.0)(torch.ones(2), torch.zeros(2))
        print(info.provider, info.distribution, info.version, info.tags, float(value))
        """,
        root,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["acme", "acme-fake", "1.0", "('fake',)", "2.0"]


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
    # the first lookup of a built-in imports its family module, and only that one
    assert set(after_mse) - set(after_fake) == {
        "lossreg_builtin._common",
        "lossreg_builtin.regression",
    }


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


def test_lazy_plugin_imports_its_losses_on_first_lookup_only(tmp_path):
    root = make_dist(tmp_path / "a", "acme-lazy", "acme_lazy_plugin", LAZY)
    (root / "acme_lazy_impl.py").write_text(LAZY_IMPL)
    proc = run(
        """
        names = lossreg.available(tag="fake")
        before = "acme_lazy_impl" in sys.modules
        info = lossreg.describe("lazy_abs")
        try:
            lossreg.build("lazy_gone")
        except lossreg.PluginError as exc:
            error = str(exc)
        print(json.dumps([names, before, info.summary, list(info.params.model_fields), error]))
        """,
        root,
    )
    assert proc.returncode == 0, proc.stderr
    names, before, summary, fields, error = json.loads(proc.stdout)
    assert names == ["lazy_abs", "lazy_gone"] and before is False
    assert summary == "Absolute error, registered lazily." and fields == ["scale"]
    assert error == (
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


@pytest.mark.parametrize(
    "source,cause",
    [
        (BROKEN_IMPORT, "RuntimeError: boom at import"),
        (RAISING_HOOK, "KeyError: 'boom in hook'"),
        (MISSPELT_HOOK, "unknown hook 'register_loss'"),
        (WRONG_ARGUMENT, "registrar"),
        (NO_HOOK, "implements no register_losses hook"),
    ],
    ids=["broken-import", "raising-hook", "misspelt-hook", "wrong-argument", "no-hook"],
)
def test_a_failing_plugin_is_a_warning_and_the_others_load(tmp_path, source, cause):
    bad = make_dist(tmp_path / "bad", "bad-dist", "bad_plugin", source, version="0.3")
    good = make_dist(tmp_path / "good", "acme-fake", "acme_fake_plugin", GOOD)
    result = outcome(bad, good)
    assert "fake_abs" in result["names"] and "mse" in result["names"]
    assert "half_registered" not in result["names"]  # a half-failed plugin leaves nothing
    assert "never" not in result["names"]
    (warning,) = [w for w in result["warnings"] if "bad_plugin" in w]
    assert "bad-dist[bad_plugin] 0.3" in warning and cause in warning
    assert result["plugins"]["bad_plugin"][0] == "failed"
    assert result["plugins"]["acme_fake_plugin"][0] == "loaded"


def test_strict_mode_raises_plugin_error(tmp_path):
    bad = make_dist(tmp_path / "bad", "bad-dist", "bad_plugin", BROKEN_IMPORT)
    proc = run(
        """
        try:
            lossreg.available()
        except lossreg.PluginError as exc:
            print("PluginError:", exc, "| cause:", repr(exc.__cause__))
        """,
        bad,
        LOSSREG_STRICT_PLUGINS="1",
    )
    assert "PluginError: lossreg plugin bad-dist[bad_plugin] 1.0" in proc.stdout
    assert "cause: RuntimeError('boom at import')" in proc.stdout


def test_disabled_plugin_is_never_imported(tmp_path):
    bad = make_dist(tmp_path / "bad", "bad-dist", "bad_plugin", BROKEN_IMPORT)
    result = outcome(bad, LOSSREG_DISABLE_PLUGINS="bad_plugin, other")
    assert result["warnings"] == []
    assert result["plugins"]["bad_plugin"][0] == "disabled"


def test_builtins_have_no_back_door():
    result = outcome(LOSSREG_DISABLE_PLUGINS="regression")
    assert "mse" not in result["names"] and "huber" not in result["names"]
    assert result["plugins"]["regression"][0] == "disabled"


def test_same_distribution_on_the_path_twice_is_one_plugin(tmp_path):
    one = make_dist(tmp_path / "one", "acme-fake", "acme_fake_plugin", GOOD)
    two = make_dist(tmp_path / "two", "acme-fake", "acme_fake_plugin", GOOD)
    result = outcome(one, two)
    assert result["warnings"] == []
    assert result["names"].count("fake_abs") == 1


CLAIMS_MSE = """
import lossreg

def my_mse(input, target):
    return ((input - target) ** 2).sum()

@lossreg.hookimpl
def register_losses(register):
    register("other_name", my_mse, aliases=("mse",))
"""
OVERRIDES_MSE = CLAIMS_MSE.replace('aliases=("mse",))', 'aliases=("mse",), override=True)')


def test_two_distributions_claiming_one_name_name_both(tmp_path):
    root = make_dist(tmp_path / "c", "zeta-losses", "zeta_plugin", CLAIMS_MSE, version="2.0")
    result = outcome(root)
    (warning,) = result["warnings"]
    assert "loss name 'mse' is registered by plugin 'regression' (lossreg 0.1.0)" in warning
    assert "again by plugin 'zeta_plugin' (zeta-losses 2.0)" in warning
    assert "override=True" in warning
    assert "other_name" not in result["names"]


def test_override_replaces_explicitly(tmp_path):
    root = make_dist(tmp_path / "c", "zeta-losses", "zeta_plugin", OVERRIDES_MSE)
    proc = run(
        "import torch\nprint(lossreg.describe('mse').name, "
        "float(lossreg.build('mse')(torch.ones(3), torch.zeros(3))))",
        root,
    )
    assert proc.stdout.split() == ["other_name", "3.0"], proc.stderr


COUNTING = """
import lossreg, time

CALLS = []

@lossreg.hookimpl
def register_losses(register):
    CALLS.append(1)
    time.sleep(0.2)  # widen the race window
    register("counted_abs", lambda input, target: (input - target).abs().mean())
"""


def test_sixteen_threads_racing_see_one_discovery(tmp_path):
    root = make_dist(tmp_path / "r", "race-dist", "race_plugin", COUNTING)
    proc = run(
        """
        import threading
        results, errors = [], []
        barrier = threading.Barrier(16)
        def worker():
            barrier.wait()
            try:
                results.append(tuple(lossreg.available()))
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=worker) for _ in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        import race_plugin
        print(json.dumps([len(race_plugin.CALLS), len(set(results)), len(results), errors,
                          "counted_abs" in results[0]]))
        """,
        root,
    )
    assert json.loads(proc.stdout) == [1, 1, 16, [], True], proc.stderr


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


def test_strict_mode_resolves_lazy_references_at_discovery(tmp_path):
    root = make_dist(tmp_path / "a", "acme-lazy", "acme_lazy_plugin", LAZY)
    (root / "acme_lazy_impl.py").write_text(LAZY_IMPL)
    proc = run(
        """
        try:
            lossreg.available()
        except lossreg.PluginError as exc:
            print(exc)
        """,
        root,
        LOSSREG_STRICT_PLUGINS="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "lossreg plugin acme-lazy[acme_lazy_plugin] 1.0 (acme_lazy_plugin) failed to load: "
        "PluginError: plugin 'acme_lazy_plugin' (acme-lazy 1.0): factory of loss 'lazy_gone' "
        "could not be loaded from acme_lazy_impl:not_there: AttributeError: module "
        "'acme_lazy_impl' has no attribute 'not_there'"
    )
