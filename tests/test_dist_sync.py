"""dist_sync: two gloo processes on 127.0.0.1, each holding half the batch under DDP, give the
loss and the DDP-averaged gradients of one process on the whole batch; a world of one gives
exactly the unsynced value. See docs/distributed.md for the derivation."""

import os
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lossreg_builtin.imbalance import generalized_dice, mcc
from lossreg_builtin.segmentation import combo, dice, tversky
from torch import nn

from lossreg import LossregError

pytestmark = pytest.mark.slow
IGNORE = 255


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 6, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (4, 6, 6), generator=gen)
    labels[0, :2] = IGNORE
    labels[3, 4:] = IGNORE
    mask = (torch.rand(4, 1, 6, 6, generator=gen) > 0.6).double()
    return x, labels, mask


def _model():
    torch.manual_seed(0)
    return nn.Conv2d(2, 3, 3, padding=1).double()


def _losses(out, labels, mask, dist_sync):
    kw = {"dist_sync": dist_sync}
    return {
        "dice": dice(out, labels, mode="multiclass", ignore_index=IGNORE, **kw),
        "tversky": tversky(out, labels, mode="multiclass", ignore_index=IGNORE, **kw),
        "combo": combo(out[:, :1], mask, **kw),
        # generalized dice: the class weights come from the synced volumes
        "generalized_dice": generalized_dice(
            out, labels, mode="multiclass", ignore_index=IGNORE, **kw
        ),
        "mcc": mcc(out, labels, mode="multiclass", ignore_index=IGNORE, **kw),
        # masks compose with dist_sync: a masked pixel counts nowhere on any rank
        "dice_masked": dice(
            out, labels, mode="multiclass", ignore_index=IGNORE, mask=mask[:, 0], **kw
        ),
        "mcc_masked": mcc(out[:, :1], mask, mask=mask[:, 0] * 0.5 + 0.5, **kw),
    }


def _worker(rank, world, port):
    warnings.simplefilter("error")  # as pytest's filterwarnings = error
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        x, labels, mask = _data()
        # one process on the whole batch, no synchronisation
        full = _model()
        want = _losses(full(x), labels, mask, dist_sync=False)
        grads = {}
        for name, value in want.items():
            full.zero_grad()
            value.backward(retain_graph=True)
            grads[name] = [p.grad.clone() for p in full.parameters()]
        # this rank's share of the batch, under DDP
        part = slice(rank * 4 // world, (rank + 1) * 4 // world)
        ddp = nn.parallel.DistributedDataParallel(_model())
        for name in want:
            ddp.zero_grad()
            got = _losses(ddp(x[part]), labels[part], mask[part], dist_sync=True)[name]
            torch.testing.assert_close(got, want[name], rtol=0, atol=1e-6)
            got.backward()
            for g, w in zip((p.grad for p in ddp.parameters()), grads[name], strict=True):
                torch.testing.assert_close(g, w, rtol=0, atol=1e-6)
        if world == 1:  # a world of one is exactly the unsynced value and gradient
            out = full(x)
            for name, value in _losses(out, labels, mask, dist_sync=True).items():
                assert torch.equal(value, _losses(out, labels, mask, dist_sync=False)[name])
        # validation runs before the collective: a bad target fails on every rank alike
        bad = labels[part].clone()
        bad[0, 0, 0] = 9
        try:
            dice(ddp(x[part]), bad, mode="multiclass", ignore_index=IGNORE, dist_sync=True)
        except LossregError as exc:
            assert "class index 9" in str(exc)
        else:  # pragma: no cover
            raise AssertionError("no error for class index 9")
        # a whole objective: scheduled weight, deep supervision, dist_sync overlap terms
        _objective_checks(rank, world)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 1])
def test_dist_sync_equals_whole_batch(world):
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(world, _free_port()), nprocs=world, join=True)


# -- a whole objective: scheduled weight, deep supervision, dist_sync overlap terms: values,
# DDP-averaged gradients and log_dict(sync=True) as one process on the whole batch ----------
OBJECTIVE = {
    "expr": "w*dice + tversky",
    "weights": {"w": {"schedule": "linear", "start": 0.2, "end": 1.0, "steps": 4}},
    "terms": {
        "dice": {"name": "dice", "mode": "multiclass", "ignore_index": IGNORE, "dist_sync": True},
        "tversky": {
            "name": "tversky",
            "mode": "multiclass",
            "ignore_index": IGNORE,
            "dist_sync": True,
        },
    },
    "deep_supervision": {"weights": "exp"},
}


class _TwoLevels(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1).double()
        self.aux = nn.Conv2d(3, 3, 1).double()

    def forward(self, x):
        out = self.conv(x)
        return [out, self.aux(nn.functional.avg_pool2d(out, 2))]


def _objective_checks(rank, world):
    import lossreg

    x, labels, _ = _data()
    full, full_obj = _TwoLevels(), lossreg.build(OBJECTIVE)
    ddp, obj = nn.parallel.DistributedDataParallel(_TwoLevels()), lossreg.build(OBJECTIVE)
    part = slice(rank * 4 // world, (rank + 1) * 4 // world)
    for step in range(3):  # both step their schedules identically
        full.zero_grad()
        with _no_sync_of(full_obj):  # the whole batch in one process, nothing synced
            want = full_obj(full(x), labels)
        want.backward()
        ddp.zero_grad()
        got = obj(ddp(x[part]), labels[part])
        got.backward()
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        for g, w in zip(ddp.parameters(), full.parameters(), strict=True):
            torch.testing.assert_close(g.grad, w.grad, rtol=0, atol=1e-6)
        logged = obj.log_dict(sync=True)
        everyone = [None] * world
        dist.all_gather_object(everyone, {k: float(v) for k, v in logged.items()})
        assert all(d == everyone[0] for d in everyone)
        assert everyone[0]["loss/w/w"] == pytest.approx(0.2 + 0.2 * step)
        assert everyone[0]["loss/total"] == pytest.approx(float(want.detach()), abs=1e-6)
        obj.step()
        full_obj.step()


class _no_sync_of:
    """Turn the objective's dist_sync terms off for a reference computed on the whole batch."""

    def __init__(self, objective):
        self.losses = [m for m in objective.modules() if "dist_sync" in getattr(m, "params", {})]

    def __enter__(self):
        for m in self.losses:
            m.params["dist_sync"] = False

    def __exit__(self, *exc):
        for m in self.losses:
            m.params["dist_sync"] = True
