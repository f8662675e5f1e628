"""Dice rows: binary (vs BCE) and multiclass (vs CE)."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes, peer_entry

ORDER = 20


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


def row_binary_dice(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
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
    return base, [e for e in entries if e], nbytes(x), ()


def row_multiclass_dice(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["multiclass"], "multiclass")
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
    return base, [e for e in entries if e], nbytes(x), ()


ROWS = [
    Row("binary_dice", "binary dice vs BCE-with-logits, (8,1,256,256)", row_binary_dice),
    Row(
        "multiclass_dice",
        "multiclass dice vs F.cross_entropy, (8,4,128,128) int labels",
        row_multiclass_dice,
    ),
]
