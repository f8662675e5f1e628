"""The measuring harness of ``benchmarks/run.py``: entries, interleaved timing, peak memory,
the table, peers and input makers. The method is in ``run.py``'s docstring."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FULL = {
    "binary": (8, 1, 256, 256),
    "multiclass": (8, 4, 128, 128),
    "classification": (4096, 100),
    "rounds": 10,
    "min_run_time": 0.1,
    "import_runs": 5,
}
QUICK = {
    "binary": (2, 1, 16, 16),
    "multiclass": (2, 4, 8, 8),
    "classification": (16, 5),
    "rounds": 1,
    "min_run_time": 0.01,
    "import_runs": 1,
}

NOT_REGISTERED = "n/a (not registered)"


# -- peers ------------------------------------------------------------------------------------
def load_smp_losses():
    """``segmentation_models_pytorch.losses`` without running the package's ``__init__``.

    smp's ``__init__`` imports its encoders (timm, torchvision, huggingface_hub); torchvision
    from PyPI does not import beside this machine's torch. The losses need only torch and numpy,
    so a stub parent package (just a ``__path__``) lets the subpackage import on its own. For
    benchmarking only.
    """
    import importlib
    import importlib.util
    import types

    name = "segmentation_models_pytorch"
    if name not in sys.modules:
        spec = importlib.util.find_spec(name)  # a top-level find_spec runs no package code
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"{name} is not installed")
        stub = types.ModuleType(name)
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__spec__ = spec
        sys.modules[name] = stub
    return importlib.import_module(f"{name}.losses")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def load_peers() -> tuple[dict[str, object], list[str]]:
    """Importable peers' loss modules, and a note per peer."""
    import importlib
    import warnings

    peers: dict[str, object] = {}
    notes = []
    loaders = {
        "monai": ("monai", lambda: importlib.import_module("monai.losses")),
        "kornia": ("kornia", lambda: importlib.import_module("kornia.losses")),
        "smp": ("segmentation-models-pytorch", load_smp_losses),
    }
    for key, (dist, load) in loaders.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peers[key] = load()
            notes.append(f"{key} {_version(dist)}")
        except Exception as exc:  # a peer that does not import is left out, never fatal
            notes.append(f"{key}: not importable ({type(exc).__name__}: {str(exc)[:80]})")
    return peers, notes


# -- measuring --------------------------------------------------------------------------------
class Entry:
    """One implementation in a row: a loss ``fn(x, y)`` on its own inputs, or why there is none."""

    def __init__(self, label, fn=None, x=None, y=None, *, na=None, ours=False):
        self.label, self.fn, self.x, self.y = label, fn, x, y
        self.na = na  # reason there is nothing to measure
        self.ours = ours  # a lossreg entry: an error in it fails the run
        self.times: list[float] = []  # per round: median over blocks
        self.best: list[float] = []  # per round: fastest block
        self.error: str | None = None
        self.peak: float | None = None
        self.saved: float | None = None

    def step(self):
        self.x.grad = None
        self.fn(self.x, self.y).backward()


def lossreg_entry(label, x, y, spec, **params):
    """A lossreg candidate built from ``spec``, or a row that says why it is missing."""
    import lossreg

    try:
        module = lossreg.build(spec, **params)
    except lossreg.UnknownLossError:
        return Entry(label, na=NOT_REGISTERED, ours=True)
    except lossreg.LossregError as exc:
        first = str(exc).splitlines()[0][:100]
        return Entry(label, na=f"n/a (build failed: {first})", ours=True)
    return Entry(label, module, x, y, ours=True)


def peer_entry(peers, key, label, make, x, y):
    if key not in peers:
        return None
    try:
        fn = make(peers[key])
    except Exception as exc:
        return Entry(label, na=f"n/a ({type(exc).__name__}: {str(exc)[:80]})")
    return Entry(label, fn, x, y)


def peak_and_saved(entry: Entry, logits_bytes: int) -> None:
    """Peak bytes allocated during one step, and bytes saved for backward (see the docstring)."""
    import contextlib

    import torch
    from torch.profiler import ProfilerActivity, profile

    entry.x.grad = None
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        entry.step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    level = peak = 0
    for e in events:
        level += e.nbytes()
        peak = max(peak, level)
    entry.peak = peak / logits_bytes

    inputs = {t.untyped_storage().data_ptr() for t in (entry.x, entry.y) if t is not None}
    seen: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and t.device.type == "cpu":
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in inputs and ptr != 0:
                seen[ptr] = storage.nbytes()
        return t

    entry.x.grad = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
        loss = entry.fn(entry.x, entry.y)
    loss.backward()
    entry.saved = sum(seen.values()) / logits_bytes


class _quiet_stderr:
    """Silence the profiler's own start/stop lines on file descriptor 2."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)


def measure(baseline: Entry, entries: list[Entry], cfg, logits_bytes: int, memory=True):
    """Warm up, check, then time ``baseline`` and ``entries`` in interleaved rounds."""
    from torch.utils.benchmark import Timer

    live = []
    for e in [baseline, *entries]:
        if e.na:
            continue
        try:
            for _ in range(2):
                e.step()
            if memory:
                peak_and_saved(e, logits_bytes)
        except Exception as exc:
            e.error = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            continue
        live.append(e)
    for r in range(cfg["rounds"]):
        for e in live if r % 2 == 0 else live[::-1]:  # alternate the order: no position bias
            timer = Timer(stmt="step()", globals={"step": e.step}, num_threads=2)
            m = timer.blocked_autorange(min_run_time=cfg["min_run_time"])
            e.times.append(m.median)
            e.best.append(min(m.times))


def ratio(a: Entry, b: Entry) -> float | None:
    """Median over rounds of a's time over b's time in the same round."""
    if not a.times or not b.times:
        return None
    return statistics.median(ta / tb for ta, tb in zip(a.times, b.times, strict=True))


def best_ratio(a: Entry, b: Entry) -> float | None:
    """a's fastest block over b's fastest block, over all rounds (other load only adds time)."""
    if not a.best or not b.best:
        return None
    return min(a.best) / min(b.best)


# -- output -----------------------------------------------------------------------------------
HEADER = (
    "| row | implementation | ms | x baseline | x baseline, best | peak mem x logits "
    "| saved x logits |\n"
    "|---|---|---:|---:|---:|---:|---:|"
)


def _fmt(v, spec, suffix=""):
    return "" if v is None else f"{v:{spec}}{suffix}"


def print_entries(key, baseline: Entry, entries: list[Entry], extra=()):
    """Table lines for one row; ``extra`` adds (label, a, b) lines with a/b time ratios."""
    failed = False
    for e in [baseline, *entries]:
        if e.na or e.error:
            print(f"| {key} | {e.label} | {e.na or e.error} | | | | |")
            failed |= bool(e.error) and (e.ours or e is baseline)
            continue
        ms = statistics.median(e.times) * 1e3 if e.times else None
        r = 1.0 if e is baseline else ratio(e, baseline)
        best = 1.0 if e is baseline else best_ratio(e, baseline)
        print(
            f"| {key} | {e.label} | {_fmt(ms, '.3g')} | {_fmt(r, '.2f', 'x')} | "
            f"{_fmt(best, '.2f', 'x')} | {_fmt(e.peak, '.1f', 'x')} | {_fmt(e.saved, '.1f', 'x')} |"
        )
    for label, a, b in extra:
        ok = not (a.na or a.error or b.na or b.error)
        r, best = (ratio(a, b), best_ratio(a, b)) if ok else (None, None)
        print(
            f"| {key} | {label} | | {_fmt(r, '.2f', 'x') or 'n/a'} | {_fmt(best, '.2f', 'x')} | | |"
        )
    return failed


# -- inputs shared by rows --------------------------------------------------------------------
def inputs(shape, kind, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).requires_grad_()
    if kind == "binary":
        y = (torch.rand(shape, generator=g) > 0.5).float()
    else:
        y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return x, y


def nbytes(x):
    return x.numel() * x.element_size()


# -- rows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One benchmark row.

    ``run(cfg, peers)`` returns ``(baseline, entries, logits_bytes, extra)`` for the harness to
    measure and print; a row with ``custom=True`` prints its own lines and returns whether a
    lossreg part failed.
    """

    key: str
    what: str
    run: Callable[..., Any]
    custom: bool = False
