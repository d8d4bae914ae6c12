"""Bugs written the way people write them (issue 7's "in-the-wild" class), and healthy runs
that look alarming: small real torch runs at the recorder's default options.

Each builder returns ``(path, expected first cause or None for a healthy run, planted
onset range)``. ``tests/test_wild_runs.py`` asserts them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from recorders import TraceRecorder
from tests._diagnosis_runs import _batches, _blobs

Run = tuple[str, "str | None", tuple[int, int]]


def mlp(d: int = 16, h: int = 64, k: int = 4, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, h), act(), nn.Linear(h, h), act(), nn.Linear(h, k))


def _loop(path: str, model: nn.Module, opt, steps: int, *, x=None, y=None, bs: int = 32, loss_fn=None,
          loss_of: Callable | None = None, zero_every: int = 1, sched=None,
          corrupt: Callable | None = None, before: Callable | None = None) -> str:
    """A hand-written loop: zero_grad every ``zero_every`` steps, ``loss_of(out, y)`` when the loss is
    computed in the loop rather than by ``loss_fn``, ``sched.step()`` after every batch."""
    torch.manual_seed(0)
    if x is None:
        x, y = _blobs(4096)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    with TraceRecorder(path, model, optimizer=opt, loss_fn=loss_fn) as rec:
        for step, xb, yb in _batches(x, y, steps, bs=bs):
            if before is not None:
                before(step)
            if corrupt is not None:
                xb = corrupt(step, xb)
            if step % zero_every == 0:
                opt.zero_grad()
            out = model(xb)
            loss = loss_of(out, yb) if loss_of else loss_fn(out, yb)
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=yb, inputs=xb)
            opt.step()
            if sched is not None:
                sched.step()
            if not torch.isfinite(loss):
                break
    return path


def sum_reduction(path: str) -> Run:
    """CrossEntropyLoss(reduction="sum") on batches of 256 with an lr tuned for the mean: 256x steps."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.SGD(m.parameters(), lr=0.05), 400, bs=256,
          loss_fn=nn.CrossEntropyLoss(reduction="sum"))
    return path, "lr_too_high", (0, 0)


def frozen_head(path: str) -> Run:
    """A freezing loop meant for the backbone that hits the head instead."""
    torch.manual_seed(1)
    m = mlp()
    for p in m[-1].parameters():
        p.requires_grad = False
    _loop(path, m, torch.optim.Adam(m.parameters(), lr=1e-3), 400)
    return path, "frozen_weights", (0, 0)


def head_replaced(path: str) -> Run:
    """The classifier head is swapped for a new one after the optimiser was built (never updated)."""
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    m[4] = nn.Linear(64, 4)
    _loop(path, m, opt, 300)
    return path, "frozen_weights", (0, 0)


def functional_softmax(path: str) -> Run:
    """``F.cross_entropy(F.softmax(out, dim=-1), y)`` in the loop."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.Adam(m.parameters(), lr=1e-3), 400,
          loss_of=lambda o, y: F.cross_entropy(F.softmax(o, dim=-1), y))
    return path, "double_softmax", (0, 0)


def zero_grad_per_epoch(path: str) -> Run:
    """``opt.zero_grad()`` indented under the epoch loop, not the batch loop (every 64 batches)."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.SGD(m.parameters(), lr=0.01), 400, zero_every=64)
    return path, "missing_zero_grad", (0, 1)


def exponential_per_batch(path: str) -> Run:
    """ExponentialLR(0.95), meant per epoch, stepped after every batch: the lr is ~0 by step 100."""
    torch.manual_seed(1)
    m = mlp()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    _loop(path, m, opt, 400, sched=torch.optim.lr_scheduler.ExponentialLR(opt, 0.95))
    return path, "lr_too_low", (0, 60)


def chaotic_tanh_adam(path: str) -> Run:
    """15 tanh layers at Xavier gain 2.5 (chaotic regime) with Adam: gradients grow toward the input."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(16, 64), nn.Tanh()]
    for _ in range(14):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    m = nn.Sequential(*layers, nn.Linear(64, 4))
    for mod in m:
        if isinstance(mod, nn.Linear):
            nn.init.xavier_normal_(mod.weight, gain=2.5)
    _loop(path, m, torch.optim.Adam(m.parameters(), 1e-3), 300)
    return path, "exploding_gradients", (0, 0)


def unit_bug_batch(path: str) -> Run:
    """One batch at step 900 arrives in other units (x 1e4): the net dies of the step it causes."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.SGD(m.parameters(), lr=0.05), 1200,
          corrupt=lambda s, xb: xb * 1e4 if s == 900 else xb)
    return path, "data_outlier", (900, 901)


def planned_unfreeze(path: str) -> Run:
    """Healthy: the first layer is frozen for 300 steps on purpose, then trained."""
    torch.manual_seed(1)
    m = mlp()
    for p in m[0].parameters():
        p.requires_grad = False

    def unfreeze(step: int) -> None:
        if step == 300:
            for p in m[0].parameters():
                p.requires_grad = True

    _loop(path, m, torch.optim.Adam(m.parameters(), 1e-3), 1200, before=unfreeze)
    return path, None, (0, 0)


def fine_tune(path: str) -> Run:
    """Healthy: a trained model fine-tuned at a low lr: the loss starts low and barely moves."""
    torch.manual_seed(1)
    m = mlp()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x, y = _blobs(4096)
    for _, xb, yb in _batches(x, y, 800):
        opt.zero_grad()
        F.cross_entropy(m(xb), yb).backward()
        opt.step()
    _loop(path, m, torch.optim.Adam(m.parameters(), 1e-4), 1000, x=x, y=y)
    return path, None, (0, 0)


def linear_scaling(path: str) -> Run:
    """Healthy: batch 512 with SGD at lr 0.5 (the linear scaling rule)."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9), 800, bs=512)
    return path, None, (0, 0)


def gradient_accumulation(path: str) -> Run:
    """Healthy: gradients accumulated over 4 micro-batches, zeroed every 4."""
    torch.manual_seed(1)
    m = mlp()
    _loop(path, m, torch.optim.SGD(m.parameters(), lr=0.05), 400, zero_every=4)
    return path, None, (0, 0)


BUGS = ("sum_reduction", "frozen_head", "head_replaced", "functional_softmax", "zero_grad_per_epoch",
        "exponential_per_batch", "chaotic_tanh_adam", "unit_bug_batch")
HEALTHY = ("planned_unfreeze", "fine_tune", "linear_scaling", "gradient_accumulation")
