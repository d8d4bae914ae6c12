"""Where a trace goes: an existing file is never overwritten, a file in use is never touched.

``claim(path)`` returns the path to create and the notes to warn with: a file already at
``path`` is moved aside to ``run.prev1.h5`` (the first free number) unless another process
holds it open (a recorder or a reader: a ``flock`` on it), in which case this run records to
``run.pid<PID>.h5`` instead. ``hold(fd)`` takes a shared lock once HDF5 drops its own (when
SWMR writing starts); without SWMR, HDF5's exclusive lock lasts the whole run. Filesystems
without ``flock`` skip the check (a live file is then moved; its writer keeps writing to it).
"""

from __future__ import annotations

import fcntl
import os

from recorders import schema


def in_use(path: str) -> bool:
    """Whether another open file description holds a lock on ``path`` (False when unknown)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no flock here (some network filesystems): cannot tell
        return False
    finally:
        os.close(fd)  # also releases the probe's lock
    return False


def _free(path: str, tag: str, first: str) -> str:
    """``run.<first>.h5`` if free, else the first free ``run.<tag><n>.h5``."""
    candidate, n = schema.sibling_path(path, first), 1
    while os.path.lexists(candidate):
        n += 1
        candidate = schema.sibling_path(path, f"{tag}{n}")
    return candidate


def claim(path: str) -> tuple[str, list[str]]:
    """The file to create for a trace asked at ``path``, and what to tell the user about it."""
    if not os.path.lexists(path) or os.path.isdir(path):
        return path, []  # nothing there, or a folder: HDF5's own error says so
    if in_use(path):
        pid = os.getpid()
        other = _free(path, f"pid{pid}-", f"pid{pid}")
        return other, [f"{path} is in use by another process (a recorder or a reader); "
                       f"this run records to {other} instead"]
    moved = _free(path, "prev", "prev1")
    os.rename(path, moved)
    return path, [f"a file already existed at {path}: moved it to {moved} (a trace is never overwritten)"]


def hold(fd: int) -> None:
    """Take a shared lock on the open trace ``fd`` for as long as it stays open."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pass  # no flock on this filesystem: other recorders cannot tell, nothing else changes
