"""The docs: ``mkdocs build --strict`` passes, and the loss catalog page is generated from the
registry (every loss, every parameter, its docstring), never written by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lossreg
from lossreg._plugins import plugin_statuses
from lossreg.cli.catalog import render_catalog
from lossreg.cli.paramdoc import example_yaml, param_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("material")
    site = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    catalog = (site / "catalog" / "index.html").read_text()
    lossreg.available()  # discovery; conftest's in-process test losses are not in the site
    for name in (n for status in plugin_statuses() for n in status.losses):
        assert f'id="{name.lower()}"' in catalog, name  # one section per loss
    schema = json.loads((site / "schema" / "lossreg.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # snippets pulled the real example files in (the plugin page shows the tested plugin)
    plugin_page = (site / "plugins" / "index.html").read_text()
    assert "CharbonnierParams" in plugin_page and "register_losses" in plugin_page


def test_catalog_is_never_hand_written() -> None:
    assert not (ROOT / "docs" / "catalog.md").exists()
    assert "catalog.md" in (ROOT / "mkdocs.yml").read_text()  # in the nav, made by the hook


def test_catalog_has_every_loss_parameter_and_docstring() -> None:
    page = render_catalog()
    for name in lossreg.available():
        info = lossreg.describe(name)
        section = page.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for row in param_rows(info.params):
            assert f"| `{row.name}` |" in section, (name, row.name)
        if info.doc:
            first = info.doc.strip().splitlines()[0]
            assert first in section, name


@pytest.mark.parametrize("name", lossreg.available())
def test_example_config_of_every_loss_builds_its_defaults(name: str) -> None:
    # the example `lossreg show` prints and the catalog shows: copy it, get the default loss
    spec = yaml.safe_load(example_yaml(name, lossreg.describe(name).params))["loss"]
    assert lossreg.to_config(lossreg.build(spec)) == lossreg.to_config(lossreg.build(name))


def test_param_rows_read_constraints_and_effective_defaults() -> None:
    rows = {r.name: r for r in param_rows(lossreg.describe("focal").params)}
    assert (rows["gamma"].type, rows["gamma"].default, rows["gamma"].constraints) == (
        "float",
        "2.0",
        ">= 0",
    )
    assert rows["alpha"].default == "0.25"  # filled in by the model for binary mode
    assert rows["reduction"].type == "'mean' | 'sum' | 'none'"
    huber = {r.name: r for r in param_rows(lossreg.describe("huber").params)}
    assert huber["delta"].constraints == "> 0"
