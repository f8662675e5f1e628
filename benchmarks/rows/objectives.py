"""Objective rows (issue 12): a scheduled composite against the same composite with constant
weights, deep supervision over 4 levels against the same four calls written by hand, and the
recompilations of a compiled scheduled objective over 1,000 schedule steps."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes

ORDER = 91

TERMS = {"dice": {"name": "dice", "mode": "binary"}}
CONSTANT = {"expr": "0.5*dice + 1.0*bce", "terms": TERMS}
SCHEDULED = {
    "expr": "w_dice*dice + w_bce*bce",
    "terms": TERMS,
    "weights": {
        "w_dice": {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 2000, "begin": 500},
        "w_bce": {"schedule": "cosine", "start": 1.0, "end": 0.1, "steps": 1000},
    },
}
LEVELS = 4


def row_scheduled(cfg, peers):
    x, y = inputs(cfg["binary"], "binary")
    base = lossreg_entry("constant weights 0.5*dice + 1.0*bce (baseline)", x, y, CONSTANT)
    scheduled = lossreg_entry("scheduled weights w_dice*dice + w_bce*bce", x, y, SCHEDULED)
    if scheduled.fn is not None:
        scheduled.fn.set_step(1000)  # mid-ramp: the weights are not 0 or 1
    return base, [scheduled], nbytes(x), ()


def _pyramid(x):
    import torch.nn.functional as F

    # four outputs, highest resolution first, all differentiable in the one leaf x
    return [x] + [F.avg_pool2d(x, 2**i) for i in range(1, LEVELS)]


def row_deep_supervision(cfg, peers):
    import torch.nn.functional as F

    import lossreg

    x, y = inputs(cfg["binary"], "binary")
    plain = lossreg.build(CONSTANT)
    deep = lossreg.build({**CONSTANT, "deep_supervision": {"weights": "exp", "normalize": True}})
    weights = [0.5**i for i in range(LEVELS)]
    total = sum(weights)

    def by_hand(x, y):
        outs = _pyramid(x)
        loss = plain(outs[0], y)
        for w, out in zip(weights[1:], outs[1:], strict=True):
            target = F.interpolate(y, size=out.shape[2:], mode="nearest-exact")
            loss = loss + w * plain(out, target)
        return loss / total

    base = Entry(
        f"{LEVELS} calls of the composite by hand, targets resized (baseline)", by_hand, x, y
    )
    ours = Entry(
        f"deep_supervision: {{weights: exp}} over {LEVELS} levels",
        lambda x, y: deep(_pyramid(x), y),
        x,
        y,
        ours=True,
    )
    return base, [ours], nbytes(x), ()


def run_recompile_row(cfg, peers):
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters

    import lossreg

    steps = 1000
    # recompilation depends on guards, not on sizes: small tensors keep 1,000 steps quick
    x, y = inputs((2, 1, 32, 32), "binary")
    objective = lossreg.build(SCHEDULED)
    torch._dynamo.reset()
    counters.clear()
    graphs = []

    def counting_backend(gm, example_inputs):  # called once per (re)compilation
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(objective, backend=counting_backend)
    try:
        compiled(x, y).backward()  # warm-up: the one compilation
        warm = len(graphs)
        for _ in range(steps):
            objective.step()
            x.grad = None
            compiled(x, y).backward()
    except Exception as exc:
        msg = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        print(f"| compile_recompiles | compiled scheduled objective | {msg} | | | | |")
        return True
    recompiles = len(graphs) - warm
    unique = counters["stats"]["unique_graphs"]
    label = f"torch.compile'd scheduled objective, {steps} steps (weights moved every step)"
    print(
        f"| compile_recompiles | {label} | graphs at warm-up {warm}, recompiles after "
        f"{recompiles} (dynamo unique_graphs {unique}) | | | | |"
    )
    return recompiles != 0


ROWS = [
    Row(
        "scheduled_composite",
        "scheduled w_dice*dice + w_bce*bce vs constant 0.5*dice + 1.0*bce, (8,1,256,256)",
        row_scheduled,
    ),
    Row(
        "deep_supervision",
        f"deep supervision over {LEVELS} levels vs the same four calls by hand, (8,1,256,256)",
        row_deep_supervision,
    ),
    Row(
        "compile_recompiles",
        "recompilations of a compiled scheduled objective over 1,000 steps",
        run_recompile_row,
        custom=True,
    ),
]
