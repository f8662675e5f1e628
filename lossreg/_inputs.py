"""What a loss takes, declared as data at registration: each tensor argument and its kind.

``register(..., inputs={"input": "logits", "target": "mode_target"})`` lets the command line,
the catalog and :mod:`lossreg.testing` make and check inputs without guessing. Kinds describe
a loss under its default parameters: ``from_logits: false`` turns ``logits`` into
``probabilities``, ``log_target: true`` turns ``probabilities`` into ``log_probabilities``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["INPUT_KINDS", "check_input_kinds"]

#: kind -> what a tensor of that kind holds
INPUT_KINDS: dict[str, str] = {
    "logits": "unbounded real scores (sigmoid or softmax applied inside)",
    "probabilities": "values in [0, 1]",
    "log_probabilities": "log-probabilities (<= 0), e.g. a log_softmax output",
    "class_indices": "integer class labels in [0, C), ignore_index allowed",
    "binary_target": "values in [0, 1], the input's shape",
    "mode_target": "follows the loss's mode: binary/multilabel values in [0, 1] with the "
    "input's shape; multiclass class indices (N, *) or probabilities (N, C, *)",
    "real": "any real values (regression predictions and targets, embeddings)",
    "nonnegative": "real values >= 0 (counts, rates)",
    "sign": "values in {-1, 1}",
    "lengths": "integer sequence lengths",
    "variance": "positive variances",
    "boxes": "(..., 4) boxes as (x1, y1, x2, y2) with x2 >= x1, y2 >= y1",
    "distance_map": "a signed distance map of the target (negative inside the object)",
}


def check_input_kinds(
    declared: Mapping[str, str] | None, args: tuple[str, ...] | None
) -> tuple[dict[str, str] | None, str | None]:
    """Validate a declaration against the loss's tensor arguments.

    Returns ``(kinds, None)`` or ``(None, problem)``; ``args`` is ``None`` when the arguments
    are not known yet (presets and composites take their base's).
    """
    if declared is None:
        return None, None
    if not isinstance(declared, Mapping):
        return None, f"inputs must map argument names to kinds, got {type(declared).__name__}"
    kinds: dict[str, str] = {}
    for arg, kind in declared.items():
        if kind not in INPUT_KINDS:
            known = ", ".join(INPUT_KINDS)
            return None, f"input {arg!r} has unknown kind {_short(kind)} (known: {known})"
        kinds[str(arg)] = kind
    if args is not None and set(kinds) != set(args):
        return None, (f"inputs declares {sorted(kinds)} but the loss takes tensors {list(args)}")
    if args is not None:
        kinds = {a: kinds[a] for a in args}
    return kinds, None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
