"""Conformance cases for the Lovasz plugin, and the float64 references they (and
tests/test_lovasz.py) compare with: Algorithm 1 of Berman, Rannen Triki and Blaschko (CVPR 2018,
"The Lovasz-Softmax loss"), written the straightforward way, one Python loop iteration per image
and per class, ignored pixels dropped, one sort per row. Independent of the plugin code."""

import torch

from lossreg.testing import Case
from tests.cases import reduce


def lovasz_grad(gt_sorted):
    """Algorithm 1: gradient of the Lovasz extension of the Jaccard loss, labels sorted by
    decreasing error."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def _hinge_flat(logits, labels):
    if labels.numel() == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(torch.relu(errors_sorted), lovasz_grad(labels[perm]))


def _drop(x, y, ignore_index):
    x, y = x.reshape(-1), y.reshape(-1)
    if ignore_index is None:
        return x, y.double()
    keep = y != ignore_index
    return x[keep], y[keep].double()


def _finish(values, per_image, reduction):
    if not per_image:
        return values[0]
    v = torch.stack(values)
    return reduce(v, reduction, empty_mean="zero")


def ref_lovasz_hinge(x, y, per_image=False, ignore_index=None, reduction="mean"):
    pairs = list(zip(x, y, strict=True)) if per_image else [(x, y)]
    return _finish(
        [_hinge_flat(*_drop(a, b, ignore_index)) for a, b in pairs], per_image, reduction
    )


def _softmax_flat(probas, labels, classes):
    """probas (P, C), labels (P,) with the ignored pixels already dropped."""
    c = probas.shape[1]
    losses = []
    for k in range(c) if classes in ("all", "present") else classes:
        fg = (labels == k).double()
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, k]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probas.sum() * 0.0


def ref_lovasz_softmax(
    x,
    y,
    classes="present",
    per_image=False,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
):
    p = x.softmax(1) if from_logits else x
    c = p.shape[1]
    pairs = list(zip(p, y, strict=True)) if per_image else [(p.transpose(0, 1), y)]
    values = []
    for probs, labels in pairs:  # probs (C, *) of one image or of the whole batch
        probs = probs.reshape(c, -1).transpose(0, 1)
        labels = labels.reshape(-1)
        if ignore_index is not None:
            probs, labels = probs[labels != ignore_index], labels[labels != ignore_index]
        values.append(_softmax_flat(probs, labels, classes))
    return _finish(values, per_image, reduction)


def _binary(dtype, gen):
    x = torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64) * 2
    y = (torch.rand(3, 1, 4, 4, generator=gen, dtype=torch.float64) > 0.6).double()
    y[0, 0, 0, :] = -1.0  # ignored
    y[2] = torch.where(y[2] == 1, 0.0, y[2])  # an image without positive pixels
    return x.to(dtype), y.to(dtype)


def _multiclass(dtype, gen):
    x = torch.randn(3, 4, 4, 4, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (3, 4, 4), generator=gen)  # class 3 absent from the batch
    y[1, 0, :] = 255  # ignored
    return x.to(dtype), y


CASES = {
    "lovasz_hinge": Case(
        _binary, params={"per_image": True, "ignore_index": -1}, reference=ref_lovasz_hinge
    ),
    "lovasz_softmax": Case(
        _multiclass,
        params={"per_image": True, "ignore_index": 255},
        reference=ref_lovasz_softmax,
    ),
}
