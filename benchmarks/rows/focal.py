"""Focal loss rows: binary (vs BCE), multiclass dense and classification (vs CE)."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes, peer_entry

ORDER = 10


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


def row_binary_focal(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
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
    return base, [e for e in entries if e], nbytes(x), ()


def _multiclass_focal(cfg, peers, shape):
    import torch.nn.functional as F

    x, y = inputs(shape, "multiclass")
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
    return base, [e for e in entries if e], nbytes(x), ()


def row_multiclass_focal(cfg, peers):
    return _multiclass_focal(cfg, peers, cfg["multiclass"])


def row_classification_focal(cfg, peers):
    return _multiclass_focal(cfg, peers, cfg["classification"])


ROWS = [
    Row("binary_focal", "binary focal vs BCE-with-logits, (8,1,256,256)", row_binary_focal),
    Row(
        "multiclass_focal",
        "multiclass focal vs F.cross_entropy, (8,4,128,128) int labels",
        row_multiclass_focal,
    ),
    Row(
        "classification_focal",
        "multiclass focal vs F.cross_entropy, (4096,100)",
        row_classification_focal,
    ),
]
