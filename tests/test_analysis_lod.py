"""Long runs are analysed on a bounded selection of rows (``analysis.lod``): the same diagnosis,
onsets refined at full resolution; short runs are analysed on every row as before."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import analyze, lod
from analysis.synthetic import save_arrays, synthetic_arrays
from analysis.trace import Trace, open_trace
from recorders import schema as S

FAULT = 21337  # the planted fault's first step


def planted(n: int = 30000, fault: int = FAULT) -> tuple[dict, dict]:
    """A healthy run whose gradients and loss blow up from ``fault`` (NaN 600 steps later)."""
    data, attrs = synthetic_arrays(n, classes=4, rows=8, features=8)
    t = np.arange(n - fault)
    loss = data[S.LOSS].copy()
    loss[fault:] = loss[fault] * np.exp(t / 150.0)
    loss[fault + 600:] = np.nan
    g = data["params/g_norm"].copy()
    g[fault:] *= np.exp(t / 100.0)[:, None].astype(np.float32)
    g[fault + 600:] = np.inf
    bad = data["params/g_nonfinite"].copy()
    bad[fault + 600:] = 10
    data[S.LOSS], data["params/g_norm"], data["params/g_nonfinite"] = loss, g, bad
    return data, attrs


@pytest.fixture
def small_budget(monkeypatch):
    """A budget far below the run's length (the real one is 32,768 rows: the same code path),
    for any model size (a small model's run up to 4x the budget is otherwise read in full)."""
    monkeypatch.setattr(lod, "ROW_BUDGET", 4096)
    monkeypatch.setattr(lod, "WINDOW", 128)
    monkeypatch.setattr(lod, "CELLS", 0)


def _problems(report) -> dict[str, list[int]]:
    return {f.code: f.steps for f in report.findings if f.severity in ("warning", "error")}


def test_a_long_run_gives_the_same_codes_with_onsets_in_the_planted_range(small_budget, monkeypatch):
    data, attrs = planted()
    coarse = analyze(Trace.from_arrays(data, attrs))
    note = next(note for note in coarse.notes if note.startswith("long run: the detectors read "))
    assert int(note.split()[5].replace(",", "")) <= 4096 + 10 * 128  # the budget and the loss events
    monkeypatch.setattr(lod, "ROW_BUDGET", 10**6)
    full = analyze(Trace.from_arrays(data, attrs))
    assert not any(note.startswith("long run") for note in full.notes)
    found, want = _problems(coarse), _problems(full)
    assert set(found) == set(want) >= {"exploding_gradients", "nonfinite", "loss_diverging"}
    for code, (first, last) in found.items():
        assert FAULT - 100 <= first <= FAULT + 600 <= last, (code, first, last)
    assert found["nonfinite"][0] == want["nonfinite"][0] == FAULT + 600  # the NaN's own window


def test_a_late_onset_between_windows_is_refined_at_full_resolution(small_budget, monkeypatch):
    """ReLU units die at ``FAULT``, between two windows, the loss unmoved (no dense lead-up): the
    windows alone date it at the first step of the next window; the refinement finds the step."""
    data, attrs = synthetic_arrays(30000, classes=4, rows=8, features=8)
    for stat, frac in (("a_dead_frac", 0.9), ("a_zero_frac", 0.95)):
        data[f"modules/{stat}"] = data[f"modules/{stat}"].copy()
        data[f"modules/{stat}"][FAULT:, 1] = frac
    steps = lod.coarse(Trace.from_arrays(data, attrs)).steps
    assert FAULT not in steps
    refined = {f.code: f.steps[0] for f in analyze(Trace.from_arrays(data, attrs)).findings}
    assert refined["dead_relu"] == FAULT
    monkeypatch.setattr(lod, "refine", lambda *args, **kwargs: None)
    windowed = {f.code: f.steps[0] for f in analyze(Trace.from_arrays(data, attrs)).findings}
    assert windowed["dead_relu"] == steps[np.searchsorted(steps, FAULT)]  # the next window's start


def test_a_short_run_is_read_in_full(monkeypatch):
    trace = Trace.from_arrays(*synthetic_arrays(300))
    assert lod.coarse(trace) is trace
    assert not any(note.startswith("long run") for note in analyze(trace).notes)
    monkeypatch.setattr(lod, "ROW_BUDGET", 100)  # 300 rows of a small model: still in full
    assert lod.coarse(trace) is trace
    monkeypatch.setattr(lod, "CELLS", 2)
    assert lod.coarse(trace) is not trace


def test_the_selection_reads_as_the_rows_it_holds(tmp_path, small_budget):
    data, attrs = planted(n=9000, fault=6000)
    save_arrays(str(tmp_path / "run.h5"), data, attrs)
    with open_trace(tmp_path / "run.h5") as trace:
        view = lod.coarse(trace)
        rows = view._src.rows
        assert view.n_steps == len(rows) <= 4096 + 128 * 10 and rows[0] == 0 and rows[-1] == 8999
        assert set(range(6600 - 4 * 128, 6600 + 128)) <= set(rows)  # the NaN's lead-up, every row
        np.testing.assert_array_equal(view.steps, trace.steps[rows])
        np.testing.assert_array_equal(view.param_stat("g_norm"), trace.param_stat("g_norm")[rows])
        pick = np.arange(0, len(rows), 7)
        np.testing.assert_array_equal(view.param_rows("w_norm", pick), trace.param_stat("w_norm")[rows[pick]])
        np.testing.assert_array_equal(view.module_rows("a_std", pick, 1),
                                      trace.module_stat("a_std")[rows[pick], 1])
        np.testing.assert_array_equal(view.stat_block("params", "g_norm", slice(10, 300), slice(1, 3)),
                                      trace.param_stat("g_norm")[rows[10:300], 1:3])
        np.testing.assert_array_equal(view.batch_row("outputs", "sample", 5),
                                      trace.batch("outputs", "sample")[rows[5]])
        np.testing.assert_array_equal(view.batch_rows("inputs", "mean", pick),
                                      trace.batch("inputs", "mean")[rows[pick]])
