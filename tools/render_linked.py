"""Render the main window on real traces to PNG, offscreen, to look at what the app draws.

    python tools/render_linked.py TRACE [TRACE ...] [--out DIR] [--size 1600x1000]

For each trace: the window as opened (top finding selected), then every finding that
carries ``marks`` selected in turn (its evidence drawn), then a zoom to the finding's
onset (the linked step window). With several traces, one more picture compares them
all (overlays in every lane, the compare heatmap beside). Record traces first, e.g.
``python -m examples.dead_relu --out traces/dead_relu.h5 --quick``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def settle(app: QApplication, win: object, runs: int) -> None:
    import time

    end = time.monotonic() + 120
    while time.monotonic() < end:
        win.wait_workers(100)
        app.processEvents()
        if len(win.state.runs) >= runs and not win.loader.busy() and all(
                r.report is not None or r.notes for r in win.state.runs):
            break
    for view in win.views.values():
        if hasattr(view, "wait"):
            view.wait()
    win.wait_workers()
    app.processEvents()


def shoot(app: QApplication, win: object, path: str) -> None:
    for _ in range(3):
        app.processEvents()
    win.grab().save(path)
    print(path)


def render(paths: list[str], out: str, size: tuple[int, int]) -> None:
    from gui.main_window import MainWindow
    from gui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    os.makedirs(out, exist_ok=True)
    settings = QSettings(os.path.join(tempfile.mkdtemp(), "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.resize(*size)
    win.show()
    win.open_paths(paths)
    settle(app, win, len(paths))
    for index, run in enumerate(list(win.state.runs)):
        win.state.set_current(index)
        settle(app, win, len(paths))
        name = run.name
        shoot(app, win, os.path.join(out, f"{name}-open.png"))
        findings = run.report.findings if run.report is not None else []
        for k, f in enumerate(findings[:4]):
            win.state.select_finding(f)
            settle(app, win, len(paths))
            shoot(app, win, os.path.join(out, f"{name}-finding{k}-{f.code}.png"))
        if findings:
            f = findings[0]
            win.state.select_finding(f)
            onset = f.steps[0]
            n = int(run.trace.steps[-1])
            half = max(n // 20, 5)
            win.state.set_view_range((onset - half, onset + half))
            settle(app, win, len(paths))
            shoot(app, win, os.path.join(out, f"{name}-zoom-onset.png"))
            win.timeline.fit()
            win.timeline.fit()
    if win.state.runs:  # any series in a lane of its own (the metric tree), bookmarks on the overview
        win.state.set_current(0)
        refs = [r for items in win.metric_tree.refs.values() for r in items]
        pick = [r for r in refs if r.stat in ("g_norm", "update_ratio")][:3]
        if pick:
            win.timeline.add_series(pick)
        win.state.toggle_bookmark(int(win.state.run.steps[len(win.state.run.steps) // 3]))
        win.metrics_dock.raise_()
        win.metric_tree.filter.setText(pick[0].column if pick else "")
        settle(app, win, len(paths))
        shoot(app, win, os.path.join(out, "metric-lane.png"))
        win.findings_dock.raise_()
    if len(win.state.runs) > 1:
        win.state.set_current(0)
        win.timeline.set_compared(range(len(win.state.runs)))
        settle(app, win, len(paths))
        shoot(app, win, os.path.join(out, "compare-all.png"))
        if win.compare_split is not None:
            win.compare_split.diff_box.setChecked(True)
            settle(app, win, len(paths))
            shoot(app, win, os.path.join(out, "compare-difference.png"))
    win.live.stop()
    win.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--out", default="renders")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    render(args.traces, args.out, (w, h))
    return 0


if __name__ == "__main__":
    sys.exit(main())
