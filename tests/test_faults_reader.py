"""Hostile and damaged traces: the reader never hangs, never follows a file out of the trace,
bounds what it reads, rejects nonsense types, and ``analyze`` raises only ``TraceError``."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis import analyze, errors, open_trace
from analysis.detectors import REGISTRY
from tests._fuzz import Base, Runner, _bytes_mutant

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "tests" / "data" / "good.h5"


def hostile(tmp_path: Path, edit, name: str = "hostile.h5") -> Path:
    """A copy of the good fixture edited with h5py (a valid HDF5 file no writer would produce)."""
    path = tmp_path / name
    shutil.copy(GOOD, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def refused(path: Path, error=errors.TraceError) -> str:
    """``analyze`` fails with one ``error`` line; returns it."""
    with pytest.raises(error) as info:
        analyze(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))
    return text


def _replace(f: h5py.File, name: str, **kwargs) -> None:
    del f[name]
    f.create_dataset(name, **kwargs)


# ----------------------------------------------------------------------------- item 7: no hang
def test_flipped_metadata_bytes_never_hang(tmp_path):
    """512 random bytes inside the first 64 kB (plain open fails on a checksum, then the SWMR
    fallback used to retry the failing reads for ever)."""
    base = Base.load(GOOD)
    runner = Runner(limit_s=30.0)
    outcomes = []
    try:
        for seed in range(8):
            path = tmp_path / f"flip{seed}.h5"
            path.write_bytes(_bytes_mutant(base, "flip512", np.random.default_rng(seed)))
            outcomes.append(runner.run(path)[0])
    finally:
        runner.close()
    assert set(outcomes) <= {"trace_error", "report"} and "trace_error" in outcomes, outcomes


# ----------------------------------------------------------------------------- item 8: other files
def test_external_raw_storage_is_refused_and_never_read(tmp_path):
    path = hostile(tmp_path, lambda f: _replace(f, "steps/loss", shape=(12,), dtype="<f8",
                                                external=[("/etc/passwd", 0, 96)]))
    text = refused(path, errors.TraceRefused)
    assert "steps/loss keeps its data in an external file" in text
    assert "root:" not in text


def test_external_storage_on_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = hostile(tmp_path, lambda f: _replace(f, "params/w_norm", shape=(12, 4), dtype="<f4",
                                                external=[(str(fifo), 0, 192)]))
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); from trainwreck.cli import main; " \
           f"sys.exit(main(['analyze', {str(path)!r}]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "external file" in done.stderr and "Traceback" not in done.stderr


def test_external_and_soft_links_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["x"] = np.arange(12.0)

    def link(f):
        del f["steps/loss"]
        f["steps/loss"] = h5py.ExternalLink(str(other), "/x")

    assert "steps/loss is an external link" in refused(hostile(tmp_path, link), errors.TraceRefused)

    def soft(f):
        del f["steps/loss"]
        f["steps/loss"] = h5py.SoftLink("/steps/time")

    assert "steps/loss is a soft link" in refused(hostile(tmp_path, soft, "soft.h5"), errors.TraceRefused)


def test_virtual_datasets_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["x"] = np.arange(12.0)

    def vds(f):
        layout = h5py.VirtualLayout(shape=(12,), dtype="<f8")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(12,))
        del f["steps/loss"]
        f.create_virtual_dataset("steps/loss", layout)

    assert "steps/loss is a virtual dataset" in refused(hostile(tmp_path, vds), errors.TraceRefused)


# ----------------------------------------------------------------------------- item 9: sizes
def _declare_rows(rows: int):
    def edit(f):
        names = []
        rows_groups = ("steps", "params", "modules", "outputs", "targets", "inputs")

        def visit(n, o):
            if isinstance(o, h5py.Dataset) and o.maxshape and o.maxshape[0] is None and \
                    n.split("/")[0] in rows_groups:
                names.append(n)

        f.visititems(visit)
        for n in names:
            f[n].resize(rows, axis=0)
        st = f["status"][()]
        st["steps_written"] = rows
        f["status"][...] = st
    return edit


@pytest.mark.parametrize("rows", [10**12, 2 * 10**8])
def test_declared_rows_beyond_the_file_are_refused(tmp_path, rows):
    text = refused(hostile(tmp_path, _declare_rows(rows)), errors.TraceLimit)
    assert "steps/step: reading" in text and "the file stores for it" in text and "limit" in text


def test_gzip_bombs_are_refused(tmp_path):
    zeros = zlib.compress(bytes(16 << 20), 9)

    def bomb(f):  # 16 chunks of 16 MiB zeros: 256 MiB from a file of ~1 MB
        del f["steps/loss"]
        ds = f.create_dataset("steps/loss", shape=(16 * (2 << 20),), dtype="<f8", chunks=(2 << 20,),
                              compression="gzip")
        for i in range(16):
            ds.id.write_direct_chunk((i * (2 << 20),), zeros)
        st = f["status"][()]
        st["steps_written"] = ds.shape[0]
        f["status"][...] = st

    # the other row datasets are short, so only a read of the whole bomb would be large: read it
    path = hostile(tmp_path, bomb)
    with open_trace(path) as t, pytest.raises(errors.TraceError):
        from analysis.trace import trace_error

        try:
            t._src.read("steps/loss")
        except Exception as exc:  # noqa: BLE001
            raise trace_error(str(path), exc) from None

    def huge_chunk(f):
        _replace(f, "steps/loss", shape=(12,), maxshape=(None,), dtype="<f8", chunks=(16 << 20,),
                 compression="gzip")

    assert "over the 67.1 MB limit" in refused(hostile(tmp_path, huge_chunk, "chunk.h5"), errors.TraceLimit)


def test_oversized_attributes_and_metadata_json_are_refused(tmp_path):
    def big_attr(f):
        f.attrs["junk"] = np.zeros(20 << 17)  # 20 MiB

    assert "attribute 'junk'" in refused(hostile(tmp_path, big_attr), errors.TraceLimit)

    def big_json(f):
        f["meta"].attrs["model"] = json.dumps({"modules": [{"name": "x" * 100}] * 200_000})

    assert "attribute 'model' of /meta" in refused(hostile(tmp_path, big_json, "json.h5"), errors.TraceLimit)


# ----------------------------------------------------------------------------- item 11: types
@pytest.mark.parametrize("kind", ["strings", "compound", "complex", "enum"])
def test_wrong_typed_loss_is_rejected(tmp_path, kind):
    data = {"strings": dict(data=np.array([b"1.0"] * 12)),
            "compound": dict(shape=(12,), dtype=[("a", "<f8"), ("b", "<i4")]),
            "complex": dict(data=np.ones(12, np.complex128)),
            "enum": dict(data=np.zeros(12, np.int8), dtype=h5py.enum_dtype({"A": 0, "B": 1}))}[kind]
    text = refused(hostile(tmp_path, lambda f: _replace(f, "steps/loss", **data)), errors.TraceCorrupt)
    assert "steps/loss holds" in text and "where a trace stores numbers" in text


@pytest.mark.parametrize(("values", "words"), [
    ([0, 1, 2, 3, 2, 5, 6, 7, 8, 9, 10, 11], "not increasing"),
    ([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8], "not a count of rec.step calls"),
    (list(range(11)) + [np.iinfo(np.int64).max], "not a count of rec.step calls"),
])
def test_nonsense_steps_are_rejected(tmp_path, values, words):
    def edit(f):
        f["steps/step"][...] = np.array(values, np.int64)

    assert words in refused(hostile(tmp_path, edit), errors.TraceCorrupt)


def test_a_deleted_loss_is_named(tmp_path):
    def edit(f):
        del f["steps/loss"]

    assert "dataset steps/loss is missing" in refused(hostile(tmp_path, edit), errors.TraceCorrupt)


def test_statistics_of_the_wrong_width_are_rejected(tmp_path):
    narrow = np.zeros((12, 3), np.float32)
    text = refused(hostile(tmp_path, lambda f: _replace(f, "params/g_norm", data=narrow)))
    assert "params/g_norm has shape (12, 3), not (rows, 4)" in text


# ----------------------------------------------------------------------------- item 10: failures
def _break(monkeypatch, codes):
    def broken(trace):
        raise ValueError("boom")

    for code in codes:
        monkeypatch.setitem(REGISTRY, code, dataclasses.replace(REGISTRY[code], fn=broken))


def test_a_failed_detector_makes_the_diagnosis_say_it_is_incomplete(monkeypatch):
    monkeypatch.setenv("TRAINWRECK_STRICT", "0")
    _break(monkeypatch, ["dead_relu"])
    report = analyze(GOOD)
    assert report.notes[0].startswith("diagnosis incomplete: 1 of ") and "dead_relu" in report.notes[0]
    assert any("dead_relu: detector failed (ValueError: boom)" in n for n in report.to_json()["notes"])
    from trainwreck.cli import _format_report

    assert "note: diagnosis incomplete" in _format_report(report)


def test_a_trace_on_which_many_detectors_fail_is_not_passed_as_clean(monkeypatch):
    monkeypatch.setenv("TRAINWRECK_STRICT", "0")
    _break(monkeypatch, ["dead_relu", "lr_too_high", "nonfinite"])
    text = refused(GOOD, errors.TraceCorrupt)
    assert "too damaged to diagnose: 3 of" in text


def test_analyze_raises_only_trace_errors_on_read_failures(tmp_path, monkeypatch):
    """An OSError from h5py deep in a read (a damaged chunk) comes out as TraceCorrupt."""
    from analysis import _store

    path = tmp_path / "t.h5"
    shutil.copy(GOOD, path)
    original = _store.H5Store.read

    def failing(self, p, sel=()):
        if p == "steps/loss":
            raise OSError("Can't synchronously read data (filter returned failure during read)")
        return original(self, p, sel)

    monkeypatch.setattr(_store.H5Store, "read", failing)
    assert "filter returned failure" in refused(path, errors.TraceCorrupt)


# ----------------------------------------------------------------------------- global heaps
def _zero_size_free_space(tmp_path: Path, pad_mib: int = 0) -> Path:
    """The good fixture (optionally padded with a big numeric dataset) with a global heap whose
    free-space entry claims size 0 (HDF5 would parse that heap for ever)."""
    path = hostile(tmp_path, lambda f: f.create_dataset("pad", data=np.ones((pad_mib << 18,), np.float32),
                                                        chunks=(1 << 16,)) if pad_mib else None)
    data = bytearray(path.read_bytes())
    at = data.find(b"GCOL")
    while at >= 0:
        size, p = int.from_bytes(data[at + 8:at + 16], "little"), 16
        while data[at + 4] == 1 and p + 16 <= size:
            idx = int.from_bytes(data[at + p:at + p + 2], "little")
            if idx == 0:
                data[at + p + 8:at + p + 16] = bytes(8)
                path.write_bytes(bytes(data))
                return path
            p += 16 + ((int.from_bytes(data[at + p + 8:at + p + 16], "little") + 7) & ~7)
        at = data.find(b"GCOL", at + 4)
    pytest.fail("no free-space entry in the fixture's global heaps")


@pytest.mark.parametrize("big", [False, True])
def test_a_global_heap_hdf5_would_parse_for_ever_is_refused(tmp_path, monkeypatch, big):
    """Small files are searched byte by byte; big ones (here: any, with a 4 MiB numeric dataset)
    outside the raw data of their numeric datasets, which must not hide the heap."""
    from analysis import _store, trace

    if big:
        monkeypatch.setattr(trace, "SCAN_ALL_BYTES", 0)
        path = _zero_size_free_space(tmp_path, pad_mib=4)
        with h5py.File(path, "r") as f:
            ranges = _store.raw_ranges(f)
        assert sum(b - a for a, b in ranges) >= 4 << 20  # the padding is skipped, the heap is not
    else:
        path = _zero_size_free_space(tmp_path)
    assert "global heap" in refused(path, errors.TraceCorrupt)
