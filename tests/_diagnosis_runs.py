"""Small real torch runs of the failures users bring (issue 7's measured misses), each a few seconds.

Every builder trains with the recorder at its default options and returns
``(path, planted)``: the trace and the step range where the fault acts.
"""

from __future__ import annotations

import torch
from torch import nn

from recorders import TraceRecorder


def _blobs(n: int = 2048, d: int = 16, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 0.35
    y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    return x, y


def _batches(x: torch.Tensor, y: torch.Tensor, steps: int, bs: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    pos = 0
    for step in range(steps):
        if pos + bs > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        idx = perm[pos:pos + bs]
        pos += bs
        yield step, x[idx], y[idx]


def deep_mlp(d: int = 16, width: int = 32, depth: int = 20, k: int = 4, act=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d, width), act()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, k))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear) and act is nn.ReLU:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def _train(path: str, model: nn.Module, opt, x, y, steps: int, *, corrupt=None, lr_at=None,
           stop_nonfinite: bool = True, loss_fn=None, loss_input=None, scheduler=None) -> None:
    """Record ``steps`` steps of the CONTRACT §2 loop (CrossEntropyLoss unless ``loss_fn``) on
    ``_batches(x, y)``. Hooks: ``corrupt(step, xb)`` edits a batch, ``lr_at(step)`` sets the lr,
    ``loss_input(out)`` is what the loss is computed on (default the outputs themselves),
    ``scheduler`` is stepped after every optimiser step; ``stop_nonfinite``: stop at a NaN/Inf loss."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    with TraceRecorder(path, model, optimizer=opt, loss_fn=loss_fn) as rec:
        for step, xb, yb in _batches(x, y, steps):
            if corrupt is not None:
                xb = corrupt(step, xb)
            if lr_at is not None:
                for group in opt.param_groups:
                    group["lr"] = lr_at(step)
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out if loss_input is None else loss_input(out), yb)
            loss.backward()
            rec.step(loss=loss, outputs=out, targets=yb, inputs=xb)
            opt.step()
            if scheduler is not None:
                scheduler.step()
            if stop_nonfinite and not torch.isfinite(loss):
                break


def corrupt_batch(path: str, steps: int = 1600, at: int = 1240, depth: int = 12
                  ) -> tuple[str, tuple[int, int]]:
    """A deep ReLU MLP (12 layers; 20 in issue 7), SGD; one batch at ``at`` arrives in the wrong
    unit (×1e4): NaN soon after."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=depth)
    opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)

    def corrupt(step, xb):
        return xb * 1e4 if step == at else xb

    _train(path, model, opt, x, y, steps, corrupt=corrupt)
    return path, (at, at + 3)


def lr_ramp(path: str, steps: int = 1600, start: int = 1000, factor: float = 400.0, depth: int = 12
            ) -> tuple[str, tuple[int, int]]:
    """The same MLP at a good lr until ``start``, then the lr ramps ``factor``× over 1,000 steps."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=depth)
    lr0 = 0.003
    opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=0.9)

    def lr_at(step):
        if step < start:
            return lr0
        return lr0 * factor ** min((step - start) / 400, 1.0)

    _train(path, model, opt, x, y, steps, lr_at=lr_at)
    return path, (start, steps)


def chaotic_tanh(path: str, steps: int = 300) -> tuple[str, tuple[int, int]]:
    """A 20-layer tanh MLP initialised at gain 3 (the chaotic regime): gradients grow through depth."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=20, width=64, act=nn.Tanh)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=3.0 / m.in_features ** 0.5)
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _train(path, model, opt, x, y, steps)
    return path, (0, steps)


def cnn_huge_init(path: str, steps: int = 300) -> tuple[str, tuple[int, int]]:
    """A small CNN on 8x8 images whose conv and linear weights start 20x too large."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 4, (1024,), generator=g)
    proto = torch.randn(4, 1, 8, 8, generator=g)
    x = proto[y] + 0.5 * torch.randn(1024, 1, 8, 8, generator=g)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 64, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(20.0)  # BUG: a hand-rolled init 20x the default scale
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _train(path, model, opt, x, y, steps)
    return path, (0, steps)


def lr_far_too_high(path: str, steps: int = 300) -> tuple[str, tuple[int, int]]:
    """A tanh MLP with SGD at lr 5 (a good lr is ~0.05): the first steps pin the tanh units."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=4, width=64, act=nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    _train(path, model, opt, x, y, steps)
    return path, (0, steps)


class _WithHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def head_after_optimizer(path: str, steps: int = 300) -> tuple[str, tuple[int, int]]:
    """The optimiser is built before the head is attached: the head is never in it (never updated,
    and ``opt.zero_grad()`` never clears its gradient)."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = _WithHead()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.head = nn.Linear(64, 4)  # BUG: created after the optimiser
    _train(path, model, opt, x, y, steps)
    return path, (0, steps)


def softmax_in_loop(path: str, steps: int = 200) -> tuple[str, tuple[int, int]]:
    """The model returns logits (recorded as outputs), but the loop feeds softmax(out) to
    CrossEntropyLoss: the loss cannot fall below log(1 + (C-1)/e)."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=3, width=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    _train(path, model, opt, x, y, steps, stop_nonfinite=False,
           loss_input=lambda out: torch.softmax(out, dim=1))  # BUG: CrossEntropyLoss applies its own
    return path, (0, steps)


def scheduler_per_batch(path: str, steps: int = 600) -> tuple[str, tuple[int, int]]:
    """StepLR(step_size=20 epochs' worth, gamma=0.1) stepped every batch instead of every epoch:
    the learning rate is 1e-6 of its start by step 120 and the loss freezes far from trained."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=3, width=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.1)
    # BUG: _train steps the scheduler after every batch; it was meant once per epoch
    _train(path, model, opt, x, y, steps, stop_nonfinite=False, scheduler=sched)
    return path, (20, 80)


def healthy_schedule(path: str, kind: str, steps: int = 600) -> tuple[str, tuple[int, int]]:
    """A small MLP trained well under a schedule with alarming but normal events: ``restarts``
    (cosine warm restarts), ``onecycle`` (a 25x climb, then annealing) or ``drop`` (10x at 60 %)."""
    torch.manual_seed(0)
    x, y = _blobs()
    model = deep_mlp(depth=3, width=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if kind == "restarts":
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=150)
    elif kind == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    else:
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.6 * steps)], gamma=0.1)
    _train(path, model, opt, x, y, steps, stop_nonfinite=False, scheduler=sched)
    return path, (0, 0)
