"""A seeded fuzz harness for the trace reader: mutate real traces, analyse each in a worker
process under a time bound, count the outcomes.

Mutations aim at HDF5 metadata (the bytes outside raw data: superblock, object headers, chunk
indexes, heaps), plus truncation, raw-data noise and structural edits of valid files (wrong
dtypes and shapes, deleted datasets, junk attributes, huge declared sizes, links). Outcomes:
``report`` (analysed), ``trace_error`` (one ``TraceError`` line: the documented failure),
``exception`` (any other exception: a bug), ``crash`` (the worker died: segfault, abort, an
uncaught traceback), ``hang`` (over the time bound). A sound reader has no ``exception``,
``crash`` or ``hang``. Used by ``tests/test_faults_fuzz.py`` (a few hundred files) and by
``benchmarks/fuzz_traces.py`` (thousands, by hand).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASES = [REPO / "tests" / "data" / n for n in ("good.h5", "v1_good.h5", "crashed.h5")]
KINDS = ("flip512", "meta_bytes", "meta_block", "truncate", "raw_bytes", "structural")

WORKER = r"""
import json, os, sys, warnings
sys.path.insert(0, {repo!r})
os.environ["TRAINWRECK_STRICT"] = "0"
warnings.simplefilter("ignore")
from analysis import analyze
from analysis.errors import TraceError
print("ready", flush=True)
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        report = analyze(path)
        json.dumps(report.to_json())
        out = {{"outcome": "report", "findings": len(report.findings), "notes": len(report.notes)}}
    except TraceError as exc:
        out = {{"outcome": "trace_error", "type": type(exc).__name__, "message": str(exc)}}
    except BaseException as exc:  # noqa: BLE001 - counted: a bug in the reader
        out = {{"outcome": "exception", "type": type(exc).__name__, "message": str(exc)[:300]}}
    print(json.dumps(out), flush=True)
"""


def raw_ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of raw dataset data in ``path`` (everything else is metadata or free space)."""
    import h5py

    ranges: list[tuple[int, int]] = []
    with h5py.File(path, "r", libver="latest", swmr=True) as f:

        def visit(name: str, obj) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            dsid = obj.id
            if obj.chunks is None:
                off = dsid.get_offset()
                if off is not None:
                    ranges.append((off, off + dsid.get_storage_size()))
                return
            for i in range(dsid.get_num_chunks()):
                info = dsid.get_chunk_info(i)
                ranges.append((info.byte_offset, info.byte_offset + info.size))

        f.visititems(visit)
    return sorted(ranges)


def metadata_offsets(size: int, raw: list[tuple[int, int]]) -> np.ndarray:
    mask = np.ones(size, dtype=bool)
    for a, b in raw:
        mask[a:min(b, size)] = False
    return np.flatnonzero(mask)


@dataclass
class Base:
    path: Path
    data: bytes
    meta: np.ndarray  # offsets outside raw data
    raw: np.ndarray  # offsets inside raw data

    @classmethod
    def load(cls, path: Path) -> Base:
        data = path.read_bytes()
        meta = metadata_offsets(len(data), raw_ranges(path))
        inside = np.setdiff1d(np.arange(len(data)), meta)
        return cls(path, data, meta, inside)


def _bytes_mutant(base: Base, kind: str, rng: np.random.Generator) -> bytes:
    data = bytearray(base.data)
    if kind == "flip512":
        n = min(len(data), 65536)
        for i in rng.integers(0, n, 512):
            data[i] = int(rng.integers(0, 256))
    elif kind == "meta_bytes":
        for i in rng.choice(base.meta, int(rng.integers(1, 33))):
            flip = data[i] ^ (1 << int(rng.integers(8)))
            data[i] = int(rng.integers(0, 256)) if rng.random() < 0.7 else flip
    elif kind == "meta_block":
        start = int(rng.choice(base.meta))
        width = int(rng.integers(64, 513))
        noise = rng.integers(0, 256, width, dtype=np.uint8)
        fill = np.zeros(width, np.uint8) if rng.random() < 0.5 else noise
        data[start:start + width] = bytes(fill)[: len(data) - start]
    elif kind == "truncate":
        cut = int(rng.choice(base.meta)) if rng.random() < 0.7 else int(rng.integers(0, len(data)))
        del data[cut:]
    elif kind == "raw_bytes":
        for i in rng.choice(base.raw, int(rng.integers(1, 65))):
            data[i] = int(rng.integers(0, 256))
    return bytes(data)


def _structural(path: Path, rng: np.random.Generator) -> str:
    """Edit a copy of a trace in place with h5py: a valid HDF5 file that no writer would produce."""
    import h5py

    with h5py.File(path, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        target = names[int(rng.integers(len(names)))] if rng.random() < 0.6 else str(
            rng.choice(["steps/step", "steps/loss", "status", "params/w_norm", "snapshots/step"]))
        if target not in f:
            target = names[0]
        op = int(rng.integers(8))
        ds = f[target]
        n = ds.shape[0] if ds.shape else 1
        if op == 0:
            del f[target]
        elif op == 1:
            del f[target]
            bad = rng.choice(["S8", "c16", "compound", "enum"])
            if bad == "compound":
                f.create_dataset(target, shape=(n,), dtype=[("a", "<f8"), ("b", "<i4")])
            elif bad == "enum":
                f.create_dataset(target, data=np.zeros(n, np.int8), dtype=h5py.enum_dtype({"A": 0, "B": 1}))
            else:
                f.create_dataset(target, shape=(n,), dtype=bad)
        elif op == 2 and ds.chunks is not None and ds.maxshape[0] is None:
            ds.resize(int(rng.choice([10**12, 2 * 10**8, 2**40])), axis=0)
        elif op == 3:
            obj = f[target].parent
            key = str(rng.choice([*obj.attrs.keys(), "junk"])) if len(obj.attrs) else "junk"
            obj.attrs[key] = rng.choice([np.int64(-5), np.float64(np.nan), "{not json", np.arange(3.0)])
        elif op == 4 and ds.dtype.kind in "iuf" and ds.ndim == 1 and n > 2:
            vals = ds[()]
            vals[int(rng.integers(1, n))] = rng.choice([-1, 0, np.iinfo(np.int64).max])
            ds[...] = vals
        elif op == 5:
            del f[target]
            external = rng.random() < 0.5
            f[target] = h5py.ExternalLink("/etc/passwd", "/x") if external else h5py.SoftLink("/meta")
        elif op == 6:
            del f[target]
            f.create_dataset(target, data=np.zeros((n, 3, 2), np.float32))
        else:
            f["meta"].attrs["model"] = "[" * int(rng.integers(1, 5000))
        return f"{target} op{op}"


def mutants(seed: int, count: int, out: Path, bases: list[Path] | None = None) -> Iterator[tuple[Path, str]]:
    """Write ``count`` mutated traces under ``out``; yield each path and what was done to it."""
    rng = np.random.default_rng(seed)
    loaded = [Base.load(p) for p in (bases or BASES)]
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = loaded[i % len(loaded)]
        kind = KINDS[int(rng.integers(len(KINDS)))]
        path = out / f"m{i:05d}_{kind}_{base.path.stem}.h5"
        if kind == "structural":
            shutil.copy(base.path, path)
            try:
                what = _structural(path, rng)
            except Exception as exc:  # noqa: BLE001 - an edit h5py refused: the copy stays as is
                what = f"edit refused ({type(exc).__name__})"
        else:
            path.write_bytes(_bytes_mutant(base, kind, rng))
            what = kind
        os.utime(path, (1e9, 1e9))  # old: a crashed writer's file never reads as live
        yield path, f"{kind}: {what}"


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # TraceError subclass names
    bad: list[str] = field(default_factory=list)  # exceptions, crashes, hangs: what and where
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        n = sum(self.counts.values())
        kinds = ("report", "trace_error", "exception", "crash", "hang")
        parts = ", ".join(f"{k} {self.counts[k]}" for k in kinds)
        slow = max(self.seconds, default=0.0)
        return f"{n} files: {parts}; slowest {slow:.2f} s; errors: {dict(self.errors.most_common())}"


class Runner:
    """Analyse files one by one in a worker process; a file over ``limit_s`` is a hang."""

    def __init__(self, limit_s: float = 20.0) -> None:
        self.limit_s = limit_s
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        code = WORKER.format(repo=str(REPO))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, bufsize=1)
        line = self._readline(proc, 120.0)
        if line != "ready":
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"fuzz worker did not start: {line!r} {err}")
        return proc

    @staticmethod
    def _readline(proc: subprocess.Popen, timeout: float) -> str | None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = proc.stdout.readline()
        return line.rstrip("\n") if line else ""

    def _stop(self) -> str:
        proc, self.proc = self.proc, None
        if proc is None:
            return ""
        proc.kill()
        proc.wait(30)
        err = proc.stderr.read() if proc.stderr else ""
        return err[-500:]

    def run(self, path: Path) -> tuple[str, dict]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        line = self._readline(self.proc, self.limit_s)
        if line is None:
            self._stop()
            return "hang", {}
        if not line:
            rc = self.proc.wait(30)
            err = self._stop()
            return "crash", {"returncode": rc, "stderr": err}
        out = json.loads(line)
        return out["outcome"], out

    def close(self) -> str:
        """Stop the worker; returns the tail of its stderr (empty when nothing was printed)."""
        if self.proc is None:
            return ""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        self.proc = None
        return err


def fuzz(seed: int, count: int, out: Path, limit_s: float = 20.0, verbose: bool = False) -> Tally:
    tally = Tally()
    runner = Runner(limit_s)
    try:
        for path, what in mutants(seed, count, out):
            t0 = time.monotonic()
            outcome, info = runner.run(path)
            tally.seconds.append(time.monotonic() - t0)
            tally.counts[outcome] += 1
            if outcome == "trace_error":
                tally.errors[info["type"]] += 1
            elif outcome != "report":
                tally.bad.append(f"{path.name} ({what}): {outcome} {info}")
            if verbose and outcome not in ("report", "trace_error"):
                print(tally.bad[-1], flush=True)
    finally:
        stderr = runner.close()
    if "Traceback" in stderr:
        tally.counts["crash"] += stderr.count("Traceback")
        tally.bad.append(f"worker stderr: {stderr[-500:]}")
    return tally
