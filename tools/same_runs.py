"""Check that a refactor left recorded runs bit-identical: record each run under two trees, compare.

    python tools/same_runs.py OLD_ROOT NEW_ROOT [NAME ...] [--work DIR] [--reuse-old] [--full]
                              [--old-only] [--budget B]

e.g. ``git worktree add /tmp/base main`` for OLD_ROOT and this checkout as NEW_ROOT.

A NAME is an example scenario (``lr_too_low``: ``examples.run_scenario(name, path, quick=True)``,
the late_* and long healthy runs at their one length) or ``module:function[:arg]`` (a builder
``function(path, arg)``, e.g. ``tests._diagnosis_runs:healthy_schedule:drop``). Without names:
every scenario of NEW_ROOT's ``examples``. Each run records in its own process, with the tree
first on ``PYTHONPATH``, at one torch thread, into ``DIR/old`` and ``DIR/new``, by default at
recorder ``budget=1`` (at the default budget which rows are measured follows the wall clock, so
two runs of one tree differ in ``params/``; the recorder only observes: training is the same at
any budget, and ``steps/loss`` is compared either way); ``--reuse-old``
keeps an old trace already there (the old tree does not change), ``--old-only`` records only
those. Compared, NaN-aware and
bit-exact: ``steps/loss`` and ``params/g_norm`` (what the diagnosis is judged on) and the run's
printed output; with ``--full`` also every other numeric dataset but ``steps/time``.
Exit status 0 when every run is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

REQUIRED = ("steps/loss", "params/g_norm")
SKIP = ("steps/time",)

_RECORD = """
import importlib, sys, torch
import recorders
torch.set_num_threads(1)
name, path, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
_init = recorders.TraceRecorder.__init__
def _full_detail(self, *args, **options):
    options.setdefault("budget", budget)
    _init(self, *args, **options)
recorders.TraceRecorder.__init__ = _full_detail
if ":" in name:
    module, func, *args = name.split(":")
    getattr(importlib.import_module(module), func)(path, *args)
else:
    import examples
    examples.run_scenario(name, path, quick=True)
"""


def scenario_names(root: str) -> list[str]:
    """Every public scenario module of ``root``'s ``examples`` folder."""
    folder = os.path.join(root, "examples")
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))


def record(root: str, name: str, path: str, budget: float) -> str:
    """Record ``name`` with ``root``'s code into ``path``; returns what the run printed."""
    env = dict(os.environ, PYTHONPATH=root, QT_QPA_PLATFORM="offscreen")
    if os.path.exists(path):
        os.remove(path)
    done = subprocess.run([sys.executable, "-c", _RECORD, name, path, str(budget)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"{name} under {root} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def numeric_datasets(f: h5py.File) -> dict[str, np.ndarray]:
    """Every numeric dataset of an open trace, by path."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf":
            found[name] = obj[()]

    f.visititems(visit)
    return found


def differences(old: str, new: str, full: bool) -> list[str]:
    """What differs between two traces (empty: bit-identical where compared)."""
    with h5py.File(old, "r", libver="latest", swmr=True) as a:
        da = numeric_datasets(a)
    with h5py.File(new, "r", libver="latest", swmr=True) as b:
        db = numeric_datasets(b)
    names = sorted(set(da) | set(db)) if full else list(REQUIRED)
    diffs = []
    for key in names:
        if key in SKIP:
            continue
        if key not in da or key not in db:
            diffs.append(f"{key}: only in {'old' if key in da else 'new'}")
        elif da[key].shape != db[key].shape:
            diffs.append(f"{key}: shape {da[key].shape} vs {db[key].shape}")
        elif not np.array_equal(da[key], db[key], equal_nan=da[key].dtype.kind == "f"):
            diffs.append(f"{key}: values differ")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_root")
    parser.add_argument("new_root")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "same_runs"))
    parser.add_argument("--reuse-old", action="store_true", help="keep old traces already recorded")
    parser.add_argument("--full", action="store_true", help="compare every numeric dataset")
    parser.add_argument("--old-only", action="store_true", help="only record the old traces")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="recorder budget (default 1: every statistic on every row, so that which rows "
                             "are measured does not depend on timing)")
    args = parser.parse_intermixed_args(argv)
    old_root, new_root = os.path.abspath(args.old_root), os.path.abspath(args.new_root)
    names = args.names or scenario_names(new_root)
    for side in ("old", "new"):
        os.makedirs(os.path.join(args.work, side), exist_ok=True)
    bad = 0
    for name in names:
        file = name.replace(":", "-") + ".h5"
        old, new = (os.path.join(args.work, side, file) for side in ("old", "new"))
        log = old + ".out"
        if not (args.reuse_old and os.path.exists(old) and os.path.exists(log)):
            with open(log, "w") as fh:
                fh.write(record(old_root, name, old, args.budget))
        if args.old_only:
            print(f"recorded {name}", flush=True)
            continue
        with open(log) as fh:
            old_out = fh.read()
        new_out = record(new_root, name, new, args.budget)
        diffs = differences(old, new, args.full)
        if old_out != new_out:
            diffs.append(f"printed output differs: {old_out.strip()!r} vs {new_out.strip()!r}")
        bad += bool(diffs)
        print(f"{'DIFFERENT' if diffs else 'identical'} {name}" + "".join(f"\n    {d}" for d in diffs),
              flush=True)
    if args.old_only:
        print(f"recorded {len(names)} old runs")
    else:
        print(f"{len(names) - bad} of {len(names)} runs identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
