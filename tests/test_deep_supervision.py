"""Deep supervision (OBJECTIVES.md): equal to the sum written by hand (targets sliced, not
interpolated, so the reference does not share our resize) and to MONAI's DeepSupervisionLoss."""

from __future__ import annotations

import pytest
import torch

import lossreg

SPEC = {
    "expr": "0.5*dice + bce_with_logits",
    "terms": {"dice": {"name": "dice", "mode": "binary", "smooth": 1.0}},
}


def _outputs(levels=4, size=16, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    outs = [
        torch.randn(2, 1, size >> i, size >> i, generator=gen, dtype=dtype).requires_grad_()
        for i in range(levels)
    ]
    target = (torch.rand(2, 1, size, size, generator=gen) > 0.7).to(dtype)
    return outs, target


def _down(t, i):
    # nearest-exact samples source index floor((j + 0.5) * s) = j*s + s//2 for a factor s = 2**i
    s = 2**i
    return t[..., s // 2 :: s, s // 2 :: s] if i else t


def test_composite_equals_the_hand_written_sum():
    objective = lossreg.build({**SPEC, "deep_supervision": {"weights": "exp", "normalize": True}})
    plain = lossreg.build(SPEC)
    outs, target = _outputs()
    got = objective(outs, target)
    weights = [1, 0.5, 0.25, 0.125]
    by_hand = sum(
        w * plain(o, _down(target, i)) for i, (w, o) in enumerate(zip(weights, outs, strict=True))
    )
    by_hand = by_hand / sum(weights)
    torch.testing.assert_close(got, by_hand, rtol=1e-12, atol=1e-12)
    g_got = torch.autograd.grad(got, outs)
    g_want = torch.autograd.grad(by_hand, outs)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # last_values: each term level-weighted; last_levels: each level's total
    levels = [plain(o, _down(target, i)) for i, o in enumerate(outs)]
    torch.testing.assert_close(torch.stack(objective.last_levels), torch.stack(levels).detach())
    dice = lossreg.build({"name": "dice", "mode": "binary", "smooth": 1.0})
    want_dice = sum(
        w * dice(o, _down(target, i)) for i, (w, o) in enumerate(zip(weights, outs, strict=True))
    )
    torch.testing.assert_close(objective.last_values["dice"], (want_dice / 1.875).detach())


@pytest.mark.parametrize("mode", ["exp", "same"])
@pytest.mark.parametrize("name", ["bce_with_logits", "dice"])
def test_single_loss_equals_monai_deep_supervision_loss(mode, name):
    monai = pytest.importorskip("monai.losses")
    spec = {"name": name, "deep_supervision": {"weights": mode, "normalize": False}}
    ours = lossreg.build(spec)
    inner = lossreg.build(name)
    reference = monai.DeepSupervisionLoss(inner, weight_mode=mode)
    outs, target = _outputs(dtype=torch.float32)
    torch.testing.assert_close(ours(outs, target), reference(outs, target), rtol=1e-6, atol=1e-7)
    assert lossreg.to_config(ours)["deep_supervision"] == spec["deep_supervision"]
    assert lossreg.to_config(lossreg.build(lossreg.to_config(ours))) == lossreg.to_config(ours)


def test_a_list_of_targets_a_weight_list_and_one_tensor():
    objective = lossreg.build({**SPEC, "deep_supervision": {"weights": [3, 1], "normalize": False}})
    plain = lossreg.build(SPEC)
    outs, _ = _outputs(levels=2)
    targets = [(o.detach() > 0.3).double() for o in outs]  # unrelated to any resize
    want = 3 * plain(outs[0], targets[0]) + plain(outs[1], targets[1])
    torch.testing.assert_close(objective(outs, targets), want)
    # one tensor: exactly as without the key
    assert torch.equal(objective(outs[0], targets[0]), plain(outs[0], targets[0]))
    with pytest.raises(lossreg.LossregError, match="weights has 2 entries but .* 3 outputs"):
        objective([*outs, outs[1]], targets[0])
    with pytest.raises(lossreg.LossregError, match="list of 2 tensors but there are 3 outputs"):
        objective([*outs, outs[1]], targets)


def test_class_indices_resize_exactly_and_keywords_route():
    spec = {
        "expr": "ce + dice",
        "terms": {
            "ce": {"name": "cross_entropy", "inputs": {"input": "logits", "target": "labels"}},
            "dice": {
                "name": "dice",
                "mode": "multiclass",
                "inputs": {"input": "logits", "target": "labels"},
            },
        },
        "deep_supervision": {"weights": "same", "normalize": False},
    }
    objective = lossreg.build(spec)
    plain = lossreg.build({k: v for k, v in spec.items() if k != "deep_supervision"})
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (2, 8, 8), generator=gen)
    outs = [torch.randn(2, 3, 8 >> i, 8 >> i, generator=gen, dtype=torch.float64) for i in range(3)]
    got = objective(logits=outs, labels=labels)
    want = sum(plain(logits=o, labels=_down(labels, i)) for i, o in enumerate(outs))
    torch.testing.assert_close(got, want)


def test_a_deep_supervised_term_takes_the_list_through_its_route():
    spec = {
        "expr": "bce_with_logits + 0.5*aux",
        "terms": {
            "aux": {
                "name": "mse",
                "inputs": {"input": "aux_outputs", "target": "target"},
                "deep_supervision": {"weights": "same"},
            },
        },
    }
    objective = lossreg.build(spec)
    outs, target = _outputs(levels=2)
    got = objective(input=outs[0], target=target, aux_outputs=outs)
    mse = torch.nn.functional.mse_loss
    bce = torch.nn.functional.binary_cross_entropy_with_logits(outs[0], target)
    aux = (mse(outs[0], target) + mse(outs[1], _down(target, 1))) / 2
    torch.testing.assert_close(got, bce + 0.5 * aux)
    assert lossreg.to_config(objective)["terms"]["aux"]["deep_supervision"] == {"weights": "same"}


@pytest.mark.parametrize(
    ("block", "path", "match"),
    [
        ({"weights": "linear"}, "deep_supervision.weights", "must be `same`, `exp` or a list"),
        ({"weights": [1, -1]}, "deep_supervision.weights", ">= 0"),
        ({"weights": [0, 0]}, "deep_supervision.weights", "not all 0"),
        ({"normalize": "yes"}, "deep_supervision.normalize", "true or false"),
        ({"levels": 3}, "deep_supervision.levels", "unknown key"),
        ([1, 2], "deep_supervision", "must be a mapping"),
    ],
)
def test_deep_supervision_block_is_validated(block, path, match):
    for spec in ({**SPEC, "deep_supervision": block}, {"name": "mse", "deep_supervision": block}):
        with pytest.raises(lossreg.ConfigError, match=match) as info:
            lossreg.build(spec)
        assert [p.path for p in info.value.problems] == [path]
