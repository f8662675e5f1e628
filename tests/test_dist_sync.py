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
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 1])
def test_dist_sync_equals_whole_batch(world):
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(world, _free_port()), nprocs=world, join=True)
