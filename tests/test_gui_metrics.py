"""Any recorded series in the timeline (the metric tree), measured points drawn as they are,
and the heatmap's "only rows with findings" / sort by value."""

from __future__ import annotations

import numpy as np
from _gui_helpers import make_window, shutdown, wait_idle
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from analysis.findings import Finding, Report
from analysis.synthetic import save_arrays, synthetic_arrays
from analysis.trace import open_trace
from gui.series import SeriesRef, read_series, recorded_series


def budgeted_trace(path: str, n: int = 300) -> str:
    """update_ratio measured every 10th row only (NaN between, with no non-finite count), one real NaN."""
    data, attrs = synthetic_arrays(n, seed=3)
    ur = data["params/update_ratio"].astype(np.float32).copy()
    keep = np.arange(n) % 10 == 0
    ur[~keep] = np.nan
    ur[155, 0] = np.nan  # a row that really was NaN (off the cadence)
    data["params/update_ratio"] = ur
    wnf = np.zeros_like(data["params/w_nonfinite"])
    wnf[155, 0] = 1
    data["params/w_nonfinite"] = wnf
    save_arrays(path, data, attrs)
    return path


def report(trace) -> Report:
    last = int(trace.steps[-1])
    return Report(trace.path, last + 1, [
        Finding("exploding_gradients", "cause", "error", 0.9, [100, last], "fc2.weight", "Exploding", "", "",
                marks={"layers": ["fc2.bias"]})])


def test_recorded_series_lists_every_per_step_statistic_and_keeps_only_measured_points(tmp_path):
    trace = open_trace(budgeted_trace(str(tmp_path / "b.h5")))
    groups = recorded_series(trace)
    assert "params · g_norm" in groups and "modules · a_dead_frac" in groups
    assert [r.column for r in groups["params · g_norm"]] == trace.param_names
    s = read_series(trace, SeriesRef("params", "update_ratio", trace.param_names[0]))
    assert s.measured and len(s.x) == 31  # 30 measured rows + the real NaN at row 150
    assert list(s.x[:3]) == [0, 10, 20] and 155 in s.x and np.isnan(s.y[list(s.x).index(155)])
    full = read_series(trace, SeriesRef("params", "g_norm", trace.param_names[2]))
    assert not full.measured and len(full.x) == 300
    trace.close()


def test_metric_tree_plots_any_series_and_lanes_take_several(qtbot, tmp_path):
    path = budgeted_trace(str(tmp_path / "b.h5"))
    w = make_window(qtbot, tmp_path, analyze_fn=report)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        tree, tl = w.metric_tree, w.timeline
        tree.filter.setText("fc2.weight")
        refs = tree.visible_refs()
        assert refs and all(r.column == "fc2.weight" for r in refs)
        g, u = (next(r for r in refs if r.stat == stat) for stat in ("g_norm", "update_ratio"))
        tree.tree.clearSelection()
        for item in tree.tree.findItems("fc2.weight", qt_match_flags(), 0):
            if item.data(0, 256) in (g, u):
                item.setSelected(True)
        lane = tree.plot_selected(None)
        lane_obj = tl.lanes[lane]
        assert {s.name for s in lane_obj.series} == {g.label, u.label}  # one lane, two series
        measured = next(i for i, s in enumerate(lane_obj.series) if s.measured)
        assert lane_obj.raw[measured].opts["pen"].style() == Qt.PenStyle.NoPen  # points only, never joined
        assert lane_obj.raw[measured].opts["symbol"] == "o"
        tl.state.set_step(155)
        assert "@ 150" in lane_obj.readout.toPlainText()  # the value shown was measured at step 150
        tl.remove_lane(lane)
        assert lane not in tl.lanes
    finally:
        shutdown(w)


def qt_match_flags():
    from PySide6.QtCore import Qt

    return Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly


def test_heatmap_only_rows_with_findings_and_sort_by_value(qtbot, tmp_path):
    path = budgeted_trace(str(tmp_path / "b.h5"))
    w = make_window(qtbot, tmp_path, analyze_fn=report)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        hm = w.views["heatmap_view"]
        hm.wait()
        hm.findings_box.setChecked(True)
        assert hm._yaxis._names == ["fc2.weight", "fc2.bias"]
        hm.findings_box.setChecked(False)
        w.state.set_step(200)
        hm.sort_box.setChecked(True)
        values = w.state.run.trace.param_stat("g_norm")[200]
        assert [hm._names[i] for i in hm._rows] == [w.state.run.trace.param_names[i]
                                                     for i in np.argsort(-values, kind="stable")]
        assert "@ 200" in hm.sort_box.text()
        hm.sort_box.setChecked(False)
        assert list(hm._rows) == list(range(len(hm._names)))
        QApplication.processEvents()
    finally:
        shutdown(w)


def test_order_by_value_puts_nan_last_and_inf_first():
    from analysis.views_data import order_by_value

    v = np.array([1.0, np.nan, 5.0, np.inf, 3.0])
    assert list(order_by_value(np.arange(5), v)) == [3, 2, 4, 0, 1]
    assert list(order_by_value(np.arange(3), np.array([-4.0, 1.0, 2.0]))) == [0, 2, 1]  # by |x| when signed


