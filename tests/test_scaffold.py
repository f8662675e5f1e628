"""``lossreg new-plugin``: the scaffolded package pip-installs offline and its own test (the
conformance kit on its loss) passes; with the example company plugin installed too,
``lossreg check`` accepts ``docs/examples/acme_losses/company_plugin.yaml``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lossreg import LossregError
from lossreg.cli import main
from lossreg.cli.scaffold import plugin_names, scaffold
from tests._pip import pip_install_target

ROOT = Path(__file__).resolve().parents[1]
COMPANY = "docs/examples/acme_losses/company_plugin.yaml"


def run(*args: str | Path, cwd: Path = ROOT, env: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A scaffolded plugin and acme-losses, pip-installed into a directory on PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("plugins")
    exe = shutil.which("lossreg")
    assert exe, "the `lossreg` console script is not installed (pip install -e .)"
    res = run(exe, "new-plugin", "globex-losses", "--dir", tmp / "globex-losses", cwd=tmp)
    assert res.returncode == 0, res.stderr
    plugin = tmp / "globex-losses"
    files = sorted(p.relative_to(plugin).as_posix() for p in plugin.rglob("*") if p.is_file())
    # copies, so building them leaves no build/ or egg-info in the repository or the scaffold
    acme = shutil.copytree(ROOT / "docs" / "examples" / "acme_losses", tmp / "acme_losses")
    globex = shutil.copytree(plugin, tmp / "globex-build")
    env = pip_install_target(tmp / "site", globex, acme)
    return {"env": env, "plugin": plugin, "files": files}


@pytest.mark.slow
def test_scaffolded_plugin_installs_and_its_test_passes(installed: dict[str, Any]) -> None:
    plugin = installed["plugin"]
    assert installed["files"] == [
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
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
        "--doctest-modules", "globex_losses", cwd=plugin, env=installed["env"],
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 passed" in res.stdout  # 3 tests and the docstring example


@pytest.mark.slow
def test_company_config_checks_with_the_plugin_installed(installed: dict[str, Any]) -> None:
    exe = shutil.which("lossreg")
    assert exe
    res = run(exe, "check", COMPANY, env={**installed["env"], "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "charb: acme_charbonnier(eps=0.001, reduction='mean')" in res.stdout
    assert f"ok: {COMPANY} is a valid lossreg config" in res.stdout


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


@pytest.mark.parametrize("name", ["lossreg", "torch", "pydantic", "Torch", "json"])
def test_names_of_installed_distributions_and_modules_are_refused(tmp_path, name) -> None:
    with pytest.raises(LossregError, match="already (installed|importable)"):
        scaffold(name, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LossregError, match="symbolic link"):
        scaffold("initech-losses", tmp_path / "link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_markup_in_a_path_is_printed_literally(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["new-plugin", "initech-losses", "--dir", "run[/bold]"]) == 0
    out = capsys.readouterr().out
    assert "created plugin package in run[/bold]\n" in out
    assert (tmp_path / "run[/bold]" / "pyproject.toml").is_file()
