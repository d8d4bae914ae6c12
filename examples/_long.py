"""Shared parts of the long scenarios (1,000–6,000 steps) that train well for a while and then fail.

Each long scenario keeps its fault in its own file, marked ``# BUG``, as a hook this loop
calls: ``batch_hook(step, x, y) -> (x, y)`` (what the data pipeline hands over at that
step), ``lr_hook(step) -> float | None`` (a hand-written schedule), ``zero_grad(step) -> bool``.
``ONSET`` in a scenario is the ``(first, last)`` step range the diagnosis must put the
top cause's onset in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from examples import _common as C

BatchHook = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``Linear`` layers of ``sizes`` with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def switch(before: DataLoader, after: DataLoader, at: int) -> Callable[[int], DataLoader]:
    """A pipeline that changes mid-run: ``before`` for the epochs that start before step ``at``,
    ``after`` from then on (for ``train``/``stream``, which ask it at every epoch start)."""
    return lambda step: before if step < at else after


def stream(loader: DataLoader | Callable[[int], DataLoader], steps: int
           ) -> Iterator[tuple[int, bool, torch.Tensor, torch.Tensor]]:
    """``(step, epoch_end, x, y)``; ``loader`` may be a function of the step (a pipeline that
    changes mid-run: it is asked again at every epoch start)."""
    step = 0
    while step < steps:
        current = loader(step) if callable(loader) and not isinstance(loader, DataLoader) else loader
        n = len(current)
        for i, (x, y) in enumerate(current):
            yield step, i == n - 1, x, y
            step += 1
            if step >= steps:
                return


def train(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable, loader, rec, steps: int, *,
          batch_hook: BatchHook | None = None, lr_hook: Callable[[int], float | None] | None = None,
          zero_grad: Callable[[int], bool] | None = None, scheduler=None,
          val: tuple[torch.Tensor, torch.Tensor] | None = None, val_loss_fn: Callable | None = None
          ) -> float:
    """The CONTRACT §2 loop with the scenario's hooks; returns the last finite training loss."""
    model.train()
    last = float("nan")
    for step, epoch_end, x, y in stream(loader, steps):
        if batch_hook is not None:
            x, y = batch_hook(step, x, y)
        if lr_hook is not None and (lr := lr_hook(step)) is not None:
            for g in opt.param_groups:
                g["lr"] = lr
        if zero_grad is None or zero_grad(step):
            opt.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        rec.step(loss=loss, outputs=out, targets=y, inputs=x)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())
        if value == value and abs(value) != float("inf"):
            last = value
        if epoch_end and val is not None:
            rec.log("val_loss", C.evaluate(model, val_loss_fn or loss_fn, *val))
    return last
