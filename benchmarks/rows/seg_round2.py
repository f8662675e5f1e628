"""Masked dice (vs the same dice unmasked: target at most 1.2x) and the round-2 overlap losses
against their peers: generalized_dice vs MONAI (target at most 0.8x its time and its peak
memory), mcc vs MONAI and smp."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes, peer_entry

ORDER = 25


def _mask(shape, seed=1):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) > 0.2  # a validity mask: 80% of the pixels count


def _masked(entry, mask):
    if entry.fn is not None:
        module = entry.fn
        entry.fn = lambda x, y: module(x, y, mask=mask)
    return entry


def row_masked_dice(cfg, peers, mode):
    x, y = inputs(cfg[mode], mode)
    n, _, *spatial = x.shape
    bool_mask = _mask((n, 1, *spatial) if mode == "binary" else (n, *spatial))
    float_mask = bool_mask.float() * 0.5
    base = lossreg_entry(f"lossreg dice ({mode}, unmasked; baseline)", x, y, "dice", mode=mode)
    entries = [
        _masked(
            lossreg_entry(f"lossreg dice ({mode}, bool mask)", x, y, "dice", mode=mode), bool_mask
        ),
        _masked(
            lossreg_entry(f"lossreg dice ({mode}, float mask)", x, y, "dice", mode=mode), float_mask
        ),
    ]
    return base, entries, nbytes(x), ()


def row_generalized_dice(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["multiclass"], "multiclass")
    c = x.shape[1]
    base = Entry("torch F.cross_entropy (baseline)", F.cross_entropy, x, y)

    def monai_gdl(m):
        loss = m.GeneralizedDiceLoss(softmax=True, batch=True)
        # MONAI takes a one-hot (or (N, 1, *) with to_onehot_y, which one-hots inside each call)
        return lambda x, y: loss(x, F.one_hot(y, c).movedim(-1, 1))

    entries = [
        lossreg_entry(
            "lossreg generalized_dice (multiclass)", x, y, "generalized_dice", mode="multiclass"
        ),
        peer_entry(peers, "monai", "monai GeneralizedDiceLoss(softmax, batch)", monai_gdl, x, y),
    ]
    return base, [e for e in entries if e], nbytes(x), ()


def row_mcc(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
    base = Entry("torch F.binary_cross_entropy_with_logits (baseline)",
                 F.binary_cross_entropy_with_logits, x, y)  # fmt: skip

    def smp_mcc(m):
        loss = m.MCCLoss()
        return lambda x, y: loss(x.sigmoid(), y)  # smp's MCCLoss takes probabilities

    entries = [
        lossreg_entry("lossreg mcc (binary)", x, y, "mcc"),
        peer_entry(
            peers,
            "monai",
            "monai MCCLoss(sigmoid, batch)",
            lambda m: m.MCCLoss(sigmoid=True, batch=True),
            x,
            y,
        ),
        peer_entry(peers, "smp", "smp MCCLoss (on sigmoid)", smp_mcc, x, y),
    ]
    return base, [e for e in entries if e], nbytes(x), ()


def row_mcc_multiclass(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["multiclass"], "multiclass")
    c = x.shape[1]
    base = Entry("torch F.cross_entropy (baseline)", F.cross_entropy, x, y)

    def monai_mcc(m):
        loss = m.MCCLoss(softmax=True, batch=True)
        return lambda x, y: loss(x, F.one_hot(y, c).movedim(-1, 1))

    entries = [
        lossreg_entry("lossreg mcc (multiclass)", x, y, "mcc", mode="multiclass"),
        peer_entry(peers, "monai", "monai MCCLoss(softmax, batch)", monai_mcc, x, y),
    ]
    return base, [e for e in entries if e], nbytes(x), ()


ROWS = [
    Row(
        "masked_dice_binary",
        "binary dice with a mask vs unmasked, (8,1,256,256)",
        lambda cfg, peers: row_masked_dice(cfg, peers, "binary"),
    ),
    Row(
        "masked_dice_multiclass",
        "multiclass dice with a mask vs unmasked, (8,4,128,128)",
        lambda cfg, peers: row_masked_dice(cfg, peers, "multiclass"),
    ),
    Row(
        "generalized_dice",
        "generalized dice vs F.cross_entropy, (8,4,128,128) int labels",
        row_generalized_dice,
    ),
    Row("mcc_binary", "MCC vs BCE-with-logits, (8,1,256,256)", row_mcc),
    Row("mcc_multiclass", "MCC vs F.cross_entropy, (8,4,128,128) int labels", row_mcc_multiclass),
]
