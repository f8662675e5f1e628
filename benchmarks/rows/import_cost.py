"""The import-cost row: fresh interpreters time ``import lossreg; lossreg.available()`` on top
of ``import torch`` (and the peers' loss modules), as ``run.py``'s docstring describes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import Row, _fmt, load_smp_losses

RUN_PY = str(Path(__file__).resolve().parent.parent / "run.py")

ORDER = 95


PROBES = {
    "lossreg": "import lossreg; lossreg.available()",
    "monai": "import monai.losses",
    "kornia": "import kornia.losses",
    "smp": "load_smp_losses()",
}


def import_probe(arg: str) -> None:
    """In a fresh interpreter: import torch, then time ``target``'s import (JSON to stdout).

    ``arg`` is ``target:collect`` or ``target:raw``. With ``collect`` a ``gc.collect()`` runs
    after ``import torch``: torch's import leaves a full (generation 2) collection owed, over
    its million objects, which otherwise lands on whatever is imported next (about 60 ms of CPU
    here); ``collect`` measures what the import itself costs, ``raw`` what a user sees.
    """
    import gc
    import warnings

    target, mode = arg.split(":")
    warnings.simplefilter("ignore")
    w0 = time.perf_counter()
    import torch  # noqa: F401

    if mode == "collect":
        gc.collect()
    w1, c1 = time.perf_counter(), time.process_time()
    exec(PROBES[target], {"load_smp_losses": load_smp_losses})
    w2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({"torch": w1 - w0, "wall": w2 - w1, "cpu": c2 - c1}))


def run_import_row(cfg, peers):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    targets = ["lossreg", *[p for p in ("monai", "kornia", "smp") if p in peers]]
    results: dict[tuple[str, str], list[dict]] = {}
    errors: dict[str, str] = {}
    for i in range(cfg["import_runs"] + 1):  # run 0 is a warm-up (bytecode caches)
        for t in targets:
            for mode in ("collect", "raw") if t == "lossreg" else ("collect",):
                if t in errors:
                    continue
                proc = subprocess.run(
                    [sys.executable, RUN_PY, "--import-probe", f"{t}:{mode}"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    errors[t] = f"error: {tail[:120]}"
                    continue
                if i:
                    out = json.loads(proc.stdout.strip().splitlines()[-1])
                    results.setdefault((t, mode), []).append(out)
    torch_ms = [r["torch"] * 1e3 for rs in results.values() for r in rs]
    torch_med = statistics.median(torch_ms) if torch_ms else None
    print(f"| import | import torch alone (baseline) | {_fmt(torch_med, '.0f')} | 1.00x | | | |")
    failed = False
    labels = {
        "lossreg": "lossreg: import lossreg; available() (ms on top: wall / CPU; raw wall)",
        "monai": "monai: import monai.losses (ms on top: wall / CPU)",
        "kornia": "kornia: import kornia.losses (ms on top: wall / CPU)",
        "smp": "smp: segmentation_models_pytorch.losses only (ms on top: wall / CPU)",
    }
    for t in targets:
        if t in errors:
            print(f"| import | {labels[t]} | {errors[t]} | | | | |")
            failed |= t == "lossreg"
            continue
        collected = results[(t, "collect")]
        wall = statistics.median(r["wall"] for r in collected) * 1e3
        cpu = statistics.median(r["cpu"] for r in collected) * 1e3
        cell = f"{wall:.0f} / {cpu:.0f}"
        if (t, "raw") in results:
            cell += f"; raw {statistics.median(r['wall'] for r in results[(t, 'raw')]) * 1e3:.0f}"
        r = wall / torch_med if torch_med else None
        print(f"| import | {labels[t]} | {cell} | {_fmt(r, '.2f', 'x')} | | | |")
    return failed


ROWS = [
    Row(
        "import",
        "import lossreg; lossreg.available() on top of import torch",
        run_import_row,
        custom=True,
    ),
]
