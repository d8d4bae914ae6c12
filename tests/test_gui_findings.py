"""Root-cause panel: ranked cards, banner, notes; a finding drives cursor, layer, range and views."""

from __future__ import annotations

import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace
from PySide6.QtCore import Qt

from analysis.findings import Finding, Report
from gui.views.findings_panel import first_bad, group_notes


@pytest.fixture(scope="module")
def shared(qapp, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("findings")
    w = make_window(None, tmp)
    w.open_paths([write_trace(str(tmp / "run.h5"), n=200, every=2)])
    wait_idle(None, w)
    yield w
    shutdown(w)


@pytest.fixture
def win(shared, qtbot):
    yield shared
    shared.state.select_finding(None)
    shared.state.set_range(None)
    shared.findings.filter.setCurrentIndex(0)


def _item_pos(panel, row: int):
    return panel.list.visualItemRect(panel.list.item(row)).center()


def test_panel_shows_ranked_cards_banner_and_notes(win):
    panel = win.findings
    assert panel.isVisible() and win.findings_dock.isVisible()
    assert panel.list.count() == 3
    texts = [panel.list.itemWidget(panel.list.item(i)).text() for i in range(3)]
    assert "lr_too_high" in texts[0] and "ERROR" in texts[0] and "lower the learning rate" in texts[0]
    assert "dead_relu" in texts[1] and "fc2.weight" in texts[1] and "LeakyReLU" in texts[1]
    assert "#f0524f" in texts[0] and "#e7a83e" in texts[1]  # severity colours
    banner = panel.banner.text()
    # The banner follows the ranked answer: the top cause's onset, not the earliest warning.
    assert panel.banner.isVisible() and "First bad step" in banner and "80" in banner
    assert "lr_too_high" in banner
    assert panel.notes.isVisible() and "needs outputs" in panel.notes.text()
    assert all(panel.list.visualItemRect(panel.list.item(i)).height() > 60 for i in range(3))


def test_click_finding_moves_cursor_layer_range_and_views(qtbot, win):
    panel, state = win.findings, win.state
    f = state.run.report.findings[1]  # dead_relu, fc2.weight, steps 20..398
    seen = []
    state.findingChanged.connect(seen.append)
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=_item_pos(panel, 1))
    assert state.finding is f and seen[-1] is f
    assert state.step == f.steps[0] and state.layer == "fc2.weight"
    assert state.step_range == (f.steps[0], f.steps[1])
    for lane in win.timeline.lanes.values():
        assert lane.cursor.value() == f.steps[0]
        assert lane.region.isVisible()
        lo, hi = lane.region.getRegion()
        assert lo <= f.steps[0] and hi >= f.steps[1]
    assert win.timeline.overview.region.isVisible()
    assert "fc2.weight" in win.status_labels["layer"].text()
    assert f"step {f.steps[0]}" in win.status_labels["step"].text()
    assert panel.list.currentRow() == 1


def test_keyboard_n_shift_n_and_enter(qtbot, win):
    state, report = win.state, win.state.run.report
    by_step = sorted(report.findings, key=lambda f: f.steps[0])
    qtbot.keyClick(win, Qt.Key.Key_N)
    assert state.finding is by_step[0]
    qtbot.keyClick(win.timeline.glw, Qt.Key.Key_N)
    assert state.finding is by_step[1] and state.step == by_step[1].steps[0]
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert state.finding is by_step[0]
    state.select_finding(None)
    win.findings.list.setCurrentRow(2)  # highlighted (by code: selection sync is blocked)
    state.select_finding(None)
    win.findings.list.setFocus()
    qtbot.keyClick(win.findings.list, Qt.Key.Key_Return)
    assert state.finding is not None
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert state.finding is None and state.step_range is None


def test_filter_causes_and_symptoms(win):
    panel = win.findings
    panel.filter.setCurrentText("Symptoms")
    assert panel.list.count() == 1
    panel.filter.setCurrentText("Causes")
    assert panel.list.count() == 2


def test_real_analysis_finds_the_nan(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "nan.h5"), n=150, nan_at=tuple(range(90, 150)))
    w = make_window(qtbot, tmp_path, analyze_fn=None)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        report = w.state.run.report
        assert report is not None and "nonfinite" in report.codes()
        nf = next(f for f in report.findings if f.code == "nonfinite")
        assert nf.steps[0] == 90
        assert w.findings.list.count() == len(report.findings)
        assert "First bad step" in w.findings.banner.text()
        assert w.state.finding is report.problems()[0]  # diagnosis first: top problem selected on open
    finally:
        shutdown(w)


def test_failed_analysis_and_crashed_run_are_visible(qtbot, tmp_path):
    def broken(trace):
        raise RuntimeError("detector exploded")

    path = write_trace(str(tmp_path / "crashed.h5"), n=80, closed=False)
    w = make_window(qtbot, tmp_path, analyze_fn=broken)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        run = w.state.run
        assert run.report is None
        status = w.findings.status.text()
        assert "analysis failed" in status and "detector exploded" in status
        assert "detector exploded" in w.findings.notes.text()
        assert len(w.timeline.lanes["loss"].series[0].x) == 80  # the timeline still works
        assert not w.live.is_live(run)
        assert w.findings.live.isVisible()
        assert "ended at step 79 without a clean close" in w.findings.live.text()
        assert "without a clean close" in w.status_labels["live"].text()
        run.report = Report(run.trace.path, 80, [], notes=list(run.trace.warnings))
        w.state.runUpdated.emit(0)
        assert "ended without a clean close" in w.findings.notes.text()
        assert "No problem found" in w.findings.banner.text()
    finally:
        shutdown(w)


def test_first_bad_and_note_grouping():
    mk = lambda code, kind, sev, a: Finding(code, kind, sev, 0.5, [a, a + 5], None, "t", "e", "f")  # noqa: E731
    rep = Report("x", 100, [mk("lr_too_high", "cause", "error", 40),
                            mk("loss_diverging", "symptom", "error", 55),
                            mk("loss_plateau", "symptom", "info", 3)])
    first, visible = first_bad(rep)
    assert first.code == "lr_too_high" and visible.code == "loss_diverging"
    # A background cause at step 0 ranked below the root cause of a late blow-up does not win.
    late = Report("x", 4000, [mk("data_outlier", "cause", "error", 3100),
                              mk("unnormalized_inputs", "cause", "warning", 0),
                              mk("loss_diverging", "symptom", "error", 3101)])
    first, visible = first_bad(late)
    assert first.code == "data_outlier" and first.steps[0] == 3100 and visible.code == "loss_diverging"
    notes = group_notes(["a: needs outputs, which this trace lacks",
                         "b: needs outputs, which this trace lacks",
                         "run.h5: run ended without a clean close; read 5 steps up to step 4"])
    assert notes[0].startswith("run.h5") and notes[1] == "needs outputs, which this trace lacks (a, b)"
