"""Conformance cases for the skeleton plugin (cldice, dice_cldice); float64 references
written out here: the soft skeleton by explicit shifted minima and maxima over padded
images (no pooling), the clDice formula per class over the batch."""

import torch
import torch.nn.functional as F

from lossreg.testing import Case
from tests.cases import reduce
from tests.cases.segmentation import binary_inputs, ref_dice


def _shifts(x, fill, offsets):
    z = F.pad(x, (1, 1, 1, 1), value=fill)
    h, w = x.shape[-2:]
    return torch.stack([z[..., 1 + i : 1 + i + h, 1 + j : 1 + j + w] for i, j in offsets])


CROSS_V = [(-1, 0), (0, 0), (1, 0)]
CROSS_H = [(0, -1), (0, 0), (0, 1)]
SQUARE = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]


def ref_erode(x):
    return torch.minimum(
        _shifts(x, torch.inf, CROSS_V).amin(0), _shifts(x, torch.inf, CROSS_H).amin(0)
    )


def ref_dilate(x):
    return _shifts(x, -torch.inf, SQUARE).amax(0)


def ref_skeleton(x, iters):
    """Shit et al.'s soft_skel, written as in their reference (erosion computed twice)."""
    skel = torch.relu(x - ref_dilate(ref_erode(x)))
    for _ in range(iters):
        x = ref_erode(x)
        delta = torch.relu(x - ref_dilate(ref_erode(x)))
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def ref_cldice(
    x, t, *, iters=3, smooth=1.0, eps=1e-4, mode="binary", from_logits=True, classes=None,
    per_image=False, reduction="mean", dist_sync=False,
):  # fmt: skip
    x = x.double()
    p = x.softmax(1) if mode == "multiclass" else x.sigmoid()
    if mode == "multiclass" and t.dim() == 3:
        t = F.one_hot(t, x.shape[1]).permute(0, 3, 1, 2)
    t = t.double()
    sp, st = ref_skeleton(p, iters), ref_skeleton(t, iters)
    dims = (2, 3) if per_image else (0, 2, 3)
    tprec = ((sp * t).sum(dims) + smooth) / (sp.sum(dims) + smooth)
    tsens = ((st * p).sum(dims) + smooth) / (st.sum(dims) + smooth)
    loss = 1 - 2 * tprec * tsens / (tprec + tsens + eps)
    return reduce(loss if classes is None else loss[..., classes], reduction)


def ref_dice_cldice(x, t):
    return 0.5 * ref_dice(x, t) + 0.5 * ref_cldice(x, t)


def multiclass_inputs(dtype, gen):
    x = torch.randn(2, 3, 7, 8, generator=gen, dtype=torch.float64) * 2
    return x.to(dtype), torch.randint(0, 3, (2, 7, 8), generator=gen)


CASES = {
    "cldice": Case(
        multiclass_inputs,
        params={"mode": "multiclass", "iters": 2, "per_image": True, "classes": [1, 2]},
        reference=ref_cldice,
    ),
    "dice_cldice": Case(binary_inputs, reference=ref_dice_cldice),
}
