"""Shared pieces of the app/timeline/findings tests: real trace files and a ready window."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSettings

from analysis.findings import Finding, Report
from analysis.synthetic import save_arrays, synthetic_arrays
from analysis.trace import Trace

FC = (("fc1.weight", "fc1", (32, 16)), ("fc1.bias", "fc1", (32,)),
      ("fc2.weight", "fc2", (4, 32)), ("fc2.bias", "fc2", (4,)))


def write_trace(path: str, n: int = 200, every: int = 1, nan_at: tuple[int, ...] = (),
                inf_at: tuple[int, ...] = (), closed: bool = True, seed: int = 0,
                scalars: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> str:
    """A real HDF5 trace of ``n`` rows logged every ``every`` steps, with NaN/Inf planted in the loss."""
    data, attrs = synthetic_arrays(n, seed=seed)
    data["steps/step"] = np.arange(n, dtype=np.int64) * every
    loss = data["steps/loss"].copy()
    for row in nan_at:
        loss[row] = np.nan
    for row in inf_at:
        loss[row] = np.inf
    data["steps/loss"] = loss
    if scalars:
        names = np.array(list(scalars) + [""] * (64 - len(scalars)), dtype=object)
        steps = np.concatenate([s for s, _ in scalars.values()]).astype(np.int64)
        ids = np.concatenate([np.full(len(s), i, np.int32) for i, (s, _) in enumerate(scalars.values())])
        values = np.concatenate([v for _, v in scalars.values()]).astype(np.float64)
        data.update({"scalars/names": names, "scalars/step": steps, "scalars/name_id": ids,
                     "scalars/value": values})
    attrs[""]["closed_cleanly"] = int(closed)
    save_arrays(path, data, attrs)
    return path


def fixed_report(trace: Trace) -> Report:
    """Three findings at known places (an injected analysis, so tests do not hinge on detector tuning)."""
    last = int(trace.steps[-1])
    s = trace.steps
    findings = [
        Finding("lr_too_high", "cause", "error", 0.9, [int(s[40]), int(s[60])], "fc1", "LR too high",
                "update/weight ratio 3e-2", "lower the learning rate to 1e-3"),
        Finding("dead_relu", "cause", "warning", 0.7, [int(s[10]), last], "fc2.weight", "Dead units",
                "40% of units never fire", "use LeakyReLU"),
        Finding("loss_plateau", "symptom", "info", 0.5, [int(s[min(120, len(s) - 1)]), last], None,
                "Loss plateau",
                "loss flat after step 120", "see causes above"),
    ]
    return Report(trace=trace.path, steps=last + 1, findings=findings,
                  notes=["double_softmax: needs outputs, which this trace lacks"])


def make_window(qtbot, tmp_path, analyze_fn: Callable[[Trace], Report] | None = fixed_report,
                size: tuple[int, int] = (1280, 800), **kwargs):
    from gui.main_window import MainWindow
    from gui.theme import apply_theme

    apply_theme(qtbot_app())
    settings = QSettings(os.path.join(str(tmp_path), "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, analyze_fn=analyze_fn, **kwargs)
    win.resize(*size)
    if qtbot is None:  # a module-scoped window: the caller closes it
        win.show()
        qtbot_app().processEvents()
        return win
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


def wait_idle(qtbot, win, runs: int = 1, analysed: bool = True, timeout: float = 15.0) -> None:
    """Until ``runs`` runs are open, every worker is done and (optionally) every run has a report."""
    import time

    def ready() -> bool:
        win.wait_workers(50)
        if len(win.state.runs) < runs or win.loader.busy():
            return False
        return not analysed or all(r.report is not None or r.notes for r in win.state.runs)

    end = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < end, "timed out waiting for the loader"
        qtbot_app().processEvents()
        time.sleep(0.005)


def shutdown(win) -> None:
    """Stop timers and wait for every worker thread (no dangling threads between tests)."""
    win.live.stop()
    win.player.timer.stop()
    win.wait_workers(15000)
    win.close()
