"""``lossreg plot``: loss value against prediction, one panel per kind of prediction.

- losses that take scores (logits, probabilities or log-probabilities, as their registration
  declares with ``inputs=``): against p, the predicted probability of the true class
  (target 1), on one pixel, or on two classes when the target is a class index;
- losses that take boxes: against the horizontal offset of a predicted box from its target;
- everything else (regression, undeclared company losses): against the residual
  prediction - target.

``focal`` gets its own panel that reproduces Figure 1 of Lin et al. 2017 ("Focal Loss for
Dense Object Detection"): loss against p_t for gamma in 0, 0.5, 1, 2, 5 (gamma 0 is CE).
Every curve is computed by the registered loss itself, never by a formula copied here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .._build import build, describe, to_config
from .._composite import CompositeLoss
from .._synthetic import effective_kind
from ..errors import LossregError

__all__ = [
    "FOCAL_GAMMAS",
    "curve",
    "focal_curves",
    "objective_lines",
    "plot_losses",
    "plot_schedule",
    "schedule_curves",
]

FOCAL_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
_POINTS = 199
_AXES = {
    "probability": "p, predicted probability of the true class",
    "box": "offset of the predicted box (box widths)",
    "residual": "prediction - target",
}


def png_path(output: str | Path) -> Path:
    """The path a PNG is written to: matplotlib adds ``.png`` to a name without a suffix, so we
    do it first and can say truthfully where the file went."""
    output = Path(output)
    return output if output.suffix else output.with_suffix(".png")


def save_png(fig: Any, output: str | Path) -> Path:
    """Lay out ``fig``, write it to ``output`` as a PNG (``.png`` added to a bare name), close
    it, and return the path written."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = png_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _kinds(module: torch.nn.Module) -> list[str]:
    """The effective kind of each tensor argument of a built loss (``real`` if undeclared);
    a composite's are its first term's (every term gets the same tensors)."""
    if isinstance(module, CompositeLoss):
        return _kinds(next(iter(module.terms.values())))
    config = to_config(module)
    info = describe(config["name"])
    declared = info.input_kinds or {}
    return [effective_kind(declared.get(a, "real"), config) for a in info.inputs]


def _kind(name: str) -> str:
    """The panel of a loss, from what its tensor arguments hold: boxes, or scores (the first
    holds logits, probabilities or log-probabilities, or real class scores beside a class
    index), or anything else."""
    kinds = _kinds(build(name))
    if kinds[0] == "boxes":
        return "box"
    return "probability" if kinds[0] in _SCORES or _class_scores(kinds) else "residual"


def _class_scores(kinds: list[str]) -> bool:
    return kinds[0] == "real" and kinds[1:] == ["class_indices"]


def _xs(kind: str) -> torch.Tensor:
    if kind == "probability":
        return torch.linspace(0.0, 1.0, _POINTS + 2, dtype=torch.float64)[1:-1]
    if kind == "box":
        return torch.linspace(-1.5, 1.5, _POINTS, dtype=torch.float64)
    return torch.linspace(-3.0, 3.0, _POINTS, dtype=torch.float64)


# what a loss takes for the probability p of the true class, and for the other class
_SCORES: dict[str, Callable[[float], float]] = {
    "logits": lambda p: math.log(p) - math.log1p(-p),
    "probabilities": lambda p: p,
    "log_probabilities": math.log,
}
_OTHER = {"logits": 0.0, "probabilities": None, "log_probabilities": None}
_RESIDUAL_SHAPE = (1, 1, 1)  # (N, C, L): elementwise losses and those needing a layout


def _call(module: torch.nn.Module, kind: str) -> Callable[[float], tuple[Any, ...]]:
    """How one x becomes the loss's tensors, from the kinds its registration declares."""
    kinds = _kinds(module)
    f64 = torch.float64
    if kind == "box":
        target = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=f64)
        return lambda x: (target + torch.tensor([[x, 0.0, x, 0.0]], dtype=f64), target)
    if kind == "residual":  # the first tensor at x, the others at a neutral value
        rest = [torch.full(_RESIDUAL_SHAPE, _NEUTRAL.get(k, 0.0), dtype=f64) for k in kinds[1:]]
        return lambda x: (torch.full(_RESIDUAL_SHAPE, x, dtype=f64), *rest)
    score = _SCORES.get("logits" if _class_scores(kinds) else kinds[0])
    if score is None or len(kinds) != 2:
        raise LossregError(f"takes {len(kinds)} tensors {kinds}, not a score and a target")
    if len(kinds) > 1 and kinds[1] == "class_indices":  # two classes, the true one is 1

        def other(p: float) -> float:
            fixed = _OTHER.get(kinds[0], 0.0)
            return fixed if fixed is not None else score(1 - p)

        return lambda p: (torch.tensor([[other(p), score(p)]], dtype=f64), torch.tensor([1]))
    ones = torch.ones((1, 1, 1, 1), dtype=f64)
    return lambda p: (torch.full((1, 1, 1, 1), score(p), dtype=f64), *[ones] * (len(kinds) - 1))


_NEUTRAL = {"sign": 1.0, "variance": 1.0, "probabilities": 1.0, "binary_target": 1.0}


def curve(name: str, kind: str | None = None, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, loss) of the loss ``name`` with ``params`` over the axis of its ``kind``."""
    kind = kind or _kind(name)
    module = build(name, **params)
    xs = _xs(kind)
    declared = describe(name).input_kinds is not None
    try:
        make = _call(module, kind)
        with torch.no_grad():
            ys = torch.stack([module(*make(float(x))).double().reshape(()) for x in xs])
    except Exception as exc:  # a declared loss's own bug (not a LossregError) is shown as is
        if declared and not isinstance(exc, LossregError):
            raise
        hint = "" if declared else f"; declare what {name} takes with register(..., inputs=)"
        why = " ".join(str(exc).split())[:300]
        what = f"plot: cannot draw {name!r} against {_AXES[kind]}"
        raise LossregError(f"{what}: {why}{hint}") from exc
    return xs, ys


def focal_curves() -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """Figure 1 of the focal-loss paper: focal loss (binary, no alpha) against p_t."""
    return {
        g: curve("focal", "probability", mode="binary", gamma=g, alpha=None) for g in FOCAL_GAMMAS
    }


def plot_losses(names: Sequence[str], output: str | Path) -> Path:
    """Draw the named losses to a PNG at ``output``; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    canonical = list(dict.fromkeys(describe(n).name for n in names))  # unknown names fail here
    panels: dict[str, list[str]] = {}
    for name in canonical:
        if name != "focal":
            panels.setdefault(_kind(name), []).append(name)
    count = len(panels) + ("focal" in canonical)
    fig, axes = plt.subplots(1, count, figsize=(6.0 * count, 4.5), squeeze=False)
    ax_iter = iter(axes[0])
    if "focal" in canonical:
        _draw_focal(next(ax_iter))
    for kind, members in panels.items():
        ax = next(ax_iter)
        for name in members:
            x, y = curve(name, kind)
            ax.plot(x.numpy(), y.numpy(), label=name, linewidth=2)
        ax.set_xlabel(_AXES[kind])
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_png(fig, output)


def _draw_focal(ax: Any) -> None:
    for gamma, (x, y) in focal_curves().items():
        label = f"γ = {gamma:g}" + (" (cross-entropy)" if gamma == 0 else "")
        ax.plot(x.numpy(), y.numpy(), label=label, linewidth=2)
    ax.axvspan(0.6, 1.0, color="0.9", zorder=0)
    ax.text(0.8, 1.6, "well-classified\nexamples", ha="center", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 5)
    ax.set_xlabel("probability of ground truth class")
    ax.set_ylabel("loss")
    ax.set_title("focal loss, FL(p_t) = -(1 - p_t)^γ log(p_t)\n(Lin et al. 2017, Figure 1)")
    ax.legend(loc="upper right")


# -- weights over training steps -----------------------------------------------------------
def schedule_curves(module: torch.nn.Module, steps: int | None = None) -> dict[str, list[float]]:
    """Each named weight of the composites in ``module`` at steps ``0..steps`` (default: a
    quarter past the last change of any schedule), computed by the objective itself."""
    from .._composite import iter_composites

    composites = list(iter_composites(module))
    if not any(c.schedules for c in composites):
        raise LossregError("plot --schedule: the config has no `weights:` block to draw")
    if steps is None:
        horizon = max(s.horizon() for c in composites for s in c.schedules.values())
        steps = max(10, horizon + horizon // 4)
    curves: dict[str, list[float]] = {}
    for c in composites:
        saved = c.step_number
        for t in range(steps + 1):
            c.set_step(t)
            for name, value in c.current_weights().items():
                if name in c.schedules:
                    curves.setdefault(name, []).append(value)
        c.set_step(saved)
    return curves


def plot_schedule(config: str | Path, output: str | Path, steps: int | None = None) -> Path:
    """Draw every named weight of the composite in ``config`` over steps to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .config_file import load_spec

    module = build(load_spec(Path(config)))
    curves = schedule_curves(module, steps)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(range(len(values)), values, label=name, linewidth=2)
    ax.set_xlabel("step (the objective's counter: objective.step() calls)")
    ax.set_ylabel("weight")
    ax.set_title(f"weights of {Path(config).name}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, output)


def objective_lines(module: torch.nn.Module) -> list[str]:
    """Lines for ``lossreg check``: each weight's schedule, the balance and deep supervision."""
    lines = [
        f"weight {name}: {s.describe()}" for name, s in getattr(module, "schedules", {}).items()
    ]
    balance = getattr(module, "balance", None)
    if balance:
        lines.append(f"balance: {balance['method']} on {', '.join(balance['terms'])}")
    deep = getattr(module, "deep_supervision", None)
    if deep is not None:
        lines.append(f"deep supervision: weights {deep['weights']}, normalize {deep['normalize']}")
    return lines
