"""Robust regression rows: charbonnier, cauchy, geman_mcclure, welsch vs kornia's, on a
(8,1,256,256) prediction against a real-valued target; plain F.mse_loss is the baseline."""

from __future__ import annotations

from harness import Entry, Row, lossreg_entry, nbytes, peer_entry

ORDER = 40
SHAPE = "binary"  # the (8,1,256,256) benchmark shape
LOSSES = ("charbonnier", "cauchy", "geman_mcclure", "welsch")


def _inputs(shape):
    import torch

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g) * 2).requires_grad_()
    return x, torch.randn(shape, generator=g)


def _row(name):
    def run(cfg, peers):
        import torch.nn.functional as F

        x, y = _inputs(cfg[SHAPE])
        base = Entry("torch F.mse_loss (baseline)", F.mse_loss, x, y)
        entries = [
            lossreg_entry(f"lossreg {name}", x, y, name),
            peer_entry(
                peers,
                "kornia",
                f"kornia {name}_loss(reduction='mean')",
                lambda m: lambda a, b: getattr(m, f"{name}_loss")(a, b, reduction="mean"),
                x,
                y,
            ),
        ]
        return base, [e for e in entries if e], nbytes(x), ()

    return run


ROWS = [
    Row(name, f"{name} vs kornia {name}_loss and F.mse_loss, (8,1,256,256)", _row(name))
    for name in LOSSES
]
