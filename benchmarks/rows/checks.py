"""The cost of the input checks every loss runs (issue 11): the ``Loss`` guard (argument
binding, dtype by declared kind, the [0, 1] target check as one fused ``aminmax``, autocast
and empty-batch tests) measured as the module against its own functional on the same inputs,
and binary dice against MONAI's ``DiceLoss`` (issue 11: within 0.9x; binary focal's 1.3x of
BCE with logits is the ``binary_focal`` row)."""

from __future__ import annotations

from harness import Entry, Row, inputs, lossreg_entry, nbytes, peer_entry

ORDER = 15


def _functional(name):
    """The registered function itself: no guard, no range check (the baseline of the cost)."""
    from lossreg._registry import registry

    return registry.base(registry.lookup(name)).factory


def _target_check(x, y):
    """The range check alone, beside a BCE so there is a backward to run."""
    import torch
    import torch.nn.functional as F

    lo, hi = torch.aminmax(y)
    float(lo), float(hi)  # the host sync the check pays
    return F.binary_cross_entropy_with_logits(x, y)


def row_bce_checks(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    fn = _functional("bce")
    module = lossreg_entry("lossreg bce (module: guard + [0,1] target check)", x, y, "bce")
    bare = Entry("lossreg bce functional (no guard)", fn, x, y, ours=True)
    alone = Entry("torch BCE + the aminmax target check alone", _target_check, x, y)
    extra = [("guard cost: module / functional", module, bare)]
    return base, [module, bare, alone], nbytes(x), extra


def row_dice_checks(cfg, peers):
    import torch.nn.functional as F

    x, y = inputs(cfg["binary"], "binary")
    base = Entry(
        "torch F.binary_cross_entropy_with_logits (baseline)",
        F.binary_cross_entropy_with_logits,
        x,
        y,
    )
    module = lossreg_entry("lossreg dice (binary, module: guard + checks)", x, y, "dice")
    bare = Entry("lossreg dice functional (no guard)", lambda a, b: _functional("dice")(a, b), x, y)
    monai = peer_entry(
        peers,
        "monai",
        "monai DiceLoss(sigmoid, batch)",
        lambda m: m.DiceLoss(sigmoid=True, batch=True),
        x,
        y,
    )
    extra = [("guard cost: module / functional", module, bare)]
    if monai is not None:
        extra.append(("lossreg dice / monai DiceLoss (target <= 0.9x)", module, monai))
    return base, [e for e in (module, bare, monai) if e], nbytes(x), extra


ROWS = [
    Row("checks_bce", "bce: the guard and [0,1] check, (8,1,256,256)", row_bce_checks),
    Row("checks_dice", "binary dice: guard cost, vs MONAI DiceLoss", row_dice_checks),
]
