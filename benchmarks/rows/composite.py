"""Composite rows: a built composite vs its terms by hand, compiled, and the cost of build."""

from __future__ import annotations

from harness import NOT_REGISTERED, Entry, Row, inputs, lossreg_entry, nbytes

ORDER = 90


COMPOSITE = {"expr": "0.5*dice + bce", "terms": {"dice": {"name": "dice", "mode": "binary"}}}


def row_composite(cfg, peers):
    import lossreg

    x, y = inputs(cfg["binary"], "binary")
    try:
        dice, bce = lossreg.build("dice", mode="binary"), lossreg.build("bce")
    except lossreg.UnknownLossError:
        base = Entry("the two lossreg modules called by hand (baseline)", na=NOT_REGISTERED)
        return base, [Entry("lossreg.build('0.5*dice + bce')", na=NOT_REGISTERED)], 1, ()

    def by_hand(x, y):
        return 0.5 * dice(x, y) + bce(x, y)

    base = Entry("0.5*dice(x, y) + bce(x, y), lossreg modules by hand (baseline)", by_hand, x, y)
    built = lossreg_entry("lossreg.build composite", x, y, COMPOSITE)
    return base, [built], nbytes(x), ()


def row_composite_compile(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
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
    return base, [built, eager], nbytes(x), ()


def run_build_row(cfg, peers):
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


ROWS = [
    Row(
        "composite",
        "built 0.5*dice + bce vs the two modules called by hand, (8,1,256,256)",
        row_composite,
    ),
    Row(
        "composite_compile",
        "build(..., compile=True) 0.5*dice + bce vs BCE-with-logits",
        row_composite_compile,
    ),
    Row(
        "build_config",
        "lossreg.build of a composite from a config, per call",
        run_build_row,
        custom=True,
    ),
]
