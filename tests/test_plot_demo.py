"""``lossreg plot`` and ``lossreg demo`` in-process: the numbers behind the pictures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import lossreg
from lossreg.cli.demo import DEMO_CONFIG, load_objective, make_blobs, overlap_scores
from lossreg.cli.plot import FOCAL_GAMMAS, curve, focal_curves, plot_losses

ROOT = Path(__file__).resolve().parents[1]


def test_focal_curves_are_figure_1_of_the_paper() -> None:
    # Lin et al. 2017, Fig. 1: FL(p_t) = -(1 - p_t)^gamma log(p_t), gamma in {0, .5, 1, 2, 5}
    curves = focal_curves()
    assert tuple(curves) == FOCAL_GAMMAS == (0.0, 0.5, 1.0, 2.0, 5.0)
    for gamma, (p, loss) in curves.items():
        expected = -((1 - p) ** gamma) * torch.log(p)
        torch.testing.assert_close(loss, expected, rtol=1e-9, atol=1e-12)
    p, ce = curves[0.0]
    i = int(torch.argmin((p - 0.6).abs()))
    # the paper's point: at p_t = 0.6 CE is still ~0.51, gamma = 2 cuts it by (1-0.6)^2 = 0.16x
    assert float(ce[i]) == pytest.approx(-math.log(float(p[i])), rel=1e-12)
    assert float(curves[2.0][1][i] / ce[i]) == pytest.approx((1 - float(p[i])) ** 2, rel=1e-9)


def test_curves_have_the_shape_of_their_kind() -> None:
    x, bce = curve("bce")  # against p: -log p, decreasing
    torch.testing.assert_close(bce, -torch.log(x), rtol=1e-9, atol=1e-12)
    x, ce = curve("cross_entropy")  # two classes, logits (0, logit p): also -log p
    torch.testing.assert_close(ce, -torch.log(x), rtol=1e-9, atol=1e-12)
    x, huber = curve("huber")  # against the residual: symmetric, 0 at 0
    torch.testing.assert_close(huber, huber.flip(0))
    assert float(huber[len(x) // 2]) == pytest.approx(0.0, abs=1e-12)
    x, giou = curve("giou")  # against the box offset: 0 when the boxes coincide
    assert float(giou[len(x) // 2]) == pytest.approx(0.0, abs=1e-6)
    assert bool((giou[: len(x) // 2].diff() <= 1e-12).all())


def test_plot_writes_one_png_for_every_kind(tmp_path: Path) -> None:
    out = plot_losses(["focal", "dice", "l1", "giou", "CrossEntropyLoss"], tmp_path / "a.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_names_what_it_cannot_draw() -> None:
    with pytest.raises(lossreg.LossregError, match="cannot draw 'ctc'"):
        curve("ctc", "residual")


def test_blobs_are_seeded_and_imbalanced() -> None:
    a, b = make_blobs(32, seed=5), make_blobs(32, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.masks, make_blobs(32, seed=6).masks)
    assert 0.01 < make_blobs(256).foreground < 0.08  # a few percent foreground
    assert set(a.masks.unique().tolist()) <= {0.0, 1.0}
    assert bool((a.masks.flatten(1).sum(1) > 0).all())  # every image has a blob


def test_overlap_scores_by_hand() -> None:
    truth = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    logits = torch.tensor([3.0, -1.0, 2.0, -4.0]).view(1, 1, 2, 2)  # TP 1, FN 1, FP 1
    dice, iou = overlap_scores(logits, truth)
    assert (dice, iou) == (pytest.approx(0.5), pytest.approx(1 / 3))


def test_embedded_demo_config_is_configs_demo_yaml() -> None:
    assert (ROOT / "configs" / "demo.yaml").read_text() == DEMO_CONFIG
    objective, expr = load_objective(None)
    assert expr == "0.5*dice + bce_with_logits"
    assert lossreg.to_config(objective) == lossreg.to_config(
        load_objective(ROOT / "configs" / "demo.yaml")[0]
    )


def test_png_path_says_where_matplotlib_writes(tmp_path):
    from lossreg.cli.plot import plot_losses, png_path

    assert png_path(tmp_path / "curves") == tmp_path / "curves.png"
    assert png_path(tmp_path / "curves.svg") == tmp_path / "curves.svg"
    written = plot_losses(["mse"], tmp_path / "no_suffix")
    assert written == tmp_path / "no_suffix.png" and written.exists()
