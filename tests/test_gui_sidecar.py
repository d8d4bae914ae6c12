"""State beside the trace (bookmarks, notes, suppressed findings, colour limits) and the Ctrl+P finder."""

from __future__ import annotations

import json
import os

import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui import finder, sidecar


def open_window(qtbot, tmp_path, path):
    w = make_window(qtbot, tmp_path)
    w.open_paths([path])
    wait_idle(qtbot, w)
    return w


def test_bookmarks_notes_suppressed_and_limits_survive_a_reopen(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "run.h5"), n=200)
    w = open_window(qtbot, tmp_path, path)
    try:
        s = w.state
        top = s.run.report.findings[0]
        assert s.finding is top  # the top problem is selected on open
        s.set_step(30)
        w.actions_by_name["bookmark"].trigger()
        s.toggle_bookmark(150)
        s.add_note("loss jumps here", step=90)
        s.set_suppressed(top)  # "expected": hidden from the list
        hm = w.views["heatmap_view"]
        hm.wait()
        hm.bar.setLevels((-2.0, 0.5))
        hm._on_user_levels(hm.bar)
        assert w.findings.list.count() == 2 and "1 marked expected" in w.findings.status.text()
        assert list(w.timeline.overview.bookmarks.data["x"]) == [30, 150, 90]
        s.set_step(100)
        w.actions_by_name["next_bookmark"].trigger()
        assert s.step == 150
        w.actions_by_name["next_bookmark"].trigger()  # wraps to the first
        assert s.step == 30
    finally:
        shutdown(w)
    data = json.load(open(sidecar.sidecar_path(path)))
    assert data["bookmarks"] == [30, 150] and data["notes"] == [{"step": 90, "text": "loss jumps here"}]
    assert data["suppressed"] == ["lr_too_high@fc1"] and data["levels"] == {"g_norm": [-2.0, 0.5]}

    w = open_window(qtbot, tmp_path, path)
    try:
        run = w.state.run
        assert run.sidecar.bookmarks == [30, 150] and run.sidecar.notes[0]["step"] == 90
        assert w.findings.list.count() == 2
        assert w.state.finding.code == "dead_relu"  # the suppressed one is not auto-selected
        hm = w.views["heatmap_view"]
        hm.wait()
        assert hm.bar.levels() == pytest.approx((-2.0, 0.5))  # limits restored, not autoscaled
        w.findings.toggle_show_suppressed()
        assert w.findings.list.count() == 3
    finally:
        shutdown(w)


@pytest.mark.parametrize("content", [
    b"{not json", b"[1, 2, 3]", b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000, b"NaN",
    json.dumps({"bookmarks": ["x", None, 5, True, 1e300], "notes": [{"step": "a"}, 7],
                "suppressed": [3, "ok@"], "levels": {"g_norm": [float("nan"), 1], "w_norm": [2, 1],
                                                     "a_std": [0, 1]}}).encode(),
])
def test_a_corrupt_or_hostile_sidecar_is_ignored_with_a_message(tmp_path, content):
    path = str(tmp_path / "run.h5")
    with open(sidecar.sidecar_path(path), "wb") as fh:
        fh.write(content)
    sc, message = sidecar.load(path)
    assert message and message.startswith("run.h5.trainwreck.json: ")
    if content.startswith(b'{"bookmarks'):
        assert sc.bookmarks == [5] and sc.suppressed == ["ok@"] and sc.levels == {"a_std": [0.0, 1.0]}
        assert "9 malformed entries ignored" in message
    else:
        assert sc.empty()


def test_the_window_opens_a_trace_whose_sidecar_is_garbage(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "run.h5"), n=130)
    with open(sidecar.sidecar_path(path), "wb") as fh:
        fh.write(b"[" * 100_000)
    w = open_window(qtbot, tmp_path, path)
    try:
        run = w.state.run
        assert run.report is not None and len(run.report.findings) == 3  # the app works
        assert any("trainwreck.json: ignored" in n for n in run.notes)  # … and says what it ignored
        assert "trainwreck.json: ignored" in w.findings.notes.text()
    finally:
        shutdown(w)


def test_an_unwritable_folder_is_reported_not_raised(tmp_path):
    sc = sidecar.Sidecar(bookmarks=[1])
    msg = sidecar.save(str(tmp_path / "missing" / "run.h5"), sc)
    assert msg and msg.startswith("cannot save run.h5.trainwreck.json")


def test_finder_score_fuzzy_substring_and_regex():
    assert finder.score("fc1", "layer fc1.weight") > finder.score("fc1", "layer f_c_1") > 0
    assert finder.score("dedfr", "dead fraction") is not None
    assert finder.score(r"fc\d\.bias", "fc2.bias") == 100.0
    assert finder.score("zzz", "dead fraction") is None and finder.score("(", "x") is None


def test_ctrl_p_finds_layers_metrics_and_findings_and_acts(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "run.h5"), n=120)
    w = open_window(qtbot, tmp_path, path)
    try:
        w.actions_by_name["finder"].trigger()
        dlg = w.finder_dialog
        kinds = {e.kind for e in dlg.items}
        assert {"finding", "heatmap metric", "layer"} <= kinds
        qtbot.keyClicks(dlg.edit, "fc2.bias")
        assert dlg.shown[0].kind == "layer"
        qtbot.keyClick(dlg.edit, Qt.Key.Key_Return)
        assert w.state.layer == "fc2.bias" and not dlg.isVisible()
        dlg = finder.open_finder(w)
        qtbot.keyClicks(dlg.edit, "dead fraction")
        dlg.accept_current()
        assert w.views["heatmap_view"].metric_key == "a_dead_frac"
        dlg = finder.open_finder(w)
        qtbot.keyClicks(dlg.edit, "plateau")
        assert dlg.shown[0].kind == "finding"
        dlg.accept_current()
        assert w.state.finding.code == "loss_plateau"
        QApplication.processEvents()
    finally:
        shutdown(w)
    assert not os.path.exists(sidecar.sidecar_path(path))  # nothing to keep: no file written
