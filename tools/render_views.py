"""Render every view of a few real traces to PNG, offscreen, to look at them as a user would.

    python tools/render_views.py --out /tmp/shots [--record DIR] [TRACE ...]

With ``--record DIR`` the traces are first recorded from example scenarios (quick runs:
a double softmax, a regression whose learning rate blows it up to NaN, dead ReLUs,
exploding gradients, a warm-up/cosine schedule) and a 2-rank run (two seeds of a
scenario, renamed ``ddp.rank0.h5`` / ``ddp.rank1.h5``). For each trace: the whole window
at 1600×1000 (``<name>-window.png``), every view's plots at 2× as report figures
(``<name>-<view>.png``), and the window again after the keys a user presses first
(W zoom twice, Y log; then F twice).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SCENARIOS = ("seed003_double_softmax_binary", "lr_too_high", "dead_relu", "seed000_exploding_gradients",
             "healthy_warmup_cosine")


def record(folder: str, names: tuple[str, ...] = SCENARIOS) -> list[str]:
    import examples

    os.makedirs(folder, exist_ok=True)
    paths = [examples.run_scenario(n, os.path.join(folder, f"{n}.h5"), quick=True) for n in names]
    for rank in (0, 1):  # two "ranks": the same scenario from two seeds
        tmp = examples.run_scenario("healthy_cnn_digits", os.path.join(folder, f"tmp{rank}.h5"), quick=True,
                                    seed=rank)
        os.replace(tmp, os.path.join(folder, f"ddp.rank{rank}.h5"))
    return paths + [os.path.join(folder, "ddp.rank0.h5")]


def _settle(win, seconds: float = 0.3) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        win.wait_workers(50)
        QApplication.processEvents()


def render(paths: list[str], out: str) -> list[str]:
    from PySide6.QtCore import QSettings

    from gui.app import make_app
    from gui.figures import render_view
    from gui.main_window import MainWindow

    make_app()
    os.makedirs(out, exist_ok=True)
    written = []
    settings = QSettings(os.path.join(out, "settings.ini"), QSettings.Format.IniFormat)
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        win = MainWindow(settings=settings)
        win.resize(1600, 1000)
        win.show()
        win.open_paths([path])
        end = time.monotonic() + 120
        while (not win.state.runs or win.state.run.report is None) and time.monotonic() < end:
            _settle(win, 0.1)
        _settle(win, 1.0)
        shot = os.path.join(out, f"{name}-window.png")
        win.grab().save(shot)
        written.append(shot)
        for key, view in win.report_views().items():
            win.show_view(key)  # a view behind a dock tab comes to the front
            _settle(win, 0.2)
            target = render_view(view, os.path.join(out, f"{name}-{key}.png"))
            if target:
                written.append(target)
        win.show_view("layer")
        acts = win.actions_by_name
        acts["zoom_in"].trigger()
        acts["zoom_in"].trigger()
        acts["log"].trigger()
        _settle(win)
        shot = os.path.join(out, f"{name}-zoomed-log.png")
        win.grab().save(shot)
        written.append(shot)
        acts["fit"].trigger()
        acts["fit"].trigger()
        _settle(win)
        shot = os.path.join(out, f"{name}-fit.png")
        win.grab().save(shot)
        written.append(shot)
        win.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*")
    parser.add_argument("--out", default="shots")
    parser.add_argument("--record", metavar="DIR", help="record the example traces into DIR first")
    args = parser.parse_args()
    paths = list(args.traces) + (record(args.record) if args.record else [])
    for p in render(paths, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
