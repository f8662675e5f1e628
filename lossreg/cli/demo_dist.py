"""``lossreg demo --nproc N``: the demo's training as N local ``torch.distributed`` processes.

Each process (gloo backend, CPU, one thread) trains the same seeded net under
``DistributedDataParallel`` on its ``1/N`` share of every batch; the overlap terms run with
``dist_sync: true``, so the dice of each step is the dice of the whole batch, and DDP's averaged
gradients are the single-process gradients (docs/distributed.md derives why). Per-pixel means
(BCE, focal) are averaged by DDP over equal shares, which is the whole batch's mean again. Rank
0 validates and hands its results back to the parent, which prints the same table as one
process: the quality matches the single-process run up to floating-point reordering.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from pathlib import Path
from typing import Any

import torch

from .demo import RunResult, make_blobs, objectives, train

__all__ = ["train_distributed"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(rank: int, world: int, port: int, job: dict[str, Any], result_file: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        train_data = make_blobs(job["n_train"], seed=job["seed"])
        val_data = make_blobs(job["n_val"], seed=job["seed"] + 10_000)
        results = {}
        for label, objective in objectives(job["config"], dist_sync=True).items():
            results[label] = train(
                objective, label, train_data, val_data, steps=job["steps"], seed=job["seed"],
                shard=(rank, world), wrap=DistributedDataParallel,
            )  # fmt: skip
        if rank == 0:
            Path(result_file).write_bytes(pickle.dumps(results))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def train_distributed(
    config: Path | None, nproc: int, *, steps: int, seed: int, n_train: int, n_val: int
) -> dict[str, RunResult]:
    """Train the demo's objectives in ``nproc`` processes; rank 0's results."""
    import torch.multiprocessing as mp

    job = {"config": config, "steps": steps, "seed": seed, "n_train": n_train, "n_val": n_val}
    with tempfile.TemporaryDirectory() as tmp:
        result_file = os.path.join(tmp, "results.pkl")
        args = (nproc, _free_port(), job, result_file)
        mp.spawn(_rank_main, args=args, nprocs=nproc, join=True)  # type: ignore[attr-defined, no-untyped-call]
        loaded: dict[str, RunResult] = pickle.loads(Path(result_file).read_bytes())
    return loaded
