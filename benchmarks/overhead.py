"""Per-step cost of recording: no recorder vs TraceRecorder (defaults) vs TensorBoard histograms.

Three CPU workloads (one torch thread, random data): an MLP 784-1024-1024-10 (batch 128),
a small CNN on 1x28x28 (batch 64) and a 2-layer TransformerEncoder (d_model 128, seq 64,
batch 32). Each variant runs interleaved with the baseline in short segments of
alternating order (AB BA AB ...) after a warm-up, so drifts of a shared machine hit both
alike; the recorder and the SummaryWriter live through all their segments, so periodic
work (snapshots, histograms) is included at its real rate. Prints per-step medians and
means as ratios to the baseline, the trace's bytes per step, and two floors as fractions
of a baseline step: the time to read every weight and gradient once ("read w+g") and
every leaf-module output once ("read acts"). Exact per-step statistics need several such
reads (norm, sum, min/max, zero count), so these bound from below what any exact
recorder can cost on that workload.

    python benchmarks/overhead.py            # ~2-3 minutes
    python benchmarks/overhead.py --quick    # ~30 s, noisier
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recorders import TraceRecorder  # noqa: E402


class _Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def _mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


WORKLOADS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], str]] = {
    "mlp": (_mlp, (128, 784), "sgd"),
    "cnn": (_cnn, (64, 1, 28, 28), "sgd"),
    "transformer": (_Transformer, (32, 64, 128), "adam"),
}


class Variant:
    """One model + optimizer + data, and what (if anything) records it."""

    def __init__(self, kind: str, name: str, tmp: str, options: dict | None = None) -> None:
        make, shape, opt = WORKLOADS[name]
        torch.manual_seed(0)
        self.model = make()
        params = self.model.parameters()
        self.opt = (
            torch.optim.SGD(params, lr=0.01, momentum=0.9)
            if opt == "sgd"
            else torch.optim.Adam(params, lr=1e-3)
        )
        self.crit = nn.CrossEntropyLoss()
        self.x = torch.randn(*shape)
        self.y = torch.randint(0, 10, (shape[0],))
        self.kind = kind
        self.rec = None
        self.tb = None
        self.steps = 0
        self.path = os.path.join(tmp, f"{name}.h5")
        if kind == "recorder":
            self.rec = TraceRecorder(self.path, self.model, self.opt, self.crit, **(options or {}))
        elif kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(tmp, f"tb_{name}"))

    def step(self) -> float:
        t0 = time.perf_counter()
        self.opt.zero_grad()
        out = self.model(self.x)
        loss = self.crit(out, self.y)
        loss.backward()
        if self.rec is not None:
            self.rec.step(loss, outputs=out, targets=self.y, inputs=self.x)
        elif self.tb is not None:
            self.tb.add_scalar("loss", loss.item(), self.steps)
            for n, p in self.model.named_parameters():
                self.tb.add_histogram(n, p, self.steps)
                if p.grad is not None:
                    self.tb.add_histogram(n + ".grad", p.grad, self.steps)
        self.opt.step()
        self.steps += 1
        return time.perf_counter() - t0

    def close(self) -> float:
        """Close; the trace's bytes per recorded step (0 for the others)."""
        if self.rec is not None:
            self.rec.close()
            return os.path.getsize(self.path) / max(self.steps, 1)
        if self.tb is not None:
            self.tb.close()
        return 0.0


def _median_ms(fn: Callable[[], object], n: int = 15) -> float:
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def read_floors(v: Variant) -> tuple[float, float]:
    """Milliseconds to read, once, every weight and gradient, and every leaf-module output
    of one step: the least any exact per-step statistic of them can cost."""
    outs: list[torch.Tensor] = []
    leaves = [m for m in v.model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.detach())) for m in leaves]
    v.opt.zero_grad()
    v.crit(v.model(v.x), v.y).backward()
    for h in hooks:
        h.remove()
    ws = [p.detach() for p in v.model.parameters()]
    gs = [p.grad for p in v.model.parameters() if p.grad is not None]
    wg = _median_ms(lambda: (torch._foreach_norm(ws), torch._foreach_norm(gs)))
    acts = _median_ms(lambda: [o.sum() for o in outs if isinstance(o, torch.Tensor)])
    return wg, acts


def interleave(a: Variant, b: Variant, rounds: int, seg: int, warm: int) -> tuple[list[float], list[float]]:
    """Per-step times of ``a`` and ``b`` run in alternating segments (AB, BA, AB, ...)."""
    ta: list[float] = []
    tb: list[float] = []
    for r in range(rounds + warm):
        for v, out in ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta)):
            ts = [v.step() for _ in range(seg)]
            if r >= warm:
                out += ts
    return ta, tb


def run(name: str, rounds: int, seg: int, warm: int, tmp: str, options: dict) -> dict[str, object]:
    """Recorder vs baseline, then TensorBoard vs baseline (kept apart: the histogram variant's
    memory churn slows whatever runs right after it)."""
    base = Variant("baseline", name, tmp)
    rec = Variant("recorder", name, tmp, options)
    t_base, t_rec = interleave(base, rec, rounds, seg, warm)
    out: dict[str, object] = {"model": name, "base_ms": statistics.median(t_base) * 1e3}
    out["recorder_median"] = statistics.median(t_rec) / statistics.median(t_base)
    out["recorder_mean"] = statistics.fmean(t_rec) / statistics.fmean(t_base)
    out["bytes_per_step"] = rec.close()
    tb = Variant("tensorboard", name, tmp)
    t_base2, t_tb = interleave(base, tb, max(rounds // 3, 2), seg, 1)
    out["tensorboard_median"] = statistics.median(t_tb) / statistics.median(t_base2)
    out["tensorboard_mean"] = statistics.fmean(t_tb) / statistics.fmean(t_base2)
    tb.close()
    wg, acts = read_floors(base)
    out["read_wg"] = wg / (out["base_ms"])  # type: ignore[operator]
    out["read_acts"] = acts / (out["base_ms"])  # type: ignore[operator]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (~30 s)")
    ap.add_argument("--models", default=",".join(WORKLOADS), help="comma-separated subset")
    ap.add_argument(
        "--options", default="", help="recorder options instead of the defaults, e.g. every=2,update_every=1"
    )
    args = ap.parse_args(argv)
    options = {k: int(v) for k, v in (kv.split("=") for kv in args.options.split(",") if kv)}
    torch.set_num_threads(1)
    rounds, seg, warm = (10, 5, 1) if args.quick else (40, 5, 2)
    print(f"torch {torch.__version__}, 1 thread, {rounds} rounds x {seg} steps per variant and baseline")
    print(f"recorder options: {options or 'defaults'}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':12s} {'base ms':>8s} {'rec med':>8s} {'rec mean':>9s} {'tb med':>7s} "
          f"{'tb mean':>8s} {'bytes/step':>11s} {'read w+g':>9s} {'read acts':>10s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = run(name, rounds, seg, warm, tmp, options)
            print(
                f"{name:12s} {r['base_ms']:8.2f} {r['recorder_median']:7.3f}x "
                f"{r['recorder_mean']:8.3f}x {r['tensorboard_median']:6.2f}x "
                f"{r['tensorboard_mean']:7.2f}x {r['bytes_per_step']:11.0f} "
                f"{r['read_wg']:8.1%} {r['read_acts']:10.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
