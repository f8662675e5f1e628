"""Real Lightning and Hydra: a Trainer for a few CPU steps with a scheduled objective, a
checkpoint, a resume that continues the schedule; hydra.utils.instantiate of lossreg.build."""

from __future__ import annotations

import warnings

import pytest
import torch

import lossreg

SPEC = {
    "expr": "mse + w*l1",
    "weights": {"w": {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 10}},
}


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=gen)
    return torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]))


def _fit(module, max_steps, tmp_path, ckpt=None):
    import lightning.pytorch as pl

    trainer = pl.Trainer(
        max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(_data(), batch_size=8, num_workers=0)
    with warnings.catch_warnings():
        # Lightning's advice on CPU (dataloader workers, no GPU) is not ours to fix
        warnings.simplefilter("ignore")
        trainer.fit(module, loader, ckpt_path=ckpt)
    return trainer


class _Recording:
    """Mixin: remember the weight each training step used (its logged value)."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.seen.append(round(float(self.objective.log_dict()["loss/w/w"]), 6))
        return loss


def test_lightning_trainer_logs_checkpoints_and_resumes_the_schedule(tmp_path):
    pytest.importorskip("lightning")
    from lossreg.integrations.lightning import ObjectiveModule

    class Module(_Recording, ObjectiveModule):
        pass

    torch.manual_seed(0)
    first = Module(torch.nn.Linear(3, 1), SPEC, lr=0.01)
    first.seen = []
    trainer = _fit(first, 3, tmp_path)
    assert first.seen == [0.0, 0.1, 0.2]  # one schedule step per optimizer step
    assert first.objective.step_number == 3
    metrics = trainer.callback_metrics
    assert {"train/total", "train/mse", "train/l1", "train/w/w"} <= set(metrics)
    assert float(metrics["train/w/w"]) == pytest.approx(0.2)
    ckpt = tmp_path / "three.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert int(state["objective.step_count"]) == 3

    resumed = Module(torch.nn.Linear(3, 1), SPEC, lr=0.01)
    resumed.seen = []
    _fit(resumed, 6, tmp_path, ckpt=str(ckpt))
    assert resumed.seen == [0.3, 0.4, 0.5]  # continues where it left off
    assert resumed.objective.step_number == 6


def test_hydra_instantiate_builds_the_objective():
    hydra_utils = pytest.importorskip("hydra.utils")
    from lossreg.integrations.hydra import hydra_node

    objective = hydra_utils.instantiate(hydra_node(SPEC))
    assert isinstance(objective, lossreg.CompositeLoss)
    assert lossreg.to_config(objective) == lossreg.to_config(lossreg.build(SPEC))
    objective.step(5)
    assert objective.current_weights() == {"w": 0.5}
    direct = hydra_utils.instantiate(
        {"_target_": "lossreg.build", "_args_": ["focal"], "gamma": 3.0}
    )
    assert lossreg.to_config(direct)["gamma"] == 3.0
