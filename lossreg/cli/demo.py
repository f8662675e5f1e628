"""``lossreg demo``: the main job, on data generated here (nothing is downloaded).

A small fully convolutional net learns to segment small bright blobs in noisy images: a few
percent of the pixels are foreground, the imbalance where an overlap term helps. It trains
three times from the same initial weights and the same batches: with the demo objective
(``configs/demo.yaml``: ``0.5*dice + bce_with_logits``), with ``bce_with_logits`` alone, and
with the training objective of ``configs/demo_scheduled.yaml`` (the demo objective plus a focal
term ramped in by a schedule, applied to three outputs of the net by deep supervision). It
reports validation dice and IoU of each and writes a PNG of the curves. ``--nproc N`` runs the
same job as N ``torch.distributed`` processes (see ``demo_dist.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._composite import iter_composites

__all__ = ["DEMO_CONFIG", "SCHEDULED_CONFIG", "BlobData", "make_blobs", "run_demo", "train"]

#: The embedded default objective; ``configs/demo.yaml`` holds the same text (tested).
DEMO_CONFIG = """\
# The demo objective: soft dice (overlap, robust to class imbalance) plus pixelwise BCE on
# logits. Both terms take the same model output, so no sigmoid goes in the model.
# `lossreg demo` trains with it and compares with `bce_with_logits` alone.
loss:
  expr: 0.5*dice + bce_with_logits
  terms:
    dice: {name: dice, mode: binary, smooth: 1.0}
"""
#: The third run's objective; ``configs/demo_scheduled.yaml`` holds the same text (tested).
SCHEDULED_CONFIG = """\
# The demo objective grown into a training objective (docs/objectives.md):
# - a focal term ramped in after a warm-up: its weight `w_focal` is a schedule of the step
#   counter (lossreg demo calls objective.step() once per optimizer step);
# - deep supervision: the net returns three outputs (full, half and quarter resolution) and
#   the objective is applied to each against the mask resized nearest-exact, weights 1, 1/2,
#   1/4 divided by their sum.
# `lossreg demo` trains with it as the third curve; `lossreg plot --schedule` draws w_focal.
loss:
  expr: 0.5*dice + bce_with_logits + w_focal*focal
  weights:
    w_focal: {schedule: linear, start: 0.0, end: 1.0, steps: 50, begin: 25}
  terms:
    dice: {name: dice, mode: binary, smooth: 1.0}
    focal: {name: focal, mode: binary}
  deep_supervision: {weights: exp, normalize: true}
"""
SCHEDULED_LABEL = "scheduled focal, deep supervision"
BASELINE = "bce_with_logits"
SIZE = 32


@dataclass
class BlobData:
    images: torch.Tensor  # (N, 1, H, W) float
    masks: torch.Tensor  # (N, 1, H, W) float in {0, 1}

    @property
    def foreground(self) -> float:
        return float(self.masks.mean())


def make_blobs(n: int, size: int = SIZE, *, seed: int = 0) -> BlobData:
    """``n`` noisy images with 1 to 3 small bright discs each, and their masks (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blobs = 3
    cy = torch.rand(n, blobs, 1, 1, generator=gen) * (size - 8) + 4
    cx = torch.rand(n, blobs, 1, 1, generator=gen) * (size - 8) + 4
    radius = torch.rand(n, blobs, 1, 1, generator=gen) * 2.0 + 1.5
    present = torch.rand(n, blobs, 1, 1, generator=gen) < torch.tensor([1.0, 0.5, 0.5]).view(
        1, blobs, 1, 1
    )
    discs = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2) & present
    masks = discs.any(dim=1, keepdim=True).float()
    brightness = torch.rand(n, 1, 1, 1, generator=gen) * 0.6 + 0.8
    # Faint large smudges are distractors: bright enough to confuse a pixel threshold.
    sy = torch.rand(n, 1, 1, 1, generator=gen) * size
    sx = torch.rand(n, 1, 1, 1, generator=gen) * size
    smudge = 0.6 * torch.exp(-((yy - sy) ** 2 + (xx - sx) ** 2) / 40.0)
    noise = torch.randn(n, 1, size, size, generator=gen) * 0.45
    return BlobData(masks * brightness + smudge + noise, masks)


def make_net(deep: bool = False) -> nn.Module:
    """A small dilated fully convolutional net: full resolution, about 7k parameters; with
    ``deep``, two more 1x1 heads on pooled features give half and quarter resolution outputs."""

    def block(cin: int, cout: int, dilation: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.ReLU()]

    body = nn.Sequential(
        *block(1, 16, 1), *block(16, 16, 2), *block(16, 16, 4), *block(16, 16, 1),
        nn.Conv2d(16, 1, 1),
    )  # fmt: skip
    return DeepNet(body) if deep else body


class DeepNet(nn.Module):
    """``body``'s output at full resolution, and from its features at 1/2 and 1/4 (training
    only: in eval mode the full-resolution output alone, so validation is the same code)."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.features, self.head = body[:-1], body[-1]
        self.aux = nn.ModuleList([nn.Conv2d(16, 1, 1), nn.Conv2d(16, 1, 1)])

    def forward(self, x: torch.Tensor) -> Any:
        f = self.features(x)
        out = self.head(f)
        if not self.training:
            return out
        pooled = [nn.functional.avg_pool2d(f, 2**i) for i in (1, 2)]
        return [out, *(head(p) for head, p in zip(self.aux, pooled, strict=True))]


@dataclass
class RunResult:
    label: str
    curves: dict[str, list[float]] = field(default_factory=dict)  # term or "total" -> values
    val_steps: list[int] = field(default_factory=list)
    val_dice: list[float] = field(default_factory=list)
    dice: float = 0.0
    iou: float = 0.0
    seconds: float = 0.0


def overlap_scores(logits: torch.Tensor, masks: torch.Tensor) -> tuple[float, float]:
    """Dice and IoU of the thresholded prediction (sigmoid > 0.5) over the whole set."""
    pred = logits > 0
    truth = masks > 0.5
    tp = (pred & truth).sum().item()
    fp = (pred & ~truth).sum().item()
    fn = (~pred & truth).sum().item()
    dice = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return dice, iou


def _call(objective: nn.Module, logits: Any, masks: torch.Tensor) -> torch.Tensor:
    routes = getattr(objective, "routes", {})
    if any(routes.values()):  # routed terms take tensors by name
        return objective(input=logits, target=masks, logits=logits, mask=masks)  # type: ignore[no-any-return]
    return objective(logits, masks)  # type: ignore[no-any-return]


def _predict(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    net.eval()  # a deep-supervised net returns its full-resolution output alone
    try:
        out: torch.Tensor = net(images)
    finally:
        net.train()
    return out


def train(
    objective: nn.Module,
    label: str,
    train_data: BlobData,
    val_data: BlobData,
    *,
    steps: int,
    seed: int,
    batch: int = 16,
    progress: Any = None,
    shard: tuple[int, int] = (0, 1),
    wrap: Any = None,
) -> RunResult:
    """Train a fresh net (seeded) with ``objective``; record every term's curve.

    ``shard=(rank, world)`` trains on that rank's slice of every batch, with the net wrapped by
    ``wrap`` (``DistributedDataParallel``); validation uses the whole net on every rank.
    """
    torch.manual_seed(seed)
    deep = getattr(objective, "deep_supervision", None) is not None
    net = make_net(deep)
    model = wrap(net) if wrap is not None else net
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rank, world = shard
    part = slice(rank * batch // world, (rank + 1) * batch // world)
    order = torch.Generator().manual_seed(seed + 1)  # both runs see the same batches
    result = RunResult(label)
    task = progress.add_task(label, total=steps, terms="") if progress else None
    start = time.perf_counter()
    val_every = max(1, steps // 15)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(train_data.images), (batch,), generator=order)[part]
        logits = model(train_data.images[idx])
        loss = _call(objective, logits, train_data.masks[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        for composite in iter_composites(objective):  # schedules count optimizer steps
            composite.step()
        values = dict(getattr(objective, "last_values", None) or {label: loss.detach()})
        values["total"] = loss.detach()
        for key, v in values.items():
            result.curves.setdefault(key, []).append(float(v))
        if step % val_every == 0 or step == steps:
            with torch.no_grad():
                result.val_steps.append(step)
                result.val_dice.append(
                    overlap_scores(_predict(net, val_data.images), val_data.masks)[0]
                )
        if progress is not None:
            text = "  ".join(f"{k} {float(v):.4f}" for k, v in values.items())
            progress.update(task, advance=1, terms=text)
    with torch.no_grad():
        result.dice, result.iou = overlap_scores(_predict(net, val_data.images), val_data.masks)
    result.seconds = time.perf_counter() - start
    return result


def load_objective(
    config: Path | None, default: str = DEMO_CONFIG, dist_sync: bool = False
) -> tuple[nn.Module, str]:
    """The objective from ``config`` or the embedded ``default``, and its expression; with
    ``dist_sync``, every term that can sync its statistics across ranks does."""
    import lossreg

    from .config_file import load_spec

    if config is None:
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(OmegaConf.create(default), resolve=True)["loss"]  # type: ignore[index, call-overload]
    else:
        spec = load_spec(config)
    objective = lossreg.build(spec)
    if dist_sync:
        objective = lossreg.build(_synced(lossreg.to_config(objective)))
    cfg = lossreg.to_config(objective)
    return objective, cfg.get("expr") or cfg["name"]


def _synced(config: dict[str, Any]) -> dict[str, Any]:
    if "dist_sync" in config:
        return {**config, "dist_sync": True}
    if "terms" in config:
        return {**config, "terms": {k: _synced(v) for k, v in config["terms"].items()}}
    return config


def objectives(config: Path | None, dist_sync: bool = False) -> dict[str, nn.Module]:
    """The demo's three objectives by label: the demo one, the baseline, the scheduled one."""
    import lossreg

    objective, expr = load_objective(config, dist_sync=dist_sync)
    scheduled, _ = load_objective(None, SCHEDULED_CONFIG, dist_sync=dist_sync)
    return {expr: objective, BASELINE: lossreg.build(BASELINE), SCHEDULED_LABEL: scheduled}


def run_demo(
    *,
    config: Path | None = None,
    steps: int = 150,
    output: Path = Path("demo_losses.png"),
    seed: int = 0,
    console: Any = None,
    n_train: int = 256,
    n_val: int = 64,
    nproc: int = 1,
) -> dict[str, RunResult]:
    """Train with the three objectives; print a table, write the PNG. With ``nproc > 1`` the
    training runs in that many ``torch.distributed`` processes (gloo, CPU)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = console or Console()
    # One thread: these small convolutions gain little from more, and a second thread
    # competing for a busy core made steps up to 10x slower in our measurements.
    torch.set_num_threads(1)
    runs = objectives(config)  # a bad config fails here, before any process starts
    train_data = make_blobs(n_train, seed=seed)
    val_data = make_blobs(n_val, seed=seed + 10_000)
    console.print(
        f"synthetic blobs: {n_train} train / {n_val} val images {SIZE}x{SIZE}, "
        f"{100 * train_data.foreground:.1f}% foreground pixels; {steps} steps per run"
        + (
            f"; {nproc} processes (gloo), each a 1/{nproc} share of every batch"
            if nproc > 1
            else ""
        )
    )
    if nproc > 1:
        from .demo_dist import train_distributed

        results = train_distributed(
            config, nproc, steps=steps, seed=seed, n_train=n_train, n_val=n_val
        )
    else:
        results = {}
        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[terms]}"),
            console=console,
        ) as progress:
            for label, obj in runs.items():
                results[label] = train(
                    obj, label, train_data, val_data, steps=steps, seed=seed, progress=progress
                )
    table = Table(title=f"validation ({n_val} images, threshold 0.5)")
    for col in ("objective", "dice", "IoU", "train time"):
        table.add_column(col, justify="left" if col == "objective" else "right")
    for r in results.values():
        table.add_row(r.label, f"{r.dice:.3f}", f"{r.iou:.3f}", f"{r.seconds:.1f} s")
    console.print(table)
    from .plot import png_path

    output = png_path(output)
    save_curves(results, output)
    console.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)
    return results


def save_curves(results: dict[str, RunResult], output: Path) -> None:
    """Two panels: training curves of every term of every run, and validation dice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, r in enumerate(results.values()):
        color = f"C{i}"
        term_styles = iter([":", "--", "-.", (0, (1, 4))])  # one dash pattern per term
        for key, values in r.curves.items():
            style = "-" if key == "total" else next(term_styles, ":")
            name = f"{r.label}: total" if key == "total" else f"{r.label}: {key}"
            if key != "total" and len(r.curves) == 2:  # a single loss: its term is the total
                continue
            ax_loss.plot(_smooth(values), linestyle=style, color=color, label=name, alpha=0.9)
        ax_val.plot(r.val_steps, r.val_dice, "o-", color=color, label=r.label, markersize=3)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (moving average of 10)")
    ax_loss.set_yscale("log")
    ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)
    ax_val.set_xlabel("step")
    ax_val.set_ylabel("validation dice (threshold 0.5)")
    ax_val.set_ylim(0, 1)
    ax_val.legend(fontsize=8)
    ax_val.grid(alpha=0.3)
    fig.suptitle("lossreg demo: synthetic imbalanced blob segmentation")
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)


def _smooth(values: list[float], k: int = 10) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out
