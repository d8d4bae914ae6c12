"""Smaller defects of the app, each driven as a user would: keys, the demo's arriving traces, empty state."""

from __future__ import annotations

import time

from gui.app import PendingPaths
from tests._gui_helpers import make_window, qtbot_app, shutdown, wait_idle, write_trace


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
        assert [r.name for r in win.state.runs] == ["t0", "t1", "t2"]
        assert win.state.current == 0 and win.tabs.currentIndex() == 0  # the first trace stays shown
        win.state.set_current(1)  # the user reads t1 …
        win.open_paths([str(tmp_path / "t1.h5")], background=True)  # … a re-sent path does not steal it
        assert win.state.current == 1
    finally:
        shutdown(win)
