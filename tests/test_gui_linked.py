"""Views linked in time (one step window), range marks that never tint data, a finding's marks drawn."""

from __future__ import annotations

import numpy as np
import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from analysis import views_data as vd
from analysis.findings import Finding, Report
from analysis.trace import Trace


def marked_report(trace: Trace) -> Report:
    """Findings carrying ``marks`` as the detectors produce them."""
    s, last = trace.steps, int(trace.steps[-1])
    loss = trace.loss()
    floor = float(np.nanmin(loss)) * 0.5
    findings = [
        Finding("double_softmax", "cause", "error", 0.9, [0, last], "fc2", "Double softmax",
                "loss floor", "drop the softmax",
                marks={"onset": 0, "hlines": [{"lane": "loss", "y": floor, "label": "floor"}],
                       "lane": "loss", "views": ["timeline"]}),
        Finding("dead_relu", "cause", "warning", 0.7, [int(s[150]), last], "fc1", "Dead units",
                "40% of units never fire", "use LeakyReLU",
                marks={"onset": int(s[150]), "events": [int(s[160]), int(s[170])], "metric": "a_dead_frac",
                       "layers": ["fc1", "fc2"], "views": ["heatmap"]}),
    ]
    return Report(trace=trace.path, steps=last + 1, findings=findings)


@pytest.fixture
def win(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, analyze_fn=marked_report, size=(1400, 900))
    w.open_paths([write_trace(str(tmp_path / "run.h5"), n=400)])
    wait_idle(qtbot, w)
    yield w
    shutdown(w)


def heatmap_steps(w) -> tuple[float, float]:
    hm = w.views["heatmap_view"]
    (x0, x1), _ = hm.vb.viewRange()
    return vd.rows_to_steps(w.state.run.trace.steps, x0, x1)


def test_range_is_marked_with_brackets_and_the_cells_keep_their_colours(win):
    hm = win.views["heatmap_view"]
    win.state.select_finding(None)
    win.state.set_range(None)
    QApplication.processEvents()
    rect = hm.glw.mapFromScene(hm.image.mapRectToScene(hm.image.boundingRect())).boundingRect()
    before = hm.glw.grab().toImage()
    win.state.set_range((20, 380))  # most of the run, as a finding spanning it would be
    QApplication.processEvents()
    after = hm.glw.grab().toImage()
    assert hm._region.isVisible() and hm._region.brush().style() == Qt.BrushStyle.NoBrush
    c = rect.center()
    for dx in (-60, -20, 0, 20, 60):  # cells inside the range: identical pixels, no tint
        for dy in (-rect.height() // 4, 0, rect.height() // 4):
            p = QPoint(c.x() + dx, c.y() + dy)
            assert before.pixelColor(p) == after.pixelColor(p)


def test_zoom_and_pan_are_linked_and_one_view_can_be_unlinked(win):
    tl, hm = win.timeline, win.views["heatmap_view"]
    tl.lanes["loss"].plot.setXRange(100, 200, padding=0)
    QApplication.processEvents()
    assert heatmap_steps(win) == pytest.approx((100, 200), abs=0.01)
    hist = win.views["histogram_view"].link.plot  # histograms over time follow the same window
    assert hist.getViewBox().viewRange()[0] == pytest.approx([100, 200], abs=0.01)
    hm.vb.setXRange(50.0, 90.0, padding=0)  # rows = steps in this trace: the heatmap drives too
    QApplication.processEvents()
    assert tl.visible_range() == pytest.approx((50, 90), abs=0.01)
    hm.link_button.click()  # unlink the heatmap only
    assert not hm.linked
    tl.lanes["loss"].plot.setXRange(300, 350, padding=0)
    QApplication.processEvents()
    assert heatmap_steps(win) == pytest.approx((50, 90), abs=0.01)
    hm.link_button.click()  # linked again: it adopts the shared window
    assert heatmap_steps(win) == pytest.approx((300, 350), abs=0.01)


def test_selecting_a_finding_brings_its_onset_into_every_linked_view(win):
    win.timeline.lanes["loss"].plot.setXRange(0, 40, padding=0)
    QApplication.processEvents()
    dead = win.state.run.report.findings[1]
    win.state.select_finding(dead)
    QApplication.processEvents()
    for a, b in (win.timeline.visible_range(), heatmap_steps(win)):
        assert a <= dead.steps[0] <= b and b - a == pytest.approx(40, abs=0.5)


def _wheel(widget, pos: QPoint, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    ev = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_wheel_over_the_heatmap_zooms_steps_and_shift_wheel_zooms_rows(win):
    hm = win.views["heatmap_view"]
    pos = hm.glw.mapFromScene(hm.vb.sceneBoundingRect().center())
    (x0, x1), (y0, y1) = hm.vb.viewRange()
    _wheel(hm.glw.viewport(), pos)
    QApplication.processEvents()
    (nx0, nx1), (ny0, ny1) = hm.vb.viewRange()
    assert nx1 - nx0 < x1 - x0 and (ny0, ny1) == pytest.approx((y0, y1))
    _wheel(hm.glw.viewport(), pos, Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    (mx0, mx1), (my0, my1) = hm.vb.viewRange()
    assert (mx0, mx1) == pytest.approx((nx0, nx1)) and my1 - my0 < ny1 - ny0


def test_a_findings_marks_are_drawn_in_every_view(win):
    ds, dead = win.state.run.report.findings
    win.state.select_finding(ds)
    QApplication.processEvents()
    loss = win.timeline.lanes["loss"]
    floor = ds.marks["hlines"][0]["y"]
    assert [float(line.yData[0]) for line, _ in loss.hlines] == [floor]
    (_, _), (y0, y1) = loss.plot.getViewBox().viewRange()
    y = np.log10(floor) if loss.plot.getAxis("left").logMode else floor
    assert y0 <= y <= y1  # the floor is on screen, though below every loss value
    assert "floor" in loss.hlines[0][1].toPlainText()
    assert win.timeline.overview.onset.isVisible() and win.timeline.overview.onset.value() == 0
    hm = win.views["heatmap_view"]
    assert hm.metric_key == "g_norm"  # no metric in the marks: the heatmap stays as it was
    win.state.select_finding(dead)
    hm.wait()
    QApplication.processEvents()
    assert hm.metric_key == "a_dead_frac"  # dead_relu shows the dead fraction
    assert hm.metric_box.currentData() == "a_dead_frac"
    assert hm.marked_positions() == [0, 2] and hm._marked.shown() == 2  # fc1 and fc2, not act
    assert not loss.hlines
    assert list(loss.event_marks.data["x"]) == dead.marks["events"]
    assert list(win.timeline.overview.event_ticks.data["x"]) == dead.marks["events"]
    assert win.timeline.overview.onset.value() == dead.steps[0]


def test_live_growth_keeps_heatmap_status_bar_and_follow_current(qtbot, tmp_path):
    from test_gui_app import Writer

    path = str(tmp_path / "live.h5")
    writer = Writer(path, total=200, first=40)
    w = make_window(qtbot, tmp_path, analyze_fn=None)
    try:
        w.live.reopen_after_s = 0.0
        w.open_paths([path])
        wait_idle(qtbot, w)
        hm = w.views["heatmap_view"]
        hm.wait()
        w.go_last()  # End: cursor on the last row, Follow on
        assert w.state.step == 39 and "row 40/40" in w.status_labels["step"].text()
        hm.bar.setLevels((-3.0, 1.0))
        hm._on_user_levels(hm.bar)  # colour limits locked by the user
        writer.send("grow 60")
        w.live.poll()
        wait_idle(qtbot, w, analysed=False)
        hm.wait()
        QApplication.processEvents()
        assert w.state.run.trace.n_steps == 100
        assert w.state.step == 99 and "row 100/100" in w.status_labels["step"].text()  # followed
        (x0, x1), _ = hm.vb.viewRange()
        assert x1 == pytest.approx(99.5, abs=1.0)  # the heatmap shows the new rows
        assert "× 100 steps" in hm.readout.text()
        w.live.poll()  # idle and quiet: the follower reopens the file (a new Run object)
        wait_idle(qtbot, w, analysed=False)
        hm.wait()
        assert hm._user_levels == (-3.0, 1.0)  # the lock survives the reopen
        writer.send("grow 100")
        w.live.poll()
        wait_idle(qtbot, w, analysed=False)
        hm.wait()
        QApplication.processEvents()
        assert w.state.step == 199 and "row 200/200" in w.status_labels["step"].text()
        assert "× 200 steps" in hm.readout.text() and hm.vb.viewRange()[0][1] == pytest.approx(199.5, abs=1)
        want = float(w.state.run.trace.param_stat("g_norm")[150, 0])
        assert hm._pyr.value_at(150, 0) == pytest.approx(want)
        writer.kill()  # the writer dies: the run ends, the banner says so
        w.live.poll()
        wait_idle(qtbot, w, analysed=False)
        assert not w.live.is_live(w.state.run)
        assert "without a clean close" in w.findings.live.text()
        assert "still being written" not in w.findings.notes.text()
    finally:
        writer.kill()
        shutdown(w)


def test_the_window_leaves_room_for_every_axis_cache(win):
    from PySide6.QtGui import QPixmapCache

    from gui.main_window import PIXMAP_CACHE_KB

    assert QPixmapCache.cacheLimit() >= PIXMAP_CACHE_KB  # Qt's 10 MB re-rendered every axis a zoom frame
