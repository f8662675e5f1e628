"""The one primitive of the overlap losses: soft per-class statistics (TP, P, T) with their
validation, fast paths and ``dist_sync``; the policy they implement is documented in
:mod:`lossreg_builtin.segmentation`, which builds every overlap loss on them."""

from __future__ import annotations

import math
from typing import NamedTuple, cast

import torch
from torch.autograd.function import once_differentiable

from lossreg import (
    LossregError,
    check_class_indices,
    check_dims,
    check_floating,
    check_range,
    check_same_device,
)

from ._common import reduce, upcast
from ._mask import check_mask


def multiclass_target_error(name: str, input: torch.Tensor, target: torch.Tensor) -> LossregError:
    """The error for a multiclass target that is neither class indices nor probabilities."""
    return LossregError(
        f"{name}: target has shape {tuple(target.shape)} but input has shape "
        f"{tuple(input.shape)}; mode multiclass takes class indices of shape "
        f"{tuple(input.shape[:1] + input.shape[2:])} or probabilities of the input's shape"
    )


def check_classes_and_range(
    name: str, input: torch.Tensor, c: int, classes: list[int] | None, from_logits: bool
) -> None:
    """``classes`` must name classes of the input; probabilities must lie in [0, 1]."""
    if classes is not None:
        bad = [k for k in classes if not 0 <= k < c]
        if bad:
            raise LossregError(
                f"{name}: classes holds {bad[0]}, outside [0, {c}) for input with {c} classes"
            )
    if not from_logits:
        check_range(name, "input (probabilities, from_logits=false)", input.detach())


class _Prepared(NamedTuple):
    x: torch.Tensor  # (N, C, S) input in float32 or float64
    p: torch.Tensor  # (N, C, S) probabilities
    t: torch.Tensor  # (N, C, S) float target, or (N, S) int64 class indices
    # per-element weight in x's dtype (ignore_index as 0/1 times the call-time mask), (N, S)
    # beside class indices, (N, C or 1, S) otherwise; None when every element counts fully
    valid: torch.Tensor | None
    indices: bool  # t holds class indices
    fused: bool = False  # p not computed (it is x): _SoftmaxIndexStats/_SigmoidStats take x
    name: str = ""


def _same_shape_in_mode(name: str, input: torch.Tensor, target: torch.Tensor, mode: str) -> None:
    """check_same_shape, with the mode named and the mode the shapes fit suggested (``dice``
    defaults to binary, so multiclass data usually arrives here)."""
    if input.shape == target.shape:
        return
    shapes = f"input has shape {tuple(input.shape)} but target has shape {tuple(target.shape)}"
    hint = ""
    if input.dim() >= 2 and input.shape[1] > 1:
        if target.shape == input.shape[:1] + input.shape[2:]:
            hint = "; for class indices of shape (N, *) set `mode: multiclass`"
        elif mode == "binary" and target.dim() == input.dim():
            hint = "; for C > 1 channels set `mode: multilabel` (or `multiclass`)"
    raise LossregError(f"{name}: {shapes}; mode {mode} takes a target of the input's shape{hint}")


def _prepare(
    name: str,
    input: torch.Tensor,
    target: torch.Tensor,
    mode: str,
    from_logits: bool,
    ignore_index: int | None,
    classes: list[int] | None,
    fusable: bool = False,
    per_image: bool = True,
    mask: torch.Tensor | None = None,
) -> _Prepared:
    """Every tensor check (the options were validated by the loss's params model), then
    probabilities and targets flattened to (N, C, S). Runs before any collective, so a bad
    input fails on every rank alike."""
    check_same_device(name, input, target)
    check_floating(name, "input", input)
    index = False
    nonempty = input.numel() > 0
    # the fused paths: logits, nothing ignored, statistics over the whole batch
    fast = fusable and from_logits and ignore_index is None and not per_image and nonempty
    if mode == "binary":
        check_dims(name, "input", input, 1, "(N, 1, *) or (N, *)")
        _same_shape_in_mode(name, input, target, mode)
        n, c = input.shape[0], 1
    else:
        check_dims(name, "input", input, 2, f"(N, C, *) in mode {mode}")
        n, c = input.shape[0], input.shape[1]
        if mode == "multiclass" and target.shape == input.shape[:1] + input.shape[2:]:
            fast = fast and c <= _MAX_FUSED_CLASSES
            if fast and mask is None:  # dtype only; the label count of _SoftmaxIndexStats
                # is the range check
                check_class_indices(name, target[:0], c, ignore_index)
            else:
                check_class_indices(name, target, c, ignore_index)
            index = True
        elif mode == "multiclass" and target.dim() != input.dim():
            raise multiclass_target_error(name, input, target)
        else:
            _same_shape_in_mode(name, input, target, mode)
    check_classes_and_range(name, input, c, classes, from_logits)
    s = math.prod(input.shape[1:]) // c if c else 0
    (x,) = upcast(input)
    x = x.reshape(n, c, s)
    fused = fast and (index or (mode == "binary" and not target.requires_grad))
    if fused:
        p = x  # softmax or sigmoid inside _SoftmaxIndexStats or _SigmoidStats
    else:
        p = (x.softmax(1) if mode == "multiclass" else x.sigmoid()) if from_logits else x
    keep = None
    if index:
        t = target.reshape(n, s).long()
        if ignore_index is not None:
            keep = t != ignore_index
            t = t.masked_fill(~keep, 0)
    else:
        t = target.reshape(n, c, s)
        if ignore_index is not None:
            keep = t != ignore_index
            t = t.masked_fill(~keep, 0)
        t = t.to(x.dtype)
    valid = None if keep is None else keep.to(x.dtype)
    if mask is not None:
        # the target's shape, without its class dim (dim 1 of (N, C, *); binary (N, 1, *))
        class_dim = not index and target.dim() >= 2 and (mode != "binary" or target.shape[1] == 1)
        m = check_mask(name, mask, target.shape, class_dim=class_dim, like=x)
        k = c if m.shape == target.shape else 1  # per class, or broadcast over classes
        m = m.reshape(n, s) if index else m.reshape(n, k, s)
        valid = m if valid is None else valid * m
    return _Prepared(x, p, t, valid, index, fused, name)


# Class indices are compared as floats in _one_hot: exact for every class below 2**24, and a
# label outside [0, C) never rounds onto a class (rounding is monotone and C is exact).
_MAX_FUSED_CLASSES = 2**24
# float32 sums of 0/1 are exact integers while every partial sum stays below 2**24
_EXACT_COUNT = 2**24


def _one_hot(t: torch.Tensor, c: int, dtype: torch.dtype) -> torch.Tensor:
    """(N, C, S) one-hot in ``dtype`` of class indices ``t`` (N, S); a label outside [0, C) is
    an all-zero column. One broadcast comparison of the labels converted to ``dtype`` (several
    times faster than comparing int64 labels, which broadcasts without vectorising)."""
    n, s = t.shape
    classes = torch.arange(c, device=t.device, dtype=dtype).view(1, c, 1)
    out = torch.empty(n, c, s, device=t.device, dtype=dtype)
    return torch.eq(t.unsqueeze(1).to(dtype), classes, out=out)


class _SoftmaxIndexStats(torch.autograd.Function):
    """(TP, P, T) over the batch of softmax(x) (N, C, S) against class indices (N, S), with an
    analytic backward; multi-threaded elementwise ops and one batched matmul, no gather,
    scatter or bincount (those run on one thread).

    Forward: Y, the float one-hot of the labels, and one ``bmm`` M = sum_n p_n Y_n^T, the
    (C, C) matrix M_ck = sum p_c [y = k]: TP = diag M, and P_c = sum_k M_ck because every pixel
    has exactly one label; T = sum of Y. A label outside [0, C) is a zero column of Y, so T
    sums to fewer than N S: the caller's range check.
    Backward: with G_ci = dL/dP_c + dL/dTP_c Y_ci, the gradient through the softmax is
    P_ci (G_ci - sum_k P_ki G_ki), softmax's own backward kernel. G is built in Y's buffer
    (two in-place ops) and the kernel writes the gradient over it, so forward and backward
    allocate two input-sized tensors in all (p and Y). Y is kept on ``ctx`` (not saved): the
    first backward consumes it; another one (``retain_graph``) builds it again."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        t: torch.Tensor,
        w: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = x.shape[1]
        p = torch.softmax(x, 1)
        y = _one_hot(t, c, p.dtype)
        if w is not None:  # Y w: every statistic weighted per pixel
            y.mul_(w.unsqueeze(1))
        m = torch.bmm(p, y.transpose(1, 2)).sum(0)  # (C, C)
        # the counts are exact in float32 below 2**24 labels; beyond, summed in float64
        wide = torch.float64 if t.numel() >= _EXACT_COUNT else None
        ts = y.sum((0, 2), dtype=wide).to(p.dtype)
        ctx.save_for_backward(p, t, w)  # type: ignore[arg-type]  # None: torch saves nothing
        ctx.onehot = y  # type: ignore[attr-defined]  # ctx holds any attribute
        return torch.stack([m.diagonal(), m.sum(1), ts])

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        p, t, w = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        c = p.shape[1]
        g, ctx.onehot = ctx.onehot, None  # type: ignore[attr-defined]  # set in forward
        if g is None:  # a second backward through the same graph
            g = _one_hot(t, c, p.dtype)
            if w is not None:
                g.mul_(w.unsqueeze(1))
        g.mul_(grad[0].view(1, c, 1))
        if w is None:
            g.add_(grad[1].view(1, c, 1))  # G
        else:  # G = (dL/dTP Y + dL/dP) w, with Y w already in the buffer
            g.addcmul_(w.unsqueeze(1), grad[1].view(1, c, 1))
        out = torch.ops.aten._softmax_backward_data.out(g, p, 1, p.dtype, grad_input=g)
        return out, None, None


def _check_counts(name: str, t: torch.Tensor, ts: torch.Tensor, c: int) -> None:
    """The fused path's range check: every label counted in T lies in [0, C); fewer counted
    than labels means some lie outside, and check_class_indices names one. Beyond 2**24
    labels a float32 total is not exact: check_class_indices does the whole check."""
    if t.numel() >= _EXACT_COUNT or int(ts.detach().sum()) != t.numel():
        check_class_indices(name, t, c)


class _SigmoidStats(torch.autograd.Function):
    """(TP, P, T) of sigmoid(x) against a same-shape float target, summed over everything
    (binary mode, one class), with an analytic backward: dL/dx = (dL/dP + dL/dTP t) p (1 - p),
    two elementwise ops. The sums are a dot product and two plain sums: no p * t temporary.
    With per-element weights w (the mask): TP = p . (t w), P = p . w, T = sum t w; t w is
    kept for backward in place of t, so dL/dx = (dL/dTP t w + dL/dP w) p (1 - p) costs the
    same two elementwise ops."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        t: torch.Tensor,
        w: torch.Tensor | None = None,
    ) -> torch.Tensor:
        p = torch.sigmoid(x)
        pf, tf = p.reshape(-1), t.reshape(-1)
        if w is None:
            ctx.save_for_backward(p, t, None)  # type: ignore[arg-type]  # None: torch saves nothing
            return torch.stack([torch.dot(pf, tf), pf.sum(), tf.sum()]).view(3, 1)
        w = w.expand_as(p)
        tw = t * w
        ctx.save_for_backward(p, tw, w)
        wf, twf = w.reshape(-1), tw.reshape(-1)
        return torch.stack([torch.dot(pf, twf), torch.dot(pf, wf), twf.sum()]).view(3, 1)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        # t is t w with a mask
        p, t, w = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx stubs lack it
        u = torch.mul(t, grad[0, 0])  # dL/dTP t (w)
        if w is None:
            u.add_(grad[1, 0])  # + dL/dP
        else:
            u.addcmul_(w, grad[1, 0])  # + dL/dP w (a 0-dim factor: no device sync)
        # u p (1 - p), in place: one input-sized allocation in the whole backward
        out = torch.ops.aten.sigmoid_backward.grad_input(u, p, grad_input=u)
        return out, None, None


def _statistics(prep: _Prepared, per_image: bool, squared: bool = False) -> torch.Tensor:
    """Stacked (TP, P, T): shape (3, C), or (3, N, C) with per_image. ``squared``: P and T
    are the sums of p^2 and t^2 (the V-Net denominator); never fused."""
    p, t, valid = prep.p, prep.t, prep.valid
    if prep.fused:  # only ever set without per_image, ignore_index, probabilities
        if prep.indices:
            stats: torch.Tensor = _SoftmaxIndexStats.apply(prep.x, t, valid)  # type: ignore[no-untyped-call]  # untyped in torch
            if valid is None:  # with a mask, _prepare checked the labels in full
                _check_counts(prep.name, t, stats[2], p.shape[1])
            return stats
        out: torch.Tensor = _SigmoidStats.apply(prep.x, t, valid)  # type: ignore[no-untyped-call]  # untyped in torch
        return out
    if prep.indices:
        # TP by gather at the label, then scatter-add into C bins: no (N, C, S) one-hot.
        n, c = p.shape[:2]
        pt = p.gather(1, t.unsqueeze(1)).squeeze(1)
        w = valid
        if w is not None:
            pt = pt * w
        tp = p.new_zeros(n, c).scatter_add(1, t, pt)
        # counts need no gradient: bincount over (sample, class) bins is the fast way
        flat = (t + c * torch.arange(n, device=t.device).unsqueeze(1)).reshape(-1)
        ts = torch.bincount(flat, None if w is None else w.reshape(-1), minlength=n * c)
        ts = ts.to(p.dtype).view(n, c)  # one-hot: sum t^2 = sum t
        q = p.square() if squared else p
        ps = q.sum(2) if w is None else torch.bmm(q, w.unsqueeze(2)).squeeze(2)
        stats = torch.stack([tp, ps, ts])
        return stats if per_image else stats.sum(1)
    dims = (2,) if per_image else (0, 2)
    tw = t if valid is None else t * valid  # t is 0 on ignored pixels already
    tp = (p * tw).sum(dims)
    q, r = (p.square(), t.square()) if squared else (p, t)
    ps = (q if valid is None else q * valid).expand_as(p).sum(dims)
    ts = (r if valid is None else r * valid).expand_as(p).sum(dims)
    return torch.stack([tp, ps, ts])


def _sync(stats: torch.Tensor, dist_sync: bool, per_image: bool) -> torch.Tensor:
    """Sum the statistics over the process group with a differentiable all-reduce."""
    if not dist_sync or per_image:
        return stats
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return stats
    import torch.distributed._functional_collectives as fc

    if hasattr(fc, "all_reduce_backward"):
        # The functional collective has an autograd formula (backward: all-reduce of the
        # gradient) and works under torch.compile; torch.distributed.nn.functional.all_reduce,
        # the older differentiable collective, is deprecated since torch 2.10.
        group = dist.group.WORLD
        assert group is not None  # the default group exists once initialised
        out = fc.all_reduce(stats, "sum", group)
        if isinstance(out, fc.AsyncCollectiveTensor):
            out = fc.wait_tensor(out)  # type: ignore[no-untyped-call]  # untyped in torch
        return cast(torch.Tensor, out)
    from torch.distributed.nn.functional import all_reduce  # pragma: no cover - old torch

    return cast(torch.Tensor, all_reduce(stats))  # type: ignore[no-untyped-call]  # pragma: no cover; untyped in torch


def _score(num: torch.Tensor, den: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """num / den with the empty-mask policy: 1 where both masks are empty or den is 0.
    The denominator is made safe *before* torch.where: the unselected branch's gradient would
    otherwise be 0/0 = NaN."""
    one = empty | (den <= 0)
    safe = torch.where(one, torch.ones_like(den), den)
    return torch.where(one, torch.ones_like(num), num / safe)


def _tversky_index(
    stats: torch.Tensor, alpha: float, beta: float, smooth: float, eps: float
) -> torch.Tensor:
    tp, ps, ts = stats.unbind(0)
    den = tp + alpha * (ps - tp) + beta * (ts - tp) + smooth + eps
    return _score(tp + smooth, den, (ps + ts) <= 0)


def _reduce(loss: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    # an empty batch with per_image has no values: its mean is 0 (policy), not NaN
    return reduce(loss, reduction, name, empty_mean="zero")
