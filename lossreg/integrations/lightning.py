"""Lightning: a LightningModule trained with a lossreg objective, and a callback that steps
the schedules of any LightningModule's objectives.

- :class:`ObjectiveModule` builds its objective from a config (``self.objective``, a
  submodule, so its step counter, scheduled weights and learned balance weights are in every
  checkpoint), logs ``objective.log_dict(prefix="train/")`` with ``self.log_dict`` and sets the
  step counter to ``trainer.global_step`` (optimizer steps) after every training batch.
- :class:`StepSchedules` does the stepping for a LightningModule of your own.

Resuming with ``Trainer.fit(..., ckpt_path=...)`` restores the counter from the checkpoint, so
the schedule continues where it left off. Learned (``balance``) weights are parameters of the
objective, inside the module, so ``configure_optimizers`` gives them to the optimizer and DDP
wraps them with the model.

Requires ``lightning`` (or the older ``pytorch_lightning``): ``pip install lossreg[lightning]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._build import build
from .._composite import CompositeLoss, iter_composites

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the older distribution name
    import pytorch_lightning as pl  # type: ignore[no-redef]

__all__ = ["ObjectiveModule", "StepSchedules", "step_objectives"]


def step_objectives(module: nn.Module, global_step: int) -> None:
    """Set every lossreg objective in ``module`` to the trainer's optimizer step count."""
    for objective in iter_composites(module):
        if objective.step_number != global_step:
            objective.set_step(global_step)


class StepSchedules(pl.Callback):
    """Callback: after each training batch, every objective's counter = ``global_step``."""

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        step_objectives(pl_module, trainer.global_step)


class ObjectiveModule(pl.LightningModule):
    """Train ``model`` on ``(x, y)`` batches with ``objective = lossreg.build(loss)``.

    Args:
        model: the network; its output (a tensor, or a list for deep supervision) and ``y`` are
            passed to the objective.
        loss: a lossreg spec (name, expression, mapping or OmegaConf config).
        lr: Adam's learning rate.
        optimizer: ``params -> optimizer``, overriding Adam.
        log_prefix: prefix of the logged keys.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        lr: float = 1e-3,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        log_prefix: str = "train/",
    ) -> None:
        super().__init__()
        self.model = model
        self.objective: CompositeLoss | nn.Module = build(loss)
        self.lr = lr
        self.make_optimizer = optimizer
        self.log_prefix = log_prefix

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss: torch.Tensor = self.objective(self(x), y)
        if isinstance(self.objective, CompositeLoss):  # a single loss logs its value
            logged = self.objective.log_dict(prefix=self.log_prefix)
        else:
            logged = {f"{self.log_prefix}total": loss.detach()}
        self.log_dict(logged, batch_size=len(x))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        step_objectives(self, self.trainer.global_step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.parameters()  # the objective's learned weights included
        if self.make_optimizer is not None:
            return self.make_optimizer(params)
        return torch.optim.Adam(params, lr=self.lr)
