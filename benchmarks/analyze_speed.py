"""Time `analyze` on a synthetic 100k-step × 200-layer trace (target ≤ 2 s).

    python benchmarks/analyze_speed.py [--steps 100000] [--layers 200] [--repeats 3]

Writes the trace to a temporary HDF5 file with the recorder's layout, then times the
whole `analysis.analyze(path)` (open, read, every detector, rank) and each detector.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(path: str, steps: int, layers: int) -> None:
    from analysis.synthetic import save_arrays, synthetic_arrays

    modules, params = [], []
    for i in range(layers // 2):
        modules += [(f"block{i}.fc", "Linear"), (f"block{i}.act", "ReLU")]
        params += [(f"block{i}.fc.weight", f"block{i}.fc", (64, 64)),
                   (f"block{i}.fc.bias", f"block{i}.fc", (64,))]
    data, attrs = synthetic_arrays(steps, params=params, modules=modules, classes=10, rows=16,
                                   features=16)
    save_arrays(path, data, attrs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--layers", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from analysis import analyze, open_trace
    from analysis.detectors import REGISTRY

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.h5")
        t0 = time.perf_counter()
        build(path, args.steps, args.layers)
        print(f"built {args.steps} steps x {args.layers} layers in {time.perf_counter() - t0:.1f} s "
              f"({os.path.getsize(path) / 1e6:.0f} MB)")
        totals = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            report = analyze(path)
            totals.append(time.perf_counter() - t0)
        print(f"analyze: median {statistics.median(totals):.2f} s over {args.repeats} runs "
              f"(min {min(totals):.2f}, max {max(totals):.2f}); findings: {report.codes()}")
        per = []
        with open_trace(path) as trace:
            trace.loss()
            for code, det in REGISTRY.items():
                t0 = time.perf_counter()
                if not det.missing(trace):
                    det.run(trace)
                per.append((time.perf_counter() - t0, code))
        print("slowest detectors (warm reads): " + ", ".join(f"{c} {t * 1000:.0f} ms" for t, c in
                                                             sorted(per, reverse=True)[:5]))


if __name__ == "__main__":
    main()
