"""``log_dict``'s optional cross-rank averaging: one plain all-reduce of detached values."""

from __future__ import annotations

import torch

__all__ = ["mean_across_ranks"]


def mean_across_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average every value over the default ``torch.distributed`` group.

    Not differentiable on purpose: logged numbers are detached. Without an initialised process
    group, or in a world of one, the values are returned unchanged.

    >>> mean_across_ranks({"loss/total": torch.tensor(2.0)})
    {'loss/total': tensor(2.)}
    """
    import torch.distributed as dist

    if not values or not (dist.is_available() and dist.is_initialized()):
        return values
    world = dist.get_world_size()
    if world == 1:
        return values
    keys = list(values)
    # float64 so the average of float32 values is the same on every rank, whatever the order
    flat = torch.stack([values[k].detach().reshape(()).double() for k in keys])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    return {k: flat[i].to(values[k].dtype) for i, k in enumerate(keys)}
