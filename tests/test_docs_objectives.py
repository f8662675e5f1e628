"""docs/objectives.md runs: every python block in order in one namespace, every yaml block
builds (the Lightning and Hydra examples are real runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import lossreg

PAGE = Path(__file__).resolve().parents[1] / "docs" / "objectives.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_yaml_blocks_build():
    blocks = _blocks("yaml")
    assert len(blocks) == 3
    for text in blocks:
        lossreg.build(yaml.safe_load(text)["loss"])


def test_python_blocks_run_in_order():
    pytest.importorskip("lightning")
    pytest.importorskip("hydra")
    blocks = _blocks("python")
    assert len(blocks) == 5
    namespace: dict[str, object] = {}
    for code in blocks:
        exec(compile(code, str(PAGE), "exec"), namespace)
