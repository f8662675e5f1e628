"""Input checks for loss implementations: one helper per promise, each raising
:class:`~lossreg.errors.LossregError` that names the loss, the argument and what is at fault.

Plugins call these at the top of a functional, before any kernel runs (on a GPU a failed
kernel assert kills the process; a clear error here does not).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import LossregError, ShapeError, format_shape

__all__ = [
    "check_class_indices",
    "check_class_weight",
    "check_dims",
    "check_floating",
    "check_input_dtype",
    "check_range",
    "check_same_device",
    "check_same_shape",
    "check_shape",
    "check_sign",
    "check_unit_interval",
]


def check_same_shape(
    loss: str, a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("input", "target")
) -> None:
    """Refuse tensors of different shapes: nothing is broadcast silently.

    >>> check_same_shape("mse", torch.zeros(3), torch.zeros(3, 1))
    Traceback (most recent call last):
    ...
    lossreg.errors.ShapeError: mse: input has shape (3,) but target has shape (3, 1); ...
    """
    check_same_device(loss, a, b, names)
    if a.shape != b.shape:
        raise ShapeError(
            f"{loss}: {names[0]} has shape {format_shape(a.shape)} but {names[1]} has shape "
            f"{format_shape(b.shape)}; they must be equal (lossreg never broadcasts a loss's "
            "arguments)",
            loss=loss,
            shapes={names[0]: a.shape, names[1]: b.shape},
        )


def check_same_device(
    loss: str, a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("input", "target")
) -> None:
    """Refuse tensors on different devices, naming both."""
    if a.device != b.device:
        raise LossregError(
            f"{loss}: {names[0]} is on {a.device} but {names[1]} is on {b.device}; "
            "move both to one device"
        )


def check_shape(loss: str, name: str, t: torch.Tensor, pattern: Sequence[str]) -> None:
    """Check ``t`` against a named pattern such as ``["N", "C", "*"]`` or ``["*", "4"]``.

    Letters are free sizes; digits must match exactly; ``"*"`` matches any number of dims
    (at most one ``"*"``).
    """
    dims = list(t.shape)
    pats = list(pattern)
    star = pats.index("*") if "*" in pats else None
    fixed = len(pats) - (1 if star is not None else 0)
    ok = len(dims) >= fixed if star is not None else len(dims) == fixed
    if ok:
        head = pats[:star] if star is not None else pats
        tail = pats[star + 1 :] if star is not None else []
        pairs = [*zip(head, dims, strict=False), *zip(tail[::-1], dims[::-1], strict=False)]
        ok = all(not p.isdigit() or int(p) == d for p, d in pairs)
    if not ok:
        expected = f"({', '.join(pats)})"
        raise ShapeError(
            f"{loss}: {name} must have shape {expected}, got {format_shape(t.shape)}",
            loss=loss,
            shapes={name: t.shape},
            expected=expected,
        )


def check_dims(loss: str, name: str, t: torch.Tensor, min_dims: int, what: str = "") -> None:
    """Require at least ``min_dims`` dimensions (``what`` describes the layout)."""
    if t.dim() < min_dims:
        hint = f" {what}" if what else ""
        raise ShapeError(
            f"{loss}: {name} must have at least {min_dims} dims{hint}, got shape "
            f"{format_shape(t.shape)}",
            loss=loss,
            shapes={name: t.shape},
            expected=what or None,
        )


def check_floating(loss: str, name: str, t: torch.Tensor) -> None:
    """Require a floating-point tensor."""
    if not t.is_floating_point():
        raise LossregError(f"{loss}: {name} must be a floating-point tensor, got {t.dtype}")


def check_range(loss: str, name: str, t: torch.Tensor, low: float = 0.0, high: float = 1.0) -> None:
    """Require every value of ``t`` in ``[low, high]`` (e.g. probabilities)."""
    if t.numel() == 0:
        return
    lo_t, hi_t = torch.aminmax(t.detach())  # one pass; detached: no autograd warning
    lo, hi = float(lo_t), float(hi_t)
    if not (low <= lo and hi <= high):  # also catches NaN
        bad = lo if not low <= lo else hi
        raise LossregError(f"{loss}: {name} values must lie in [{low}, {high}], found {bad}")


def check_class_indices(
    loss: str, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> None:
    """Require integer class indices in ``[0, num_classes)`` except ``ignore_index``."""
    if target.is_floating_point() or target.dtype == torch.bool:
        raise LossregError(
            f"{loss}: class-index target must be an integer tensor, got {target.dtype}"
        )
    if target.numel() == 0:
        return
    lo_t, hi_t = torch.aminmax(target)  # one pass over the target, no boolean indexing
    lo, hi = int(lo_t), int(hi_t)
    if ignore_index is not None and (
        lo == ignore_index or hi == ignore_index or lo < ignore_index < hi
    ):
        # the ignored value may be the extreme: look again with it replaced by a valid index
        lo_t, hi_t = torch.aminmax(target.masked_fill(target == ignore_index, 0))
        lo, hi = int(lo_t), int(hi_t)
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        extra = f" other than ignore_index={ignore_index}" if ignore_index is not None else ""
        raise LossregError(
            f"{loss}: target holds class index {bad}, outside [0, {num_classes}) for input "
            f"with {num_classes} classes{extra}"
        )


def check_class_weight(
    loss: str, weight: torch.Tensor | None, num_classes: int, where: str = "dim 1"
) -> None:
    """Require one class weight per class (``where`` names the input's class dim).

    >>> check_class_weight("ce", torch.ones(2), 3)
    Traceback (most recent call last):
    ...
    lossreg.errors.ShapeError: ce: weight has 2 entries but input has 3 classes (dim 1); ...
    """
    if weight is not None and weight.numel() != num_classes:
        raise ShapeError(
            f"{loss}: weight has {weight.numel()} entries but input has {num_classes} classes "
            f"({where}); give one weight per class",
            loss=loss,
            shapes={"weight": weight.shape},
            expected=f"({num_classes},)",
        )


#: kinds whose tensors hold real numbers computed by a model: floating point only
FLOAT_KINDS = frozenset(
    {"logits", "probabilities", "log_probabilities", "real", "variance", "distance_map"}
)


def check_input_dtype(loss: str, name: str, t: torch.Tensor, kind: str | None) -> None:
    """Refuse a dtype the declared ``kind`` cannot hold: complex always; integer and bool where
    the kind is a model output (integer 0/1 masks and class indices are fine as targets).

    >>> check_input_dtype("l1", "input", torch.zeros(2, dtype=torch.int64), "real")
    Traceback (most recent call last):
    ...
    lossreg.errors.LossregError: l1: input must be a floating-point tensor (real), got ...
    """
    if t.is_complex():
        raise LossregError(
            f"{loss}: {name} is complex ({t.dtype}); losses are defined for real tensors only "
            "(pass t.real, t.abs() or torch.view_as_real(t))"
        )
    if kind in FLOAT_KINDS and not t.is_floating_point():
        raise LossregError(
            f"{loss}: {name} must be a floating-point tensor ({kind}), got {t.dtype}; "
            f"convert it with {name}.float()"
        )


def check_unit_interval(
    loss: str,
    name: str,
    t: torch.Tensor,
    mode: str | None = None,
    ignore_index: int | None = None,
) -> None:
    """Require binary or multilabel targets (hard or soft) in ``[0, 1]``: one fused min/max.

    Values equal to ``ignore_index`` are allowed (looked at again only when the first pass
    finds them at an extreme). The message names the range found and the usual fixes (a
    {0, 255} mask, class indices).

    >>> check_unit_interval("dice", "target", torch.tensor([0, 255], dtype=torch.uint8), "binary")
    Traceback (most recent call last):
    ...
    lossreg.errors.LossregError: dice: target values must lie in [0, 1] in mode 'binary', ...
    """
    if t.dtype == torch.bool or t.numel() == 0:
        return
    lo_t, hi_t = torch.aminmax(t.detach())
    lo, hi = float(lo_t), float(hi_t)
    if lo >= 0.0 and hi <= 1.0:
        return
    if ignore_index is not None and (lo == ignore_index or hi == ignore_index):
        lo_t, hi_t = torch.aminmax(t.detach().masked_fill(t == ignore_index, 0))
        lo, hi = float(lo_t), float(hi_t)
        if lo >= 0.0 and hi <= 1.0:
            return
    in_mode = f" in mode {mode!r}" if mode else ""
    if lo != lo or hi != hi:  # NaN
        raise LossregError(f"{loss}: {name} contains NaN; targets{in_mode} must lie in [0, 1]")
    bad = hi if hi > 1.0 else lo
    found = f"{_num(bad)} (values span [{_num(lo)}, {_num(hi)}])"
    if hi == 255.0 and lo >= 0.0:
        fix = f"a {{0, 255}} image mask: divide it by 255 ({name} / 255)"
    elif lo >= 0.0 and not t.is_floating_point():
        fix = "class indices: use `mode: multiclass` (or a loss for class indices)"
    else:
        fix = "soft: rescale or clamp it into [0, 1] (class indices need `mode: multiclass`)"
    raise LossregError(
        f"{loss}: {name} values must lie in [0, 1]{in_mode}, found {found}; if it is {fix}"
    )


def check_sign(loss: str, name: str, t: torch.Tensor) -> None:
    """Require labels in {-1, 1} (a {0, 1} label, or a NaN, would be read as neither).

    >>> check_sign("soft_margin", "target", torch.tensor([1.0, 0.0]))
    Traceback (most recent call last):
    ...
    lossreg.errors.LossregError: soft_margin: target must hold -1 or 1, found 0.0; ...
    """
    if t.dtype == torch.bool:
        raise LossregError(f"{loss}: {name} must hold -1 or 1, got a bool tensor")
    bad = t.detach().abs() != 1
    if bool(bad.any()):
        found = t[bad].reshape(-1)[0].item()
        raise LossregError(
            f"{loss}: {name} must hold -1 or 1, found {found}; map {{0, 1}} labels with 2 * y - 1"
        )


def _num(x: float) -> str:
    return str(int(x)) if abs(x) < 1e15 and x == int(x) else f"{x:.4g}"
