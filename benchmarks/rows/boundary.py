"""Boundary and thin-structure rows: hausdorff_dt vs MONAI (scipy EDT on the host),
hausdorff_er vs kornia, cldice vs MONAI. Targets are blobs (smoothed noise, thresholded) and
logits a noisy copy of them, so distances run to tens of pixels, as in real masks (random
pixels would make every distance 1 or 2)."""

from __future__ import annotations

from harness import Entry, Row, lossreg_entry, nbytes, peer_entry

ORDER = 35


def blobs(shape, classes=None, seed=0):
    """(logits leaf, target): a binary mask (N, 1, H, W) or class indices (N, H, W)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    k = max(3, (min(h, w) // 8) | 1)
    noise = torch.randn(n, max(c, 2), h, w, generator=g)
    smooth = F.avg_pool2d(noise, k, 1, k // 2)
    if classes is None:
        y = (smooth[:, :1] > 0.1).float()
        x = (y * 2 - 1) * 2 + torch.randn(shape, generator=g)
    else:
        y = smooth[:, :c].argmax(1) if c > 1 else (smooth[:, 0] > 0).long()
        x = F.one_hot(y, c).movedim(-1, 1).float() * 3 + torch.randn(shape, generator=g)
    return x.requires_grad_(), y


def _bce_base(x, y):
    import torch.nn.functional as F

    return Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )


def row_hausdorff_dt(cfg, peers):
    n, _, h, w = cfg["multiclass"]
    x, y = blobs((n, 1, h, w))
    entries = [
        lossreg_entry("lossreg hausdorff_dt (binary, EDT in torch)", x, y, "hausdorff_dt"),
        peer_entry(
            peers,
            "monai",
            "monai HausdorffDTLoss(sigmoid) (scipy EDT)",
            lambda m: m.HausdorffDTLoss(sigmoid=True),
            x,
            y,
        ),
    ]
    entries = [e for e in entries if e]
    extra = [("lossreg / monai", entries[0], entries[1])] if len(entries) == 2 else ()
    return _bce_base(x, y), entries, nbytes(x), extra


def _kornia_er(m):
    loss = m.HausdorffERLoss()  # takes probabilities: the softmax is part of the step
    return lambda a, b: loss(a.softmax(1), b)


def row_hausdorff_er(cfg, peers):
    import torch.nn.functional as F

    x, y = blobs(cfg["multiclass"], classes=True)
    base = Entry("torch F.cross_entropy (baseline)", F.cross_entropy, x, y)
    y1 = y.unsqueeze(1)
    entries = [
        lossreg_entry(
            "lossreg hausdorff_er (multiclass, softmax inside)", x, y, "hausdorff_er",
            mode="multiclass",
        ),
        peer_entry(
            peers,
            "kornia",
            "kornia HausdorffERLoss(softmax(x))",
            _kornia_er,
            x,
            y1,
        ),
    ]  # fmt: skip
    entries = [e for e in entries if e]
    extra = [("lossreg / kornia", entries[0], entries[1])] if len(entries) == 2 else ()
    return base, entries, nbytes(x), extra


def row_cldice(cfg, peers):
    x, y = blobs(cfg["binary"])
    entries = [
        lossreg_entry("lossreg cldice (binary, per_image)", x, y, "cldice", per_image=True),
        peer_entry(
            peers,
            "monai",
            "monai SoftclDiceLoss(sigmoid)",
            lambda m: m.SoftclDiceLoss(sigmoid=True),
            x,
            y,
        ),
    ]
    entries = [e for e in entries if e]
    extra = [("lossreg / monai", entries[0], entries[1])] if len(entries) == 2 else ()
    return _bce_base(x, y), entries, nbytes(x), extra


ROWS = [
    Row("hausdorff_dt", "hausdorff_dt vs BCE and MONAI HausdorffDTLoss, (8,1,128,128) blobs",
        row_hausdorff_dt),
    Row("hausdorff_er", "hausdorff_er vs CE and kornia HausdorffERLoss, (8,4,128,128) blobs",
        row_hausdorff_er),
    Row("cldice", "cldice vs BCE and MONAI SoftclDiceLoss, (8,1,256,256) blobs", row_cldice),
]  # fmt: skip
