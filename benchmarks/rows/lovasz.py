"""The Lovasz hinge row (vs BCE and smp LovaszLoss)."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes, peer_entry

ORDER = 30


def row_lovasz_hinge(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
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
    return base, entries, nbytes(x), extra


ROWS = [
    Row(
        "lovasz_hinge",
        "lovasz_hinge vs BCE-with-logits and smp LovaszLoss, (8,1,256,256)",
        row_lovasz_hinge,
    ),
]
