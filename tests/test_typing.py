"""Strict mypy over the core and the built-in plugins (``[tool.mypy]`` in pyproject.toml), and
no ``type: ignore`` in the plugins without a reason on its line."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_is_clean(monkeypatch):
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)  # [tool.mypy] files are relative to the repository
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, out + err


def test_every_type_ignore_says_why():
    bare = re.compile(r"type: ignore(\[[^\]]*\])?\s*$")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "plugins/lossreg_builtin").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []
