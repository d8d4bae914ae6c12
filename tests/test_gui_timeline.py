"""Timeline: keys step through logged steps, clicks/drags set the cursor, NaN/Inf always drawn."""

from __future__ import annotations

import numpy as np
import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace
from PySide6.QtCore import QPoint, QPointF, Qt

from gui.series import Series, ema, global_grad_norm


@pytest.fixture(scope="module")
def shared(qapp, tmp_path_factory):
    """One window for the module (opening one costs ~1 s); each test gets it reset."""
    tmp = tmp_path_factory.mktemp("timeline")
    path = write_trace(str(tmp / "run.h5"), n=300, every=5, nan_at=(73,), inf_at=(120, 121, 122),
                       scalars={"val_loss": (np.arange(0, 1500, 100), np.linspace(1, 0.3, 15)),
                                "accuracy": (np.arange(0, 1500, 50), np.linspace(0.2, 0.9, 30))})
    w = make_window(None, tmp)
    w.open_paths([path])
    wait_idle(None, w)
    w.opened_at_step = w.state.step
    yield w
    shutdown(w)


@pytest.fixture
def win(shared, qtbot):
    tl = shared.timeline
    tl.log_box.setChecked(False)
    tl.smooth_box.setChecked(False)
    shared.activateWindow()
    yield shared
    shared.player.timer.stop()
    shared.state.select_finding(None)
    shared.state.set_range(None)
    shared.state.first()
    tl.fit()


def _lane_x_to_viewport(w, lane_name: str, step: float) -> QPoint:
    lane = w.timeline.lanes[lane_name]
    vb = lane.plot.getViewBox()
    (_, _), (y0, y1) = vb.viewRange()
    scene = vb.mapViewToScene(QPointF(step, (y0 + y1) / 2))
    return w.timeline.glw.mapFromScene(scene)


def test_keys_walk_logged_steps_wherever_the_focus_is(qtbot, win):
    s = win.state
    assert win.opened_at_step == 200  # the top finding was selected on open: its first bad step
    s.first()
    for target in (win.timeline.glw, win.findings.list, win):
        target.setFocus()
        start = s.step
        qtbot.keyClick(target, Qt.Key.Key_Right)
        assert s.step == start + 5  # logged every 5 steps: → lands on the next logged step
    qtbot.keyClick(win.findings.list, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert s.step == 15 + 50
    qtbot.keyClick(win.timeline.glw, Qt.Key.Key_Left)
    assert s.step == 60
    qtbot.keyClick(win, Qt.Key.Key_End)
    assert s.step == 299 * 5
    qtbot.keyClick(win, Qt.Key.Key_Right)
    assert s.step == 299 * 5  # clamped at the end
    qtbot.keyClick(win, Qt.Key.Key_Home)
    assert s.step == 0
    qtbot.keyClick(win, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert s.step == 0
    for lane in win.timeline.lanes.values():
        assert lane.cursor.value() == 0


def test_cursor_follows_state_and_readouts_show_values(win):
    win.state.set_step(250)
    for lane in win.timeline.lanes.values():
        assert lane.cursor.value() == 250
    loss = win.timeline.lanes["loss"]
    text = loss.readout.toPlainText()
    value = win.state.run.trace.loss()[50]
    assert "loss" in text and f"{value:.4g}" in text
    assert win.timeline.overview.cursor.value() == 250
    assert "step 250" in win.status_labels["step"].text()


def test_click_and_drag_set_the_step(qtbot, win):
    win.timeline.lanes["loss"].plot.setXRange(0, 1495, padding=0)
    qtbot.wait(20)
    pos = _lane_x_to_viewport(win, "grad norm", 700)
    qtbot.mouseClick(win.timeline.glw.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert abs(win.state.step - 700) <= 10 and win.state.step % 5 == 0
    win.timeline.lanes["loss"].cursor.setValue(903.4)  # what a drag does to the line
    assert win.state.step == 900
    assert all(lane.cursor.value() == 900 for lane in win.timeline.lanes.values())


def test_lanes_loss_lr_gradnorm_and_scalars(win):
    lanes = win.timeline.lanes
    assert list(lanes)[:3] == ["loss", "grad norm", "learning rate"]
    assert "accuracy" in lanes
    names = [s.name for s in lanes["loss"].series]
    assert names == ["loss", "val_loss"]  # val_loss shares the loss lane
    gn = lanes["grad norm"].series[0]
    expected = np.sqrt((win.state.run.trace.param_stat("g_norm").astype(float) ** 2).sum(1))
    np.testing.assert_allclose(gn.y, expected, rtol=1e-6)


def test_nonfinite_values_are_markers_at_the_lane_top(win):
    lane = win.timeline.lanes["loss"]
    xs, ys = lane.marks.getData()
    assert {365.0, 600.0, 610.0} <= set(xs.tolist())  # NaN at row 73, Inf run rows 120–122
    (_, _), (y0, y1) = lane.plot.getViewBox().viewRange()
    assert np.all(ys > y0 + 0.9 * (y1 - y0))
    bx, _ = lane.inf_band.getData()
    assert list(bx) == [600.0, 610.0]  # the Inf run as one band, in the Inf colour
    assert len(lane.band.getData()[0]) == 0  # a lone NaN is a marker, not a band
    lane.plot.setXRange(0, 1500, padding=0)  # fully zoomed out: still there
    assert 365.0 in lane.marks.getData()[0]
    assert 365 in win.timeline.overview.events
    raw_x, raw_y = lane.raw[0].getOriginalDataset()
    assert np.isnan(raw_y[73]) and np.isnan(raw_y[120])  # never fed to the curve as Inf


def test_log_y_and_smoothing_keys(qtbot, win):
    lane = win.timeline.lanes["loss"]
    qtbot.keyClick(win, Qt.Key.Key_Y)
    assert win.timeline.log_box.isChecked() and lane.plot.getAxis("left").logMode
    qtbot.keyClick(win, Qt.Key.Key_Y)
    assert not lane.plot.getAxis("left").logMode
    qtbot.keyClick(win, Qt.Key.Key_E)
    assert win.timeline.smooth_box.isChecked()
    smooth = lane.smooth[0]
    assert smooth.isVisible() and lane.raw[0].opts["pen"].color().alpha() < 255
    _, y = smooth.getOriginalDataset()
    expected = ema(lane.series[0].y, 0.6)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(y[finite], expected[finite])
    qtbot.keyClick(win, Qt.Key.Key_E)
    assert not smooth.isVisible()


def test_space_plays_and_pauses(qtbot, win):
    win.state.first()
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert win.player.playing
    qtbot.waitUntil(lambda: win.state.step >= 15, timeout=3000)
    qtbot.keyClick(win, Qt.Key.Key_Space)
    assert not win.player.playing


def test_overview_tick_click_selects_the_finding(qtbot, win):
    ov = win.timeline.overview
    f = win.state.run.report.findings[0]
    vb = ov.plot.getViewBox()
    scene = vb.mapViewToScene(QPointF(f.steps[0] + 3, 1.3))
    win.state.select_finding(None)
    win.state.set_step(0)
    qtbot.mouseClick(win.timeline.glw.viewport(), Qt.MouseButton.LeftButton,
                     pos=win.timeline.glw.mapFromScene(scene))
    assert win.state.finding is f and win.state.step == f.steps[0]


def test_decimation_keeps_the_spike(qtbot, tmp_path):
    from analysis.trace import open_trace
    from gui.state import Run, RunState
    from gui.views.timeline_view import TimelineView

    n, spike_row = 40000, 31337
    path = write_trace(str(tmp_path / "big.h5"), n=n)
    state = RunState()
    view = TimelineView(state)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    qtbot.waitExposed(view)
    trace = open_trace(path)
    try:
        run = Run(trace, name="big")
        state.add_run(run)
        lane = view.lanes["loss"]
        lane.series[0].y[spike_row] = 1e3  # one-row spike, drawn through the same pipeline
        lane.set_series(lane.series, lane.colors, 0.0)
        qtbot.wait(30)
        shown_x, shown_y = lane.raw[0].curve.getData()
        assert len(shown_x) < 4000  # about two points (min, max) per pixel column
        assert np.nanmax(shown_y) == 1e3
        lane.plot.setXRange(30000, 32000, padding=0)  # zoomed in: clipped to the view, exact values
        qtbot.wait(30)
        shown_x, shown_y = lane.raw[0].curve.getData()
        assert shown_x[0] >= 29000 and shown_x[-1] <= 33000 and np.nanmax(shown_y) == 1e3
    finally:
        state.close_run(0)


def test_ema_is_tensorboards_debiased_formula():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(5000) + 3
    y[[10, 400]] = [np.nan, np.inf]
    for w in (0.0, 0.6, 0.95, 0.999):
        last, k, ref = 0.0, 0, []
        for v in y:
            if not np.isfinite(v):
                ref.append(v)
                continue
            last = last * w + (1 - w) * v
            k += 1
            ref.append(last / (1 - w ** k) if w > 0 else last)
        out = ema(y, w)
        m = np.isfinite(ref)
        np.testing.assert_allclose(out[m], np.array(ref)[m], rtol=1e-9)
        assert np.isnan(out[10]) and np.isinf(out[400])


def test_global_grad_norm_is_nan_aware():
    g = np.array([[3, 4, np.nan], [np.nan, np.nan, np.nan], [1, np.inf, 0]], np.float32)
    out = global_grad_norm(g)
    assert out[0] == 5.0 and np.isnan(out[1]) and np.isinf(out[2])


def test_series_value_at_uses_last_logged_step():
    s = Series("x", np.array([0, 10, 20]), np.array([1.0, 2.0, 4.0]), "x")
    assert s.value_at(15) == (2.0, 1.0)
    assert s.value_at(-1) is None


def test_a_curve_is_antialiased_only_where_its_rows_are_pixels_apart(qtbot, tmp_path):
    from analysis.trace import open_trace
    from gui.state import Run, RunState
    from gui.views._lane import SPARSE_PX
    from gui.views.timeline_view import TimelineView

    state = RunState()
    view = TimelineView(state)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    qtbot.waitExposed(view)
    trace = open_trace(write_trace(str(tmp_path / "big.h5"), n=40000))
    try:
        state.add_run(Run(trace, name="big"))
        lane = view.lanes["loss"]
        raw = lane.raw[0]
        raw.opts["antialias"] = True  # as the app's theme asks
        px = lane.plot.getViewBox().width()
        for rows, smooth in ((px / (2 * SPARSE_PX), True), (px / SPARSE_PX * 2, False), (20000, False)):
            lane.plot.setXRange(10000, 10000 + rows, padding=0)
            qtbot.wait(30)
            assert raw.curve.opts["antialias"] is smooth, rows
            assert raw.curve.getData()[0][0] <= 10000 + 1  # the window drawn is the new one
    finally:
        state.close_run(0)
