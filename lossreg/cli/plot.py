"""``lossreg plot``: loss value against prediction, one panel per kind of prediction.

- classification and segmentation losses: against p, the predicted probability of the true
  class (target 1), on one pixel;
- detection losses: against the horizontal offset of a predicted box from its target box;
- everything else (regression, company losses): against the residual prediction - target.

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


def _kind(name: str) -> str:
    tags = set(describe(name).tags)
    if "detection" in tags:
        return "box"
    if tags & {"classification", "segmentation"}:
        return "probability"
    return "residual"


def _xs(kind: str) -> torch.Tensor:
    if kind == "probability":
        return torch.linspace(0.0, 1.0, _POINTS + 2, dtype=torch.float64)[1:-1]
    if kind == "box":
        return torch.linspace(-1.5, 1.5, _POINTS, dtype=torch.float64)
    return torch.linspace(-3.0, 3.0, _POINTS, dtype=torch.float64)


def _calls(module: torch.nn.Module, kind: str) -> list[Callable[[float], tuple[Any, ...]]]:
    """Ways to turn one x into the loss's (input, target), most likely first."""
    config = to_config(module)
    f64 = torch.float64
    if kind == "box":
        target = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=f64)
        return [lambda x: (target + torch.tensor([[x, 0.0, x, 0.0]], dtype=f64), target)]
    if kind == "residual":

        def residual(shape: tuple[int, ...]) -> Callable[[float], tuple[Any, ...]]:
            return lambda x: (torch.full(shape, x, dtype=f64), torch.zeros(shape, dtype=f64))

        return [residual(shape) for shape in ((1,), (1, 1, 1), (1, 1, 1, 1))]

    def score(p: float) -> float:  # what the loss takes for probability p
        if config.get("from_logits") is False:
            return p
        if config["name"] == "nll":  # log-probabilities, as in torch.nn.NLLLoss
            return math.log(p)
        return math.log(p) - math.log1p(-p)

    def dense(p: float) -> tuple[Any, ...]:
        return torch.full((1, 1, 1, 1), score(p), dtype=f64), torch.ones((1, 1, 1, 1), dtype=f64)

    def two_class(p: float) -> tuple[Any, ...]:
        if config["name"] == "nll":
            return torch.tensor([[math.log1p(-p), math.log(p)]], dtype=f64), torch.tensor([1])
        return torch.tensor([[0.0, score(p)]], dtype=f64), torch.tensor([1])

    multiclass = config.get("mode") == "multiclass" or (
        "ignore_index" in config and "mode" not in config
    )
    return [two_class, dense] if multiclass else [dense, two_class]


def curve(name: str, kind: str | None = None, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, loss) of the loss ``name`` with ``params`` over the axis of its ``kind``."""
    kind = kind or _kind(name)
    module = build(name, **params)
    xs = _xs(kind)
    failures = []
    for make in _calls(module, kind):
        try:
            with torch.no_grad():
                ys = torch.stack([module(*make(float(x))).double().reshape(()) for x in xs])
        except Exception as exc:  # this loss wants another input layout; try the next
            failures.append(" ".join(str(exc).split())[:160])
            continue
        return xs, ys
    raise LossregError(f"plot: cannot draw {name!r} against {_AXES[kind]}: " + "; ".join(failures))


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
    fig.tight_layout()
    output = png_path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output


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
    fig.tight_layout()
    output = png_path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output


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
