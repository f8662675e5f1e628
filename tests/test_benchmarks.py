"""benchmarks/run.py cannot rot: its quick mode runs and prints every row (never a timing)."""

import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(ROOT / "benchmarks" / "run.py")]
# rows that must exist; modules in benchmarks/rows/ add more, and every listed row must print
CORE_ROWS = {
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
}


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_quick_benchmark_runs_and_prints_every_row():
    listed = _run("--list")
    assert listed.returncode == 0, listed.stderr
    keys = [line.split("\t")[0] for line in listed.stdout.splitlines()]
    assert set(keys) >= CORE_ROWS, sorted(CORE_ROWS - set(keys))
    # the import row starts fresh interpreters (seconds each): measured by hand, not here;
    # test_import_probe_reports_json keeps its code path alive
    proc = _run("--quick", "--skip", "import")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = set(re.findall(r"^\| (\w+) \|", proc.stdout, flags=re.MULTILINE))
    missing = [row for row in keys if row != "import" and row not in printed]
    assert not missing, f"rows not printed: {missing}\n{proc.stdout}"
    # every row says something on each of its lines: a figure, or why there is none
    for line in proc.stdout.splitlines():
        if line.startswith("| ") and line.split("|")[1].strip() in keys:
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert any(cells[2:]), line


def test_import_probe_reports_json(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from rows.import_cost import import_probe

    out = io.StringIO()
    with redirect_stdout(out):
        import_probe("lossreg:collect")
    figures = json.loads(out.getvalue())
    assert set(figures) == {"torch", "wall", "cpu"}
    assert all(v >= 0 for v in figures.values())


def test_unknown_row_is_refused():
    proc = _run("--quick", "--rows", "nope", timeout=120)
    assert proc.returncode == 2
    assert "unknown rows ['nope']" in proc.stderr
