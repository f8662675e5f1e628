"""A real plugin package, pip-installed into a fresh venv, used from a YAML config: the path a
company takes, end to end (entry point metadata written by pip, not by hand)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv")
    # --system-site-packages: torch, lossreg and friends come from this interpreter
    # --without-pip: the venv then uses this interpreter's pip and setuptools (ensurepip would
    # install an old setuptools that shadows them and cannot build a wheel offline)
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=300,
    )
    python = venv / "bin" / "python"
    # install from a copy: a build leaves build/ and *.egg-info beside the sources
    source = shutil.copytree(ROOT / "docs" / "examples" / "acme_losses", venv / "acme_src")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            str(source),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return python


def test_installed_plugin_is_used_from_a_yaml_config(venv_python):
    code = """
import json, torch, lossreg
from omegaconf import OmegaConf
objective = lossreg.build(OmegaConf.load("configs/company_plugin.yaml"))
x = torch.linspace(-1, 1, 2 * 1 * 8).reshape(2, 1, 8)
value = objective(x, torch.zeros_like(x))
info = lossreg.describe("acme_charbonnier")
print(json.dumps({"value": float(value), "terms": sorted(objective.last_values),
                  "provider": [info.provider, info.distribution, info.version],
                  "config": lossreg.to_config(objective)["terms"]["charb"]}))
"""
    proc = subprocess.run(
        [str(venv_python), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["provider"] == ["acme", "acme-losses", "1.0.0"]
    assert out["terms"] == ["charb", "grad"]
    assert out["config"]["name"] == "acme_charbonnier" and out["config"]["eps"] == 1e-3
    assert out["value"] > 0


def test_the_plugin_is_absent_without_the_install():
    # the same config in this interpreter (acme not installed): a clear error, not a crash
    code = (
        "import lossreg\nfrom omegaconf import OmegaConf\n"
        "try:\n    lossreg.build(OmegaConf.load('configs/company_plugin.yaml'))\n"
        "except lossreg.ConfigError as e:\n    print(e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if "acme" in proc.stdout and "unknown" not in proc.stdout:
        pytest.skip("acme-losses is installed in this interpreter")
    assert "terms.charb.name: unknown loss 'acme_charbonnier'" in proc.stdout, proc.stderr
