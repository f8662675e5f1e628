"""benchmarks/run.py cannot rot: its quick mode runs and prints every row (never a timing)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ROWS = (
    "binary_focal",
    "multiclass_focal",
    "classification_focal",
    "binary_dice",
    "multiclass_dice",
    "lovasz_hinge",
    "composite",
    "composite_compile",
    "import",
    "build_config",
)


def test_quick_benchmark_runs_and_prints_every_row():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = set(re.findall(r"^\| (\w+) \|", proc.stdout, flags=re.MULTILINE))
    missing = [row for row in ROWS if row not in printed]
    assert not missing, f"rows not printed: {missing}\n{proc.stdout}"
    # every row says something on each of its lines: a figure, or why there is none
    for line in proc.stdout.splitlines():
        if line.startswith("| ") and line.split("|")[1].strip() in ROWS:
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert any(cells[2:]), line


def test_unknown_row_is_refused():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--rows", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "unknown rows ['nope']" in proc.stderr
