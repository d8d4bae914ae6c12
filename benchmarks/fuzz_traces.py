"""Fuzz the trace reader by hand: thousands of seeded mutants of real traces, each analysed in a
worker process under a time bound (see ``tests/_fuzz.py``).

    python benchmarks/fuzz_traces.py --count 1000 --seed 7 [--limit 30] [--out DIR]

Prints the outcome counts; exit 1 if any file raised an exception other than ``TraceError``,
crashed the worker or hung.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._fuzz import fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=30.0,
                        help="seconds per file before it counts as a hang")
    parser.add_argument("--out", type=Path, default=None, help="keep the mutants here (default: a temp dir)")
    args = parser.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tally = fuzz(args.seed, args.count, args.out or Path(tmp), args.limit, verbose=True)
    print(tally.summary())
    print(f"wall {time.monotonic() - t0:.0f} s")
    for line in tally.bad:
        print(" ", line)
    return 1 if tally.bad else 0


if __name__ == "__main__":
    sys.exit(main())
