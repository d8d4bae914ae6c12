"""Per-step cost of recording: no recorder vs TraceRecorder (defaults, full detail) vs TensorBoard.

Five CPU workloads (one torch thread, random data): an MLP 784-1024-1024-10 (batch 128),
a small CNN on 1x28x28 (batch 64), a 2-layer TransformerEncoder (d_model 128, seq 64,
batch 32), a tiny MLP 20-64-64-3 (batch 32) and a deep one, 24 x (Linear 128 + LayerNorm
+ ReLU) (batch 64); ``--scale`` adds 500 x (Linear 8 + ReLU + Dropout 0): 1,000 parameter
tensors, 1,500 leaf modules. Each variant runs interleaved with the baseline in short
segments of alternating order (AB BA AB ...) after a warm-up, so drifts of a shared
machine hit both alike; the recorders and the SummaryWriter live through all their
segments, so periodic work (snapshots, histograms, measured rows) is included at its real
rate. A recorder is first run alone through its dense start (``dense_start`` steps, all
measured; its cost is printed as "start ms/step"): the ratios are the steady state.
Prints per-step medians as ratios to the baseline for the recorder at default options
("rec"), at full detail (``budget=1``: every statistic on every row, "full") and for
TensorBoard histograms of every parameter and gradient every step ("tb"), the trace's
bytes per step in the steady state, the share of measured rows, the open + close time of
a recorder, and two floors as fractions of a baseline step: the time to read every
weight and gradient once ("read w+g") and every leaf-module output once ("read acts").

``--compiled`` also times ``torch.compile`` (inductor) models, recorded vs plain, on the
MLP and the transformer.

    python benchmarks/overhead.py            # ~5 minutes
    python benchmarks/overhead.py --quick    # ~1 minute, noisier
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
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


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))


def _deep() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(24):
        layers += [nn.Linear(128, 128), nn.LayerNorm(128), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 10))


def _scale() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(500):
        layers += [nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.0)]
    return nn.Sequential(*layers)


WORKLOADS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], str]] = {
    "mlp": (_mlp, (128, 784), "sgd"),
    "cnn": (_cnn, (64, 1, 28, 28), "sgd"),
    "transformer": (_Transformer, (32, 64, 128), "adam"),
    "tiny": (_tiny, (32, 20), "sgd"),
    "deep": (_deep, (64, 128), "sgd"),
    "scale": (_scale, (16, 8), "sgd"),
}
CLASSES = {"tiny": 3, "scale": 8}


class Variant:
    """One model + optimizer + data, and what (if anything) records it."""

    def __init__(
        self, kind: str, name: str, tmp: str, options: dict | None = None, compiled: bool = False
    ) -> None:
        make, shape, opt = WORKLOADS[name]
        torch.manual_seed(0)
        self.model = make()
        self.fwd = torch.compile(self.model) if compiled else self.model
        params = self.model.parameters()
        self.opt = (
            torch.optim.SGD(params, lr=0.01, momentum=0.9)
            if opt == "sgd"
            else torch.optim.Adam(params, lr=1e-3)
        )
        self.crit = nn.CrossEntropyLoss()
        self.x = torch.randn(*shape)
        self.y = torch.randint(0, CLASSES.get(name, 10), (shape[0],))
        self.kind = kind
        self.rec = None
        self.tb = None
        self.steps = 0
        self.path = os.path.join(tmp, f"{name}-{kind}-{len(os.listdir(tmp))}.h5")
        self.open_s = 0.0
        if kind == "recorder":
            t0 = time.perf_counter()
            self.rec = TraceRecorder(self.path, self.fwd, self.opt, self.crit, **(options or {}))
            self.open_s = time.perf_counter() - t0
        elif kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(tmp, f"tb_{name}"))

    def step(self) -> float:
        t0 = time.perf_counter()
        self.opt.zero_grad()
        out = self.fwd(self.x)
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

    def close(self) -> dict[str, float]:
        """Close; for a recorder: bytes per step after the dense start, measured share, close time."""
        if self.tb is not None:
            self.tb.close()
        if self.rec is None:
            return {}
        t0 = time.perf_counter()
        self.rec.close()
        close_s = time.perf_counter() - t0
        import h5py

        with h5py.File(self.path, "r") as f:
            measured = f["steps/measured"][:]
            row_bytes = _row_bytes(f, len(measured))
        later = measured[int(self.rec.options.dense_start) :]
        return {
            "bytes_per_step": row_bytes,
            "measured": float((later > 0).mean()) if len(later) else float("nan"),
            "open_close_s": self.open_s + close_s,
        }


def _row_bytes(f, n: int) -> float:
    """Bytes a row adds to the file: fixed-width row datasets at their width, compressed ones
    at their stored size per row, the summary at its size per step (snapshots, histograms
    and liveness windows are bounded or periodic and left out)."""
    total = 0.0

    def visit(name: str, obj) -> None:
        nonlocal total
        if not hasattr(obj, "shape") or not obj.shape or obj.maxshape[0] is not None:
            return
        if name.startswith(("steps/", "params/", "modules/", "outputs/", "targets/", "inputs/")):
            if obj.compression:
                total += obj.id.get_storage_size() / max(n, 1)
            else:
                total += obj.dtype.itemsize * float(np.prod(obj.shape[1:]))
        elif name.startswith("summary/") and obj.shape[0]:
            block = int(name.split("/")[1][1:])
            total += obj.dtype.itemsize * float(np.prod(obj.shape[1:])) / block

    f.visititems(visit)
    return total


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


def _ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def _through_start(v: Variant) -> float:
    """Run a recorder alone through its dense start; its mean ms per step there."""
    n = int(v.rec.options.dense_start) + 5 if v.rec is not None else 5
    return statistics.fmean(v.step() for _ in range(n)) * 1e3


def run(name: str, rounds: int, seg: int, warm: int, tmp: str, options: dict) -> dict[str, object]:
    """Recorder (defaults, then full detail) vs baseline, then TensorBoard vs baseline (kept
    apart: the histogram variant's memory churn slows whatever runs right after it)."""
    base = Variant("baseline", name, tmp)
    out: dict[str, object] = {"model": name}
    for label, opts in (("rec", options), ("full", {**options, "budget": 1.0})):
        rec = Variant("recorder", name, tmp, opts)
        out[f"{label}_start_ms"] = _through_start(rec)
        t_base, t_rec = interleave(base, rec, rounds, seg, warm)
        out["base_ms"] = statistics.median(t_base) * 1e3
        out[label] = _ratio(t_rec, t_base)
        for key, value in rec.close().items():
            out[f"{label}_{key}"] = value
    if name != "scale":
        tb = Variant("tensorboard", name, tmp)
        t_base2, t_tb = interleave(base, tb, max(rounds // 3, 2), seg, 1)
        out["tb"] = _ratio(t_tb, t_base2)
        tb.close()
    else:
        out["tb"] = float("nan")
    wg, acts = read_floors(base)
    out["read_wg"] = wg / (out["base_ms"])  # type: ignore[operator]
    out["read_acts"] = acts / (out["base_ms"])  # type: ignore[operator]
    return out


def run_compiled(name: str, rounds: int, seg: int, tmp: str) -> dict[str, float]:
    """torch.compile'd model, recorded (defaults) vs plain; compile time of each."""
    import torch._dynamo

    torch._dynamo.reset()
    base = Variant("baseline", name, tmp, compiled=True)
    t0 = time.perf_counter()
    base.step()
    plain_compile = time.perf_counter() - t0
    rec = Variant("recorder", name, tmp, compiled=True)
    t0 = time.perf_counter()
    rec.step()
    rec_compile = time.perf_counter() - t0
    _through_start(rec)
    t_base, t_rec = interleave(base, rec, rounds, seg, 1)
    rec.close()
    return {"base_ms": statistics.median(t_base) * 1e3, "rec": _ratio(t_rec, t_base),
            "plain_compile_s": plain_compile, "rec_compile_s": rec_compile}


def _print_row(r: dict) -> None:
    print(
        f"{r['model']:12s} {r['base_ms']:8.2f} {r['rec']:7.3f}x {r['full']:7.3f}x {r['tb']:7.2f}x "
        f"{r['rec_measured']:7.0%} {r['rec_bytes_per_step']:10.0f} {r['full_bytes_per_step']:10.0f} "
        f"{r['rec_start_ms']:9.2f} {r['rec_open_close_s']:7.3f} {r['read_wg']:8.1%} {r['read_acts']:9.1%}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (~1 minute)")
    ap.add_argument("--models", default="mlp,cnn,transformer,tiny,deep", help="comma-separated subset")
    ap.add_argument("--scale", action="store_true", help="add the 1,000-tensor, 1,500-module workload")
    ap.add_argument("--compiled", action="store_true", help="add torch.compile runs (MLP, transformer)")
    ap.add_argument(
        "--options", default="", help="recorder options instead of the defaults, e.g. budget=0.1,every=2"
    )
    args = ap.parse_args(argv)
    pairs = (kv.split("=") for kv in args.options.split(",") if kv)
    options = {k: (float(v) if "." in v else int(v)) for k, v in pairs}
    torch.set_num_threads(1)
    rounds, seg, warm = (12, 5, 1) if args.quick else (40, 5, 2)
    print(f"torch {torch.__version__}, 1 thread, {rounds} rounds x {seg} steps per variant and baseline")
    print(f"recorder options: {options or 'defaults'}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':12s} {'base ms':>8s} {'rec':>8s} {'full':>8s} {'tb':>8s} {'meas.':>7s} "
          f"{'B/step':>10s} {'full B/st':>10s} {'start ms':>9s} {'o+c s':>7s} {'read w+g':>8s} "
          f"{'read acts':>9s}")  # fmt: skip
    models = args.models.split(",") + (["scale"] if args.scale else [])
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            _print_row(run(name, rounds, seg, warm, tmp, options))
        if args.compiled:
            print(f"{'compiled':12s} {'base ms':>8s} {'rec':>8s} {'compile s plain / recorded':>28s}")
            for name in ("mlp", "transformer"):
                r = run_compiled(name, max(rounds // 2, 4), seg, tmp)
                print(f"{name:12s} {r['base_ms']:8.2f} {r['rec']:7.3f}x "
                      f"{r['plain_compile_s']:13.1f} / {r['rec_compile_s']:.1f}", flush=True)


if __name__ == "__main__":
    main()
