"""topk_ce and poly against their references where lossreg's convention differs: nnU-Net's
TopKLoss (ignored voxels counted), mmseg's OHEM sampler and decode-head mean, cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

import lossreg


def _seg(seed=0, n=2, c=3, hw=(4, 5)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *hw, generator=gen, dtype=torch.float64) * 2
    t = torch.randint(0, c, (n, *hw), generator=gen)
    return x, t


def nnunet_topk(inp, target, weight=None, ignore_index=-100, k=10.0):
    """nnunetv2/training/loss/robust_ce_loss.py TopKLoss.forward (target without the channel
    dim here); its CE of an ignored voxel is 0 and the voxel still counts in num_voxels."""
    res = F.cross_entropy(inp, target, weight=weight, ignore_index=ignore_index, reduction="none")
    num_voxels = res.numel()
    res, _ = torch.topk(res.view((-1,)), int(num_voxels * k / 100), sorted=False)
    return res.mean()


@pytest.mark.parametrize("k", [10.0, 25.0, 100.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_topk_equals_nnunet_without_ignored_elements(k, dtype):
    x, t = _seg()
    w = torch.tensor([1.0, 2.0, 0.5], dtype=dtype)
    xa = x.to(dtype).requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours = lossreg.build("topk_ce", k=k, weight=[1.0, 2.0, 0.5])(xa, t)
    want = nnunet_topk(xb, t, weight=w.double(), k=k)
    torch.testing.assert_close(
        ours.double(), want, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0
    )
    (ga,) = torch.autograd.grad(ours, xa)
    (gb,) = torch.autograd.grad(want, xb)
    torch.testing.assert_close(ga.double(), gb, rtol=1e-5, atol=1e-7)


def test_topk_ignored_elements_count_nowhere():
    x, t = _seg()
    t[0, :2] = -1  # 10 of 40 ignored
    ours = lossreg.build("topk_ce", k=20.0, ignore_index=-1)(x, t)
    valid = t != -1
    ce = F.cross_entropy(x, t, ignore_index=-1, reduction="none")[valid]
    want = torch.sort(ce, descending=True).values[: int(30 * 20 / 100)].mean()  # 6 of 30
    torch.testing.assert_close(ours, want)
    # nnU-Net would keep int(40 * 20 / 100) = 8 of all 40 (ignored voxels ranked with CE 0)
    assert not torch.allclose(ours, nnunet_topk(x, t, ignore_index=-1, k=20.0))


def test_topk_every_element_ignored_is_zero_with_zero_gradient():
    x, t = _seg()
    x.requires_grad_(True)
    out = lossreg.build("topk_ce", ignore_index=-1)(x, torch.full_like(t, -1))
    (g,) = torch.autograd.grad(out, x)
    assert float(out.detach()) == 0.0 and (g == 0).all()


def test_topk_keeps_at_least_one_element():
    x = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    out = lossreg.build("topk_ce", k=10.0)(x, torch.tensor([0, 0]))  # int(2 * 0.1) = 0
    torch.testing.assert_close(out, F.cross_entropy(x[1:], torch.tensor([0])))


def mmseg_ohem_weight(seg_logit, seg_label, thresh, min_kept, ignore_index):
    """mmseg/structures/sampler/ohem_pixel_sampler.py OHEMPixelSampler.sample, thresh branch
    (seg_label without its channel dim here)."""
    with torch.no_grad():
        batch_kept = min_kept * seg_label.size(0)
        valid_mask = seg_label != ignore_index
        seg_weight = seg_logit.new_zeros(size=seg_label.size())
        valid_seg_weight = seg_weight[valid_mask]
        seg_prob = F.softmax(seg_logit, dim=1)
        tmp_seg_label = seg_label.clone().unsqueeze(1)
        tmp_seg_label[tmp_seg_label == ignore_index] = 0
        seg_prob = seg_prob.gather(1, tmp_seg_label).squeeze(1)
        sort_prob, _sort_indices = seg_prob[valid_mask].sort()
        if sort_prob.numel() > 0:
            min_threshold = sort_prob[min(batch_kept, sort_prob.numel() - 1)]
        else:
            min_threshold = 0.0
        threshold = max(min_threshold, thresh)
        valid_seg_weight[seg_prob[valid_mask] < threshold] = 1.0
        seg_weight[valid_mask] = valid_seg_weight
        return seg_weight


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.7, 0), (0.3, 8), (0.2, 15)])
def test_ohem_selects_as_mmseg_and_averages_over_the_kept(thresh, min_kept):
    x, t = _seg(seed=3)
    t[1, 0] = 255
    x.requires_grad_(True)
    weight = mmseg_ohem_weight(x, t, thresh, max(min_kept, 0), 255)
    ce = F.cross_entropy(x, t, ignore_index=255, reduction="none")
    # mmseg's decode head: CrossEntropyLoss(weight=seg_weight), mean over every pixel
    mmseg_mean = (ce * weight).mean()
    ours_none = lossreg.build("ohem_ce", thresh=thresh, min_kept=min_kept, ignore_index=255,
                              reduction="none")(x, t)  # fmt: skip
    torch.testing.assert_close(ours_none, ce * weight)
    ours = lossreg.build("ohem_ce", thresh=thresh, min_kept=min_kept, ignore_index=255)(x, t)
    torch.testing.assert_close(ours * weight.sum() / t.numel(), mmseg_mean)
    ga, gb = (
        torch.autograd.grad(ours, x)[0],
        torch.autograd.grad((ce * weight).sum() / weight.sum(), x)[0],
    )
    torch.testing.assert_close(ga, gb)


def test_ohem_and_topk_options_do_not_mix():
    with pytest.raises(lossreg.ConfigError, match="min_kept applies with thresh"):
        lossreg.build("topk_ce", min_kept=5)
    with pytest.raises(lossreg.ConfigError, match="k applies without thresh"):
        lossreg.build("topk_ce", k=20, thresh=0.7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [{}, {"weight": [1.0, 3.0, 0.5]}, {"label_smoothing": 0.2}, {"ignore_index": 1}],
)
def test_poly_with_epsilon_zero_is_cross_entropy(reduction, options):
    x, t = _seg(seed=5)
    x.requires_grad_(True)
    ours = lossreg.build("poly1", epsilon=0.0, reduction=reduction, **options)(x, t)
    want = lossreg.build("cross_entropy", reduction=reduction, **options)(x, t)
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(want.sum(), x)[0]
    )


def test_poly_adds_epsilon_times_one_minus_pt():
    x, t = _seg(seed=6)
    p_t = torch.softmax(x, 1).gather(1, t.unsqueeze(1)).squeeze(1)
    ours = lossreg.build("poly", epsilon=-0.5, reduction="none")(x, t)
    torch.testing.assert_close(ours, F.cross_entropy(x, t, reduction="none") - 0.5 * (1 - p_t))
