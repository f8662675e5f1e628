"""``lossreg new-plugin``: the scaffolded package pip-installs offline and its own test (the
conformance kit on its loss) passes; in the same venv, with the example company plugin
installed too, ``lossreg check`` accepts ``configs/company_plugin.yaml``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lossreg import LossregError
from lossreg.cli.scaffold import plugin_names, scaffold

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A venv seeing this interpreter's packages, with a scaffolded plugin and acme-losses."""
    tmp = tmp_path_factory.mktemp("plugins")
    exe = shutil.which("lossreg")
    assert exe, "the `lossreg` console script is not installed (pip install -e .)"
    res = run(exe, "new-plugin", "globex-losses", "--dir", tmp / "globex-losses", cwd=tmp)
    assert res.returncode == 0, res.stderr
    plugin = tmp / "globex-losses"
    files = sorted(p.relative_to(plugin).as_posix() for p in plugin.rglob("*") if p.is_file())
    # a copy, so building it leaves no build/ or egg-info in the repository
    acme = shutil.copytree(ROOT / "docs" / "examples" / "acme_losses", tmp / "acme_losses")
    # --without-pip: this interpreter's pip and setuptools do the offline install (ensurepip's
    # older setuptools would shadow them and cannot build a wheel without the network)
    res = run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", tmp / "v")
    assert res.returncode == 0, res.stderr
    python = tmp / "v" / "bin" / "python"
    res = run(
        python, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
        tmp / "globex-losses", acme,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return {"python": python, "plugin": plugin, "files": files}


@pytest.mark.slow
def test_scaffolded_plugin_installs_and_its_test_passes(venv: dict[str, Any]) -> None:
    plugin = venv["plugin"]
    assert venv["files"] == [
        "README.md",
        "globex_losses/__init__.py",
        "globex_losses/losses.py",
        "pyproject.toml",
        "tests/test_globex_losses.py",
    ]
    assert (
        '[project.entry-points.lossreg]\nglobex = "globex_losses.losses"'
        in (plugin / "pyproject.toml").read_text()
    )
    res = run(
        venv["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
        "--doctest-modules", "globex_losses", cwd=plugin,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 passed" in res.stdout  # 3 tests and the docstring example


@pytest.mark.slow
def test_company_config_checks_with_the_plugin_installed(venv: dict[str, Any]) -> None:
    res = run(venv["python"], "-m", "lossreg.cli", "check", "configs/company_plugin.yaml")
    assert res.returncode == 0, res.stderr
    assert "charb: acme_charbonnier(eps=0.001, reduction='mean')" in res.stdout
    assert "ok: configs/company_plugin.yaml is a valid lossreg config" in res.stdout


def test_names_derive_from_the_distribution_name() -> None:
    assert plugin_names("Acme.Vision-Losses") == {
        "dist": "Acme.Vision-Losses",
        "module": "acme_vision_losses",
        "plugin": "acme_vision",
        "loss": "acme_vision_log_cosh",
        "title": "AcmeVisionLogCosh",
    }
    with pytest.raises(LossregError, match="'1acme' is not a valid distribution name"):
        plugin_names("1acme")


def test_scaffold_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(LossregError, match="already exists and is not empty; nothing was written"):
        scaffold("acme-losses", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
