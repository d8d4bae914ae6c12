"""Two runs compared: the second run's heatmap beside the first, one cursor driving both."""

from __future__ import annotations

import numpy as np
import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace

from analysis import views_data as vd
from analysis.trace import open_trace


def test_compare_shows_the_other_run_beside_and_follows_one_cursor(qtbot, tmp_path):
    a = write_trace(str(tmp_path / "a.h5"), n=120, seed=0)
    b = write_trace(str(tmp_path / "b.h5"), n=80, every=2, seed=1)  # logged every other step
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([a, b])
        wait_idle(qtbot, w, runs=2)
        names = [r.name for r in w.state.runs]  # loaded in parallel: order not fixed
        w.state.set_current(names.index("a"))
        split = w.compare_split
        assert not split.widget(1).isVisibleTo(w)
        w.timeline.set_compare(names.index("b"))
        assert split.widget(1).isVisibleTo(w)
        assert split.mirror.run is w.state.runs[names.index("b")] and split.compare_label.text() == "B: b"
        w.state.set_step(51)
        assert w.state.step == 51 and split.mirror.step == 50  # b's nearest logged step
        w.state.set_layer("fc2.weight")
        assert split.mirror.layer == "fc2.weight"
        split.mirror.set_step(90)  # a click in B's heatmap moves the shared cursor
        assert w.state.step == 90 and split.mirror.step == 90
        w.timeline.set_compare(None)
        assert not split.widget(1).isVisibleTo(w) and split.mirror.run is None
    finally:
        shutdown(w)


def test_five_runs_overlaid_in_every_lane_with_a_legend_and_aligned(qtbot, tmp_path):
    paths = [write_trace(str(tmp_path / f"r{i}.h5"), n=100, seed=i) for i in range(6)]
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths(paths)
        wait_idle(qtbot, w, runs=6)
        tl = w.timeline
        w.state.set_current([r.name for r in w.state.runs].index("r0"))
        tl.set_compared(range(6))  # every open run but the current one
        assert len(tl.compared) == 5 and tl.compare.text() == "Compare (5)"
        for name, lane in tl.lanes.items():
            assert len(lane.overlay_items) == 5 * len(lane.series), name  # every lane, every run
        legend = tl.lanes["loss"].legend
        assert legend is not None and len(legend.items) == 6  # this run + 5 compared
        w.state.set_step(42)
        text = tl.lanes["loss"].readout.toPlainText()
        for run in tl.compared:
            assert f"loss [{run.name}]" in text
            assert f"{run.trace.loss()[42]:.4g}" in text
        tl.set_align("relative")
        first = tl.lanes["loss"].overlays[0][2]
        assert first.x[0] == w.state.run.steps[0]
        assert np.array_equal(first.y, tl.compared[0].trace.loss())
        tl.set_compared([])
        assert all(not lane.overlay_items for lane in tl.lanes.values()) and tl.lanes["loss"].legend is None
    finally:
        shutdown(w)


def test_compare_heatmaps_lock_limits_and_show_the_difference(qtbot, tmp_path):
    a = write_trace(str(tmp_path / "a.h5"), n=120, seed=0)
    b = write_trace(str(tmp_path / "b.h5"), n=120, seed=5)
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([a, b])
        wait_idle(qtbot, w, runs=2)
        names = [r.name for r in w.state.runs]
        w.state.set_current(names.index("a"))
        w.timeline.set_compare(names.index("b"))
        split = w.compare_split
        main, other = split.main_view, split.compare_view
        main.wait()
        other.wait()
        split.sync_levels()
        assert main.bar.levels() == other.bar.levels() == main.shared_levels  # one scale for both runs
        lo_a, hi_a = main._levels()
        lo_b, hi_b = other._levels()
        assert main.shared_levels == (min(lo_a, lo_b), max(hi_a, hi_b))
        main.set_metric("a_std")
        main.wait()
        other.wait()
        assert other.metric_key == "a_std" and other.bar.levels() == main.bar.levels()
        split.lock_box.setChecked(False)
        assert main.shared_levels is None
        main.set_metric("g_norm")
        main.wait()
        split.diff_box.setChecked(True)
        other.wait()
        ta, tb = w.state.runs[names.index("a")].trace, w.state.runs[names.index("b")].trace
        want = np.log10(tb.param_stat("g_norm")[57, 1]) - np.log10(ta.param_stat("g_norm")[57, 1])
        assert other._pyr.value_at(57, 1) == pytest.approx(want, rel=1e-5)
        assert other.shown_metric().levels == "symmetric" and "B/A" in other.shown_metric().label
        lo, hi = other.bar.levels()
        assert lo == -hi  # centred on 0
        assert not other.log_box.isEnabled()
        read = vd.diff_reader(tb, ta, vd.METRICS["w_norm"], log=False)
        d, missing = read(0, 120)
        assert np.allclose(d, tb.param_stat("w_norm") - ta.param_stat("w_norm"), equal_nan=True)
        split.diff_box.setChecked(False)
        other.wait()
        assert other._pyr.value_at(57, 1) == pytest.approx(float(tb.param_stat("g_norm")[57, 1]))
    finally:
        shutdown(w)


def test_difference_is_aligned_by_step_and_layer_name(tmp_path):
    ta = open_trace(write_trace(str(tmp_path / "a.h5"), n=100, seed=0))
    tb = open_trace(write_trace(str(tmp_path / "b.h5"), n=60, every=2, seed=1))  # steps 0, 2, …, 118
    d, missing = vd.diff_reader(tb, ta, vd.METRICS["w_norm"], log=False)(0, 60)
    wa, wb = ta.param_stat("w_norm"), tb.param_stat("w_norm")
    assert np.allclose(d[:50], wb[:50] - wa[0:100:2])  # B's step 2r is A's row 2r
    assert missing[50:].all() and np.isnan(d[50:]).all()  # steps past A's end have no partner
    ta.close()
    tb.close()
