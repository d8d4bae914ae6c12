"""A big trace opens in stages: the 1-D curves first, the findings next, the heatmap, the grad-norm
lane and the NaN/Inf event ticks after them; a report arriving on the same rows reloads no view's data; the
linked window's step ↔ row mapping is exact and cheap; rank lanes of a long run are drawn at screen
resolution. (Budget: ~25 s.)"""

from __future__ import annotations

import threading

import numpy as np
from _gui_helpers import fixed_report, make_window, shutdown, wait_idle, write_trace

from analysis import views_data as vd
from gui import series as gs


def test_big_trace_shows_its_curves_before_the_findings_and_the_grad_norm_lane_after(
        qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(gs, "BIG_CELLS", 0)  # every trace counts as big
    path = write_trace(str(tmp_path / "run.h5"), n=150, nan_at=(30,))
    gate = threading.Event()
    order: list[str] = []

    def slow_report(trace):  # noqa: ANN001, ANN202 - the analysis holds until the window is checked
        gate.wait(10)
        order.append("analysis")
        return fixed_report(trace)

    w = make_window(qtbot, tmp_path, analyze_fn=slow_report)
    try:
        w.loader.seriesReady.connect(lambda _run: order.append("grad norm"))
        w.loader.eventsFound.connect(lambda _run, _steps: order.append("events"))
        w.open_paths([path])
        qtbot.waitUntil(lambda: w.state.run is not None, timeout=10000)
        run = w.state.run
        assert run.series.partial and run.report is None
        assert "loss" in w.timeline.lanes and "grad norm" not in w.timeline.lanes  # usable at once
        assert w.findings.status.text().startswith("Analysing")
        heat = w.views["heatmap_view"]
        assert heat._pyr is None and "once the findings are in" in heat.readout.text()  # no read yet
        gate.set()
        wait_idle(qtbot, w)
        assert heat._pyr is not None and heat._pyr.n_rows == run.trace.n_steps  # drawn after them
        assert order[0] == "analysis" and set(order[1:]) == {"grad norm", "events"}
        assert not run.series.partial and "grad norm" in w.timeline.lanes
        expected = np.sqrt((run.trace.param_stat("g_norm").astype(float) ** 2).sum(1))
        np.testing.assert_allclose(w.timeline.lanes["grad norm"].series[0].y, expected, rtol=1e-6)
        assert 30 in run.series.events["nonfinite_all"]  # the overview's NaN tick, found after the report
        assert 30 in w.timeline.overview.events
        assert w.findings.list.count() == 3
    finally:
        gate.set()
        shutdown(w)


def test_a_report_on_the_same_rows_reloads_no_view(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "run.h5"), n=120)
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        outputs, hist = w.views["outputs_view"], w.views["histogram_view"]
        data, key = outputs._data, hist._key
        layer_cache = dict(w.views["layer_view"]._cache)
        w.state.runUpdated.emit(w.state.current)  # what a (re-)analysis emits
        wait_idle(qtbot, w)
        assert outputs._data is data and hist._key == key
        assert w.views["layer_view"]._cache.keys() >= layer_cache.keys()
    finally:
        shutdown(w)


def test_steps_to_rows_matches_linear_interpolation_and_extrapolation():
    rng = np.random.default_rng(0)
    steps = np.unique(rng.integers(0, 10_000, 400)).astype(np.int64)
    rows = np.arange(len(steps), dtype=np.float64)
    for v in [*rng.uniform(-500, 10_500, 300), float(steps[0]), float(steps[-1]), steps[9] + 0.25]:
        want = np.interp(v, steps, rows)
        if v < steps[0]:
            want = (v - steps[0]) / (steps[1] - steps[0])
        elif v > steps[-1]:
            want = rows[-1] + (v - steps[-1]) / (steps[-1] - steps[-2])
        got = vd.steps_to_rows(steps, v, v)[0]
        assert abs(got - want) < 1e-9
        back = vd.rows_to_steps(steps, got, got)[0]
        assert abs(back - v) < 1e-6
    assert vd.steps_to_rows(np.array([5]), 3, 9) == (-2.0, 4.0)
    assert vd.rows_to_steps(np.array([5]), 3, 9) == (8.0, 14.0)


def test_rank_lanes_draw_a_long_run_at_screen_resolution_and_keep_a_one_row_spike(qtbot, tmp_path):
    from analysis.synthetic import save_arrays, synthetic_arrays

    n, spike = 20_000, 12_345
    for rank in (0, 1):
        data, attrs = synthetic_arrays(n, seed=rank)
        data["steps/loss"] = np.full(n, 1.0) + 0.01 * rank
        if rank == 1:
            data["steps/loss"][spike] = 50.0  # one rank, one row far above the median
        attrs[""].update({"rank": rank, "world_size": 2})
        save_arrays(str(tmp_path / f"run.rank{rank}.h5"), data, attrs)
    w = make_window(qtbot, tmp_path, size=(1600, 1000))
    try:
        w.open_paths([str(tmp_path / "run.rank0.h5")])
        wait_idle(qtbot, w)
        w.ranks.wait()
        qtbot.wait(20)
        image = w.ranks.images["loss"].image
        width = w.ranks.plots["loss"].getViewBox().width()
        assert image.shape[0] == 2 and image.shape[1] <= 4 * width < n  # a window, not 20,000 columns
        assert image[1].max() > 0.25 and image[0].min() < -1.0  # the spike's cell kept (log10 ratio)
        w.timeline.lanes["loss"].plot.setXRange(spike - 50, spike + 50, padding=0)
        qtbot.wait(20)
        image = w.ranks.images["loss"].image
        assert image.shape[1] <= 400 and image[1].max() > 0.25  # zoomed in: raw rows around the spike
    finally:
        shutdown(w)
