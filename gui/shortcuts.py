"""The one keyboard map (viewer spec D1), as application-wide actions, and the step player.

Every key is a ``QAction`` with ``Qt.ApplicationShortcut`` context, so it works wherever
the focus is (a text field still keeps the keys it edits with).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from gui.state import RunState

if TYPE_CHECKING:
    from gui.main_window import MainWindow

SPEEDS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
BASE_FPS = 20


class Player(QObject):
    """Space plays through logged steps: ``speed`` rows per tick at 20 ticks/s (below 1: slower ticks)."""

    def __init__(self, state: RunState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.speed_index = SPEEDS.index(1)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self._apply_speed()

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle(self) -> None:
        if self.playing:
            self.timer.stop()
            return
        steps = self.state.logged_steps()
        if len(steps) and self.state.step >= int(steps[-1]):
            self.state.first()
        self.timer.start()

    def faster(self, delta: int) -> None:
        self.speed_index = min(max(self.speed_index + delta, 0), len(SPEEDS) - 1)
        self._apply_speed()

    def _apply_speed(self) -> None:
        self.timer.setInterval(int(1000 / BASE_FPS / min(self.speed, 1.0)))

    def _tick(self) -> None:
        steps = self.state.logged_steps()
        if not len(steps) or self.state.step >= int(steps[-1]):
            self.timer.stop()
            return
        self.state.move(max(int(self.speed), 1))


def _add(win: MainWindow, menu: QMenu, text: str, keys: str | list[str], fn: Callable[[], None]) -> QAction:
    act = QAction(text, win)
    seqs = [QKeySequence(k) for k in ([keys] if isinstance(keys, str) else keys)]
    act.setShortcuts(seqs)
    act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    act.triggered.connect(lambda _checked=False: fn())
    menu.addAction(act)
    win.addAction(act)
    return act


def install(win: MainWindow, menu: QMenu) -> dict[str, QAction]:
    """Create the navigation actions on ``win`` (listed in ``menu``); returns them by name."""
    s, tl, fp, player = win.state, win.timeline, win.findings, win.player
    acts = {
        "prev": _add(win, menu, "Previous logged step (of the focused view)", "Left",
                     lambda: win.step_focused(-1)),
        "next": _add(win, menu, "Next logged step (of the focused view)", "Right",
                     lambda: win.step_focused(1)),
        "prev10": _add(win, menu, "Back 10 logged steps", "Shift+Left", lambda: win.step_focused(-10)),
        "next10": _add(win, menu, "Forward 10 logged steps", "Shift+Right", lambda: win.step_focused(10)),
        "first": _add(win, menu, "First step", "Home", s.first),
        "last": _add(win, menu, "Last step (follow when live)", "End", win.go_last),
        "play": _add(win, menu, "Play / pause", "Space", player.toggle),
        "slower": _add(win, menu, "Play slower", "[", lambda: player.faster(-1)),
        "faster": _add(win, menu, "Play faster", "]", lambda: player.faster(1)),
    }
    menu.addSeparator()
    acts |= {
        "next_finding": _add(win, menu, "Next finding", "N", lambda: fp.next_finding(1)),
        "prev_finding": _add(win, menu, "Previous finding", "Shift+N", lambda: fp.next_finding(-1)),
        "open_finding": _add(win, menu, "Jump to the highlighted finding", ["Return", "Enter"],
                             fp.activate_current),
        "clear": _add(win, menu, "Clear finding selection", "Esc", win.clear_selection),
    }
    menu.addSeparator()
    acts |= {
        "log": _add(win, menu, "Log y", "Y", tl.toggle_log),
        "smooth": _add(win, menu, "Smoothing (EMA)", "E", tl.toggle_smoothing),
        "zoom_in": _add(win, menu, "Zoom in around the cursor", "W", lambda: tl.zoom(0.5)),
        "zoom_out": _add(win, menu, "Zoom out", "S", lambda: tl.zoom(2.0)),
        "pan_left": _add(win, menu, "Pan left", "A", lambda: tl.pan(-0.25)),
        "pan_right": _add(win, menu, "Pan right", "D", lambda: tl.pan(0.25)),
        "fit": _add(win, menu, "Fit finding / whole run", "F", tl.fit),
        "keys": _add(win, menu, "Keyboard shortcuts", "?", win.show_keys),
    }
    return acts


def key_table(actions: dict[str, QAction]) -> str:
    """Rich-text table of the key map (for the '?' dialog)."""
    rows = "".join(
        f"<tr><td style='padding-right:14px'><b>{', '.join(k.toString() for k in a.shortcuts())}</b></td>"
        f"<td>{a.text()}</td></tr>" for a in actions.values()
    )
    return f"<table>{rows}</table>"
