"""What each of the 2 gloo ranks of ``tests/test_distributed.py`` runs (spawned processes).

Every scenario trains the same tiny MLP on the same global batches; rank r takes rows
``r::2`` of each batch, so the data-parallel runs equal one process on the whole batch.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

WORLD, STEPS, BATCH = 2, 24, 16


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(7, 9), nn.ReLU(), nn.Linear(9, 5), nn.ReLU(), nn.Linear(5, 3))


def batches(steps: int = STEPS):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 7, generator=g), torch.randint(0, 3, (BATCH,), generator=g))
            for _ in range(steps)]


class _NoRecorder:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def step(self, **kw):
        pass


def train(path: str, net: nn.Module, rank: int | None, plant: str | None = None, record: bool = True) -> None:
    """SGD over :func:`batches`; ``rank`` None is the single-process reference (whole batch)."""
    from recorders import TraceRecorder

    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    with TraceRecorder(path, net, optimizer=opt, loss_fn=loss_fn) if record else _NoRecorder() as rec:
        for step, (x, y) in enumerate(batches()):
            if rank is not None:
                x, y = x[rank::WORLD].clone(), y[rank::WORLD]
            if plant == "nan" and rank == 1 and step == 15:
                x[0, 0] = float("nan")  # one corrupt record on rank 1 only
            opt.zero_grad()
            out = net(x)
            loss = loss_fn(out, y)
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=y, inputs=x)
            opt.step()
            if plant == "diverge" and rank == 1 and step >= 10:
                with torch.no_grad():  # a rank-local update that no all-reduce undoes
                    inner = net.module if hasattr(net, "module") else net
                    inner[2].weight.mul_(1.001)


def fsdp_model() -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    net = model()
    for layer in (net[0], net[2], net[4]):
        fully_shard(layer)
    return fully_shard(net)


def work(rank: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("TRAINWRECK_STRICT", "1")
    dist.init_process_group("gloo", init_method=f"file://{out}/pg", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=300))
    try:
        from torch.nn.parallel import DistributedDataParallel as DDP

        for plant in ("healthy", "diverge", "nan"):
            train(f"{out}/ddp_{plant}.h5", DDP(model()), rank, plant)
        train(f"{out}/fsdp.h5", fsdp_model(), rank)
        # Only rank 0 records: a collective inside the recorder would leave it waiting for rank 1.
        train(f"{out}/fsdp_rank0_only.h5", fsdp_model(), rank, record=rank == 0)
    finally:
        dist.destroy_process_group()


def spawn(out: str) -> None:
    import torch.multiprocessing as mp

    mp.spawn(work, args=(out,), nprocs=WORLD, join=True)
