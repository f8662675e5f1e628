"""Named weights and schedules (OBJECTIVES.md): values against PyTorch's own LR schedulers,
validation with path-naming errors, the step counter as buffers, to_config, torch.compile."""

from __future__ import annotations

import math

import pytest
import torch

import lossreg
from lossreg._schedules import parse_weight

X, Y = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])  # l1 = 2, mse = 5


def _lr_trace(make, steps):
    """Learning rates of a torch scheduler over ``steps`` steps, from base lr 1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules_equal_torch_lr_schedulers():
    lr = torch.optim.lr_scheduler
    cases = [  # (our schedule, the torch scheduler with base lr 1 that traces the same values)
        (
            {"schedule": "multistep", "values": [1.0, 0.1, 0.01], "milestones": [3, 7]},
            lambda o: lr.MultiStepLR(o, milestones=[3, 7], gamma=0.1),
        ),
        (
            {"schedule": "exponential", "start": 1.0, "gamma": 0.9},
            lambda o: lr.ExponentialLR(o, gamma=0.9),
        ),
        (
            {"schedule": "linear", "start": 0.2, "end": 1.0, "steps": 6},
            lambda o: lr.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=6),
        ),
        (
            {"schedule": "cosine", "start": 1.0, "end": 0.1, "steps": 8},
            lambda o: lr.CosineAnnealingLR(o, T_max=8, eta_min=0.1),
        ),
    ]
    for spec, make in cases:
        s = parse_weight(spec)
        got = [s.value(t) for t in range(9)]
        assert got == pytest.approx(_lr_trace(make, 9), rel=1e-12, abs=1e-12), spec


def test_schedule_formulas_of_the_contract():
    lin = parse_weight(
        {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 2000, "begin": 500}
    )
    assert [lin.value(t) for t in (0, 500, 1500, 2500, 10_000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    cos = parse_weight({"schedule": "cosine", "start": 0.0, "end": 2.0, "steps": 4, "begin": 2})
    # end + (start-end)*(1+cos(pi*u))/2 at u = 1/4: 2 - 2*(1+cos(pi/4))/2
    assert cos.value(3) == pytest.approx(2 - (1 + math.cos(math.pi / 4)), rel=1e-15)
    assert (cos.value(0), cos.value(6), cos.value(99)) == (0.0, 2.0, 2.0)
    pw = parse_weight({"schedule": "piecewise", "points": [[10, 1.0], [20, 3.0], [30, 0.0]]})
    assert [pw.value(t) for t in (0, 10, 15, 20, 25, 30, 99)] == [1, 1, 2, 3, 1.5, 0, 0]
    ex = parse_weight(
        {"schedule": "exponential", "start": 1.0, "gamma": 2.0, "begin": 3, "max": 5.0, "min": 0.5}
    )
    assert [ex.value(t) for t in (0, 3, 4, 5, 6, 2000)] == [1, 1, 2, 4, 5, 5]


@pytest.mark.parametrize(
    ("weight", "path", "match"),
    [
        ({"schedule": "ramp"}, "weights.w.schedule", "unknown schedule; expected one of: linear"),
        ({"start": 0.0}, "weights.w.schedule", "missing"),
        ({"schedule": "linear", "start": 0, "end": 1}, "weights.w.steps", "required field"),
        ({"schedule": "linear", "start": 0, "end": 1, "steps": 0}, "weights.w.steps", "> 0"),
        (
            {"schedule": "linear", "start": 0, "end": 1, "steps": 3, "stop": 1},
            "weights.w.stop",
            "unknown field",
        ),
        (
            {"schedule": "cosine", "start": float("nan"), "end": 1, "steps": 3},
            "weights.w.start",
            "finite",
        ),
        (
            {"schedule": "linear", "start": 0, "end": 1, "steps": 3, "begin": -1},
            "weights.w.begin",
            ">= 0",
        ),
        (
            {"schedule": "piecewise", "points": [[0, 1], [0, 2]]},
            "weights.w.points.1",
            "must increase",
        ),
        ({"schedule": "piecewise", "points": [[0, 1, 2]]}, "weights.w.points", "pairs"),
        (
            {"schedule": "multistep", "values": [1, 2, 3], "milestones": [5, 5]},
            "weights.w.milestones.1",
            "must increase",
        ),
        (
            {"schedule": "multistep", "values": [1, 2], "milestones": [5, 6]},
            "weights.w.values",
            "one value more",
        ),
        ({"schedule": "exponential", "start": 1, "gamma": 0}, "weights.w.gamma", "> 0"),
        (
            {"schedule": "exponential", "start": 1, "gamma": 0.5, "min": 2, "max": 1},
            "weights.w.min",
            "max",
        ),
        ("high", "weights.w", "finite number or a mapping"),
        (True, "weights.w", "finite number or a mapping"),
    ],
)
def test_every_schedule_field_is_validated(weight, path, match):
    with pytest.raises(lossreg.ConfigError, match=match) as info:
        lossreg.build({"expr": "l1 + w*mse", "weights": {"w": weight}})
    assert [p.path for p in info.value.problems] == [path]


def test_weight_names_collide_with_nothing_and_are_used():
    with pytest.raises(lossreg.ConfigError, match="weights.mse: 'mse' is both a weight and a term"):
        lossreg.build({"expr": "l1 + mse", "weights": {"mse": 1.0}, "terms": {"mse": "mse"}})
    with pytest.raises(lossreg.ConfigError, match="weights.v: weight is defined but `expr`"):
        lossreg.build({"expr": "l1 + w*mse", "weights": {"w": 1.0, "v": 2.0}})
    with pytest.raises(
        lossreg.ConfigError, match="weights.1w: a weight name must be an identifier"
    ):
        lossreg.build({"expr": "l1", "weights": {"1w": 1.0}})
    with pytest.raises(lossreg.ConfigError, match="expr: expression 'w' names no loss"):
        lossreg.build({"expr": "w", "weights": {"w": 1.0}})
    # a weight shadows a registered loss of the same name: `focal` is a number here
    m = lossreg.build({"expr": "focal*l1", "weights": {"focal": 3.0}})
    assert list(m.terms) == ["l1"] and float(m(X, Y)) == 6.0


def _ramped():
    return lossreg.build(
        {
            "expr": "l1 + w*mse + c*l1",
            "weights": {
                "w": {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 10, "begin": 2},
                "c": 0.5,
            },
        }
    )


def test_step_set_step_current_weights_and_forward():
    m = _ramped()
    assert m.current_weights() == {"w": 0.0, "c": 0.5}
    assert float(m(X, Y)) == 2 + 0 + 1
    m.step()
    m.step(6)  # t = 7: u = 0.5
    assert m.step_number == 7 and m.current_weights()["w"] == 0.5
    assert float(m(X, Y)) == 2 + 2.5 + 1
    m(X, Y)
    assert m.step_number == 7  # forward never advances the counter
    m.set_step(100)
    assert float(m(X, Y)) == 2 + 5 + 1
    with pytest.raises(lossreg.LossregError, match="t must be an integer >= 0, got -1"):
        m.set_step(-1)


def test_state_dict_resumes_the_schedule_exactly():
    m = _ramped()
    m.step(5)
    state = m.state_dict()
    assert int(state["step_count"]) == 5
    fresh = _ramped()
    fresh.load_state_dict(state)
    assert fresh.step_number == 5 and fresh.current_weights() == m.current_weights()
    fresh.step()
    m.step()
    assert torch.equal(fresh.weight_values, m.weight_values)
    assert torch.equal(fresh(X, Y), m(X, Y))


def test_to_config_round_trips_the_weights_block():
    m = _ramped()
    m.step(4)
    config = lossreg.to_config(m)
    assert config["weights"] == {
        "w": {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 10, "begin": 2},
        "c": 0.5,
    }
    again = lossreg.build(config)
    assert lossreg.to_config(again) == config and again.step_number == 0
    m.set_step(0)
    assert torch.equal(again.weight_values, m.weight_values)


def test_stepping_does_not_recompile():
    import torch._dynamo

    torch._dynamo.reset()
    frames = []

    def backend(gm, example_inputs):  # counts every (re)compilation of a graph
        frames.append(gm)
        return gm.forward

    m = _ramped()
    compiled = torch.compile(m, backend=backend)
    warm = None
    for _ in range(20):
        got = compiled(X, Y)
        warm = len(frames) if warm is None else warm  # graphs of the first call (graph breaks)
        assert float(got) == pytest.approx(2 + 5 * m.current_weights()["w"] + 1)
        m.step()
    assert warm >= 1 and len(frames) == warm, f"{len(frames) - warm} recompilations in 20 steps"
    assert m.current_weights()["w"] == 1.0  # the ramp was crossed while compiled


def test_term_names_are_free_identifiers():
    keys = ["training", "to", "keys", "forward", "state_dict"]
    m = lossreg.build({"expr": " + ".join(keys), "terms": {k: "l1" for k in keys}})
    assert float(m(X, Y)) == 10.0 and list(m.last_values) == keys
    assert m.training is True and callable(m.terms.to)  # attributes keep their meaning
    assert list(m.terms) == keys and isinstance(m.terms["to"], torch.nn.Module)
    assert lossreg.to_config(lossreg.build(lossreg.to_config(m))) == lossreg.to_config(m)


def test_a_long_chain_forwards_pickles_copies_and_compiles():
    import copy
    import pickle

    m = lossreg.build("l1" + "+1-1" * 500)  # a 1001-term chain: a tree 1000 deep
    assert float(m(X, Y)) == 2.0
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert float(other(X, Y)) == 2.0
    assert float(torch.compile(m, backend="eager")(X, Y)) == 2.0


def test_a_term_must_be_a_scalar():
    with pytest.raises(
        lossreg.ConfigError, match="terms.l1.reduction: .*must reduce to one number"
    ):
        lossreg.build({"expr": "l1 + mse", "terms": {"l1": {"name": "l1", "reduction": "none"}}})

    @lossreg.register("test_sched_elementwise", inputs={"input": "real", "target": "real"})
    def elementwise(input, target):
        return (input - target).abs()

    m = lossreg.build("l1 + test_sched_elementwise")
    with pytest.raises(
        lossreg.LossregError, match=r"term 'test_sched_elementwise' returned shape \(2,\)"
    ):
        m(X, Y)
