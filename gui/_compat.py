"""Work around PySide6 6.12.0 returning ``None`` without a reference (CPython < 3.12 only).

In PySide6/shiboken6 6.12.0 every binding that returns a null pointer as ``None``
(``QGraphicsItem.scene()``, ``parentItem()``, ``QObject.parent()``,
``QApplication.focusWidget()``…) drops one reference to ``None`` that it never took
(and ``SignalInstance.emit()`` does the same to ``True``).
pyqtgraph makes such calls on every frame, so ``None``'s reference count drains and
the interpreter aborts with "Fatal Python error: none_dealloc" after a few seconds to
minutes of interaction. From Python 3.12 ``None`` is immortal and the bug is harmless.

``install()`` gives ``None``, ``True`` and ``False`` 2**60 extra references once (static
objects that are never freed, so the extra count costs nothing). Imported by ``gui.state`` so it
is in force wherever the GUI is.
"""

from __future__ import annotations

import ctypes
import sys

_EXTRA = 1 << 60


def install() -> bool:
    """Raise the singletons' reference counts far out of reach; True when applied (idempotent)."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    try:
        import PySide6
    except ImportError:
        return False
    if not PySide6.__version__.startswith("6.12."):  # pyproject pins <6.12; guard other installs
        return False
    for obj in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))
        if count.value < _EXTRA // 2:
            count.value += _EXTRA
    return True


install()
