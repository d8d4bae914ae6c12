"""The trace reader on committed fixture files: each unusable kind gets its own one-line message."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from analysis import errors, open_trace
from analysis.synthetic import save_arrays, synthetic_arrays
from recorders import schema as S

DATA = os.path.join(os.path.dirname(__file__), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fixture(name: str) -> str:
    return os.path.join(DATA, name)


def test_good_trace_reads_every_group():
    with open_trace(fixture("good.h5")) as t:
        assert t.n_steps == 12 and list(t.steps) == list(range(12))
        assert t.closed_cleanly and t.warnings == []
        assert t.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert t.module_names == ["0", "1", "2"] and t.module_types == ["Linear", "ReLU", "Linear"]
        assert t.param_stat("g_norm").shape == (12, 4)
        assert np.all(np.isfinite(t.loss()))
        assert t.batch("outputs", "sample").shape[0] == 12
        assert t.batch_attrs("targets")["kind"] == "index"
        assert t.meta["optimizer"]["class"] == "SGD" and t.meta["loss"]["class"] == "CrossEntropyLoss"
        steps, values = t.scalar("val_loss")
        assert list(steps) == [3, 7, 11] and np.all(values > 0)
        snaps = t.snapshot_steps()
        assert snaps[0] == 0 and 5 in snaps and t.snapshot_reasons()[0] == "first"
        assert t.snapshot("weight", 0, t.nearest_snapshot(7)).shape == (8, 4)
        counts, ranges = t.hist("weight", 0)
        assert counts.shape[1] == S.HIST_BINS and counts[0].sum() == 32


def test_crashed_run_is_read_up_to_its_last_flush_with_a_warning(tmp_path):
    import shutil

    path = str(tmp_path / "crashed.h5")
    shutil.copy(fixture("crashed.h5"), path)  # written on another host: staleness decides
    os.utime(path, (1e9, 1e9))
    with open_trace(path) as t:
        assert not t.closed_cleanly
        assert 1 <= t.n_steps <= 12
        assert "ended without a clean close" in t.warnings[0]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("missing.h5", errors.TraceNotFound, "missing.h5: no such file"),
        ("not_hdf5.h5", errors.NotHDF5, "not_hdf5.h5: not an HDF5 file, so not a Trainwreck trace"),
        ("foreign.h5", errors.NotATrace, "foreign.h5: an HDF5 file but not a Trainwreck trace"),
        (
            "too_new.h5",
            errors.TraceTooNew,
            "written by a newer Trainwreck (format 999, this reader supports up to 2): upgrade Trainwreck",
        ),
        ("too_old.h5", errors.TraceTooOld, "written in trace format 0, older than the oldest"),
        ("cut.h5", errors.TraceCorrupt, "cut.h5: corrupt trace ("),
        ("no_steps.h5", errors.TraceCorrupt, "no recorded step (the run stopped before its first rec.step)"),
    ],
)
def test_each_unusable_file_gets_its_own_one_line_message(name, error, message):
    with pytest.raises(error) as info:
        open_trace(fixture(name))
    text = str(info.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("name", ["missing.h5", "not_hdf5.h5", "foreign.h5", "too_new.h5", "cut.h5"])
def test_cli_bad_file_exits_2_with_one_line_and_no_traceback(name):
    out = subprocess.run(
        [sys.executable, "main.py", "analyze", fixture(name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainwreck: ") and "Traceback" not in out.stderr


def test_cli_json_on_a_good_trace(tmp_path):
    import json

    out = subprocess.run(
        [sys.executable, "main.py", "analyze", fixture("good.h5"), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["trace"].endswith("good.h5") and report["steps"] == 12
    for f in report["findings"]:
        assert set(f) - {"related"} == {  # CONTRACT §3: fields may be added (related)
            "code",
            "kind",
            "severity",
            "confidence",
            "steps",
            "layer",
            "title",
            "evidence",
            "fix",
        }


def test_ddp_rank_files_open_as_one_run(tmp_path):
    for rank in range(2):
        data, attrs = synthetic_arrays(20 + rank, seed=rank)
        attrs[""][S.ATTR_RANK], attrs[""][S.ATTR_WORLD] = rank, 2
        save_arrays(S.rank_path(str(tmp_path / "run.h5"), rank), data, attrs)
    for given in ("run.h5", "run.rank0.h5", "run.rank1.h5"):
        with open_trace(tmp_path / given) as t:
            assert t.n_ranks == 2
            assert t.rank(0).n_steps == 20 and t.rank(1).n_steps == 21
            assert t.rank(1).attrs[S.ATTR_RANK] == 1


def test_rows_past_steps_written_are_not_read(tmp_path):
    data, attrs = synthetic_arrays(50)
    attrs[""][S.ATTR_STEPS_WRITTEN] = 30
    attrs[""][S.ATTR_CLOSED] = 0
    save_arrays(str(tmp_path / "t.h5"), data, attrs)
    with open_trace(tmp_path / "t.h5") as t:
        assert t.n_steps == 30 and len(t.loss()) == 30 and t.param_stat("w_norm").shape[0] == 30
