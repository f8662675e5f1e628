"""kd_kl, asymmetric and the dense detection losses where lossreg's convention differs from
the reference's: mmdet's averaging over classes, DFL's last bin, timm's defaults."""

import pytest
import torch
import torch.nn.functional as F

import lossreg
from tests.cases.dense_detection import mmdet_dfl, mmdet_qfl_elementwise, mmdet_varifocal
from tests.cases.multilabel import timm_asl


def _rand(*shape, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale


# -- kd_kl ------------------------------------------------------------------------------------
def mmdet_kd(pred, soft_label, T):
    """mmdet/models/losses/kd_loss.py knowledge_distillation_kl_div_loss: (N,) per sample."""
    target = F.softmax(soft_label / T, dim=1).detach()
    return F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction="none").mean(1) * (T * T)


def test_kd_kl_maps_onto_mmdet_and_torch():
    s, t = _rand(6, 5), _rand(6, 5, seed=1)
    T = 3.0
    per = lossreg.build("kd_kl", temperature=T, reduction="none")(s, t)
    torch.testing.assert_close(per / 5, mmdet_kd(s, t, T))  # mmdet: mean over C classes
    batchmean = lossreg.build("distillation_kl", temperature=T)(s, t)
    torch.testing.assert_close(batchmean / 5, mmdet_kd(s, t, T).mean())  # mmdet 'mean'
    torch_kl = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(s / T, 1), F.softmax(t / T, 1)
    )
    torch.testing.assert_close(batchmean, torch_kl * T * T)


def test_kd_kl_batchmean_divides_by_n_only():
    s, t = _rand(2, 4, 3, 3), _rand(2, 4, 3, 3, seed=1)
    none = lossreg.build("kd_kl", reduction="none")(s, t)
    assert none.shape == (2, 3, 3)
    torch.testing.assert_close(lossreg.build("kd_kl")(s, t), none.sum() / 2)
    torch.testing.assert_close(lossreg.build("kd_kl", reduction="mean")(s, t), none.mean())


def test_kd_kl_teacher_is_detached_and_t_squared_scales_the_gradient():
    s, t = _rand(3, 4).requires_grad_(True), _rand(3, 4, seed=1).requires_grad_(True)
    out = lossreg.build("kd_kl", temperature=1.0)(s, t)
    assert torch.autograd.grad(out, t, allow_unused=True)[0] is None
    # T = 1: the gradient in s is (softmax(s) - softmax(t)) / N
    (g,) = torch.autograd.grad(out, s)
    torch.testing.assert_close(g, (torch.softmax(s, 1) - torch.softmax(t, 1)).detach() / 3)
    # any T: the gradient is T (softmax(s/T) - softmax(t/T)) / N
    out = lossreg.build("kd_kl", temperature=4.0)(s, t)
    (g,) = torch.autograd.grad(out, s)
    want = 4.0 * (torch.softmax(s / 4, 1) - torch.softmax(t / 4, 1)).detach() / 3
    torch.testing.assert_close(g, want)


def test_kd_kl_temperature_below_one_is_refused():
    with pytest.raises(lossreg.ConfigError, match="temperature"):
        lossreg.build("kd_kl", temperature=0.5)


# -- asymmetric -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [{}, {"clip": 0.0}, {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.2, "eps": 1e-3}],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_asymmetric_equals_timm_sum(params, dtype):
    x = _rand(4, 5, scale=4.0)
    y = (_rand(4, 5, seed=1) > 0).double()
    full = {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05, "eps": 1e-8, **params}
    xa, xb = x.to(dtype).requires_grad_(True), x.clone().requires_grad_(True)
    ours = lossreg.build("asl", reduction="sum", **params)(xa, y.to(dtype))
    want = timm_asl(xb, y, reduction="sum", **full)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours.double(), want, rtol=rtol, atol=0)
    torch.testing.assert_close(
        torch.autograd.grad(ours, xa)[0].double(), torch.autograd.grad(want, xb)[0],
        rtol=rtol * 10, atol=1e-12 if dtype == torch.float64 else 1e-6,
    )  # fmt: skip


# -- dense detection --------------------------------------------------------------------------
def test_quality_focal_mean_is_mmdets_sum_over_classes_averaged_over_n():
    x = _rand(6, 4)
    q = torch.rand(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q[q < 0.6] = 0.0
    mmdet_mean = mmdet_qfl_elementwise(x, q).sum(dim=1).mean()
    torch.testing.assert_close(
        lossreg.build("quality_focal", reduction="sum")(x, q) / 6, mmdet_mean
    )
    torch.testing.assert_close(lossreg.build("quality_focal")(x, q) * 4, mmdet_mean)


@pytest.mark.parametrize("iou_weighted", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_varifocal_equals_mmdet(iou_weighted, dtype):
    x = _rand(5, 3)
    q = torch.rand(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q[q < 0.5] = 0.0
    xa, xb = x.to(dtype).requires_grad_(True), x.clone().requires_grad_(True)
    ours = lossreg.build("varifocal", iou_weighted=iou_weighted)(xa, q.to(dtype))
    want = mmdet_varifocal(xb, q, iou_weighted=iou_weighted)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours.double(), want, rtol=rtol, atol=0)
    torch.testing.assert_close(
        torch.autograd.grad(ours, xa)[0].double(), torch.autograd.grad(want, xb)[0],
        rtol=rtol * 10, atol=1e-7,
    )  # fmt: skip


def test_distribution_focal_last_bin_is_cross_entropy_to_it():
    x = _rand(3, 5).requires_grad_(True)
    y = torch.tensor([4.0, 0.0, 2.0], dtype=torch.float64)
    out = lossreg.build("distribution_focal", reduction="none")(x, y)
    torch.testing.assert_close(out, F.cross_entropy(x, torch.tensor([4, 0, 2]), reduction="none"))
    # just below the last bin it equals mmdet, and the loss is continuous up to n - 1
    below = torch.tensor([4.0 - 1e-9, 1e-9, 2.5], dtype=torch.float64)
    near = lossreg.build("distribution_focal", reduction="none")(x, below)
    torch.testing.assert_close(near, mmdet_dfl(x, below))
    torch.testing.assert_close(near[:1], out[:1], rtol=1e-7, atol=0)


def test_distribution_focal_takes_bins_in_the_last_dim():
    x, y = _rand(2, 3, 6), torch.rand(2, 3, dtype=torch.float64) * 5
    out = lossreg.build("distribution_focal", reduction="none")(x, y)
    torch.testing.assert_close(out, mmdet_dfl(x.reshape(6, 6), y.reshape(6)).reshape(2, 3))
