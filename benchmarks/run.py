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

Rows live in ``benchmarks/rows/``, one module per family, each with a ``ROWS`` list of
:class:`harness.Row`; a new module is picked up by itself (its ``ORDER`` places it in the table).
``--rows a,b`` runs some rows, ``--skip import`` leaves some out.

A row whose loss is not registered prints ``n/a (not registered)``; a lossreg row that raises
prints the error and makes the script exit 1 (a peer that raises is only reported).
"""

from __future__ import annotations

import argparse
import os
import sys

from harness import FULL, HEADER, QUICK, load_peers, measure, print_entries
from rows import all_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one round")
    parser.add_argument("--rows", help="comma-separated row keys to run (default: all)")
    parser.add_argument("--skip", help="comma-separated row keys to leave out")
    parser.add_argument("--list", action="store_true", help="print the row keys and exit")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds per row")
    parser.add_argument("--import-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.import_probe:
        from rows.import_cost import import_probe

        import_probe(args.import_probe)
        return 0

    rows = {row.key: row for row in all_rows()}
    keys = list(rows)
    if args.list:
        print("\n".join(f"{k}\t{rows[k].what}" for k in keys))
        return 0
    import torch

    torch.set_num_threads(2)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.rows:
        wanted = args.rows.split(",")
        unknown = set(wanted) - set(keys)
        if unknown:
            parser.error(f"unknown rows {sorted(unknown)}; rows are {', '.join(keys)}")
        keys = [k for k in keys if k in wanted]
    if args.skip:
        keys = [k for k in keys if k not in args.skip.split(",")]

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
        row = rows[key]
        if row.custom:
            failed |= row.run(cfg, peers)
        else:
            base, entries, logits_bytes, extra = row.run(cfg, peers)
            if not base.na:
                measure(base, entries, cfg, logits_bytes)
            failed |= print_entries(key, base, entries, extra)
        sys.stdout.flush()
    print()
    print(f"load average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
