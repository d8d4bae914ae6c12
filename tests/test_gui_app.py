"""The window: opening (good and bad files), recent files, drag and drop, run compare, live follow,
export, and ``run_app`` end to end in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _gui_helpers import make_window, shutdown, wait_idle, write_trace
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from analysis.errors import TraceError
from analysis.synthetic import save_arrays
from analysis.trace import open_trace
from gui import export

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def test_open_shows_root_cause_first_and_the_timeline(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "run.h5"), n=120)
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        assert [r.name for r in w.state.runs] == ["run"]
        assert w.findings_dock.isVisible() and w.findings.list.count() == 3
        assert len(w.timeline.lanes["loss"].series[0].x) == 120
        assert w.status_labels["file"].text() == path
        assert w.recent()[0] == path
        w._fill_recent()
        assert [a.text() for a in w.recent_menu.actions()][0] == path
        shot = w.grab().toImage()
        assert shot.width() == w.width() and not shot.isNull()
    finally:
        shutdown(w)


def test_bad_files_show_one_line_errors_and_the_app_keeps_working(qtbot, tmp_path):
    missing = str(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not a trace\n")
    foreign = str(tmp_path / "foreign.h5")
    save_arrays(foreign, {"x": np.arange(3)}, {})
    expected = {}
    for p in (missing, str(text), foreign):
        with pytest.raises(TraceError) as err:
            open_trace(p)
        expected[p] = str(err.value)
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([missing, str(text), foreign])
        wait_idle(qtbot, w, runs=0)
        qtbot.waitUntil(lambda: len(_boxes()) == 3, timeout=5000)
        assert sorted(b.text() for b in _boxes()) == sorted(expected.values())
        assert all("\n" not in b.text() for b in _boxes())
        for box in _boxes():
            box.close()
        assert not w.state.runs
        w.open_paths([write_trace(str(tmp_path / "good.h5"), n=50)])
        wait_idle(qtbot, w)
        assert len(w.state.runs) == 1
    finally:
        shutdown(w)


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_drag_and_drop_opens_h5_files(qtbot, tmp_path):
    path = write_trace(str(tmp_path / "dropped.h5"), n=60)
    w = make_window(qtbot, tmp_path)
    try:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(path), QUrl.fromLocalFile(str(tmp_path / "readme.txt"))])
        enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        w.dragEnterEvent(enter)
        assert enter.isAccepted()
        drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
        w.dropEvent(drop)
        wait_idle(qtbot, w)
        assert [r.trace.path for r in w.state.runs] == [path]
        w.dropEvent(drop)  # the same file again: shown, not opened twice
        wait_idle(qtbot, w)
        assert len(w.state.runs) == 1
    finally:
        shutdown(w)


def test_two_runs_tabs_and_compare_overlay_with_one_cursor(qtbot, tmp_path):
    a = write_trace(str(tmp_path / "a.h5"), n=100, seed=1)
    b = write_trace(str(tmp_path / "b.h5"), n=150, seed=2)
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([a])
        wait_idle(qtbot, w)
        w.open_paths([b])
        wait_idle(qtbot, w, runs=2)
        assert w.tabs.count() == 2 and w.state.current == 1
        w.timeline.set_compare(0)
        lane = w.timeline.lanes["loss"]
        assert lane.overlay_item is not None and len(lane.overlay_item.getOriginalDataset()[0]) == 100
        w.state.set_step(42)
        other = w.state.runs[0].trace.loss()[42]
        assert "loss [a]" in lane.readout.toPlainText() and f"{other:.4g}" in lane.readout.toPlainText()
        w.tabs.setCurrentIndex(0)
        assert w.state.current == 0 and w.state.run.name == "a"
        assert w.timeline.compare_runs() == ["b"]  # the Compare menu offers the other run
        w.close_run(0)
        assert [r.name for r in w.state.runs] == ["b"] and w.tabs.count() == 1
    finally:
        shutdown(w)


WRITER = """
import os, socket, sys, h5py, numpy as np
sys.path.insert(0, {repo!r})
from analysis.synthetic import synthetic_arrays
total, first = {total}, {first}
env = {{"hostname": socket.gethostname(), "pid": os.getpid(), "world_size": 1, "rank": 0}}
data, attrs = synthetic_arrays(total, meta={{"env": env}})
rows = [k for k, v in data.items() if k.split("/")[0] in ("steps", "params", "modules", "outputs",
        "targets", "inputs") and v.ndim and len(v) == total and v.dtype != object]
f = h5py.File({path!r}, "w", libver="latest")
for key, value in data.items():
    if key in rows:
        f.create_dataset(key, data=value[:first], maxshape=(None,) + value.shape[1:],
                         chunks=(64,) + value.shape[1:])
    elif value.dtype == object:
        f.create_dataset(key, data=value.astype(str).astype(object), dtype=h5py.string_dtype())
    else:
        f.create_dataset(key, data=value)
for group, values in attrs.items():
    obj = f.require_group(group) if group else f
    for k, v in values.items():
        obj.attrs[k] = v
f.attrs["closed_cleanly"] = np.int8(0)
f.attrs["steps_written"] = np.int64(first)
f.swmr_mode = True
n = first
print("ready", flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "grow":
        k = int(arg)
        for key in rows:
            f[key].resize(n + k, axis=0)
            f[key][n:n + k] = data[key][n:n + k]
        n += k
        f.attrs.modify("steps_written", np.int64(n))
        f.flush()
    elif cmd == "close":
        f.attrs.modify("closed_cleanly", np.int8(1))
        f.close()
    print("ok", flush=True)
"""


class Writer:
    """A trace written the way the recorder writes it (HDF5 SWMR, rows appended) by another process."""

    def __init__(self, path: str, total: int, first: int) -> None:
        code = WRITER.format(repo=REPO, path=path, total=total, first=first)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_live_follow_extends_the_timeline_and_reanalyses(qtbot, tmp_path):
    path = str(tmp_path / "live.h5")
    writer = Writer(path, total=160, first=40)
    w = make_window(qtbot, tmp_path, analyze_fn=None)
    try:
        w.live.analysis_interval_s = 0.0
        w.live.reopen_after_s = 0.0  # the default waits 3 s of silence before reopening
        w.open_paths([path])
        wait_idle(qtbot, w)
        run = w.state.run
        assert w.live.is_live(run) and "live: step 39" in w.status_labels["live"].text()
        assert len(w.timeline.lanes["loss"].series[0].x) == 40
        writer.send("grow 60")
        w.live.poll()
        run = w.state.run
        assert len(w.timeline.lanes["loss"].series[0].x) == 100 and run.trace.n_steps == 100
        assert len(w.timeline.lanes["grad norm"].series[0].y) == 100
        assert "live: step 99" in w.status_labels["live"].text()
        wait_idle(qtbot, w)
        assert run.report.steps == 100  # analysis re-ran on the new rows
        w.state.last()
        assert w.state.step == 99
        writer.send("grow 60")
        writer.send("close")
        w.live.poll()  # takes the new rows; views read them
        wait_idle(qtbot, w)
        w.live.poll()  # the next poll, idle, reopens the file and sees the clean close
        wait_idle(qtbot, w)
        run = w.state.run
        assert not w.live.is_live(run)
        assert "closed cleanly at step 159" in w.status_labels["live"].text()
        assert len(w.timeline.lanes["loss"].series[0].x) == 160
        assert run.report.steps == 160 and not any("clean close" in n for n in run.report.notes)
    finally:
        writer.kill()
        shutdown(w)


def test_killed_writer_ends_the_run_without_a_crash(qtbot, tmp_path):
    path = str(tmp_path / "dying.h5")
    writer = Writer(path, total=80, first=80)
    w = make_window(qtbot, tmp_path, analyze_fn=None)
    try:
        w.open_paths([path])
        wait_idle(qtbot, w)
        run = w.state.run
        w.live.poll()
        assert w.live.is_live(run)
        writer.kill()
        w.live.poll()
        wait_idle(qtbot, w)
        run = w.state.run
        assert not w.live.is_live(run)
        assert "ended at step 79 without a clean close" in w.findings.live.text()
        assert any("ended without a clean close" in n for n in run.report.notes)  # final analysis
        assert "ended without a clean close" in w.findings.notes.text()
        assert len(w.timeline.lanes["loss"].series[0].x) == 80
        w.state.last()
        assert w.state.step == 79
    finally:
        writer.kill()
        shutdown(w)


def test_export_png_markdown_and_html(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([write_trace(str(tmp_path / "run.h5"), n=120)])
        wait_idle(qtbot, w)
        w.state.set_step(7)
        png = export.save_png(w.timeline, str(tmp_path / "timeline.png"))
        img = QImage(png)
        assert not img.isNull() and img.width() == w.timeline.width()
        md = export.write_report(w, str(tmp_path / "report.md"))
        text = open(md, encoding="utf-8").read()
        codes = [f.code for f in w.state.run.report.findings]
        top = w.state.run.report.problems()[0]  # the banner follows the ranked answer
        assert all(f"`{c}`" in text for c in codes)
        assert f"First bad step: {top.steps[0]}** ({top.code})" in text
        figures = sorted(os.listdir(tmp_path / "report_files"))
        sizes = [os.path.getsize(tmp_path / "report_files" / f) for f in figures]
        assert len(figures) >= 3 and min(sizes) > 1000
        assert "(report_files/01-lr_too_high-timeline.png)" in text
        assert w.state.step == 7 and w.state.finding is not None  # restored after the captures
        page = export.write_report(w, str(tmp_path / "report.html"))
        html_text = open(page, encoding="utf-8").read()
        assert html_text.count("data:image/png;base64,") == len(figures) and "lr_too_high" in html_text
    finally:
        shutdown(w)


def test_run_app_with_demo_progress_end_to_end(tmp_path):
    good = write_trace(str(tmp_path / "given.h5"), n=60)
    produced = write_trace(str(tmp_path / "produced.h5"), n=60, seed=3)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from gui.app import make_app, run_app

        make_app()  # timers need the application's event loop

        def demo(progress):
            progress(0, 1, "recording demo")
            yield {produced!r}
            progress(1, 1, "done")

        def check():
            wins = [x for x in QApplication.topLevelWidgets() if type(x).__name__ == "MainWindow"]
            if wins and len(wins[0].state.runs) == 2 and all(r.report for r in wins[0].state.runs):
                print("RUNS", sorted(r.name for r in wins[0].state.runs), flush=True)
                wins[0].close()
                QApplication.quit()

        timer = QTimer()
        timer.timeout.connect(check)
        timer.start(100)
        QTimer.singleShot(40000, QApplication.quit)
        sys.exit(run_app([{good!r}], demo_progress=demo))
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RUNS ['given', 'produced']" in out.stdout
