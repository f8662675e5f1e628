"""Float64 reference formulas of the built-in losses, written out independently of them."""


def reduce(loss, reduction, *, denominator=None, empty_mean="nan"):
    """The reference reduction: ``none``, ``sum``, or ``mean``: the mean, or the sum over
    ``denominator`` (a weighted mean); ``empty_mean="zero"``: the mean of no values is 0
    (lossreg's policy where the loss documents it), else NaN as in PyTorch."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if denominator is not None:
        return loss.sum() / denominator
    if empty_mean == "zero" and loss.numel() == 0:
        return loss.sum()
    return loss.mean()
