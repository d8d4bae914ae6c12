"""Record demo scenarios in this process: ``python -m resources.demo.record --out DIR [--quick] NAME…``.

The demo runs this as a child process so that training never competes with the app's
drawing and analysis for one interpreter. Per scenario it prints the label line
``[i/n] recording NAME → PATH`` before and ``TRACE PATH`` after; anything else it
prints is the scenarios' own summary. Exit 1 with one line when a scenario fails.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

TRACE_PREFIX = "TRACE "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resources.demo.record",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    import torch

    from resources.demo import names, run_scenario

    if any(n not in names() for n in args.names):  # a checkout's full example library
        from examples import run_scenario  # type: ignore[no-redef]

    torch.set_num_threads(1)  # tiny models: one thread is fastest and leaves a core to the app
    os.makedirs(args.out, exist_ok=True)
    for i, name in enumerate(args.names):
        path = os.path.join(args.out, f"{name}.h5")
        print(f"[{i + 1}/{len(args.names)}] recording {name} → {path}", flush=True)
        if os.path.isfile(path):  # the demo's own trace of an earlier demo: re-recorded, not kept
            os.remove(path)
        try:
            run_scenario(name, path, quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one line for the parent, not a traceback
            print(f"trainwreck: demo scenario {name} failed: {type(exc).__name__}: {exc}".splitlines()[0],
                  file=sys.stderr, flush=True)
            return 1
        print(f"{TRACE_PREFIX}{path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
