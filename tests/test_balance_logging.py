"""Learned balancing (Kendall, Gal and Cipolla 2018) and log_dict (OBJECTIVES.md)."""

from __future__ import annotations

import math

import pytest
import torch

import lossreg

TWO_TASKS = {
    "expr": "a + b",
    "terms": {
        "a": {"name": "mse", "inputs": {"input": "pred_a", "target": "y_a"}},
        "b": {"name": "mse", "inputs": {"input": "pred_b", "target": "y_b"}},
    },
    "balance": {"method": "uncertainty", "terms": ["a", "b"]},
}


def test_uncertainty_replaces_each_term_by_its_formula():
    m = lossreg.build({**TWO_TASKS, "balance": {**TWO_TASKS["balance"], "init": 0.5}})
    names = [n for n, _ in m.named_parameters()]
    assert names == ["balance_s"]  # the optimizer gets them from objective.parameters()
    x = {
        "pred_a": torch.ones(3),
        "y_a": torch.zeros(3),
        "pred_b": torch.full((3,), 2.0),
        "y_b": torch.zeros(3),
    }
    got = m(**x)
    # exp(-s) * L + s for each term, s = 0.5: L_a = 1, L_b = 4
    assert float(got.detach()) == pytest.approx(math.exp(-0.5) * 1 + 0.5 + math.exp(-0.5) * 4 + 0.5)
    assert m.current_weights() == pytest.approx({"a": math.exp(-0.5), "b": math.exp(-0.5)})
    got.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L
    want = torch.tensor([1 - math.exp(-0.5) * 1, 1 - math.exp(-0.5) * 4])
    torch.testing.assert_close(m.balance_s.grad, want)


def test_learned_weights_move_to_the_inverse_noise_level():
    # two regression tasks on the same inputs, noise std 0.5 and 2.0: at the optimum of
    # exp(-s) L + s, exp(-s) = 1/L, and L -> the noise variance, so the weights go to 4 and 1/4
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=gen)
    true = torch.randn(4, 2, generator=gen)
    clean = x @ true
    y_a = clean[:, 0] + 0.5 * torch.randn(512, generator=gen)
    y_b = clean[:, 1] + 2.0 * torch.randn(512, generator=gen)
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    objective = lossreg.build(TWO_TASKS)
    opt = torch.optim.Adam([*net.parameters(), *objective.parameters()], lr=0.1)
    start = objective.current_weights()
    for _ in range(200):
        pred = net(x)
        loss = objective(pred_a=pred[:, 0], y_a=y_a, pred_b=pred[:, 1], y_b=y_b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = objective.current_weights()
    assert start == {"a": 1.0, "b": 1.0}
    noise_a = float(((y_a - clean[:, 0]) ** 2).mean())  # the sample's own noise variance
    noise_b = float(((y_b - clean[:, 1]) ** 2).mean())
    assert w["a"] == pytest.approx(1 / noise_a, rel=0.1)
    assert w["b"] == pytest.approx(1 / noise_b, rel=0.1)
    assert w["a"] / w["b"] == pytest.approx(16, rel=0.2)  # (2.0 / 0.5) ** 2


@pytest.mark.parametrize(
    ("balance", "path", "match"),
    [
        ({"method": "gradnorm", "terms": ["a"]}, "balance.method", "unknown method"),
        ({"terms": ["a"]}, "balance.method", "missing"),
        ({"method": "uncertainty", "terms": ["a", "c"]}, "balance.terms.1", "no term 'c'"),
        ({"method": "uncertainty", "terms": ["a", "a"]}, "balance.terms.1", "listed twice"),
        ({"method": "uncertainty", "terms": []}, "balance.terms", "non-empty list"),
        ({"method": "uncertainty", "terms": ["a"], "init": "zero"}, "balance.init", "finite"),
        ({"method": "uncertainty", "terms": ["a"], "lr": 1}, "balance.lr", "unknown key"),
    ],
)
def test_balance_is_validated(balance, path, match):
    with pytest.raises(lossreg.ConfigError, match=match) as info:
        lossreg.build({**TWO_TASKS, "balance": balance})
    assert [p.path for p in info.value.problems] == [path]


def test_log_dict_has_total_terms_and_weights():
    m = lossreg.build(
        {
            "expr": "l1 + w*mse",
            "weights": {"w": {"schedule": "multistep", "values": [0.0, 2.0], "milestones": [3]}},
        }
    )
    with pytest.raises(lossreg.LossregError, match="not been called yet"):
        m.log_dict()
    m.step(3)
    total = m(torch.tensor([1.0, 3.0]), torch.zeros(2))
    logged = m.log_dict(prefix="train/")
    assert logged == {
        "train/total": pytest.approx(total.detach()),
        "train/l1": 2.0,
        "train/mse": 5.0,
        "train/w/w": 2.0,
    }
    assert all(
        isinstance(v, torch.Tensor) and not v.requires_grad and v.dim() == 0
        for v in logged.values()
    )
    assert m.log_dict(sync=True).keys() == m.log_dict().keys()  # no process group: a no-op
    assert float(m.log_dict(sync=True)["loss/total"]) == float(total)
    learned = lossreg.build(TWO_TASKS)
    learned(pred_a=torch.ones(2), y_a=torch.zeros(2), pred_b=torch.ones(2), y_b=torch.zeros(2))
    assert set(learned.log_dict()) == {"loss/total", "loss/a", "loss/b", "loss/w/a", "loss/w/b"}
