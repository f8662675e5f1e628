"""Install a package for a test without touching the running environment: ``pip install
--target`` into a temporary directory, used through ``PYTHONPATH``.

This works the same from a virtualenv and from a bare interpreter. (A nested venv with
``--system-site-packages`` sees the *base* interpreter's packages when the tests run inside
a venv: no torch, no lossreg.) The build runs offline with this interpreter's setuptools
(``--no-build-isolation``, the ``dev`` extra pins a recent one); pip's output is shown
when it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pip_install_target(target: Path, *sources: Path) -> dict[str, str]:
    """Install ``sources`` into ``target``; return an environment that imports from it."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-build-isolation", "--no-deps", "--target", str(target),
            *(str(s) for s in sources),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}
