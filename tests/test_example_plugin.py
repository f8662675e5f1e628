"""A real plugin package, pip-installed, used from a YAML config: the path a company takes,
end to end (entry point metadata written by pip, not by hand)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._pip import pip_install_target

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "acme_losses"
CONFIG = EXAMPLE / "company_plugin.yaml"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acme")
    # install from a copy: a build leaves build/ and *.egg-info beside the sources
    source = shutil.copytree(EXAMPLE, tmp / "acme_src")
    return pip_install_target(tmp / "site", source)


def test_installed_plugin_is_used_from_a_yaml_config(env):
    code = f"""
import json, torch, lossreg
from omegaconf import OmegaConf
objective = lossreg.build(OmegaConf.load({str(CONFIG)!r}))
x = torch.linspace(-1, 1, 2 * 1 * 8).reshape(2, 1, 8)
value = objective(x, torch.zeros_like(x))
info = lossreg.describe("acme_charbonnier")
print(json.dumps({{"value": float(value), "terms": sorted(objective.last_values),
                  "provider": [info.provider, info.distribution, info.version],
                  "config": lossreg.to_config(objective)["terms"]["charb"]}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["provider"] == ["acme", "acme-losses", "1.0.0"]
    assert out["terms"] == ["charb", "grad"]
    assert out["config"]["name"] == "acme_charbonnier" and out["config"]["eps"] == 1e-3
    assert out["value"] > 0


def test_the_plugin_is_absent_without_the_install():
    # the same config in this interpreter (acme not installed): a clear error, not a crash
    from omegaconf import OmegaConf

    import lossreg

    if "acme_charbonnier" in lossreg.available():
        pytest.skip("acme-losses is installed in this interpreter")
    with pytest.raises(
        lossreg.ConfigError, match="terms.charb.name: unknown loss 'acme_charbonnier'"
    ):
        lossreg.build(OmegaConf.load(CONFIG))
