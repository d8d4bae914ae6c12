"""Time `analyze` on a synthetic 100k-step × 200-layer trace (target ≤ 2 s).

    python benchmarks/analyze_speed.py [--steps 100000] [--layers 200] [--repeats 3]
                                       [--keep DIR] [--trace PATH]

Writes the trace to a temporary HDF5 file with the recorder's layout, then times the
whole `analysis.analyze(path)` (open, read, every detector, rank) and each detector.
The first run is reported apart (it reads what the page cache lacks). From 200k steps
(``--steps 1000000``: the GUI benchmark's ``--huge`` trace, target ≤ 1.5 s) the trace is
streamed to disk in blocks (``analysis.synthetic.save_long``, the writer
``benchmarks/gui_speed.py --huge`` uses). ``--keep DIR`` keeps the file there (and reuses
it when present); ``--trace PATH`` times an existing trace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


STREAM_FROM = 200_000  # steps from which the trace is written block by block


def build(path: str, steps: int, layers: int) -> None:
    from analysis.synthetic import save_arrays, save_long, synthetic_arrays

    if steps >= STREAM_FROM:  # the GUI benchmark's huge trace: layers parameters, layers / 2 modules
        params = [(f"blocks.{b}.fc.{kind}", f"blocks.{b}.fc", shape) for b in range(layers // 2)
                  for kind, shape in (("weight", (64, 64)), ("bias", (64,)))]
        save_long(path, steps, params, [(f"blocks.{b}.fc", "Linear") for b in range(layers // 2)])
        return

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
    ap.add_argument("--keep", help="folder to keep (and reuse) the built trace in")
    ap.add_argument("--trace", help="time this existing trace instead of building one")
    args = ap.parse_args()
    if args.trace:
        run(args.trace, args.repeats)
        return
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        path = os.path.join(args.keep, f"big-{args.steps}x{args.layers}.h5")
        if not os.path.exists(path):
            _build_timed(path, args.steps, args.layers)
        run(path, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.h5")
        _build_timed(path, args.steps, args.layers)
        run(path, args.repeats)


def _build_timed(path: str, steps: int, layers: int) -> None:
    t0 = time.perf_counter()
    build(path, steps, layers)
    print(f"built {steps} steps x {layers} layers in {time.perf_counter() - t0:.1f} s "
          f"({os.path.getsize(path) / 1e6:.0f} MB)")


def run(path: str, repeats: int) -> None:
    from analysis import analyze, open_trace
    from analysis.detectors import REGISTRY
    from analysis.lod import coarse

    t0 = time.perf_counter()
    report = analyze(path)
    print(f"analyze, first run: {time.perf_counter() - t0:.2f} s")
    totals = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        report = analyze(path)
        totals.append(time.perf_counter() - t0)
    print(f"analyze: median {statistics.median(totals):.2f} s over {repeats} runs "
          f"(min {min(totals):.2f}, max {max(totals):.2f}); findings: {report.codes()}")
    per = []
    with open_trace(path) as full:
        trace = coarse(full)  # what analyze runs the detectors on (a long run: a selection of rows)
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
