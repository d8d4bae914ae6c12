"""Smaller defects of the app, each driven as a user would: keys, the demo's arriving traces, empty state."""

from __future__ import annotations

import time

import numpy as np

from analysis.findings import Finding
from analysis.synthetic import save_arrays, synthetic_arrays
from gui.app import PendingPaths
from tests._gui_helpers import make_window, qtbot_app, shutdown, wait_idle, write_trace
from tests.test_gui_views import _extras


def test_demo_traces_open_as_background_tabs(qtbot, tmp_path):
    paths = [write_trace(str(tmp_path / f"t{i}.h5"), n=30, seed=i) for i in range(3)]
    win = make_window(qtbot, tmp_path)
    try:
        job = PendingPaths(win, lambda progress: iter(paths))
        end = time.monotonic() + 20
        while (len(win.state.runs) < 3 or not job.done) and time.monotonic() < end:
            win.wait_workers(50)
            qtbot_app().processEvents()
        wait_idle(qtbot, win, runs=3)
        # Tabs come in the order the traces finished loading; the first to arrive stays shown.
        assert sorted(r.name for r in win.state.runs) == ["t0", "t1", "t2"]
        assert win.state.current == 0 and win.tabs.currentIndex() == 0
        win.state.set_current(1)  # the user reads t1 …
        win.open_paths([str(tmp_path / "t1.h5")], background=True)  # … a re-sent path does not steal it
        assert win.state.current == 1
    finally:
        shutdown(win)


def _trace_with_snapshots(path: str, n: int = 60, lr: np.ndarray | None = None) -> str:
    data, attrs = synthetic_arrays(n)
    data.update(_extras(n, [0, 10, 20, n - 1]))
    data["steps/loss"] = np.linspace(2.0, 1.2, n)  # under one decade
    if lr is not None:
        data["steps/lr"] = lr.reshape(n, 1)
    save_arrays(path, data, attrs)
    return path


def test_arrow_keys_follow_the_focused_view(qtbot, tmp_path):
    path = _trace_with_snapshots(str(tmp_path / "s.h5"))
    win = make_window(qtbot, tmp_path, size=(1600, 1000))
    try:
        win.open_paths([path])
        wait_idle(qtbot, win)
        win.activateWindow()
        win.state.set_step(0)
        layer = win.views["layer_view"]
        layer.glw.setFocus()
        qtbot.waitUntil(lambda: win.focused_view() is layer, timeout=3000)
        win.actions_by_name["next"].trigger()
        assert win.state.step == 10  # the next weight snapshot, not step 1
        win.actions_by_name["next"].trigger()
        assert win.state.step == 20
        win.actions_by_name["prev"].trigger()
        assert win.state.step == 10
        win.timeline.glw.setFocus()
        qtbot.waitUntil(lambda: win.focused_view() is None, timeout=3000)
        win.actions_by_name["next"].trigger()
        assert win.state.step == 11  # the timeline steps through logged steps
    finally:
        shutdown(win)


def test_log_y_says_which_lanes_stay_linear_and_flat_lr_keeps_a_sane_axis(qtbot, tmp_path):
    n = 60
    lr = np.r_[np.full(20, 0.5), np.full(n - 20, 1e-3)]  # a step decay, then constant
    path = _trace_with_snapshots(str(tmp_path / "w.h5"), n=n, lr=lr)
    win = make_window(qtbot, tmp_path, size=(1600, 1000))
    try:
        win.open_paths([path])
        wait_idle(qtbot, win)
        tl = win.timeline
        tl.log_box.setChecked(True)
        assert "loss (under one decade)" in tl.log_note.text()
        tl.log_box.setChecked(False)
        assert tl.log_note.text() == ""
        lane = tl.lanes["learning rate"]
        tl.lanes["loss"].plot.setXRange(30, 50, padding=0)  # a zoom onto the flat stretch
        qtbot_app().processEvents()
        lo, hi = lane.plot.getViewBox().viewRange()[1]
        assert lo <= 1e-3 <= hi and hi - lo <= 2.5e-3  # around the value, not −2…2
        tl.lanes["loss"].plot.setXRange(0, 59, padding=0)  # back over the warm-up: autoscale again
        qtbot_app().processEvents()
        lo, hi = lane.plot.getViewBox().viewRange()[1]
        assert lo < 2e-3 and 0.5 < hi < 0.6
    finally:
        shutdown(win)


def test_fit_never_pads_beyond_the_run(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "f.h5"), n=400)
    win = make_window(qtbot, tmp_path, size=(1600, 1000))
    try:
        win.open_paths([path])
        wait_idle(qtbot, win)
        whole = Finding("loss_plateau", "symptom", "warning", 0.5, [0, 399], None, "t", "e", "f")
        win.state.select_finding(whole)
        win.timeline.zoom(0.25)
        win.actions_by_name["fit"].trigger()
        x0, x1 = win.timeline.visible_range()
        assert -1 <= x0 <= 0 and 399 <= x1 <= 400
    finally:
        shutdown(win)


def test_no_run_no_axes(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1600, 1000))
    try:
        for name, dock in win.docks_by_view.items():
            guard = dock.widget()
            assert guard.currentWidget() is guard.hint, name
        assert not win.views["heatmap_view"].isVisible() and not win.timeline.glw.isVisible()
        win.open_paths([write_trace(str(tmp_path / "e.h5"), n=20)])
        wait_idle(qtbot, win)
        assert win.views["heatmap_view"].isVisible()
    finally:
        shutdown(win)


def test_log_tick_labels_keep_their_distance():
    import math

    from gui.views._log_axis import log_ticks

    for lo, hi, px in ((0.15, 2.5, 90), (1e-3, 1e20, 120), (0.3, 0.9, 80), (1e-8, 10, 300)):
        labelled, rest = log_ticks(math.log10(lo), math.log10(hi), px)
        gaps = np.diff(labelled) * px / (math.log10(hi) - math.log10(lo))
        assert labelled and (gaps >= 16 - 1e-9).all(), (lo, hi, labelled)
    labelled, _ = log_ticks(math.log10(0.15), math.log10(2.5), 120)
    assert 0.0 in labelled  # 1 is always labelled when it is in view
