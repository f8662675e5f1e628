"""Forward + backward benchmark of lossreg against plain PyTorch and peer libraries.

Run ``python benchmarks/run.py`` (full) or ``python benchmarks/run.py --quick`` (tiny shapes, one
round: checks that every row runs, its numbers mean nothing). Peers (MONAI, kornia,
segmentation_models_pytorch) appear when importable; see ``docs/performance.md`` for how to
install them beside torch without replacing it. The output is a markdown table.

Method
------
Timing. Every figure is a ratio against plain PyTorch written by hand, measured in the same
process. One *step* is ``x.grad = None; f(x, y).backward()`` on a leaf ``x`` of logits, timed with
``torch.utils.benchmark.Timer.blocked_autorange`` at 2 threads (``torch.set_num_threads(2)``). A
row's baseline and candidates are measured in interleaved rounds (baseline, candidate 1, candidate
2, ..., then the same in reverse order, and so on), and a candidate's ratio is the median over
rounds of its time over *that round's* baseline time: slow drifts of the machine's load (this
machine is shared) cancel in the ratio. ``x baseline, best`` is the candidate's fastest block over
the baseline's fastest block across all rounds: other processes only ever add time, so where the
two ratio columns disagree the machine was busy and the best-of figure is the better estimate of
the unloaded ratio. The ``ms`` column is the median step time over rounds, for orientation only.

Peak memory. ``torch.profiler.profile(profile_memory=True)`` records every CPU allocation and
free as a ``[memory]`` event with a signed byte count. One step is profiled after warm-up with
``x.grad`` cleared beforehand; the events, sorted by time, are summed and the running maximum is
the step's peak of bytes allocated above the level before it (the inputs exist before and are not
counted; the input's gradient, one logits' worth, is). The figure is that peak over the logits'
bytes: ``F.binary_cross_entropy_with_logits`` itself shows 2.0 (its gradient plus one temporary).
``saved`` is the bytes autograd keeps between forward and backward, counted with
``torch.autograd.graph.saved_tensors_hooks`` over distinct storages, not counting storages of the
inputs themselves; it tells whether a loss saves its inputs only or its intermediates too.

Import cost. Fresh subprocesses run ``import torch``, then time ``import lossreg;
lossreg.available()`` (which discovers every plugin; the built-ins register lazy references, so
no loss module is imported) with ``time.perf_counter`` (wall)
and ``time.process_time`` (CPU, less sensitive to other processes); the figure is the median over
runs after one discarded warm-up run. It is taken after a ``gc.collect()``: torch's import leaves
a full garbage collection owed that would otherwise land on the next import, whatever it is;
the raw figure (no collect) is printed beside it. ``PYTHONDONTWRITEBYTECODE`` is dropped from
the children's environment so bytecode caches are used as on a normal install. Peers:
``import monai.losses``, ``import kornia.losses``, smp's ``losses`` subpackage.

Build cost. ``lossreg.build`` of a composite from a plain-dict config and from an OmegaConf
config, per call, against constructing ``torch.nn.BCEWithLogitsLoss()``.

A row whose loss is not registered prints ``n/a (not registered)``; a lossreg row that raises
prints the error and makes the script exit 1 (a peer that raises is only reported).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# Rows, in print order: (key, what is compared). tests/test_benchmarks.py checks each key prints.
ROWS = (
    ("binary_focal", "binary focal vs BCE-with-logits, (8,1,256,256)"),
    ("multiclass_focal", "multiclass focal vs F.cross_entropy, (8,4,128,128) int labels"),
    ("classification_focal", "multiclass focal vs F.cross_entropy, (4096,100)"),
    ("binary_dice", "binary dice vs BCE-with-logits, (8,1,256,256)"),
    ("multiclass_dice", "multiclass dice vs F.cross_entropy, (8,4,128,128) int labels"),
    ("lovasz_hinge", "lovasz_hinge vs BCE-with-logits and smp LovaszLoss, (8,1,256,256)"),
    ("composite", "built 0.5*dice + bce vs the two modules called by hand, (8,1,256,256)"),
    ("composite_compile", "build(..., compile=True) 0.5*dice + bce vs BCE-with-logits"),
    ("import", "import lossreg; lossreg.available() on top of import torch"),
    ("build_config", "lossreg.build of a composite from a config, per call"),
)

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


# -- rows -------------------------------------------------------------------------------------
def _inputs(shape, kind, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).requires_grad_()
    if kind == "binary":
        y = (torch.rand(shape, generator=g) > 0.5).float()
    else:
        y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return x, y


def _bytes(x):
    return x.numel() * x.element_size()


def naive_binary_focal(x, y, gamma=2.0, alpha=0.25):
    """torchvision's ``sigmoid_focal_loss`` formula, written out."""
    import torch.nn.functional as F

    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    return ((alpha * y + (1 - alpha) * (1 - y)) * loss).mean()


def naive_multiclass_focal(x, y, gamma=2.0):
    logp = x.log_softmax(1).gather(1, y.unsqueeze(1)).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def naive_binary_dice(x, y, smooth=1.0):
    p = x.sigmoid()
    return 1 - (2 * (p * y).sum() + smooth) / (p.sum() + y.sum() + smooth)


def naive_multiclass_dice(x, y, smooth=1.0):
    import torch

    p = x.softmax(1)
    onehot = torch.zeros_like(p).scatter_(1, y.unsqueeze(1), 1.0)
    dims = (0, *range(2, p.ndim))
    tp = (p * onehot).sum(dims)
    return (1 - (2 * tp + smooth) / (p.sum(dims) + onehot.sum(dims) + smooth)).mean()


def row_binary_focal(cfg, peers):
    import torch.nn.functional as F

    x, y = _inputs(cfg["binary"], "binary")
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    entries = [
        lossreg_entry(
            "lossreg focal (binary, gamma 2, alpha 0.25)",
            x,
            y,
            "focal",
            mode="binary",
            gamma=2.0,
            alpha=0.25,
        ),
        Entry("torch by hand (torchvision formula)", naive_binary_focal, x, y),
        peer_entry(
            peers,
            "smp",
            "smp FocalLoss(binary)",
            lambda m: m.FocalLoss("binary", alpha=0.25, gamma=2.0),
            x,
            y,
        ),
        peer_entry(
            peers,
            "kornia",
            "kornia BinaryFocalLossWithLogits",
            lambda m: m.BinaryFocalLossWithLogits(0.25, 2.0, reduction="mean"),
            x,
            y,
        ),
        peer_entry(
            peers,
            "monai",
            "monai FocalLoss(sigmoid)",
            lambda m: m.FocalLoss(gamma=2.0, alpha=0.25),
            x,
            y,
        ),
    ]
    return base, [e for e in entries if e], _bytes(x), ()


def _multiclass_focal(cfg, peers, shape):
    import torch.nn.functional as F

    x, y = _inputs(shape, "multiclass")
    y1 = y.unsqueeze(1)  # MONAI takes (N, 1, *) labels
    base = Entry("torch F.cross_entropy (baseline)", F.cross_entropy, x, y)
    entries = [
        lossreg_entry(
            "lossreg focal (multiclass, gamma 2)", x, y, "focal", mode="multiclass", gamma=2.0
        ),
        Entry("torch by hand (log_softmax, gather)", naive_multiclass_focal, x, y),
        peer_entry(
            peers,
            "smp",
            "smp FocalLoss(multiclass)",
            lambda m: m.FocalLoss("multiclass", gamma=2.0),
            x,
            y,
        ),
        peer_entry(
            peers,
            "kornia",
            "kornia FocalLoss",
            lambda m: m.FocalLoss(None, 2.0, reduction="mean"),
            x,
            y,
        ),
        peer_entry(
            peers,
            "monai",
            "monai FocalLoss(softmax, one-hot y)",
            lambda m: m.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0),
            x,
            y1,
        ),
    ]
    return base, [e for e in entries if e], _bytes(x), ()


def row_multiclass_focal(cfg, peers):
    return _multiclass_focal(cfg, peers, cfg["multiclass"])


def row_classification_focal(cfg, peers):
    return _multiclass_focal(cfg, peers, cfg["classification"])


def row_binary_dice(cfg, peers):
    import torch.nn.functional as F

    x, y = _inputs(cfg["binary"], "binary")
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    entries = [
        lossreg_entry("lossreg dice (binary)", x, y, "dice", mode="binary"),
        Entry("torch by hand (sigmoid, 3 sums)", naive_binary_dice, x, y),
        peer_entry(peers, "smp", "smp DiceLoss(binary)", lambda m: m.DiceLoss("binary"), x, y),
        peer_entry(
            peers,
            "monai",
            "monai DiceLoss(sigmoid, batch)",
            lambda m: m.DiceLoss(sigmoid=True, batch=True),
            x,
            y,
        ),
    ]
    return base, [e for e in entries if e], _bytes(x), ()


def row_multiclass_dice(cfg, peers):
    import torch.nn.functional as F

    x, y = _inputs(cfg["multiclass"], "multiclass")
    y1 = y.unsqueeze(1)
    base = Entry("torch F.cross_entropy (baseline)", F.cross_entropy, x, y)
    entries = [
        lossreg_entry("lossreg dice (multiclass)", x, y, "dice", mode="multiclass"),
        Entry("torch by hand (softmax, scatter one-hot)", naive_multiclass_dice, x, y),
        peer_entry(
            peers, "smp", "smp DiceLoss(multiclass)", lambda m: m.DiceLoss("multiclass"), x, y
        ),
        peer_entry(peers, "kornia", "kornia DiceLoss", lambda m: m.DiceLoss(), x, y),
        peer_entry(
            peers,
            "monai",
            "monai DiceLoss(softmax, one-hot y, batch)",
            lambda m: m.DiceLoss(softmax=True, to_onehot_y=True, batch=True),
            x,
            y1,
        ),
    ]
    return base, [e for e in entries if e], _bytes(x), ()


def row_lovasz_hinge(cfg, peers):
    import torch.nn.functional as F

    x, y = _inputs(cfg["binary"], "binary")
    y3 = y.squeeze(1).long()  # kornia takes (N, H, W) labels
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    ours = lossreg_entry(
        "lossreg lovasz_hinge (per_image false)", x, y, "lovasz_hinge", per_image=False
    )
    ours_pi = lossreg_entry(
        "lossreg lovasz_hinge (per_image true)", x, y, "lovasz_hinge", per_image=True
    )
    smp = peer_entry(
        peers,
        "smp",
        "smp LovaszLoss(binary, per_image false)",
        lambda m: m.LovaszLoss("binary", per_image=False),
        x,
        y,
    )
    smp_pi = peer_entry(
        peers,
        "smp",
        "smp LovaszLoss(binary, per_image true)",
        lambda m: m.LovaszLoss("binary", per_image=True),
        x,
        y,
    )
    kornia = peer_entry(
        peers, "kornia", "kornia LovaszHingeLoss (per image)", lambda m: m.LovaszHingeLoss(), x, y3
    )
    entries = [e for e in (ours, ours_pi, smp, smp_pi, kornia) if e]
    extra = []
    if smp:
        extra = [
            ("lossreg / smp LovaszLoss, per_image false", ours, smp),
            ("lossreg / smp LovaszLoss, per_image true", ours_pi, smp_pi),
        ]
    return base, entries, _bytes(x), extra


COMPOSITE = {"expr": "0.5*dice + bce", "terms": {"dice": {"name": "dice", "mode": "binary"}}}


def row_composite(cfg, peers):
    import lossreg

    x, y = _inputs(cfg["binary"], "binary")
    try:
        dice, bce = lossreg.build("dice", mode="binary"), lossreg.build("bce")
    except lossreg.UnknownLossError:
        base = Entry("the two lossreg modules called by hand (baseline)", na=NOT_REGISTERED)
        return base, [Entry("lossreg.build('0.5*dice + bce')", na=NOT_REGISTERED)], 1, ()

    def by_hand(x, y):
        return 0.5 * dice(x, y) + bce(x, y)

    base = Entry("0.5*dice(x, y) + bce(x, y), lossreg modules by hand (baseline)", by_hand, x, y)
    built = lossreg_entry("lossreg.build composite", x, y, COMPOSITE)
    return base, [built], _bytes(x), ()


def row_composite_compile(cfg, peers):
    import torch.nn.functional as F

    x, y = _inputs(cfg["binary"], "binary")
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    built = lossreg_entry(
        "lossreg.build composite, compile=True (after warm-up)", x, y, COMPOSITE, compile=True
    )
    eager = lossreg_entry("lossreg.build composite, eager", x, y, COMPOSITE)
    if built.fn is not None:  # compiling happens on the first calls: outside the timing
        try:
            for _ in range(3):
                built.step()
        except Exception as exc:
            built.error = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return base, [built, eager], _bytes(x), ()


ROW_FUNCS = {
    "binary_focal": row_binary_focal,
    "multiclass_focal": row_multiclass_focal,
    "classification_focal": row_classification_focal,
    "binary_dice": row_binary_dice,
    "multiclass_dice": row_multiclass_dice,
    "lovasz_hinge": row_lovasz_hinge,
    "composite": row_composite,
    "composite_compile": row_composite_compile,
}


# -- import cost ------------------------------------------------------------------------------
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
                    [sys.executable, os.path.abspath(__file__), "--import-probe", f"{t}:{mode}"],
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


# -- build cost -------------------------------------------------------------------------------
def run_build_row(cfg):
    import torch
    from torch.utils.benchmark import Timer

    import lossreg

    def time_call(fn):
        fn()
        t = Timer(stmt="fn()", globals={"fn": fn}, num_threads=2)
        m = t.blocked_autorange(min_run_time=cfg["min_run_time"])
        return m.median, min(m.times)

    base, base_best = time_call(torch.nn.BCEWithLogitsLoss)
    label = "torch.nn.BCEWithLogitsLoss() (baseline)"
    print(f"| build_config | {label} | {base * 1e3:.3g} | 1.00x | 1.00x | | |")
    try:
        lossreg.build(COMPOSITE)
    except lossreg.UnknownLossError:
        print(f"| build_config | lossreg.build(dict config) | {NOT_REGISTERED} | | | | |")
        return False
    from omegaconf import OmegaConf

    conf = OmegaConf.create(COMPOSITE)
    for label, fn in (
        ("lossreg.build(dict config) of 0.5*dice + bce", lambda: lossreg.build(COMPOSITE)),
        ("lossreg.build(OmegaConf config) of 0.5*dice + bce", lambda: lossreg.build(conf)),
    ):
        t, best = time_call(fn)
        r, rb = t / base, best / base_best
        print(f"| build_config | {label} | {t * 1e3:.3g} | {r:.0f}x | {rb:.0f}x | | |")
    return False


# -- main -------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one round")
    parser.add_argument("--rows", help="comma-separated row keys to run (default: all)")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds per row")
    parser.add_argument("--import-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.import_probe:
        import_probe(args.import_probe)
        return 0

    import torch

    torch.set_num_threads(2)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    keys = [k for k, _ in ROWS]
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - set(keys)
        if unknown:
            parser.error(f"unknown rows {sorted(unknown)}; rows are {', '.join(keys)}")
        keys = [k for k in keys if k in wanted]

    peers, notes = load_peers()
    print(f"# lossreg benchmark{' (--quick: numbers mean nothing)' if args.quick else ''}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, nproc {os.cpu_count()}, "
        f"python {sys.version.split()[0]}, load average at start "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print("peers: " + "; ".join(notes))
    print(
        f"shapes: {cfg['binary']}, {cfg['multiclass']}, {cfg['classification']}; "
        f"{cfg['rounds']} rounds of blocked_autorange(min_run_time={cfg['min_run_time']})"
    )
    print()
    print(HEADER)
    failed = False
    for key in keys:
        if key == "import":
            failed |= run_import_row(cfg, peers)
        elif key == "build_config":
            failed |= run_build_row(cfg)
        else:
            base, entries, logits_bytes, extra = ROW_FUNCS[key](cfg, peers)
            if not base.na:
                measure(base, entries, cfg, logits_bytes)
            failed |= print_entries(key, base, entries, extra)
        sys.stdout.flush()
    print()
    print(f"load average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
