"""The command line's view of objectives: `check` prints schedules, `plot --schedule` draws
them, the demo's third objective is configs/demo_scheduled.yaml, and `demo --nproc 2` trains
the same nets as one process."""

from __future__ import annotations

from pathlib import Path

import pytest

import lossreg
from lossreg.cli import main
from lossreg.cli.config_file import load_spec
from lossreg.cli.demo import SCHEDULED_CONFIG, load_objective, run_demo
from lossreg.cli.plot import schedule_curves

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "demo_scheduled.yaml"


def test_embedded_scheduled_config_is_the_file():
    assert CONFIG.read_text() == SCHEDULED_CONFIG
    objective, expr = load_objective(None, SCHEDULED_CONFIG)
    assert expr == "0.5*dice + bce_with_logits + w_focal*focal"
    assert objective.deep_supervision == {"weights": "exp", "normalize": True}
    assert lossreg.to_config(objective) == lossreg.to_config(
        lossreg.build(load_objective(CONFIG)[0].__dict__["_lossreg_config"])
    )


def test_check_prints_the_schedule(capsys):
    assert main(["check", str(CONFIG)]) == 0
    text = capsys.readouterr().out
    assert "weight w_focal: linear 0 -> 1 over 50 steps from step 25" in text
    assert "deep supervision: weights exp, normalize True" in text


def test_plot_schedule_draws_the_objective_own_weights(tmp_path, capsys):
    objective = lossreg.build(load_spec(CONFIG))
    objective.set_step(7)
    curves = schedule_curves(objective, steps=100)
    assert objective.step_number == 7  # drawing leaves the counter where it was
    w = curves["w_focal"]
    assert len(w) == 101 and w[25] == 0.0 and w[50] == 0.5 and w[75:] == [1.0] * 26
    out = tmp_path / "w.png"
    assert main(["plot", "--schedule", str(CONFIG), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert (
        main(
            [
                "plot",
                "--schedule",
                str(ROOT / "configs" / "demo.yaml"),
                "-o",
                str(tmp_path / "none.png"),
            ]
        )
        == 1
    )
    assert "has no `weights:` block" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_with_two_processes_trains_the_same_nets(tmp_path):
    small = {"steps": 3, "n_train": 16, "n_val": 8, "console": None}
    one = run_demo(output=tmp_path / "one.png", **small)
    two = run_demo(output=tmp_path / "two.png", nproc=2, **small)
    assert (
        list(one)
        == list(two)
        == ["0.5*dice + bce_with_logits", "bce_with_logits", "scheduled focal, deep supervision"]
    )
    for label in ("0.5*dice + bce_with_logits", "scheduled focal, deep supervision"):
        # dice is synced across ranks: the whole batch's dice at every step, so equal values
        # over three steps mean the two processes trained the same net as one
        assert two[label].curves["dice"] == pytest.approx(one[label].curves["dice"], rel=1e-5)
        assert (two[label].dice, two[label].iou) == pytest.approx(
            (one[label].dice, one[label].iou), abs=1e-6
        )
